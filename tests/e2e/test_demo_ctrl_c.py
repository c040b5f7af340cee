"""`make demo ARGS=--keep-running`, then Ctrl-C: the demo and every process it started are gone
within seconds (Ctrl-C once left the demo and the Odoo emulator running until SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import RETAILFLOW
from workers.devserver import free_port

pytestmark = pytest.mark.e2e


def _group_alive(pgid: int) -> list[str]:
    """The processes of a group that still run (zombies, already exited, do not count)."""
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80])
    return alive


def test_ctrl_c_stops_the_real_demo_and_everything_it_started(tmp_path: Path) -> None:
    ports = {
        name: str(free_port()) for name in ("temporal", "ui", "odoo", "pos", "ingress", "gateway")
    }
    cmd = [str(RETAILFLOW), "demo", "--keep-running", "--per-store", "4", "--fault-rate", "0"]
    for name, port in ports.items():
        cmd += [f"--{name}-port", port]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As a script's `make demo ... &` starts it: a non-interactive shell starts
            # background jobs with SIGINT ignored, and Python's own Ctrl-C handling is then off.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C to stop" not in log.read_text(errors="replace"):
            assert demo.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the demo never got ready"
            time.sleep(0.5)
        started = _group_alive(demo.pid)
        assert len(started) >= 6, started  # demo, Temporal, Odoo, POS, gateway, worker, ingress
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        deadline = time.monotonic() + 8
        while _group_alive(demo.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group_alive(demo.pid) == []
    finally:
        if _group_alive(demo.pid):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)
