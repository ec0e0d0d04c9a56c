"""Real PostgreSQL/Redis processes started by app.embedded; no mocks."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from app.embedded import ResolvedServices, data_dir, resolve_services

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="parent-death signal and /proc are Linux-only"
)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: its 0700 root would push the data of a root run to /tmp.
    top = Path(tempfile.mkdtemp(prefix="herald-embedded-test-"))
    top.chmod(0o755)
    yield top / "state"
    shutil.rmtree(top)


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children() -> set[int]:
    me, found = str(os.getpid()), set()
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if fields[1] == me:
            found.add(int(stat_file.parent.name))
    return found


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _asyncpg_dsn(database_url: str, database: str | None = None) -> str:
    url = urlsplit(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    return url._replace(path=f"/{database}" if database else url.path).geturl()


async def _assert_answers(services: ResolvedServices) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(services.database_url, "postgres"))
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(services.redis_url)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_starts_answers_and_stops_cleanly(state_dir: Path) -> None:
    before = _children()
    with resolve_services(
        database_url=None, redis_url=None, state_dir=state_dir, force_embedded=True
    ) as services:
        assert len(services.started) == 2
        assert services.database_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
        assert services.database_url.endswith("/herald")
        assert services.redis_url.startswith("redis://127.0.0.1:")
        assert services.redis_url.endswith("/0")
        await _assert_answers(services)
        assert len(_children() - before) == 2  # foreground children, not daemons
        ports = _port(services.database_url), _port(services.redis_url)
    assert not any(_listening(port) for port in ports)
    assert _children() == before
    assert (state_dir / "postgres.log").stat().st_size > 0
    assert (state_dir / "redis.log").stat().st_size > 0


async def test_second_start_reuses_data(state_dir: Path) -> None:
    with resolve_services(
        database_url=None, redis_url=None, state_dir=state_dir, force_embedded=True
    ) as services:
        admin = await asyncpg.connect(_asyncpg_dsn(services.database_url, "postgres"))
        await admin.execute("CREATE DATABASE herald")
        await admin.close()
        conn = await asyncpg.connect(_asyncpg_dsn(services.database_url))
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        await conn.close()

    started = time.monotonic()
    with resolve_services(
        database_url=None, redis_url=None, state_dir=state_dir, force_embedded=True
    ) as services:
        warm_start = time.monotonic() - started
        conn = await asyncpg.connect(_asyncpg_dsn(services.database_url))
        try:
            assert await conn.fetchval("SELECT v FROM kept") == "still here"
        finally:
            await conn.close()
    assert warm_start < 5  # generous for slow CI; typically well under 0.5 s


def test_servers_die_with_a_sigkilled_owner(state_dir: Path) -> None:
    script = (
        "import signal, sys\n"
        "from pathlib import Path\n"
        "from app.embedded import resolve_services\n"
        "with resolve_services(database_url=None, redis_url=None,"
        " state_dir=Path(sys.argv[1]), force_embedded=True) as s:\n"
        "    print(s.database_url, s.redis_url, flush=True)\n"
        "    signal.pause()\n"
    )
    stderr_path = state_dir.parent / "owner.err"
    with stderr_path.open("wb") as stderr:
        owner = subprocess.Popen(
            [sys.executable, "-c", script, str(state_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        line = _read_line(owner, timeout=60, stderr_path=stderr_path)
        database_url, redis_url = line.split()
        ports = _port(database_url), _port(redis_url)
        assert all(_listening(port) for port in ports)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    finally:
        owner.kill()
        owner.wait()
        assert owner.stdout is not None
        owner.stdout.close()
    _wait_for(lambda: not any(_listening(port) for port in ports), "orphaned servers to exit")


def _read_line(proc: subprocess.Popen[bytes], *, timeout: float, stderr_path: Path) -> str:
    assert proc.stdout is not None
    deadline, buffer = time.monotonic() + timeout, b""
    while not buffer.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([proc.stdout], [], [], max(remaining, 0))
        chunk = os.read(proc.stdout.fileno(), 4096) if readable else b""
        if not chunk:
            pytest.fail(f"owner printed no URLs; stderr:\n{stderr_path.read_text()}")
        buffer += chunk
    return buffer.decode()


def test_explicit_urls_start_nothing(state_dir: Path) -> None:
    database_url = "postgresql+asyncpg://someone@db.example:6543/elsewhere"
    redis_url = "redis://cache.example:7000/3"
    before = _children()
    with resolve_services(
        database_url=database_url, redis_url=redis_url, state_dir=state_dir, force_embedded=True
    ) as services:
        assert services == ResolvedServices(database_url, redis_url, ())
        assert _children() == before
    assert not state_dir.exists()


async def test_servers_outlive_the_thread_that_started_them(state_dir: Path) -> None:
    # PR_SET_PDEATHSIG fires when the forking *thread* exits; this must not stop the servers.
    context = resolve_services(
        database_url=None, redis_url=None, state_dir=state_dir, force_embedded=True
    )
    entered: list[ResolvedServices] = []
    thread = threading.Thread(target=lambda: entered.append(context.__enter__()))
    thread.start()
    thread.join(60)
    assert entered, "resolve_services did not return"
    try:
        await _assert_answers(entered[0])
    finally:
        context.__exit__(None, None, None)


async def test_default_resolution_gives_working_services(state_dir: Path) -> None:
    # Uses servers on the default ports when they answer, embedded ones otherwise.
    with resolve_services(database_url=None, redis_url=None, state_dir=state_dir) as services:
        await _assert_answers(services)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs servers as another user")
async def test_root_keeps_data_reachable_for_the_server_user(tmp_path: Path) -> None:
    state = tmp_path / "state"  # pytest's tmp root is 0700, so nobody cannot get here
    data = data_dir(state)
    assert data != state.resolve()
    assert data.parent == Path(tempfile.gettempdir())
    parent_modes = [(p, p.stat().st_mode) for p in tmp_path.parents]
    try:
        with resolve_services(
            database_url=None, redis_url=None, state_dir=state, force_embedded=True
        ) as services:
            await _assert_answers(services)
        assert (data / "postgres" / "PG_VERSION").exists()
        assert (state / "postgres.log").exists()
        assert [(p, p.stat().st_mode) for p in tmp_path.parents] == parent_modes
    finally:
        shutil.rmtree(data, ignore_errors=True)
