"""The `retailflow` CLI, run as a user runs it: a process, against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import sales_for

RETAILFLOW = Path(sys.executable).parent / "retailflow"


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RETAILFLOW), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sale_post_wait_and_status(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    good, bad = sales_for(store_id, 2)
    bad["payments"][0]["amount"] = "0.01"
    file = tmp_path / "sales.jsonl"
    file.write_text("\n".join([json.dumps(good), json.dumps(good), json.dumps(bad), "{oops", ""]))
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}

    async with running_worker(client, settings):
        posted = await asyncio.to_thread(run_cli, ["sale", "post", str(file), "--wait"], env)
        status = await asyncio.to_thread(run_cli, ["sale", "status", store_id, "X0000"], env)
        missing = await asyncio.to_thread(run_cli, ["sale", "status", store_id, "NOPE"], env)
        inbox = await asyncio.to_thread(run_cli, ["sale", "exceptions", "--store", store_id], env)

    assert posted.returncode == 0, posted.stderr
    out = posted.stdout
    assert f"{store_id}/X0000" in out and "accepted" in out and "duplicate" in out
    assert "payments total 0.01 does not equal" in out
    assert "4 lines: 1 accepted, 1 duplicate, 2 rejected" in out
    assert "settled: 1 posted, 2 in exception state" in out
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "Posted"
    assert missing.returncode == 2 and f"no sale {store_id}/NOPE" in missing.stderr
    assert inbox.returncode == 0
    assert f"sale-{store_id}-X0001" in inbox.stdout and "Rejected" in inbox.stdout


def test_unreachable_temporal_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "s.jsonl"
    file.write_text("{}\n")
    result = run_cli(["sale", "post", str(file)], {"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.returncode == 2
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr


def test_missing_file_is_a_clear_error() -> None:
    result = run_cli(["sale", "post", "/nonexistent.jsonl"], {})
    assert result.returncode == 2
    assert result.stderr.strip() == "retailflow: /nonexistent.jsonl: no such file"
