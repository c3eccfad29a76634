"""The API fuzzed from its own OpenAPI schema (/api/v1/openapi.json) with schemathesis.

In process: schemathesis calls the ASGI app directly (no server, no network), on a SQLite file of
this module's own. Every request carries what a page's script sends: the `backrub_csrf` cookie a
page set, the same token in `X-CSRF-Token`, and `Host: 127.0.0.1:8000`.

- `test_every_operation`: each operation through schemathesis's phases — the schema's examples,
  its coverage of boundaries, missing fields, wrong types and unsupported methods, then
  EXAMPLES random requests, valid and invalid. The checks: no 5xx; the status, content type,
  body and headers as documented; invalid input refused; an unsupported method answered 405.
- `test_linked_operations`: sequences of calls along the links schemathesis infers from the
  schema (a created session's `id` into `/sessions/{session_id}/…`), with its checks that a
  created session can be read and a deleted one cannot.
- `test_unreadable_and_oversized_bodies_and_405s_are_documented`: a body that is not UTF-8 or
  over 64 KiB gets a documented status; a 405 names every method of the path in `Allow`.

`{session_id}`: schemathesis draws it from a dictionary of stand-ins (or, now and then, any text,
for a 404); each stand-in becomes a session made for that one request — new, started, or ended —
so every example finds the state it names even after DELETE /sessions/{id} or DELETE /data ran,
and a failing example replays the same. Region and condition ids are drawn from the catalogue
(the schema says only "text"), so the planner and the safety check see real input too.

Repeatable: Hypothesis is derandomized (the same examples on every run, in CI too).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.config import SchemathesisConfig
from schemathesis.errors import FailureGroup
from starlette.exceptions import StarletteDeprecationWarning

from backrub.config import Settings
from backrub.web import audio_routes, create_app

with warnings.catch_warnings():
    # Starlette would rather have httpx2; the httpx pinned for the tests works the same.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi import FastAPI
    from schemathesis import Case, Response
    from schemathesis.schemas import BaseSchema

HOST = "127.0.0.1:8000"
BASE_URL = f"http://{HOST}"
SCHEMA_PATH = "/api/v1/openapi.json"
JSON = "application/json"
# Random requests per operation, after the schema's examples and its coverage cases.
EXAMPLES = 100
# Sequences of linked calls, and the calls in each.
SCENARIOS = 100
STEPS = 10
DERANDOMIZED = settings(derandomize=True, deadline=None, database=None)

# What stands in for `{session_id}`: a session made for the request, in that state.
NEW = "new-session"
STARTED = "started-session"
ENDED = "ended-session"
# Invalid input must be refused with one of these; 413 is how a body over 64 KiB is refused.
REFUSED = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5XX"]

BODY: dict[str, Any] = {
    "mode": "partner",
    "minutes": 20,
    "focus": [{"region": "shoulders", "tension": 8}, {"region": "lower-back", "tension": 5}],
    "pressure": "medium",
    "oil": True,
    "findings": [],
    "tension_before": 7,
}


def quick_track(*_args: Any, folder: Path, **_options: Any) -> Path:
    """A second of silence in place of a guided track (test_audio_web.py renders real ones)."""
    import numpy as np
    import soundfile  # type: ignore[import-untyped]

    track = folder / "backrub-massage.ogg"
    soundfile.write(track, np.zeros(22_050, dtype=np.float32), 22_050, format="OGG")
    return track


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Iterator[FastAPI]:
    root = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(
        data_dir=root / "data", cache_dir=root / "cache", database_url=f"sqlite:///{root}/fuzz.db"
    )
    # Every valid body of POST /api/v1/audio would render minutes of audio (seconds each): the
    # fuzzing checks statuses, headers and validation, so the render itself is a stand-in here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audio_routes, "render_track", quick_track)
        yield create_app(app_settings, templates_dir=site / "templates", static_dir=site / "static")


@pytest.fixture(scope="module")
def fuzz_input(fuzz_app: FastAPI) -> dict[str, Any]:
    """As a browser would: open a page for the CSRF cookie; then a few sessions in the history
    (one new, one started, one ended), and the catalogue's ids."""
    with TestClient(fuzz_app, base_url=BASE_URL) as client:
        assert client.get("/").status_code == 200
        token = client.cookies["backrub_csrf"]
        client.headers["X-CSRF-Token"] = token
        ids = []
        for _ in range(3):
            response = client.post("/api/v1/sessions", json=BODY)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        progress = {"kind": "progress", "active": 95.0, "seq": 1, "fired": ["step:0", "step:1"]}
        assert client.post(f"/api/v1/sessions/{ids[1]}/events", json=progress).status_code == 200
        end = {"active": 300.0, "tension_after": 3, "stopped": True, "note": "calmer"}
        assert client.post(f"/api/v1/sessions/{ids[2]}/finish", json=end).status_code == 200
        catalogue = client.get("/api/v1/catalogue").json()
    return {
        "headers": {"X-CSRF-Token": token, "Cookie": f"backrub_csrf={token}"},
        "regions": [region["id"] for region in catalogue["regions"]],
        "conditions": [condition["id"] for condition in catalogue["conditions"]],
    }


