"""`create_app(settings)`: the web app. Nothing is built at import.

The catalogue is loaded (and validated) when the app is made, so a bad data file is an error at
start; the database is opened by the app's lifespan — once per app, migrated if behind — and each
request gets a store scoped to its owner on that one engine.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from backrub import __version__
from backrub.catalogue_cache import cached_catalogue
from backrub.config import Settings
from backrub.core.errors import BadInput
from backrub.store import open_store
from backrub.web import account_routes, api, audio_routes, errors, pages, remote
from backrub.web.deps import Runtime
from backrub.web.security import (
    CSRF_COOKIE,
    HOSTED_CSRF_COOKIE,
    LOOPBACK_HOSTS,
    SecurityMiddleware,
)
from backrub.web.views import catalogue_as_dict

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence

    from fastapi.telemetry import TelemetryConfig
    from starlette.types import ASGIApp

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_SPEED = 1000
# `backrub serve --workers N` hands its options to each worker process here (JSON).
SERVE_OPTIONS = "BACKRUB_SERVE_OPTIONS"
# Nothing about a request leaves backrub, whatever the environment asks: FastAPI's OpenTelemetry
# would send spans of health data's URLs to any exporter set up in the process.
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}
# The largest body a page sends is an event with the cue ids of a long session.
MAX_BODY = 64 * 1024


def create_app(
    settings: Settings,
    *,
    speed: float = 1.0,
    hosts: Iterable[str] = (),
    accounts: bool = False,
    templates_dir: Path | None = None,
    static_dir: Path | None = None,
) -> FastAPI:
    """The web app for `settings`' database.

    `speed` makes the player's clock run faster (demonstrations, browser tests); `hosts` adds
    names the server is reached by to the loopback ones; `accounts` makes people sign in, each
    to their own sessions (serving beyond this computer), and then any `Host` is answered: a
    browser's login cookie belongs to the name it signed in on, so a name pointed at this server
    by another site reaches nothing. The folders default to the package's.
    """
    if not 0 < speed <= MAX_SPEED:
        raise BadInput(f"speed must be above 0 and at most {MAX_SPEED} (got {speed}).")
    catalogue = cached_catalogue(settings.cache_dir)
    static = static_dir or STATIC
    runtime = Runtime(
        settings=settings,
        catalogue=catalogue,
        catalogue_json=json.dumps(catalogue_as_dict(catalogue), ensure_ascii=False).encode(),
        speed=float(speed),
        templates=Jinja2Templates(directory=templates_dir or TEMPLATES),
        static_dir=static,
        accounts=accounts,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        store = await run_in_threadpool(open_store, settings)
        runtime.engine = store.engine
        try:
            yield
        finally:
            runtime.engine = None
            store.close()

    app = BackrubApp(
        title="backrub",
        summary="Coaches a back massage at home, safely, step by step.",
        version=__version__,
        openapi_url=f"{api.PREFIX}/openapi.json",
        # The interactive docs would load their scripts from a CDN; the schema is enough.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.backrub = runtime
    # On the router, inside the security middleware, so a body sent in chunks is cut off with
    # its headers; a Content-Length over the limit is refused in JSON before (security.py).
    app.include_router(api.router, max_body_size=MAX_BODY)
    app.include_router(audio_routes.router, max_body_size=MAX_BODY)
    app.include_router(account_routes.api, max_body_size=MAX_BODY)
    app.include_router(account_routes.pages)
    app.include_router(remote.router, max_body_size=MAX_BODY)
    app.include_router(pages.router)
    # check_dir=False: the folder is looked for when a file is asked for, not at start.
    app.mount("/static", StaticFiles(directory=static, check_dir=False), name="static")
    errors.install(app, pages.error_page, pages.bare_page)
    # A session's JSON and the player's scripts shrink to a third on a phone's link.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.outermost = [
        Middleware(
            SecurityMiddleware,
            hosts=None if accounts else (*LOOPBACK_HOSTS, *hosts),
            max_body=MAX_BODY,
            csrf_cookie=HOSTED_CSRF_COOKIE if accounts else CSRF_COOKIE,
        ),
    ]
    return app


class BackrubApp(FastAPI):
    """FastAPI with `outermost` middleware: around the framework's own (its error pages,
    telemetry and body limit), not inside them as `add_middleware` puts it.

    The security checks come first for every request, error pages included.
    """

    outermost: Sequence[Middleware] = ()

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(self.outermost):
            app = cls(app, *args, **kwargs)
        return app


def app_from_environment() -> FastAPI:
    """The app each worker process of `backrub serve --workers N` builds for itself: settings
    from the BACKRUB_* variables, serve's options from BACKRUB_SERVE_OPTIONS. Nothing about a
    session lives in a worker, so any worker may answer any request."""
    options = json.loads(os.environ.get(SERVE_OPTIONS) or "{}")
    supervisor = options.get("supervisor")
    if isinstance(supervisor, int):
        end_with(supervisor)
    return create_app(
        Settings.from_env(),
        speed=float(options.get("speed", 1.0)),
        hosts=[str(h) for h in options.get("hosts", [])],
        accounts=bool(options.get("accounts", False)),
    )


def end_with(supervisor: int, *, every: float = 1.0) -> None:
    """Stop this worker (SIGTERM: uvicorn's graceful shutdown) once `supervisor` is no longer
    its parent. A supervisor killed outright cannot stop its workers, and a worker left behind
    would keep serving the port, so the next `backrub serve` could not listen on it."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="backrub-supervisor", daemon=True).start()
