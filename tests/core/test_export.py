"""What the JSON of a stored session holds: every field of the record, as plain data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backrub.core.export import as_plain, record_as_dict
from backrub.core.models import FeedbackEvent, Focus, SessionRecord

FULL = SessionRecord(
    id="abc",
    started_at=datetime(2026, 11, 25, 19, 30, tzinfo=UTC),
    mode="partner",
    minutes_planned=30,
    seconds_done=912,
    status="finished",
    focus=(Focus("shoulders", 8), Focus("lower-back", 5)),
    verdict="caution",
    verdict_conditions=("sunburn-or-rash",),
    tension_before=7,
    tension_after=3,
    note="Much better — thank you",
    tender=("upper-back",),
    feedback=(FeedbackEvent("tender", 95.5, 3, "upper-back"), FeedbackEvent("good", 120, 4, "x")),
    ended_at=datetime(2026, 11, 25, 20, 1, tzinfo=UTC),
)
BARE = SessionRecord("def", FULL.started_at, "self", 15, 0, "active", (), "clear", ())


@pytest.mark.parametrize("record", [FULL, BARE], ids=["every field", "defaults"])
def test_a_record_as_json_holds_what_the_generic_conversion_gives(record: SessionRecord) -> None:
    # record_as_dict is written out field by field for speed; history --json and the API's
    # answers depend on it saying exactly what as_plain says, and on it being JSON.
    data = record_as_dict(record)
    assert data == as_plain(record)
    assert json.loads(json.dumps(data)) == data
    assert list(data) == list(SessionRecord._fields)
