"""backrub's errors. Each carries what went wrong and what is allowed, in one plain sentence.

Adapters turn them into an exit code or an HTTP status; the core never knows which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class BackrubError(Exception):
    """Base of every error backrub reports to a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(BackrubError):
    """Something a person typed or sent is not allowed; the message says what is."""


class UnknownRegion(BadInput):
    def __init__(self, region: str, allowed: Iterable[str]) -> None:
        self.region = region
        self.allowed = tuple(allowed)
        super().__init__(f"Unknown region {region!r}; choose from: {', '.join(self.allowed)}.")


class UnknownCondition(BadInput):
    def __init__(self, condition: str, allowed: Iterable[str]) -> None:
        self.condition = condition
        self.allowed = tuple(allowed)
        super().__init__(
            f"Unknown condition {condition!r}; choose from: {', '.join(self.allowed)}."
        )


class OutOfRange(BadInput):
    def __init__(self, name: str, value: object, low: int, high: int) -> None:
        self.name = name
        self.value = value
        self.low = low
        self.high = high
        super().__init__(f"{name} must be {low} to {high} (got {value}).")


class SafetyStop(BackrubError):
    """A `stop` verdict: no session may start. Carries the verdict so adapters can explain it."""

    def __init__(self, verdict: object, message: str) -> None:
        self.verdict = verdict
        super().__init__(message)


class CatalogueError(BackrubError):
    """The packaged data files are malformed; lists every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(self.problems)
        super().__init__(f"backrub's data files have {len(self.problems)} problem(s): {listed}")
