"""A worker process killed (SIGKILL) mid-rollout and restarted: the rollout completes, and no
store applies a command twice."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from tests.conftest import applied_twice, rollout_settings, worker_process
from tests.workflows.helpers import eventually
from workers.rollouts import start_rollout
from workflows.price_rollout import PriceRollout, RolloutStatus, StoreOutcome

pytestmark = pytest.mark.e2e


async def test_killed_worker_mid_rollout_completes_without_double_apply(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
    tmp_path: Path,
) -> None:
    # Every store holds its command at once (sent in batches); they apply it over ~8 s, so
    # the kill lands with some confirmed and the rest still to come.
    for i, store in enumerate(pos.store_ids()):
        pos.set_knobs(store, apply_delay_ms=300 + 100 * i)
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    settings = settings.model_copy(update={"rollout_concurrency": 10})
    log = tmp_path / "worker.log"
    first = worker_process(settings, log)
    try:
        _, handle = await start_rollout(
            client,
            settings,
            {
                "rollout_id": f"K{uuid.uuid4().hex[:8]}",
                "changes": [
                    {"sku": "EGGS-12", "price": "3.79"},
                    {"sku": "TEE-BLK-M", "price": "9.99"},
                ],
                "target": {"kind": "all"},
                "effective_at": datetime.now(UTC).isoformat(),
                "confirm_within": "PT90S",
                "requested_by": "merch-lea",
            },
        )
        await eventually(
            lambda: handle.query(PriceRollout.progress),
            lambda p: p.counts.get("confirmed", 0) >= 20,
            timeout=30,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # (No query now: the dead worker cannot answer one; the fleet itself says where it is.)
        applied = sum(
            1 for s in pos.store_ids() for c in pos.commands(s) if c["status"] == "applied"
        )
        assert 20 <= applied < 80, "the kill must land mid-rollout"
        second = worker_process(settings, log)
        try:
            report = await asyncio.wait_for(handle.result(), timeout=180)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert report.status is RolloutStatus.COMPLETED
    assert all(r.outcome is StoreOutcome.CONFIRMED for r in report.stores.values())
    assert len(report.stores) == 80
    assert applied_twice(pos) == []
    for store in pos.store_ids():
        (command,) = pos.commands(store)  # one command per store, applied once
        assert command["apply_count"] == 1
