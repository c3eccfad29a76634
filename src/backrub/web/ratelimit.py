"""Per-person limits on the calls a page makes all session long (the player's events), when
backrub serves many people: one person's runaway page (or script) cannot take the server's time
from everyone else's sessions, nor fill the database with new ones.

Counted in each app process's memory, on purpose: a count in the database would cost a write on
every event, the very call this protects. With N processes a person may get up to N times the
limit, still far from harm. Serving the local profile, there is no one else to protect, so no
limit applies.
"""

from __future__ import annotations

import threading
import time
from collections import deque

# A player sends about one event every 15 s, and a burst of taps now and then.
EVENTS_PER_MINUTE = 120
# A guided audio track takes seconds of a core to render (one at a time per process).
TRACKS_PER_HOUR = 6
# A session lasts 15 to 60 minutes: even one started over and over again, each time after a
# look at its plan, makes a handful an hour. Past this, a script is filling the database.
SESSIONS_PER_HOUR = 30
WINDOW_SECONDS = 60.0


class SlidingWindow:
    """At most `limit` calls per key in any `window` seconds."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= moment - self.window:
                calls.popleft()
            if len(calls) >= self.limit:
                return False
            calls.append(moment)
            if len(self._calls) > 10_000:
                # Forget people whose window has passed, so memory stays bounded.
                for stale in [
                    k for k, v in self._calls.items() if not v or v[-1] <= moment - self.window
                ]:
                    del self._calls[stale]
            return True

    def forget_one(self, key: str) -> None:
        """Take back the latest call allowed for `key` (it will be counted again elsewhere)."""
        with self._lock:
            calls = self._calls.get(key)
            if calls:
                calls.pop()

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Whole seconds until `key` may call again."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            calls = self._calls.get(key)
            if not calls or len(calls) < self.limit:
                return 0
            return max(1, int(calls[0] + self.window - moment + 0.999))