def load_schema(app: FastAPI, given: dict[str, Any], *, stand_ins: bool) -> BaseSchema:
    """The app's schema, fuzzed with the catalogue ids `given`, and with `{session_id}` drawn from
    the stand-ins when `stand_ins` (otherwise it is any text, or an id a link carries)."""
    dictionaries: dict[str, Any] = {
        "regions": {"values": given["regions"]},
        "conditions": {"values": given["conditions"]},
    }
    parameters: dict[str, Any] = {
        # The remote's long poll would sit out every `wait` it is given (up to 25 s) on a
        # session without messages; test_remote.py checks its bounds.
        "query.wait": 0,
        "body.focus[*].region": {"dictionary": "regions", "probability": 0.9},
        "body.findings[*].condition": {"dictionary": "conditions", "probability": 0.9},
        "body.findings[*].region": {"dictionary": "regions", "probability": 0.9},
    }
    if stand_ins:
        dictionaries["sessions"] = {"values": [NEW, STARTED, ENDED]}
        parameters["path.session_id"] = {"dictionary": "sessions", "probability": 0.9}
    config = SchemathesisConfig.from_dict(
        {
            "base-url": BASE_URL,
            "headers": given["headers"],
            "dictionaries": dictionaries,
            "parameters": parameters,
            # Linked calls carry valid input only (every operation's invalid input is fuzzed on
            # its own), so that sequences get past their first step.
            "phases": {"stateful": {"generation": {"mode": "positive"}}},
            "checks": {
                # Off: a schema-valid body is refused, rightly, when it names a region or
                # condition the catalogue does not have (the schema says only "text"), and, as
                # reported, when it sends 5.0 for an integer (JSON Schema's integer; strict
                # pydantic's float).
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"expected-statuses": REFUSED},
            },
        }
    )
    return schemathesis.openapi.from_asgi(SCHEMA_PATH, app, config=config, headers={"Host": HOST})


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: FastAPI, fuzz_input: dict[str, Any]) -> BaseSchema:
    return load_schema(fuzz_app, fuzz_input, stand_ins=True)


@pytest.fixture(scope="module")
def linked_schema(fuzz_app: FastAPI, fuzz_input: dict[str, Any]) -> BaseSchema:
    return load_schema(fuzz_app, fuzz_input, stand_ins=False)


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32.5 reads `item._nodeid`, which pytest 9.2 no longer has, in the tests
    # `from_fixture(...).parametrize()` makes (AttributeError before any operation runs).
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(DERANDOMIZED, max_examples=EXAMPLES)
def test_every_operation(case: Case, fuzz_input: dict[str, Any]) -> None:
    given = case.path_parameters.get("session_id")
    if given is not None and case.meta is not None and case.meta.phase.name.value == "coverage":
        # The coverage phase varies the body and the method, not the id: give it a session.
        given = NEW
    if given in (NEW, STARTED, ENDED):
        case.path_parameters["session_id"] = make_session(case, given, fuzz_input["headers"])
    case.call_and_validate()


def make_session(case: Case, state: str, headers: dict[str, str]) -> str:
    """A session for one request, through the API, in `state`."""
    operations = case.operation.schema
    response = operations["/api/v1/sessions"]["POST"].Case(body=BODY).call(headers=headers)
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    path = {"session_id": session_id}
    if state == STARTED:
        progress = {"kind": "progress", "active": 95.0, "seq": 1, "fired": ["step:0", "step:1"]}
        event = operations["/api/v1/sessions/{session_id}/events"]["POST"]
        response = event.Case(path_parameters=path, body=progress).call(headers=headers)
        assert response.status_code == 200, response.text
    elif state == ENDED:
        end = {"active": 300.0, "tension_after": 3, "stopped": True}
        finish = operations["/api/v1/sessions/{session_id}/finish"]["POST"]
        response = finish.Case(path_parameters=path, body=end).call(headers=headers)
        assert response.status_code == 200, response.text
    return session_id


def test_linked_operations(linked_schema: BaseSchema) -> None:
    class Workflow(linked_schema.as_state_machine()):
        def before_call(self, case: Case) -> None:
            # The remote's long poll waits 20 s unless told otherwise: not in a scenario.
            if case.operation.path.endswith("/remote/messages"):
                case.query = {**(case.query or {}), "wait": 0}

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            __tracebackhide__ = True
            case.validate_response(
                response,
                additional_checks=additional_checks,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Workflow.run(settings=settings(DERANDOMIZED, max_examples=SCENARIOS, stateful_step_count=STEPS))


def test_unreadable_and_oversized_bodies_and_405s_are_documented(
    fuzz_schema: BaseSchema, fuzz_input: dict[str, Any]
) -> None:
    """A JSON body that is not UTF-8, or over 64 KiB, is answered with a status the operation
    documents; a 405 to an unsupported method names every method of the path in `Allow`."""
    documented = [schemathesis.checks.status_code_conformance]
    allowed = [schemathesis.checks.allow_header_conformance]
    problems: list[str] = []
    for result in fuzz_schema.get_all_operations():
        operation = result.ok()
        path = {name: "0" for name in ("session_id", "code") if f"{{{name}}}" in operation.path}
        probes = [(operation.Case(method="OPTIONS", path_parameters=path), allowed)]
        if operation.body:
            probes += [
                (operation.Case(path_parameters=path, body=b"\x80", media_type=JSON), documented),
                (operation.Case(path_parameters=path, body={"note": "x" * 70_000}), documented),
            ]
        for case, checks in probes:
            response = case.call(headers=fuzz_input["headers"])
            try:
                case.validate_response(response, checks=checks)
            except FailureGroup as group:
                for failure in group.exceptions:
                    problems.append(f"{operation.label}: {failure.title}")
                    problems += [f"    {line}" for line in failure.message.splitlines() if line]
    assert not problems, "\n".join(problems)
