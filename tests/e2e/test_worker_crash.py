"""A worker process killed mid-run (SIGKILL, not a graceful stop) and restarted: nothing is
lost, nothing is posted twice."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.posting import PostingProfile
from simulators.odoo import Faults, OdooEmulator
from simulators.sales import day_of_sales, seed_catalogue
from tests.conftest import odoo_rpc, settings_for, worker_process
from tests.e2e.helpers import assert_each_sale_posted_and_moved_once
from tests.workflows.helpers import eventually
from workers.audit import read_books
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus

pytestmark = pytest.mark.e2e
STORES = ("K1", "K2", "K3")  # per sale, batched, summary


@pytest.fixture
def slow_odoo() -> Iterator[OdooEmulator]:
    emu = OdooEmulator()
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    emu.faults = Faults(latency_ms=15)  # slow enough that the kill lands mid-run
    yield emu
    emu.stop()


async def test_killed_worker_loses_nothing_and_duplicates_nothing(
    client: Client, temporal_address: str, slow_odoo: OdooEmulator, tmp_path: Path
) -> None:
    settings = settings_for(slow_odoo, temporal_address, batch_size=10)
    stream, facts = day_of_sales(
        date(2026, 11, 22),
        stores=STORES,
        per_store=80,
        resubmit_ratio=0.1,
        invalid_per_store=0,
    )
    per_sale = [s for s in stream if s["store_id"] == "K1"]
    batched = [s for s in stream if s["store_id"] == "K2"]
    summarised = [s for s in stream if s["store_id"] == "K3"]
    log = tmp_path / "worker.log"
    odoo = OdooClient(settings.odoo())
    first = worker_process(settings, log)
    try:
        submitted = await submit_many(client, settings, per_sale, Mode.PER_SALE, "crash-test")
        submitted += await submit_many(client, settings, batched, Mode.BATCHED, "crash-test")
        submitted += await submit_many(client, settings, summarised, Mode.SUMMARY, "crash-test")

        async def posted_here() -> int:
            books = await asyncio.to_thread(read_books, odoo, PostingProfile())
            return sum(1 for k in books.posted_per_key if k.split(":")[1] in STORES)

        await eventually(posted_here, lambda n: n >= 30, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        done_at_kill = await posted_here()
        assert 30 <= done_at_kill < len(facts["valid"]), "the kill must land mid-run"

        second = worker_process(settings, log)
        try:
            settled = await wait_until_settled(client, submitted, timedelta(seconds=240))
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    assert all(r.status is SaleStatus.POSTED for r in settled.values())
    books = read_books(odoo, PostingProfile())
    ours = {k: n for k, n in books.posted_per_key.items() if k.split(":")[1] in STORES}
    assert ours == dict.fromkeys(facts["valid"], 1)
    assert books.draft_moves == 0
    # Stock: one done picking per per-sale posting, none twice.
    rows = odoo.call(
        "stock.picking",
        "search_read",
        [("origin", "=like", "POS:K1:%")],
        fields=["origin", "state"],
    )
    origins = [r["origin"] for r in rows if r["state"] == "done"]
    assert sorted(origins) == sorted({f"POS:K1:{s['txn_id']}" for s in per_sale})
    # Every store's goods left once: its sales' quantities counted once.
    assert_each_sale_posted_and_moved_once(
        odoo, facts["valid"], per_sale_stores=["K1"], batched_stores=["K2", "K3"]
    )
