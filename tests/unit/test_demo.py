"""The demo: its summary tells rejected input from sales needing attention, and Ctrl-C stops
it and every process it started, promptly, even one that ignores SIGINT and SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from workers.audit import OdooBooks
from workers.demo import _print_summary
from workers.submit import Submission, Submitted
from workflows.sale_posting import SalePostingResult, SaleStatus

ROOT = Path(__file__).resolve().parents[2]


def test_summary_counts_rejected_and_attention_apart(capsys: pytest.CaptureFixture[str]) -> None:
    submitted = [
        Submitted(workflow_id=f"w{i}", submission=Submission.ACCEPTED, store_id="S001")
        for i in range(4)
    ]
    settled = {
        "w0": SalePostingResult(key="POS:S001:1", status=SaleStatus.POSTED),
        "w1": SalePostingResult(key="POS:S001:2", status=SaleStatus.REJECTED),
        "w2": SalePostingResult(key="POS:S001:3", status=SaleStatus.NEEDS_ATTENTION),
        "w3": SalePostingResult(key="POS:S001:4", status=SaleStatus.NEEDS_ATTENTION),
    }
    books = OdooBooks(stores={}, posted_per_key={}, draft_moves=0)
    _print_summary(submitted, settled, books, Counter(), argparse.Namespace())
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("store"))
    row = next(line for line in out if line.startswith("S001"))
    assert header.split()[5:7] == ["rejected", "attention"]
    assert row.split()[5:7] == ["1", "2"]


# A parent that owns its children the way the demo does, children that ignore SIGINT and
# SIGTERM (as a server busy shutting down can), and the demo's own wait and stop.
PARENT = textwrap.dedent(
    """
    import asyncio, subprocess, sys
    from workers.demo import stop_all, wait_for_ctrl_c
    STUBBORN = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        p.stdout.readline()
    async def main():
        try:
            print(" ".join(str(p.pid) for p in procs), "Ctrl-C to stop.", flush=True)
            await wait_for_ctrl_c()
        finally:
            stop_all(procs)
    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of an exited parent is reaped by init; count it as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_ctrl_c_stops_the_demo_and_every_process_it_started() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives `make demo`
    )
    try:
        assert parent.stdout is not None
        ready = parent.stdout.readline()
        assert "Ctrl-C to stop." in ready, ready
        children = [int(pid) for pid in ready.split()[:3]]
        os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
        parent.wait(timeout=8)
        deadline = time.monotonic() + 2
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
