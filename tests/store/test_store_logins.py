"""Whose browsers a batch of the player's events come from, looked up at once (accounts on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from backrub.store.accounts import AccountStore

if TYPE_CHECKING:
    from backrub.store import SessionStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"  # a stand-in


def test_the_sign_ins_of_a_batch_are_found_in_one_lookup(store: SessionStore) -> None:
    accounts = AccountStore(store.engine)
    ann = accounts.create_user(email="ann@example.org", password_hash=HASH, now=NOW)
    bob = accounts.create_user(email="bob@example.org", password_hash=HASH, now=NOW)
    later = NOW + timedelta(days=30)
    for user, token in ((ann, "a1"), (ann, "a2"), (bob, "b1"), (bob, "gone")):
        accounts.open_login(user_id=user.id, token_hash=token * 8, now=NOW, expires_at=later)
    accounts.close_login("gone" * 8)  # signed out
    accounts.open_login(user_id=bob.id, token_hash="old" * 8, now=NOW, expires_at=NOW)  # expired
    asked = ["a1" * 8, "a2" * 8, "b1" * 8, "a1" * 8, "gone" * 8, "old" * 8, "never" * 8]
    found = accounts.users_for_logins(asked, now=NOW + timedelta(minutes=1))
    # Each known, open sign-in its person (Ann from either browser); the rest left out.
    assert {token: user.email for token, user in found.items()} == {
        "a1" * 8: "ann@example.org",
        "a2" * 8: "ann@example.org",
        "b1" * 8: "bob@example.org",
    }
    assert found["a1" * 8] == ann and found["b1" * 8] == bob
    # One at a time, the same answers.
    for token in asked:
        assert accounts.user_for_login(token, now=NOW + timedelta(minutes=1)) == found.get(token)
    assert accounts.users_for_logins([], now=NOW) == {}
