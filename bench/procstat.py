"""Process figures the benchmarks read from /proc: resident memory, CPU time, the processes a process
started, and a sampler that follows one process's peak memory while a benchmark runs."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, …)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakSampler:
    """A daemon thread that reads, every `interval` seconds, the resident memory and CPU time of the
    process `pid()` names (None while there is none yet) and keeps the peak RSS (KiB) and the CPU
    seconds of the last sample. Set `peak_kib` to 0 to measure a new phase's own peak."""

    def __init__(self, pid: Callable[[], int | None], interval: float = 0.05) -> None:
        self.peak_kib = 0
        self.cpu_s = 0.0
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            pid = self._pid()
            if pid is not None:
                self.peak_kib = max(self.peak_kib, rss_kib(pid))
                self.cpu_s = max(self.cpu_s, cpu_seconds(pid))

    def start(self) -> None:
        threading.Thread(target=self._run, name="peak-sampler", daemon=True).start()

    def stop(self) -> None:
        self._done.set()
