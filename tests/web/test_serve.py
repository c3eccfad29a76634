"""`backrub serve`: accounts beyond this computer, one sentence for what is wrong, a real server."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import typer
from typer.testing import CliRunner

from backrub.cli import serve_command

if TYPE_CHECKING:
    from collections.abc import Iterator

# The command as the CLI will have it, on an app of its own (the lead wires it into cli/main.py).
SCRIPT = """
import typer
from backrub.cli import serve_command
app = typer.Typer()
@app.callback()
def root() -> None: ...
serve_command.register(app)
app()
"""


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None: ...

    serve_command.register(app)
    return app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("BACKRUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BACKRUB_DATABASE_URL", raising=False)
    return {**os.environ, "BACKRUB_DATA_DIR": str(tmp_path / "data")}


def run(cli: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["serve", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),  # noqa: S104
     ("example.com", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert serve_command.is_loopback(host) is loopback


def test_certificate_options(cli: typer.Typer, env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run(cli, "--certfile", str(tmp_path / "missing.pem"))
    assert (code, out) == (2, "")
    assert err == f"Error: --certfile must be a readable file (got {tmp_path / 'missing.pem'}).\n"
    (tmp_path / "cert.pem").write_text("not really a certificate\n")
    code, _, err = run(cli, "--certfile", str(tmp_path / "cert.pem"))
    assert (code, err) == (
        2,
        "Error: --certfile and --keyfile go together: give both, or neither.\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "http"], "Error: --port must be a whole number 0 to 65535 (got 'http').\n"),
        (["--port", "70000"], "Error: --port must be 0 to 65535 (got 70000).\n"),
        (["--workers", "0"], "Error: --workers must be 1 to 32 (got 0).\n"),
        (["--workers", "many"], "Error: --workers must be a whole number 1 to 32 (got 'many').\n"),
        (["--speed", "0"], "Error: --speed must be a number above 0 and at most 1000 (got '0').\n"),
        (["--speed", "fast"], "Error: --speed must be a number above 0 and at most 1000 "
                              "(got 'fast').\n"),
    ],
)  # fmt: skip
def test_bad_options(cli: typer.Typer, env: dict[str, str], args: list[str], message: str) -> None:
    code, _, err = run(cli, *args)
    assert (code, err) == (2, message)


def test_a_database_it_cannot_use(
    cli: typer.Typer, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKRUB_DATABASE_URL", "mysql://me@db/backrub")
    code, _, err = run(cli)
    assert code == 2
    assert err.startswith("Error: BACKRUB_DATABASE_URL is not a database URL backrub can use")
    assert err.count("\n") == 1


def test_a_port_in_use(cli: typer.Typer, env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(cli, "--port", str(port))
    assert code == 2
    assert err.startswith(f"Error: Cannot listen on http://127.0.0.1:{port} (")
    assert err.endswith("; choose another port with --port.\n")


@contextmanager
def serving(env: dict[str, str], *options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "serve", "--port", "0", "--speed", "50", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "backrub serve printed nothing in 30 s"
        line = process.stdout.readline()
        yield process, line
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving(env) as running:
        yield running


def test_serve_with_accounts(env: dict[str, str]) -> None:
    with serving(env, "--accounts") as (process, line):
        assert process.stdout is not None
        assert process.stdout.readline() == (
            "Accounts are on: each person signs up at /signup and sees only their own.\n"
        )
        address = line.split(" at ", 1)[1].split(" ", 1)[0]
        status, body = request(f"{address}/api/v1/sessions")
        assert status == 401 and b"Sign in first" in body
        # Any name reaches it (behind a proxy, the public one); the login decides what it reads.
        status, _ = request(f"{address}/api/v1/catalogue", host="backrub.example")
        assert status == 200


def test_serve_with_workers(env: dict[str, str]) -> None:
    """Two app processes share the port; either answers, and Ctrl-C stops both."""
    with serving(env, "--workers", "2") as (process, line):
        address = line.split(" at ", 1)[1].split(" ", 1)[0]
        for _ in range(6):
            status, body = request(f"{address}/api/v1/sessions")
            assert status == 200 and json.loads(body) == {"sessions": []}
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
        assert process.stdout is not None
        assert process.stdout.read() == "backrub has stopped.\n"


def request(url: str, *, method: str = "GET", host: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_serve_prints_the_address_and_serves(server: tuple[subprocess.Popen[str], str]) -> None:
    process, line = server
    assert line.startswith("backrub is serving at http://127.0.0.1:")
    assert line.endswith(" — open it in a browser. Ctrl-C stops it.\n")
    address = line.split(" at ", 1)[1].split(" ", 1)[0]
    status, body = request(f"{address}/api/v1/catalogue")
    assert status == 200 and json.loads(body)["facts"]["max_minutes"] == 60
    status, body = request(f"{address}/api/v1/sessions", method="POST")
    assert status == 403 and b"CSRF token" in body
    status, _ = request(f"{address}/api/v1/export", host="evil.example")
    assert status == 400
    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read() == "backrub has stopped.\n"
    # No access log: which pages a person opened is theirs.
    assert "/api/v1/catalogue" not in process.stderr.read()


def test_ctrl_c_does_not_wait_for_a_players_wait_for_the_remote(env: dict[str, str]) -> None:
    """A player's wait for the receiver's remote may last 20 s; stopping the server ends it
    after a short grace instead of waiting it out."""
    with serving(env) as (process, line):
        address = line.split(" at ", 1)[1].split(" ", 1)[0]
        with httpx.Client(base_url=address, timeout=30) as client:
            client.get("/")
            headers = {"X-CSRF-Token": client.cookies["backrub_csrf"]}
            made = client.post(
                "/api/v1/sessions", json={"mode": "partner", "tension_before": 5}, headers=headers
            )
            session = made.json()["id"]
            assert client.post(f"/api/v1/sessions/{session}/remote", headers=headers).is_success

            def wait_for_the_remote() -> None:
                try:
                    client.get(f"/api/v1/sessions/{session}/remote/messages?wait=20")
                except httpx.HTTPError:
                    pass  # the server went away: what this test wants

            waiting = threading.Thread(target=wait_for_the_remote, daemon=True)
            started = time.monotonic()
            waiting.start()
            time.sleep(1)
            process.send_signal(signal.SIGINT)
            assert process.wait(15) == 0
            # Well short of the 20 s the wait asked for (the grace is 3 s).
            assert time.monotonic() - started < 12


# ---- `--workers N` ---------------------------------------------------------------------------


def children(parent: int) -> list[int]:
    """The live processes `parent` started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it has ended meanwhile
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z":
            found.append(int(entry))
    return found


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


