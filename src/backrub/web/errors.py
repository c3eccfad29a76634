"""backrub's errors as HTTP answers: one sentence that says what is allowed, never a traceback.

Under `/api/` every error is JSON, `{"error": "…"}` (plus `"safety"` for a stop verdict); a page
gets the error page instead. pydantic's validation errors become the same kind of sentence as the
CLI's (`minutes must be 15 to 60 (got 90).`), naming the field and what it accepts.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Union
from urllib.parse import quote

from annotated_types import Ge, Gt, Le, Lt
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match

from backrub.core.errors import BackrubError, BadInput, SafetyStop
from backrub.core.export import verdict_as_dict
from backrub.core.models import Verdict
from backrub.store import NoSuchSession, StoreError
from backrub.web.accounts import SignInRequired, Throttled, WrongPassword
from backrub.web.schemas import Sentence
from backrub.web.security import API_PREFIX, SERVER_FAULT, secured

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from fastapi import FastAPI
    from starlette.requests import Request

# Renders an error page for a person (pages.error_page); app.py hands it over.
PageRenderer = typing.Callable[["Request", int, str], Response]

SIGN_IN_FIRST = "Sign in first: this server keeps each person's sessions in their own account."
API_SENTENCES = {
    400: "The request could not be read.",
    404: "There is nothing at this address; the API is described at /api/v1/openapi.json.",
    405: "This address does not take {method} requests; see /api/v1/openapi.json.",
}
# What the framework says in a phrase of its own, said as backrub says it.
FRAMEWORK_PHRASES = {
    # A body JSON cannot hold, such as one nested deeper than the parser goes.
    "There was an error parsing the body": (
        "The request body could not be read as JSON; send one JSON object, nested a few levels "
        "at most."
    ),
}
PAGE_SENTENCES = {
    404: "There is no such page here.",
    405: "This page can only be opened, not sent to.",
}


def install(app: FastAPI, render_page: PageRenderer, bare_page: PageRenderer) -> None:
    """Register the handlers on `app`."""

    def answer(request: Request, status: int, sentence: str, **extra: Any) -> Response:
        sentence = printable(sentence)
        if is_api(request):
            return JSONResponse({"error": sentence, **extra}, status)
        return render_page(request, status, sentence)

    async def on_validation(request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        models = _models_of(request.scope.get("route"))
        return answer(request, 422, describe(errors, models))

    async def on_backrub(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, BackrubError):  # pragma: no cover - registered for it only
            raise exc
        if isinstance(exc, SafetyStop):
            extra = {"safety": verdict_as_dict(exc.verdict)} if _is_verdict(exc.verdict) else {}
            return answer(request, 409, exc.message, **extra)
        return answer(request, status_for(exc), exc.message)

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
            raise exc
        sentences = API_SENTENCES if is_api(request) else PAGE_SENTENCES
        # A route's own sentence is kept; the framework's bare phrase ("Not Found") is not.
        if exc.status_code in sentences and exc.detail == HTTPStatus(exc.status_code).phrase:
            sentence = sentences[exc.status_code].format(method=request.method)
        elif exc.detail in FRAMEWORK_PHRASES:
            sentence = FRAMEWORK_PHRASES[exc.detail]
        else:
            sentence = _as_sentence(str(exc.detail))
        response = answer(request, exc.status_code, sentence)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; a path served by several
            # routes (GET and POST /sessions) allows all of theirs.
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return JSONResponse({"error": SIGN_IN_FIRST}, 401)
        # Back to this page after signing in: a path of this site, never another address.
        return RedirectResponse(f"/signin?next={quote(request.url.path, safe='/')}", 303)

    async def on_fault(request: Request, exc: Exception) -> Response:
        # The headers are added here too, whatever wraps this: a server error must never go
        # out without them. A page gets a bare one, as the templates may be at fault.
        response: Response
        if is_api(request):
            response = JSONResponse({"error": SERVER_FAULT}, 500)
        else:
            response = bare_page(request, 500, SERVER_FAULT)
        return secured(response, request.url.path, https=request.url.scheme == "https")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(BackrubError, on_backrub)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(Exception, on_fault)


def allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too: FastAPI keeps an included router as one
    entry whose own match names no methods. (app.py includes them without a prefix.)"""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def printable(text: str) -> str:
    """`text` with any lone surrogate written as its escape: a sentence may quote what was
    sent, and an answer must still be UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def status_for(error: BackrubError) -> int:
    if isinstance(error, WrongPassword):
        return 401
    if isinstance(error, Throttled):
        return 429
    if isinstance(error, NoSuchSession):
        return 404
    if isinstance(error, StoreError):
        # The database cannot be reached, or the change conflicts with what is stored
        # (a session that has ended). Values are checked before they reach the store.
        return 503 if isinstance(error.__cause__, OperationalError) else 409
    if isinstance(error, BadInput):
        return 422
    return 400


def _is_verdict(value: object) -> typing.TypeGuard[Verdict]:
    return isinstance(value, Verdict)


def _as_sentence(text: str) -> str:
    text = text.strip() or "The request was refused"
    return text if text.endswith((".", "!", "?")) else text + "."


# ---- pydantic's errors as sentences ---------------------------------------------------------


class _Spot(NamedTuple):
    """What the schema says about the place an error points at."""

    annotation: Any
    metadata: tuple[Any, ...]


def describe(errors: Sequence[Any], models: Sequence[type[BaseModel]]) -> str:
    """The first problem as one sentence."""
    if not errors:
        return "The request is not valid."
    error = errors[0]
    kind: str = error.get("type", "")
    loc = tuple(error.get("loc", ()))
    where, path = (loc[0], loc[1:]) if loc and loc[0] in ("body", "query", "path") else ("", loc)
    ctx: dict[str, Any] = error.get("ctx") or {}
    given = error.get("input")
    if kind == "json_invalid":
        at = f" at character {path[0]}" if path else ""
        # The parser's own words may end where it meant to name the place ("… at").
        unread = str(ctx.get("error", "unreadable")).removesuffix(" at")
        return f"The request body is not valid JSON ({unread}{at})."
    if where == "body" and not path:
        if kind == "missing":
            return "The request needs a JSON body."
        if isinstance(given, bytes | bytearray) or kind in ("model_type", "model_attributes_type"):
            return "The request body must be a JSON object, sent as application/json."
    name = _name(path) if path else "The request"
    got = _got(given)
    spot = _spot(models, path)
    if kind == "missing":
        return f"{name} is required."
    if kind == "extra_forbidden":
        parent = _spot(models, path[:-1])
        fields = _fields(parent.annotation) if parent else ()
        allowed = f"; the fields are: {', '.join(fields)}" if fields else ""
        return f"{name} is not a field here{allowed}."
    if kind == "value_error":
        reason = ctx.get("error")
        if isinstance(reason, Sentence):
            return str(reason)
        return f"{name} {reason}{got}."
    if kind == "literal_error":
        choices = _choices(spot.annotation) if spot else None
        listed = ", ".join(choices) if choices else ctx.get("expected", "")
        return f"{name} must be one of: {listed}{got}."
    bounds = _bounds(spot.metadata) if spot else None
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{name} must be a whole number{_range(bounds, ' ')}{got}."
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"{name} must be a number{_range(bounds, ' ')}{got}."
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{name} must be {_range(bounds, '') or 'in range'}{got}."
    if kind in ("bool_type", "bool_parsing"):
        return f"{name} must be true or false{got}."
    if kind in ("string_type", "string_unicode"):
        return f"{name} must be text{got}."
    if kind == "string_too_short":
        return f"{name} must not be empty."
    if kind == "string_too_long":
        return f"{name} must be at most {ctx.get('max_length')} characters."
    if kind == "too_long":
        return f"{name} may hold at most {ctx.get('max_length')} items."
    if kind in ("list_type", "tuple_type"):
        return f"{name} must be a list{got}."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        fields = _fields(spot.annotation) if spot else ()
        with_fields = f" with the fields {', '.join(fields)}" if fields else ""
        return f"{name} must be an object{with_fields}{got}."
    if kind == "none_required" or kind == "none_type":
        return f"{name} must be null{got}."
    message = str(error.get("msg", "is not valid")).rstrip(".")
    return f"{name} is not valid ({message}){got}."


def _name(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _got(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return ""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > 40:
        text = text[:37] + "…"
    return f" (got {text})"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Bounds(NamedTuple):
    low: Any
    high: Any
    low_open: bool
    high_open: bool


def _bounds(metadata: Sequence[Any]) -> _Bounds | None:
    low: Any = None
    high: Any = None
    low_open = high_open = False
    for item in metadata:
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Gt):
            low, low_open = item.gt, True
        elif isinstance(item, Le):
            high = item.le
        elif isinstance(item, Lt):
            high, high_open = item.lt, True
    if low is None and high is None:
        return None
    return _Bounds(low, high, low_open, high_open)


def _range(bounds: _Bounds | None, lead: str) -> str:
    if bounds is None:
        return ""
    low, high = bounds.low, bounds.high
    if low is not None and high is not None and not (bounds.low_open or bounds.high_open):
        return f"{lead}{_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'above' if bounds.low_open else 'at least'} {_number(low)}")
    if high is not None:
        parts.append(f"{'below' if bounds.high_open else 'at most'} {_number(high)}")
    return lead + " and ".join(parts)


def _fields(annotation: Any) -> tuple[str, ...]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return tuple(annotation.model_fields)
    return ()


def _choices(annotation: Any) -> tuple[str, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return None


def _unwrap(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """Strip `Annotated[…]` (keeping its metadata) and `X | None`."""
    metadata: tuple[Any, ...] = ()
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            for extra in args[1:]:
                metadata += (extra, *getattr(extra, "metadata", ()))
        elif origin in (Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation, metadata
            annotation = rest[0]
        else:
            return annotation, metadata


def _spot(models: Sequence[type[BaseModel]], path: Sequence[Any]) -> _Spot | None:
    for model in models:
        found = _walk(model, path)
        if found is not None:
            return found
    return None


def _walk(model: type[BaseModel], path: Sequence[Any]) -> _Spot | None:
    current: Any = model
    metadata: tuple[Any, ...] = ()
    for part in path:
        current, extra = _unwrap(current)
        metadata += extra
        if isinstance(part, int):
            if typing.get_origin(current) not in (list, tuple):
                return None
            current, metadata = typing.get_args(current)[0], ()
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current, metadata = field.annotation, tuple(field.metadata)
        else:
            return None
    current, extra = _unwrap(current)
    return _Spot(current, metadata + extra)


def _models_of(route: object) -> tuple[type[BaseModel], ...]:
    endpoint = getattr(route, "endpoint", None)
    return _endpoint_models(endpoint) if callable(endpoint) else ()


@functools.cache
def _endpoint_models(endpoint: Callable[..., Any]) -> tuple[type[BaseModel], ...]:
    """The pydantic models a route takes (its body and query), for naming what they allow."""
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
    except (NameError, TypeError):
        return ()
    models = []
    for name, hint in hints.items():
        base, _ = _unwrap(hint)
        if name != "return" and isinstance(base, type) and issubclass(base, BaseModel):
            models.append(base)
    return tuple(models)
