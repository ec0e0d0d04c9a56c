"""Child processes the benchmark starts, and what /proc says about processes.

Every child runs in its own session (a Ctrl-C in the terminal reaches only the benchmark, which
then stops them in order) and gets SIGTERM should the benchmark die without cleaning up
(Linux parent-death signal). Output goes to one log file per child.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Child:
    name: str
    process: "subprocess.Popen[bytes]"
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Children:
    """Every process started here; ``stop_all`` ends them (SIGTERM, then SIGKILL)."""

    log_dir: Path
    running: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdout_pipe: bool = False,
        stdin_pipe: bool = False,
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only a prctl call: safe between fork and exec
            )
        child = Child(name, process, log_path)
        self.running.append(child)
        return child

    def stop(self, child: Child, *, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
        process = child.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout):
            _close_quietly(stream)
        if child in self.running:
            self.running.remove(child)
        return process.returncode

    def stop_many(self, children: Iterable[Child], *, timeout: float = 20.0) -> None:
        """Signal them all first, then wait: shutdown grace periods run in parallel."""
        children = list(children)
        for child in children:
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            self.stop(child, timeout=max(0.1, deadline - time.monotonic()))

    def stop_all(self) -> None:
        # Load generators and Herald first, the receiver last (workers may still be sending).
        order = sorted(self.running, key=lambda c: c.name.startswith("receiver"))
        self.stop_many(order)


def _close_quietly(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


# --- /proc -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of the file): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` figure of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def with_descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's worker processes, for instance)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(parents.get(current, ()))
    return found


def pids_named(*names: str) -> list[int]:
    """Processes whose command name is one of ``names`` (e.g. every PostgreSQL backend)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in names:
            found.append(int(entry.name))
    return found


def machine_cpu() -> tuple[float, float, float, float]:
    """(busy, total, steal, interrupts) CPU seconds of the whole machine since boot, over all
    cores. Steal is time the hypervisor gave to someone else; interrupts (irq + softirq) is
    mostly the kernel moving loopback packets, which no process is charged for. Both are
    counted in busy."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    values = [int(v) for v in first[1:]] + [0] * 8
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return (
        (total - idle) / _CLOCK_TICKS,
        total / _CLOCK_TICKS,
        values[7] / _CLOCK_TICKS,
        (values[5] + values[6]) / _CLOCK_TICKS,
    )


@dataclass
class CpuSnapshot:
    at: float
    groups: dict[str, dict[int, float]]  # group -> pid -> CPU seconds so far
    machine_busy: float
    machine_total: float
    machine_steal: float
    machine_interrupts: float
    everyone: dict[int, tuple[str, float]]  # every process: pid -> (name, CPU seconds)


def _every_process() -> dict[int, tuple[str, float]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS)
    return found


def cpu_snapshot(groups: Mapping[str, Iterable[int]]) -> CpuSnapshot:
    busy, total, steal, interrupts = machine_cpu()
    return CpuSnapshot(
        time.monotonic(),
        {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()},
        busy,
        total,
        steal,
        interrupts,
        _every_process(),
    )


def cpu_usage(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Cores used by each group between two snapshots (a process that appeared in between
    counts in full, one that ended is lost), the machine's busy cores, and what of that
    was none of ours (other users of the machine: noise)."""
    wall = max(after.at - before.at, 1e-9)
    usage = {}
    for name, pids in after.groups.items():
        earlier = before.groups.get(name, {})
        used = sum(max(seconds - earlier.get(pid, 0.0), 0.0) for pid, seconds in pids.items())
        usage[name] = round(used / wall, 3)
    cores = os.cpu_count() or 1
    total = max(after.machine_total - before.machine_total, 1e-9)
    busy = (after.machine_busy - before.machine_busy) / total * cores
    usage["machine_busy_cores"] = round(busy, 3)
    usage["steal_cores"] = round((after.machine_steal - before.machine_steal) / total * cores, 3)
    usage["interrupt_cores"] = round(
        (after.machine_interrupts - before.machine_interrupts) / total * cores, 3
    )
    ours = sum(usage[name] for name in after.groups)
    unexplained = busy - ours - usage["steal_cores"] - usage["interrupt_cores"]
    usage["others_cores"] = round(max(unexplained, 0.0), 3)
    return usage


def other_processes(before: CpuSnapshot, after: CpuSnapshot, top: int = 3) -> list[list[Any]]:
    """The busiest processes outside the benchmark between two snapshots: [name, cores]."""
    wall = max(after.at - before.at, 1e-9)
    ours = {pid for pids in after.groups.values() for pid in pids}
    ours |= {pid for pids in before.groups.values() for pid in pids}
    busiest: dict[str, float] = {}
    for pid, (name, seconds) in after.everyone.items():
        if pid in ours:
            continue
        used = seconds - before.everyone.get(pid, (name, 0.0))[1]
        busiest[name] = busiest.get(name, 0.0) + max(used, 0.0)
    ranked = sorted(busiest.items(), key=lambda item: -item[1])[:top]
    return [[name, round(seconds / wall, 3)] for name, seconds in ranked if seconds > 0]
