"""The per-person window: calls age out after the window, keys do not share a count."""

from __future__ import annotations

from backrub.web.ratelimit import SlidingWindow


def test_a_window_lets_calls_in_again_as_old_ones_age_out() -> None:
    window = SlidingWindow(2, window=60)
    assert window.allow("ana", now=0) and window.allow("ana", now=10)
    assert not window.allow("ana", now=59)
    assert window.retry_after("ana", now=59) == 1
    assert window.allow("ben", now=59)
    assert window.allow("ana", now=60.5)  # the call at 0 has aged out
    assert not window.allow("ana", now=61)
    assert window.retry_after("ana", now=61) == 9
