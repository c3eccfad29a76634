"""Sign up, sign in, sign out, change the password, delete the account: the API under
/api/v1/account and the pages /signin, /signup and /account.

They exist only when accounts are on (`backrub serve` beyond this computer, or `--accounts`);
serving the local profile, they answer 404.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from backrub.store.accounts import User
from backrub.web.accounts import LOGIN_COOKIE, LOGIN_DAYS, PASSWORD_MAX, SignedIn, SignInRequired
from backrub.web.api import COMMON, PREFIX
from backrub.web.deps import Runtime, RuntimeDep, UserDep, runtime_of
from backrub.web.pages import render
from backrub.web.schemas import Body, Deleted, ErrorOut

NO_ACCOUNTS = "This server has no accounts: it serves this computer's own profile."
# Longer than any allowed value, so the length sentence comes from the accounts module.
_TEXT_MAX = PASSWORD_MAX + 1


class SignUpBody(Body):
    email: str = Field(max_length=_TEXT_MAX * 2)
    password: str = Field(max_length=_TEXT_MAX)
    # The person agreed that backrub keeps their sessions' health-related answers.
    consent: bool


class SignInBody(Body):
    email: str = Field(max_length=_TEXT_MAX * 2)
    password: str = Field(max_length=_TEXT_MAX)


class PasswordBody(Body):
    current: str = Field(max_length=_TEXT_MAX)
    new: str = Field(max_length=_TEXT_MAX)


class DeleteAccountBody(Body):
    password: str = Field(max_length=_TEXT_MAX)


class AccountOut(Body):
    email: str


REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Wrong email address or password"},
    404: {"model": ErrorOut, "description": "This server has no accounts"},
}

api = APIRouter(prefix=f"{PREFIX}/account", tags=["account"], responses={**COMMON, **REFUSED})
pages = APIRouter(include_in_schema=False)


def _accounts_on(request: Request) -> Runtime:
    rt = runtime_of(request)
    if not rt.accounts:
        raise HTTPException(404, NO_ACCOUNTS)
    return rt


def _required(user: User | None) -> User:
    # With accounts on, `signed_in_user` has raised already when no one is signed in.
    if user is None:
        raise SignInRequired
    return user


def _client(request: Request) -> str:
    # The peer's address; uvicorn replaces it with X-Forwarded-For only for a trusted proxy.
    return request.client.host if request.client else "unknown"


def _signed_in(response: Response, signed: SignedIn) -> dict[str, Any]:
    response.set_cookie(
        LOGIN_COOKIE,
        signed.token,
        max_age=LOGIN_DAYS * 24 * 3600,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return {"email": signed.user.email}


def _signed_out(response: Response) -> None:
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


@api.post(
    "/signup",
    status_code=201,
    response_model=AccountOut,
    responses={
        409: {"model": ErrorOut, "description": "The address has an account already"},
        429: {"model": ErrorOut, "description": "Too many new accounts from this client"},
    },
)
async def sign_up(body: SignUpBody, request: Request, response: Response) -> dict[str, Any]:
    """Make an account and sign this browser in to it."""
    rt = _accounts_on(request)
    if not body.consent:
        raise HTTPException(
            422,
            "consent must be true: backrub keeps your sessions (tension scores, notes, the "
            "safety verdict) to guide and learn; you can export or delete them at any time.",
        )
    signed = await run_in_threadpool(
        rt.account_service().sign_up,
        email=body.email,
        password=body.password,
        client=_client(request),
    )
    return _signed_in(response, signed)


@api.post(
    "/signin",
    response_model=AccountOut,
    responses={429: {"model": ErrorOut, "description": "Too many failed sign-ins"}},
)
async def sign_in(body: SignInBody, request: Request, response: Response) -> dict[str, Any]:
    """Sign this browser in; a new token every time."""
    rt = _accounts_on(request)
    service = rt.account_service()
    # A browser that was signed in to another account is signed out of it first.
    await run_in_threadpool(service.sign_out, request.cookies.get(LOGIN_COOKIE))
    signed = await run_in_threadpool(
        service.sign_in, email=body.email, password=body.password, client=_client(request)
    )
    return _signed_in(response, signed)


@api.post("/signout", status_code=204)
async def sign_out(request: Request) -> Response:
    """Sign this browser out: its token stops working everywhere at once."""
    rt = _accounts_on(request)
    await run_in_threadpool(rt.account_service().sign_out, request.cookies.get(LOGIN_COOKIE))
    response = Response(status_code=204)
    _signed_out(response)
    return response


@api.get("", response_model=AccountOut)
async def who(request: Request, user: UserDep) -> dict[str, Any]:
    """The account this browser is signed in to."""
    _accounts_on(request)
    return {"email": _required(user).email}


@api.post("/password", status_code=204)
async def change_password(body: PasswordBody, request: Request, user: UserDep) -> Response:
    """A new password; every other browser signed in to this account is signed out."""
    rt = _accounts_on(request)
    await run_in_threadpool(
        rt.account_service().change_password,
        _required(user),
        token=request.cookies.get(LOGIN_COOKIE, ""),
        current=body.current,
        new=body.new,
    )
    return Response(status_code=204)


@api.post("/delete", response_model=Deleted)
async def delete_account(
    body: DeleteAccountBody, request: Request, response: Response, user: UserDep
) -> dict[str, Any]:
    """Delete the account and every session in it; the password is asked again."""
    rt = _accounts_on(request)
    deleted = await run_in_threadpool(
        rt.account_service().delete, _required(user), password=body.password
    )
    _signed_out(response)
    return {"deleted": deleted}


# A path of this site: one "/", then printable ASCII without "\\" — no second "/" first, no
# tab or newline (browsers drop those, so "/\t/evil.example" would become "//evil.example").
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")


def _next_page(request: Request) -> str:
    """Where to go after signing in: a path on this site only, never another address."""
    target = request.query_params.get("next", "/")
    return target if _LOCAL_PATH.fullmatch(target) else "/"


@pages.get("/signin", name="signin")
async def signin_page(request: Request, rt: RuntimeDep) -> Response:
    _accounts_on(request)
    return render(request, rt, "signin", next_page=_next_page(request))


@pages.get("/signup", name="signup")
async def signup_page(request: Request, rt: RuntimeDep) -> Response:
    _accounts_on(request)
    return render(request, rt, "signup", next_page=_next_page(request))


@pages.get("/account", name="account")
async def account_page(request: Request, rt: RuntimeDep, user: UserDep) -> Response:
    if not rt.accounts:
        return RedirectResponse("/history", 303)
    return render(request, rt, "account")
