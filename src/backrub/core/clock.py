"""Time enters the core only through this protocol, so every behaviour runs on a fake clock."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a steady clock (any origin; only differences matter)."""
        ...
