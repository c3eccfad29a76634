"""The store's errors: one plain sentence each, saying what is wrong and what to do.

They are `BadInput`, so the CLI prints the sentence and exits 2, and the web turns them into a
client error — never a traceback.
"""

from __future__ import annotations

from backrub.core.errors import BadInput


class StoreError(BadInput):
    """The database cannot be used, or a value may not be stored; nothing was written."""


class NoSuchSession(StoreError):
    """No session with this id belongs to this owner (the web answers 404)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"No session {quoted(session_id)} is stored; check the id against your history."
        )


def quoted(value: str, longest: int = 40) -> str:
    """`value` quoted for a sentence, cut to `longest` characters: an id may come from an
    address, which may be of any length."""
    return repr(value if len(value) <= longest else value[:longest] + "…")
