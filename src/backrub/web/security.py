"""The headers every response carries, and the checks every request passes before any route.

- **Host**: only the names this server is reached by on this computer (127.0.0.1, localhost,
  ::1, and the address it was started on). A web page elsewhere cannot point a name of its own at
  127.0.0.1 (DNS rebinding) and so read or change the local profile. With accounts on, any name:
  what a request may read is decided by the login cookie, which belongs to one name.
- **CSRF**: a state-changing request must echo the `backrub_csrf` cookie in `X-CSRF-Token`
  (double submit; the cookie is `SameSite=Strict`; with accounts on it is
  `__Host-backrub_csrf`, Secure), and an `Origin`, when sent, must be ours.
- **Addresses**: a path with a control character (NUL above all: PostgreSQL refuses it) or a
  query with a NUL names nothing here; refused with a sentence before any route reads it.
- **Headers**: a strict Content-Security-Policy (no inline scripts or styles), `nosniff`,
  no referrer; API answers are health data and pages show whose account it is, so neither is
  ever cached (the service worker keeps its own copy for offline use); over HTTPS,
  `Strict-Transport-Security`.
- **Crashes** are logged as their types and where they happened, never their messages: those
  may quote what a person sent (a note, a password, a query's parameters).

A plain ASGI middleware rather than `BaseHTTPMiddleware`, which would wrap every request and
answer in a task and streams of its own.
"""

from __future__ import annotations

import logging
import re
import secrets
import traceback
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG = logging.getLogger(__name__)
# The one sentence for a fault in backrub itself (errors.py answers with it too).
SERVER_FAULT = "Something went wrong inside backrub; nothing more was saved. Try again."
CSRF_COOKIE = "backrub_csrf"
# With accounts on (served over HTTPS), the same cookie bound to this exact host and scheme.
HOSTED_CSRF_COOKIE = "__Host-backrub_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
API_PREFIX = "/api/"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
# A year; browsers then open this server by https only, even when told http.
HSTS = (b"strict-transport-security", b"max-age=31536000")
# C0 controls and DEL: no route's path holds one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

FOREIGN_HOST = "This server answers only to {hosts}; open it by one of those addresses."
NO_HOST = "The request must name this server in a Host header."
TOO_LARGE = "The request body is too large: at most {kib} KiB."
CONTROL_IN_ADDRESS = (
    "The address holds a control character (such as NUL, %00), which no address here has."
)
FOREIGN_ORIGIN = "Requests from another site are refused; use backrub's own pages."
UNSIGNED = (
    "The request lacks the page's CSRF token (the X-CSRF-Token header must equal the "
    "backrub_csrf cookie); reload the page and try again."
)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def usable_token(value: str | None) -> bool:
    return value is not None and _TOKEN.fullmatch(value) is not None


# As the ASGI messages carry them: lower-case names, bytes.
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]
_RAW_NAMES = frozenset(name for name, _ in _RAW_HEADERS)
_NO_STORE = (b"cache-control", b"no-store")


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], path: str, *, https: bool = False
) -> list[tuple[bytes, bytes]]:
    """An answer's raw headers with ours, in place of any of the same name it set;
    `Cache-Control: no-store` on the API's answers and the pages that say nothing of caching;
    and, served over HTTPS, `Strict-Transport-Security`."""
    raw = list(headers)
    names = {name.lower() for name, _ in raw}
    if not names.isdisjoint(_RAW_NAMES):
        raw = [(name, value) for name, value in raw if name.lower() not in _RAW_NAMES]
    raw += _RAW_HEADERS
    if b"cache-control" not in names and (path.startswith(API_PREFIX) or _is_page(raw)):
        raw.append(_NO_STORE)
    if https and HSTS[0] not in names:
        raw.append(HSTS)
    return raw


def _is_page(raw: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in raw
    )


def secured(response: Response, path: str, *, https: bool = False) -> Response:
    """The same headers on a response made outside the middleware (a server error)."""
    # In place: the response's `headers` view is over this very list.
    response.raw_headers[:] = with_security_headers(response.raw_headers, path, https=https)
    return response


def redacted(error: BaseException) -> str:
    """A crash as Python would print it, but for the exceptions' messages: each exception's
    type and the lines it went through, the cause first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    lines: list[str] = []
    for exc in reversed(chain):
        lines.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(exc.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line}")
        kind = type(exc)
        lines.append(f"{kind.__module__}.{kind.__qualname__} (its message is not logged)")
    return "\n".join(lines)


def host_name(header: str) -> str | None:
    """`127.0.0.1:8000` → `127.0.0.1`, `[::1]:8000` → `::1`; None when it is not a host."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :]
        if end < 0 or (rest and not re.fullmatch(r":[0-9]{1,5}", rest)):
            return None
        return value[1:end]
    name, _, port = value.partition(":")
    if not name or (port and not port.isdigit()) or ":" in port:
        return None
    return name


class SecurityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: Iterable[str] | None = LOOPBACK_HOSTS,
        max_body: int | None = None,
        csrf_cookie: str = CSRF_COOKIE,
    ) -> None:
        """`hosts`: the names this server answers to; None answers to any (accounts on)."""
        self.app = app
        self.csrf_cookie = csrf_cookie
        self.max_body = max_body
        self.hosts = None if hosts is None else frozenset(h.strip("[]").lower() for h in hosts)
        self.hosts_text = ", ".join(sorted(self.hosts or ()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = with_security_headers(
                    message.get("headers", ()), path, https=https
                )
            await send(message)

        try:
            problem = self.refusal(scope)
            if problem is not None:
                status, sentence = problem
                await JSONResponse({"error": sentence}, status)(scope, receive, send_secured)
                return
            await self.app(scope, receive, send_secured)
        except Exception as error:
            # Outermost, outside the framework's own error handling (app.py, BackrubApp): the
            # one place a crash is logged, without what was sent; a fault nothing inside
            # answered still gets a JSON sentence with these headers.
            route = getattr(scope.get("route"), "path", "an unknown route")
            LOG.error("A request to %s failed:\n%s", route, redacted(error))
            if not started:
                fault = JSONResponse({"error": SERVER_FAULT}, 500)
                await fault(scope, receive, send_secured)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host")
        name = None if host is None else host_name(host)
        if self.hosts is not None and name not in self.hosts:
            return 400, FOREIGN_HOST.format(hosts=self.hosts_text)
        if host is None or name is None:
            return 400, NO_HOST
        query: bytes = scope.get("query_string", b"")
        if _CONTROL.search(scope["path"]) or b"%00" in query or b"\x00" in query:
            return 400, CONTROL_IN_ADDRESS
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"{scope['scheme']}://{host}".lower():
            return 403, FOREIGN_ORIGIN
        cookie = cookie_parser(headers.get("cookie", "")).get(self.csrf_cookie)
        token = headers.get(CSRF_HEADER)
        if (
            not usable_token(cookie)
            or token is None
            or not secrets.compare_digest(token.encode(), str(cookie).encode())
        ):
            return 403, UNSIGNED
        length = headers.get("content-length", "")
        if self.max_body is not None and length.isdigit() and int(length) > self.max_body:
            # The routes' own limit also stops a body sent in chunks; this one answers in JSON.
            return 413, TOO_LARGE.format(kib=self.max_body // 1024)
        return None
