"""The person's own time zone, read at the edge (the core takes it as an argument)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def local_zone() -> tzinfo:
    """Days, weeks and streaks follow the person's clock, not UTC."""
    return datetime.now().astimezone().tzinfo or UTC
