"""The pages: server-rendered templates that get their data from the context below and the API.

Every page gets: `request`, `page` (the template's stem), `speed`, `catalogue`, `facts`, `setup`,
`conditions` (in catalogue order), `pressure_words` (level → word), `accounts` (whether people
sign in) and `account` (the signed-in user, or None); the player adds
`session_id`, the error page `status` and `message`. Every page response sets the CSRF cookie
the page's scripts echo in `X-CSRF-Token` (see security.py).

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

from html import escape
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from jinja2 import TemplateNotFound

from backrub.core.models import PRESSURE_WORDS
from backrub.web.deps import Runtime, RuntimeDep, StoreDep, runtime_of, signed_in_user
from backrub.web.security import CSRF_COOKIE, HOSTED_CSRF_COOKIE, new_token, usable_token

router = APIRouter(include_in_schema=False)
# With accounts on, these pages send a browser that is not signed in to /signin.
PRIVATE = [Depends(signed_in_user)]


def context(request: Request, rt: Runtime, page: str, **extra: Any) -> dict[str, Any]:
    catalogue = rt.catalogue
    return {
        "request": request,
        "page": page,
        "speed": rt.speed,
        "catalogue": catalogue,
        "facts": catalogue.facts,
        "setup": catalogue.setup,
        "conditions": list(catalogue.conditions.values()),
        "pressure_words": dict(PRESSURE_WORDS),
        # Accounts on: who is signed in (None on the sign-in pages); off: the local profile.
        "accounts": rt.accounts,
        "account": getattr(request.state, "user", None),
        **extra,
    }


def csrf_cookie(rt: Runtime) -> str:
    """The CSRF cookie's name: `__Host-` (Secure, this host only) when accounts are on."""
    return HOSTED_CSRF_COOKIE if rt.accounts else CSRF_COOKIE


def render(
    request: Request, rt: Runtime, page: str, *, status_code: int = 200, **extra: Any
) -> Response:
    response = rt.templates.TemplateResponse(
        request, f"{page}.html", context(request, rt, page, **extra), status_code=status_code
    )
    name = csrf_cookie(rt)
    if not usable_token(request.cookies.get(name)):
        response.set_cookie(
            name, new_token(), path="/", samesite="strict", httponly=False, secure=rt.accounts
        )
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    """The error page (`error.html`), or a bare one when the templates have none."""
    rt = runtime_of(request)
    try:
        return render(request, rt, "error", status_code=status, status=status, message=message)
    except TemplateNotFound:
        return bare_page(request, status, message)


def bare_page(_request: Request, status: int, message: str) -> Response:
    """An error page that needs no template (and has no style or script)."""
    text = escape(message)
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{text} · backrub</title></head>"
        f'<body><h1>{text}</h1><p><a href="/">Back to backrub</a></p></body></html>\n'
    )
    return HTMLResponse(body, status)


@router.get("/", name="index", dependencies=PRIVATE)
async def index(request: Request, rt: RuntimeDep) -> Response:
    return render(request, rt, "index")


@router.get("/safety", name="safety", dependencies=PRIVATE)
async def safety(request: Request, rt: RuntimeDep) -> Response:
    return render(request, rt, "safety")


@router.get("/map", name="map", dependencies=PRIVATE)
async def body_map(request: Request, rt: RuntimeDep) -> Response:
    return render(request, rt, "map")


@router.get("/plan", name="plan", dependencies=PRIVATE)
async def plan(request: Request, rt: RuntimeDep) -> Response:
    return render(request, rt, "plan")


@router.get("/play/{session_id}", name="play", dependencies=PRIVATE)
def play(request: Request, session_id: str, rt: RuntimeDep, store: StoreDep) -> Response:
    store.get(session_id)  # another owner's or an unknown session: the 404 page
    return render(request, rt, "play", session_id=session_id)


@router.get("/history", name="history", dependencies=PRIVATE)
async def history(request: Request, rt: RuntimeDep) -> Response:
    return render(request, rt, "history")


@router.get("/sw.js", name="service_worker")
async def service_worker(rt: RuntimeDep) -> Response:
    """The service worker, from the site's root so that its scope is every page."""
    path = rt.static_dir / "sw.js"
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
