"""What routes ask for: the app's shared runtime, the catalogue, the owner, and their store.

No `from __future__ import annotations` here: FastAPI reads these aliases at run time.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from backrub.config import Settings
from backrub.core.catalogue import Catalogue
from backrub.store import SessionStore
from backrub.store.accounts import User
from backrub.web.accounts import LOGIN_COOKIE, Accounts, SignInRequired
from backrub.web.ratelimit import (
    EVENTS_PER_MINUTE,
    SESSIONS_PER_HOUR,
    TRACKS_PER_HOUR,
    SlidingWindow,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Serving on this computer has no accounts: everything belongs to the CLI's own profile.
LOCAL_OWNER = "local"
DATABASE_NOT_OPEN = "The database is not open yet; try again in a moment."


class Runtime:
    """What every request of one app shares. Built by `create_app`; the database engine is
    opened by the app's lifespan and closed when it ends. Nothing here changes per session."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalogue: Catalogue,
        catalogue_json: bytes,
        speed: float,
        templates: Jinja2Templates,
        static_dir: Path,
        accounts: bool = False,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.catalogue_json = catalogue_json
        self.speed = speed
        self.templates = templates
        self.static_dir = static_dir
        # True: people sign in, and each owns their sessions; False: the local profile.
        self.accounts = accounts
        self.engine: Engine | None = None
        self.event_limit = SlidingWindow(EVENTS_PER_MINUTE)
        self.audio_limit = SlidingWindow(TRACKS_PER_HOUR, window=3600)
        self.session_limit = SlidingWindow(SESSIONS_PER_HOUR, window=3600)

    def account_service(self) -> Accounts:
        if self.engine is None:
            raise HTTPException(503, DATABASE_NOT_OPEN)
        return Accounts(self.engine)


def runtime_of(request: Request) -> Runtime:
    state: Any = request.app.state
    return cast("Runtime", state.backrub)


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def get_catalogue(request: Request) -> Catalogue:
    return runtime_of(request).catalogue


async def signed_in_user(request: Request) -> User | None:
    """The account this browser is signed in to; None when serving the local profile.

    Raises `SignInRequired` (401, or a page's redirect to /signin) when accounts are on and
    the browser is not signed in. Looked up once per request and kept on `request.state`.
    """
    rt = runtime_of(request)
    if not rt.accounts:
        return None
    known: User | None = getattr(request.state, "user", None)
    if known is not None:
        return known
    service = rt.account_service()
    user = await run_in_threadpool(service.user_for, request.cookies.get(LOGIN_COOKIE))
    if user is None:
        raise SignInRequired
    request.state.user = user
    return user


UserDep = Annotated[User | None, Depends(signed_in_user)]


async def current_owner(user: UserDep) -> str:
    """Whose data a request reads and writes: the signed-in account, or the local profile."""
    return LOCAL_OWNER if user is None else user.id


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
OwnerDep = Annotated[str, Depends(current_owner)]


async def get_store(request: Request, owner: OwnerDep) -> SessionStore:
    """The owner's store on the app's engine: every query it makes is scoped to that owner."""
    engine = runtime_of(request).engine
    if engine is None:
        raise HTTPException(503, DATABASE_NOT_OPEN)
    return SessionStore(engine, owner)


StoreDep = Annotated[SessionStore, Depends(get_store)]

TOO_MANY_EVENTS = (
    f"Too many changes at once: at most {EVENTS_PER_MINUTE} a minute for one person; "
    "the player sends the rest shortly."
)


async def event_quota(request: Request, user: UserDep) -> None:
    """With accounts on, each person's events are limited (ratelimit.py); 429 past it."""
    if user is None:
        return
    limiter = runtime_of(request).event_limit
    if not limiter.allow(user.id):
        retry_after = limiter.retry_after(user.id)
        raise HTTPException(429, TOO_MANY_EVENTS, headers={"Retry-After": str(retry_after)})


EventQuotaDep = Depends(event_quota)

TOO_MANY_SESSIONS = (
    f"Too many new sessions: at most {SESSIONS_PER_HOUR} an hour for one person; "
    "try again later (the sessions you have keep working)."
)


async def session_quota(request: Request, user: UserDep) -> None:
    """With accounts on, each person starts at most `SESSIONS_PER_HOUR` sessions an hour;
    429 past it. The local profile has no one else to protect, as for the other limits."""
    if user is None:
        return
    limiter = runtime_of(request).session_limit
    if not limiter.allow(user.id):
        retry_after = limiter.retry_after(user.id)
        raise HTTPException(429, TOO_MANY_SESSIONS, headers={"Retry-After": str(retry_after)})


SessionQuotaDep = Depends(session_quota)
