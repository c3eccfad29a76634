"""What routes ask for: the app's shared runtime, the catalogue, the owner, and their store.

No `from __future__ import annotations` here: FastAPI reads these aliases at run time.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from backrub.config import Settings
from backrub.core.catalogue import Catalogue
from backrub.store import SessionStore

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
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.catalogue_json = catalogue_json
        self.speed = speed
        self.templates = templates
        self.static_dir = static_dir
        self.engine: Engine | None = None


def runtime_of(request: Request) -> Runtime:
    state: Any = request.app.state
    return cast("Runtime", state.backrub)


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def get_catalogue(request: Request) -> Catalogue:
    return runtime_of(request).catalogue


async def current_owner() -> str:
    """Whose data a request reads and writes (accounts will decide this beyond loopback)."""
    return LOCAL_OWNER


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
