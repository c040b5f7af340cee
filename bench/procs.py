"""Per-process measures of a bench run: CPU seconds and peak memory, read from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (/proc; 0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Profile:
    """Where the CPU went during a run: each process's CPU seconds between start and stop."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {"bench client": os.getpid(), **pids}
        self.start = {name: cpu_s(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        return {name: cpu_s(pid) - self.start[name] for name, pid in self.pids.items()}


def peak_rss_mb(pid: int) -> float:
    """A running process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
