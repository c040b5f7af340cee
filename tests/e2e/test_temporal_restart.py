"""The Temporal server killed (SIGKILL) mid-run and started again on the same SQLite file and
port: the worker process reconnects by itself, every submitted sale settles, and each valid
sale is posted once and moves its stock once, in per-sale and in batched mode."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from activities.odoo.client import OdooClient
from domain.sale import parse_sale
from simulators.odoo import Faults, OdooEmulator
from simulators.sales import day_of_sales, seed_catalogue
from tests.conftest import odoo_rpc, settings_for, worker_process
from tests.e2e.helpers import (
    TemporalDevServer,
    assert_each_sale_posted_and_moved_once,
    close_ledger,
    posted_keys,
    submit_until_under_way,
)
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus, posting_workflow_id

pytestmark = pytest.mark.e2e


@pytest.fixture
def slow_odoo() -> Iterator[OdooEmulator]:
    emu = OdooEmulator()
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    emu.faults = Faults(latency_ms=40)  # slow enough that the kill lands mid-run
    yield emu
    emu.stop()


async def test_temporal_server_restart_mid_run_posts_each_sale_once(
    slow_odoo: OdooEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex[:5].upper()
    per_sale_store, batched_store = f"TRP{tag}", f"TRB{tag}"
    stores = (per_sale_store, batched_store)
    stream, facts = day_of_sales(
        date(2026, 11, 24), stores=stores, per_store=80, resubmit_ratio=0.1, invalid_per_store=0
    )
    valid = facts["valid"]
    server = TemporalDevServer(tmp_path / "temporal.sqlite", tmp_path / "temporal.log")
    worker = None
    odoo = OdooClient(settings_for(slow_odoo, "unused").odoo())

    async def posted_now() -> Counter[str]:
        keys = await asyncio.to_thread(posted_keys, odoo, stores)
        return Counter(k.split(":")[1] for k in keys)

    try:
        await server.start()
        client = await server.client()
        settings = settings_for(slow_odoo, server.address, batch_size=10)
        # Few activity slots, so per-sale workflows cannot all finish before the kill.
        monkeypatch.setenv("RETAILFLOW_MAX_CONCURRENT_ACTIVITIES", "4")
        worker = worker_process(settings, tmp_path / "worker.log")
        per_sale = [s for s in stream if s["store_id"] == per_sale_store]
        batched = [s for s in stream if s["store_id"] == batched_store]
        half = len(per_sale) // 2, len(batched) // 2
        submitted = await submit_until_under_way(
            client, settings, per_sale[: half[0]], batched[: half[1]], "restart-test", posted_now
        )
        # The rest arrives while Odoo is slow, right before the server dies: some of every
        # store's sales are then certainly not posted when it goes.
        slow_odoo.faults = Faults(latency_ms=1500)
        submitted += await submit_many(
            client, settings, batched[half[1] :], Mode.BATCHED, "restart-test"
        )
        submitted += await submit_many(
            client, settings, per_sale[half[0] :], Mode.PER_SALE, "restart-test"
        )
        await server.kill()
        slow_odoo.faults = Faults(latency_ms=40)
        at_kill = await posted_now()
        for store in stores:
            total = sum(1 for k in valid if k.split(":")[1] == store)
            assert at_kill[store] < total, f"the kill must land mid-run ({store})"
        await asyncio.sleep(5)  # down long enough for the worker's polls and completions to fail
        assert worker.poll() is None, "the worker must outlive the server"
        await server.start()

        settled = await wait_until_settled(client, submitted, timedelta(seconds=240))
        await close_ledger(client, batched_store, parse_sale(batched[0]).business_day)
        assert worker.poll() is None, "the worker must still be running"
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 30)
        server.close()

    # Every submitted sale settled, posted.
    expected_ids = {posting_workflow_id(s, t) for _, s, t in (k.split(":") for k in valid)}
    assert set(settled) == expected_ids
    assert {w: r for w, r in settled.items() if r.status is not SaleStatus.POSTED} == {}
    # One posted entry per sale key, no drafts; stock moved exactly once per sale.
    assert_each_sale_posted_and_moved_once(odoo, valid, [per_sale_store], [batched_store])