class Player:
    """A page's calls to a running server: a session, and its events with rising seqs."""

    def __init__(self, address: str) -> None:
        self.client = httpx.Client(base_url=address, timeout=30)
        self.client.get("/")
        self.client.headers["X-CSRF-Token"] = self.client.cookies["backrub_csrf"]
        body = {
            "mode": "partner",
            "minutes": 20,
            "focus": [{"region": "shoulders", "tension": 8}],
            "pressure": "medium",
            "tension_before": 6,
        }
        made = self.client.post("/api/v1/sessions", json=body)
        assert made.status_code == 201, made.text
        self.session = made.json()["id"]
        self.seq = 0

    def feedback(self, kind: str) -> dict[str, object]:
        self.seq += 1
        body = {"kind": "feedback", "feedback": kind, "active": 10.0 * self.seq, "seq": self.seq}
        answer = self.client.post(f"/api/v1/sessions/{self.session}/events", json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()
        return result

    def close(self) -> None:
        self.client.close()

    def heard(self) -> list[str]:
        view = self.client.get(f"/api/v1/sessions/{self.session}").json()
        return [f["kind"] for f in view["record"]["feedback"]]


def address_of(line: str) -> str:
    return line.split(" at ", 1)[1].split(" ", 1)[0]


def test_workers_end_with_a_killed_server_and_the_port_can_be_served_again(
    env: dict[str, str],
) -> None:
    """SIGKILL leaves the supervisor no time to stop its workers: they notice and end, so the
    port is free for the next `backrub serve`."""
    with ExitStack() as stack, serving(env, "--workers", "2") as (process, line):
        address = address_of(line)
        player = stack.enter_context(closing(Player(address)))
        assert player.feedback("softer")["accepted"] is True
        assert player.heard() == ["softer"]
        workers = children(process.pid)
        assert len(workers) >= 2
        process.kill()
        process.wait()
        assert all(gone(pid, within=15) for pid in workers)
    port = address.rsplit(":", 1)[1]
    with closing(socket.socket()) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", int(port)))  # refused while a worker still holds it
    with ExitStack() as stack, serving({**env}, "--port", port) as (_again, line):
        assert address_of(line) == address
        player = stack.enter_context(closing(Player(address)))
        assert player.feedback("firmer")["accepted"] is True


def whole_answer(conn: socket.socket) -> bytes:
    """One answer read to its end (its Content-Length), nothing after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(4096)
    return head


def test_an_idle_connection_is_kept_longer_than_a_clients_own_keep_alive(
    env: dict[str, str],
) -> None:
    """A connection idle for 6 s is still open (uvicorn's default closes it at 5 s, racing a
    client that keeps its idle connections 5 s, as httpx does): a player's connection, used
    every 15 s, lasts the session."""
    with serving(env) as (_process, line):
        host, port = address_of(line).removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            ask = f"GET /api/v1/catalogue HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
            conn.sendall(ask)
            assert whole_answer(conn).startswith(b"HTTP/1.1 200 ")
            time.sleep(6)
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):  # open, nothing to read; closed would be b""
                conn.recv(1 << 20, socket.MSG_PEEK)
