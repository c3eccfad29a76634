"""`backrub serve`: the web app on this computer. The web framework and the server are imported
only when the command runs, so the other commands start as fast as before.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

import ipaddress
import socket
from typing import Annotated

import typer

from backrub.cli.common import fail, reported
from backrub.cli.inputs import parse_speed, parse_whole
from backrub.config import Settings
from backrub.core.errors import OutOfRange

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
NOT_LOOPBACK = (
    "backrub serves only this computer for now (127.0.0.1, ::1 or localhost): serving {host} "
    "would need accounts, which backrub does not have yet."
)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address(host: str, port: int) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}"


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


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[
            str, typer.Option(help="Address to serve on: this computer only, for now.")
        ] = DEFAULT_HOST,
        port: Annotated[
            str, typer.Option(help="Port to serve on (0: any free port).", metavar="0-65535")
        ] = str(DEFAULT_PORT),
        speed: Annotated[
            str,
            typer.Option(
                help="Run the player's clock N times faster (demonstrations).", metavar="N"
            ),
        ] = "1",
    ) -> None:
        """Serve the web app: safety check, body map, plan, the session player, history.

        Open the address it prints in a browser; Ctrl-C stops it.
        """
        with reported():
            if not is_loopback(host):
                fail(NOT_LOOPBACK.format(host=host))
            number = parse_whole("--port", port, 0, 65535)
            if not 0 <= number <= 65535:
                raise OutOfRange("--port", number, 0, 65535)
            clock_speed = parse_speed(speed)
            settings = Settings.from_env()
            from backrub.store import open_store

            # Open (and migrate) the database now: a problem is one sentence, before serving.
            open_store(settings).close()
            from backrub.web import create_app

            web = create_app(settings, speed=clock_speed, hosts=(host,))
        sock = listen(host, number)
        typer.echo(
            f"backrub is serving at {address(host, sock.getsockname()[1])} — "
            "open it in a browser. Ctrl-C stops it."
        )
        import uvicorn

        config = uvicorn.Config(web, log_level="warning", access_log=False, lifespan="on")
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:
            # The server has shut down cleanly and passes Ctrl-C on: it is how serving ends.
            pass
        typer.echo("backrub has stopped.")
