"""Odoo down for 60 s mid-run: the emulator, its own process, killed (SIGKILL: in-flight calls
get no answer) after some sales are posted, kept down a real minute, then started again on the
same database file and port. The worker keeps going: every sale settles, posted once, its
stock moved once, in per-sale and in batched mode; nothing ends in an exception state."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import odoorpc
import pytest
from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.sale import parse_sale
from simulators.sales import day_of_sales, seed_catalogue
from tests.conftest import running_worker
from tests.e2e.helpers import (
    OdooProcess,
    assert_each_sale_posted_and_moved_once,
    close_ledger,
    posted_keys,
    submit_until_under_way,
)
from workers.settings import Settings, TemporalSettings
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus, posting_workflow_id

pytestmark = pytest.mark.e2e

OUTAGE_S = 60


async def test_odoo_down_for_a_minute_mid_run_posts_each_sale_once(
    client: Client, temporal_address: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:5].upper()
    per_sale_store, batched_store = f"ODP{tag}", f"ODB{tag}"
    stores = (per_sale_store, batched_store)
    stream, facts = day_of_sales(
        date(2026, 11, 26), stores=stores, per_store=80, resubmit_ratio=0.1, invalid_per_store=0
    )
    valid = facts["valid"]
    # Slow enough that the outage lands mid-run.
    emulator = OdooProcess(
        tmp_path / "odoo.sqlite", tmp_path / "odoo.log", args=["--latency-ms", "40"]
    )
    settings = Settings.model_validate(
        {
            "task_queue": f"test-{uuid.uuid4().hex[:8]}",
            "odoo_url": emulator.url,
            "odoo_timeout_s": 10.0,
            "batch_size": 10,
            "batch_max_age_s": 1.0,
            # Few activity slots, so per-sale workflows cannot all finish before the outage.
            "max_concurrent_activities": 4,
            "temporal": TemporalSettings(address=temporal_address),
        }
    )
    odoo = OdooClient(settings.odoo())

    async def posted_now() -> Counter[str]:
        keys = await asyncio.to_thread(posted_keys, odoo, stores)
        return Counter(k.split(":")[1] for k in keys)

    try:
        await emulator.start()
        rpc = odoorpc.ODOO("127.0.0.1", port=emulator.port, timeout=30)
        rpc.login("retail", "admin", "admin")
        await asyncio.to_thread(seed_catalogue, rpc)
        async with running_worker(client, settings):
            per_sale = [s for s in stream if s["store_id"] == per_sale_store]
            batched = [s for s in stream if s["store_id"] == batched_store]
            half = len(per_sale) // 2, len(batched) // 2
            submitted = await submit_until_under_way(
                client, settings, per_sale[: half[0]], batched[: half[1]], "outage", posted_now
            )
            await emulator.kill()
            down_at = asyncio.get_running_loop().time()
            # The stores keep selling while Odoo is down: those sales wait, none is lost.
            submitted += await submit_many(
                client, settings, batched[half[1] :], Mode.BATCHED, "outage"
            )
            submitted += await submit_many(
                client, settings, per_sale[half[0] :], Mode.PER_SALE, "outage"
            )
            # (Odoo cannot be read now, and nothing is posted)
            await asyncio.sleep(OUTAGE_S - (asyncio.get_running_loop().time() - down_at))
            await emulator.start()
            at_restart = await posted_now()
            for store in stores:
                total = sum(1 for k in valid if k.split(":")[1] == store)
                assert at_restart[store] < total, (
                    f"the outage must land mid-run ({store}: {at_restart})"
                )

            settled = await wait_until_settled(client, submitted, timedelta(seconds=180))
            await close_ledger(client, batched_store, parse_sale(batched[0]).business_day)

        expected_ids = {posting_workflow_id(s, t) for _, s, t in (k.split(":") for k in valid)}
        assert set(settled) == expected_ids
        assert {w: r for w, r in settled.items() if r.status is not SaleStatus.POSTED} == {}
        assert_each_sale_posted_and_moved_once(odoo, valid, [per_sale_store], [batched_store])
    finally:
        emulator.close()
