"""`backrub serve`: the web app on this computer. The web framework and the server are imported
only when the command runs, so the other commands start as fast as before.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

import ipaddress
import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from backrub.cli.common import fail, reported
from backrub.cli.inputs import parse_speed, parse_whole
from backrub.config import Settings
from backrub.core.errors import OutOfRange

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_WORKERS = 32
SHUTDOWN_GRACE_SECONDS = 3
# An idle connection is kept this long (uvicorn's default is 5 s). A player sends an event every
# 15 s, so its connection stays open all session; and a client that keeps idle connections 5 s
# (httpx's default) drops them before the server does, instead of sending on one the server is
# closing at that very moment (the load bench saw that race once: a request lost in transit).
KEEP_ALIVE_SECONDS = 75
HTTPS_NEEDED = (
    "Accounts are on: browsers keep a sign-in only over HTTPS, so serve behind an HTTPS reverse "
    "proxy (README, Hosting) or give --certfile and --keyfile."
)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address(host: str, port: int, *, scheme: str = "http") -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def readable_file(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        fail(f"{option} must be a readable file (got {value}).")
    return str(path)


def listen(host: str, port: int) -> socket.socket:
    """A bound socket, so that a port in use is one sentence, not a server's traceback."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError as error:
        fail(f"Cannot find the address {host} ({error.strerror or error}).")
    # IPv4 first: "localhost" then works for browsers that try 127.0.0.1.
    family, kind, proto, _, where = sorted(found, key=lambda a: a[0] != socket.AF_INET)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        # Listening now: the address printed next takes connections at once (they wait for
        # the server to start).
        sock.listen(2048)
    except OSError as error:
        sock.close()
        fail(
            f"Cannot listen on {address(host, port)} ({error.strerror or error}); "
            "choose another port with --port."
        )
    sock.set_inheritable(True)
    return sock


def certificate(certfile: str | None, keyfile: str | None) -> tuple[str | None, str | None]:
    cert = readable_file("--certfile", certfile)
    key = readable_file("--keyfile", keyfile)
    if (cert is None) != (key is None):
        fail("--certfile and --keyfile go together: give both, or neither.")
    return cert, key


def in_range(option: str, text: str, low: int, high: int) -> int:
    number = parse_whole(option, text, low, high)
    if not low <= number <= high:
        raise OutOfRange(option, number, low, high)
    return number


def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to serve on; anything but this computer turns accounts on."),
    ] = DEFAULT_HOST,
    port: Annotated[
        str, typer.Option(help="Port to serve on (0: any free port).", metavar="0-65535")
    ] = str(DEFAULT_PORT),
    speed: Annotated[
        str,
        typer.Option(help="Run the player's clock N times faster (demonstrations).", metavar="N"),
    ] = "1",
    accounts: Annotated[
        bool,
        typer.Option(
            "--accounts",
            help="People sign in, each to their own sessions. Always on when --host is not "
            "this computer; use it on 127.0.0.1 behind a reverse proxy.",
        ),
    ] = False,
    certfile: Annotated[
        str | None,
        typer.Option(help="Serve HTTPS with this certificate (PEM).", metavar="FILE"),
    ] = None,
    keyfile: Annotated[
        str | None,
        typer.Option(help="The certificate's private key (PEM).", metavar="FILE"),
    ] = None,
    workers: Annotated[
        str,
        typer.Option(
            help="App processes sharing the port (hosting; use PostgreSQL for more than one).",
            metavar=f"1-{MAX_WORKERS}",
        ),
    ] = "1",
) -> None:
    """Serve the web app: safety check, body map, plan, the session player, history.

    Open the address it prints in a browser; Ctrl-C stops it.
    """
    with reported():
        # Beyond this computer, a login decides whose sessions a request reads.
        with_accounts = accounts or not is_loopback(host)
        cert, key = certificate(certfile, keyfile)
        number = in_range("--port", port, 0, 65535)
        clock_speed = parse_speed(speed)
        processes = in_range("--workers", workers, 1, MAX_WORKERS)
        settings = Settings.from_env()
        from backrub.store import open_store

        # Open (and migrate) the database now: a problem is one sentence, before serving.
        open_store(settings).close()
        from backrub.web import create_app

        web = create_app(
            settings,
            speed=clock_speed,
            hosts=(host,),
            accounts=with_accounts,
        )
    sock = listen(host, number)
    scheme = "https" if cert else "http"
    typer.echo(
        f"backrub is serving at {address(host, sock.getsockname()[1], scheme=scheme)} — "
        "open it in a browser. Ctrl-C stops it."
    )
    if with_accounts:
        typer.echo("Accounts are on: each person signs up at /signup and sees only their own.")
        if cert is None and not is_loopback(host):
            typer.echo(HTTPS_NEEDED)
    import uvicorn

    # No access log: paths hold session ids, and health data has no place in logs.
    common: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "ssl_certfile": cert,
        "ssl_keyfile": key,
        # Ctrl-C waits this long for requests still open — a player's wait for the remote
        # lasts up to 20 s — then ends them; event saves take milliseconds.
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    try:
        if processes == 1:
            uvicorn.Server(uvicorn.Config(web, **common)).run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            from backrub.web.app import SERVE_OPTIONS

            # Each worker builds its own app (the one above proved the options work).
            os.environ[SERVE_OPTIONS] = json.dumps(
                {
                    "speed": clock_speed,
                    "hosts": [host],
                    "accounts": with_accounts,
                    # Workers end when this process is gone, even killed outright.
                    "supervisor": os.getpid(),
                }
            )
            config = uvicorn.Config(
                "backrub.web.app:app_from_environment",
                factory=True,
                workers=processes,
                **common,
            )
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        # The server has shut down cleanly and passes Ctrl-C on: it is how serving ends.
        pass
    typer.echo("backrub has stopped.")


def register(app: typer.Typer) -> None:
    app.command()(serve)
