"""Crash safety: SIGKILL `backrub serve` at random moments during live sessions, again and again.

Issue 6: "a harness kills the server with SIGKILL at random moments during live sessions, 200 times,
on SQLite and on PostgreSQL; after each, the database passes its integrity check and no
acknowledged progress save is lost."

How: `python -m backrub serve --port P` (one uvicorn process, a fixed free port on 127.0.0.1 so
the clients find it again after each restart) on a fresh data folder (SQLite) or on a database of
its own (PostgreSQL, created and dropped here). Client threads each drive one live session as the
player's outbox does — one request at a time, `seq` rising by one per event, a growing `active`
time, a feedback now and then among the progress saves — and keep the highest `seq` the server
acknowledged (200 with `accepted: true`). The server is kept busy, so a kill lands inside requests.
Each cycle: let the clients run for a random 0.2–1.0 s after the server's first answer, SIGKILL it,
wait until every client has seen its connection drop, then

- check the database — with the server still dead after odd kills (the harness's sqlite3
  connection then recovers SQLite's WAL), after the restart on even kills (the server recovers
  it): SQLite — `PRAGMA integrity_check` is `ok` and `PRAGMA foreign_key_check` finds nothing;
  PostgreSQL — the database answers, every session row reads in full, and `amcheck`'s
  `bt_index_check` passes on every index when the extension is available;
- in the rows themselves, each session's `progress_seq` is at least its highest acknowledged
  `seq`, and its saved active time at least that event's (schema 0003 keeps both in columns);
- with the server restarted, GET each session: `state.seq` at least its highest acknowledged `seq`
  (otherwise a lost save), and at most the highest one sent (otherwise a phantom).

Then the clients go on where they were (the events cut by the kill are not re-sent: the next has a
higher `seq`, as a reloaded page's would). The server's stderr is kept and searched for tracebacks
and "database is locked".

    python bench/crash_safety.py [--kills 200] [--backend sqlite|postgresql|both] [--clients 4]
                                 [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from serving import LOCAL, POSTGRES, SESSION_BODY, postgres_database

FEEDBACK_EVERY = 6  # one event in six is feedback (a full re-plan and a feedback row)
MAX_ACTIVE = 1150.0  # stay inside the 20-minute session's timeline


def free_port() -> int:
    """A port nothing listens on now; the server binds it with SO_REUSEADDR each time."""
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m backrub serve` on a fixed port, in a process group of its own."""

    def __init__(self, port: int, env: dict[str, str], log: IO[str]) -> None:
        self.port, self.env, self.log = port, env, log
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> float:
        """Start and wait for the first answer; return the seconds it took."""
        began = time.perf_counter()
        cmd = [sys.executable, "-m", "backrub", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None  # noqa: S101  (for mypy: stdout is a pipe)
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.kill()
            raise SystemExit(f"the server did not start: {line.strip()} (see its stderr)")
        # The socket listens once the address is printed; the app answers once it has started.
        httpx.get(f"http://{LOCAL}:{self.port}/api/v1/catalogue", timeout=30).raise_for_status()
        return time.perf_counter() - began

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.proc = None


@dataclass
class Player:
    """One live session driven as the player's outbox drives it: one event at a time."""

    session: str
    seq: int = 0  # the last seq sent
    acked: int = 0  # the highest seq the server acknowledged
    refused: int = 0  # events answered `accepted: false` (none expected: seqs only rise)
    sent: int = 0
    cut: int = 0  # events whose connection the kill cut
    errors: list[str] = field(default_factory=list)


class Clients:
    """Client threads that run while `running` is set and park when the server goes away."""

    def __init__(self, base: str, token: str, players: list[Player]) -> None:
        self.base, self.token, self.players = base, token, players
        self.running = threading.Event()
        self.stopping = False
        self.parked = 0
        self.cond = threading.Condition()
        self.threads = [
            threading.Thread(target=self.drive, args=(p,), daemon=True) for p in players
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def pause_and_wait(self) -> None:
        """After the kill: wait until every client has parked (no response left in hand)."""
        self.running.clear()
        with self.cond:
            self.cond.wait_for(lambda: self.parked == len(self.players), timeout=60)

    def resume(self) -> None:
        with self.cond:
            self.parked = 0
        self.running.set()

    def stop(self) -> None:
        self.stopping = True
        self.running.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def park(self) -> None:
        with self.cond:
            self.parked += 1
            self.cond.notify_all()
        self.running.wait()

    def drive(self, player: Player) -> None:
        path = f"/api/v1/sessions/{player.session}/events"
        with httpx.Client(base_url=self.base, timeout=30) as client:
            client.cookies.set("backrub_csrf", self.token)
            headers = {"X-CSRF-Token": self.token}
            while not self.stopping:
                if not self.running.is_set():
                    self.park()
                    continue
                player.seq += 1
                body: dict[str, Any] = {
                    "kind": "progress",
                    "active": min(MAX_ACTIVE, player.seq * 0.2),
                    "seq": player.seq,
                    "fired": ["step:0", "half:0"],
                }
                if player.seq % FEEDBACK_EVERY == 0:
                    body |= {"kind": "feedback", "feedback": random.choice(["softer", "firmer"])}  # noqa: S311
                player.sent += 1
                try:
                    answer = client.post(path, json=body, headers=headers)
                except httpx.TransportError:
                    # The kill cut this one; whether it was saved is unknown, and either is fine.
                    player.cut += 1
                    if self.running.is_set():
                        time.sleep(0.02)  # a stale keep-alive connection after a restart
                    continue
                if answer.status_code != 200:
                    player.errors.append(f"seq {player.seq}: {answer.status_code} {answer.text}")
                    continue
                data = answer.json()
                if not data["accepted"]:
                    player.refused += 1
                    continue
                saved = data["seq"] if "seq" in data else data["state"]["seq"]
                player.acked = max(player.acked, saved)


# ---- the database, checked while the server is dead ------------------------------------------


def check_sqlite(path: Path) -> tuple[bool, dict[str, tuple[int, float]]]:
    """integrity_check and foreign_key_check; each session's (progress_seq, active time)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        sound = conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        sound = sound and conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute("SELECT id, progress_seq, active FROM sessions").fetchall()
    finally:
        conn.close()
    return sound, {row[0]: (int(row[1]), float(row[2])) for row in rows}


def check_postgres(url: str, amcheck: bool) -> tuple[bool, dict[str, tuple[int, float]]]:
    """The database answers, every row of sessions reads, and (if available) amcheck passes."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT id, progress_seq, active FROM sessions").fetchall()
        # Every column of every row, read back in full (TOAST included).
        conn.execute("SELECT count(*) FROM sessions WHERE md5(sessions::text) IS NOT NULL")
        conn.execute("SELECT count(*) FROM feedback_events")
        sound = True
        if amcheck:
            indexes = conn.execute(
                "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' "
                "AND c.relnamespace = 'public'::regnamespace"
            ).fetchall()
            for (oid,) in indexes:
                conn.execute("SELECT bt_index_check(%s)", (oid,))
    return sound, {row[0]: (int(row[1]), float(row[2])) for row in rows}


def enable_amcheck(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except psycopg.Error:
        return False
    return True


# ---- one backend -----------------------------------------------------------------------------


@dataclass
class Outcome:
    kills: int = 0
    survived: int = 0  # kills after which every check passed
    lost: int = 0  # acknowledged saves missing after a restart (sessions × kills)
    phantom: int = 0  # a saved seq above anything sent
    integrity_failures: int = 0
    restart: list[float] = field(default_factory=list)
    wall: float = 0.0
    problems: list[str] = field(default_factory=list)


def run_backend(name: str, kills: int, clients: int, env: dict[str, str], db: str) -> Outcome:
    """`db`: the SQLite file's path, or the PostgreSQL URL."""
    outcome = Outcome()
    port = free_port()
    base = f"http://{LOCAL}:{port}"
    amcheck = name == "PostgreSQL" and enable_amcheck(db)
    if name == "PostgreSQL":
        print(f"  PostgreSQL: amcheck's bt_index_check {'on' if amcheck else 'not available'}")
    began = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        server = Server(port, env, log)
        crew: Clients | None = None
        players: list[Player] = []
        try:
            outcome.restart.append(server.start())
            with httpx.Client(base_url=base, timeout=30) as api:
                api.get("/").raise_for_status()  # a page sets the CSRF cookie
                token = api.cookies["backrub_csrf"]
                headers = {"X-CSRF-Token": token}
                made = [
                    api.post("/api/v1/sessions", json=SESSION_BODY, headers=headers)
                    for _ in range(clients)
                ]
                players = [Player(str(m.raise_for_status().json()["id"])) for m in made]
                crew = Clients(base, token, players)
                crew.start()
                crew.resume()
                for cycle in range(1, kills + 1):
                    time.sleep(random.uniform(0.2, 1.0))  # noqa: S311  (not a secret)
                    server.kill()
                    crew.pause_and_wait()
                    outcome.kills += 1
                    ok = check_cycle(name, db, amcheck, players, server, api, outcome, cycle)
                    outcome.survived += ok
                    crew.resume()
                    if cycle % 25 == 0 or cycle == kills:
                        print(
                            f"  {name}: {cycle} kills, {outcome.lost} lost saves, "
                            f"{outcome.integrity_failures} integrity failures, "
                            f"{time.perf_counter() - began:.0f} s",
                            flush=True,
                        )
        finally:
            if crew is not None:
                crew.running.clear()
            server.kill()
            if crew is not None:
                crew.stop()
        log.seek(0)
        stderr = log.read()
    outcome.wall = time.perf_counter() - began
    if "database is locked" in stderr:
        outcome.problems.append('"database is locked" in the server\'s stderr')
    if "Traceback" in stderr:
        first = stderr.index("Traceback")
        outcome.problems.append("a traceback in the server's stderr:\n" + stderr[first:][:2000])
    report(name, outcome, players)
    return outcome


def check_cycle(
    name: str,
    db: str,
    amcheck: bool,
    players: list[Player],
    server: Server,
    api: httpx.Client,
    outcome: Outcome,
    cycle: int,
) -> bool:
    """The checks after one kill; True when all pass. Leaves the server running again.

    On odd kills the database is checked before the restart (the harness's sqlite3 connection
    is then the one that recovers SQLite's WAL); on even kills after it, so that the server
    itself recovers the file it finds (WAL readers do not wait for the server)."""
    ok = True
    if cycle % 2 == 0:
        outcome.restart.append(server.start())
    try:
        if name == "SQLite":
            sound, rows = check_sqlite(Path(db))
        else:
            sound, rows = check_postgres(db, amcheck)
    except Exception as error:  # any failure to read is the finding
        sound, rows = False, {}
        outcome.problems.append(f"kill {cycle}: the database could not be read: {error!r}")
    if not sound:
        outcome.integrity_failures += 1
        ok = False
    for player in players:
        progress_seq, active = rows.get(player.session, (-1, -1.0))
        acked_active = min(MAX_ACTIVE, player.acked * 0.2)
        if progress_seq < player.acked or active < acked_active - 1e-6:
            ok = False
            outcome.problems.append(
                f"kill {cycle}: session {player.session} row has progress_seq {progress_seq} "
                f"and active {active}, below the acknowledged {player.acked} ({acked_active})"
            )
    if cycle % 2 == 1:
        outcome.restart.append(server.start())
    for player in players:
        seq = int(
            api.get(f"/api/v1/sessions/{player.session}").raise_for_status().json()["state"]["seq"]
        )
        if seq < player.acked:
            outcome.lost += 1
            ok = False
            outcome.problems.append(
                f"kill {cycle}: session {player.session} answers seq {seq}, "
                f"acknowledged {player.acked} (a lost save)"
            )
        if seq > player.seq:
            outcome.phantom += 1
            ok = False
            outcome.problems.append(f"kill {cycle}: seq {seq} saved, {player.seq} sent")
    return ok


def report(name: str, outcome: Outcome, players: list[Player]) -> None:
    restarts = sorted(outcome.restart)
    median = restarts[len(restarts) // 2] if restarts else 0.0
    sent = sum(p.sent for p in players)
    cut = sum(p.cut for p in players)
    refused = sum(p.refused for p in players)
    errors = sum(len(p.errors) for p in players)
    print(
        f"{name}: {outcome.survived}/{outcome.kills} kills survived, {outcome.lost} lost saves, "
        f"{outcome.integrity_failures} integrity failures, {outcome.phantom} phantom saves; "
        f"{outcome.wall:.0f} s ({outcome.wall / max(outcome.kills, 1):.2f} s a kill, restart "
        f"median {median:.2f} s)\n"
        f"  {sent} events sent by {len(players)} clients, {cut} cut by a kill, "
        f"{refused} refused (accepted: false), {errors} error answers"
    )
    for player in players:
        for error in player.errors[:3]:
            print(f"  error answer: {error}")
    for problem in outcome.problems[:10]:
        print(f"  PROBLEM {problem}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=200, help="kills per backend")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", type=int, default=4, help="live sessions, one thread each")
    parser.add_argument("--postgres", default=POSTGRES, help="server URL, without a database")
    args = parser.parse_args()
    # Ctrl-C (even when started where SIGINT is ignored) and SIGTERM both unwind through the
    # finally blocks that stop the server and drop the database.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    folder = Path(tempfile.mkdtemp(prefix="backrub-crash-"))
    env = {
        **os.environ,
        "BACKRUB_DATA_DIR": str(folder / "data"),
        "BACKRUB_CACHE_DIR": str(folder / "cache"),
    }
    env.pop("BACKRUB_DATABASE_URL", None)
    print(
        f"SIGKILL `backrub serve` (one process, {LOCAL}) {args.kills} times per backend, "
        f"{args.clients} live sessions sending events back to back; kill 0.2–1.0 s after a start"
    )
    failed = False
    try:
        if args.backend in ("sqlite", "both"):
            sqlite_file = folder / "data" / "backrub.db"
            done = run_backend("SQLite", args.kills, args.clients, env, str(sqlite_file))
            failed |= done.survived < done.kills
        if args.backend in ("postgresql", "both"):
            with postgres_database(args.postgres, "crash") as url:
                pg_env = {**env, "BACKRUB_DATABASE_URL": url}
                done = run_backend("PostgreSQL", args.kills, args.clients, pg_env, url)
                failed |= done.survived < done.kills
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
