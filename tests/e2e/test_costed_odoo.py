"""End to end against an Odoo that costs what Odoo 17 costs (the emulator's `odoo17` cost model,
calls interleaving as on PostgreSQL): the three posting modes side by side, with lost responses
and transport faults, each sale booked once and its goods moved once. Slow calls widen every
race window the claim protocol closes; the throughput itself is measured by `make bench`."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.sale import parse_sale
from simulators.odoo import Faults, OdooEmulator
from simulators.sales import day_of_sales
from tests.conftest import running_worker, settings_for
from tests.e2e.helpers import assert_each_sale_posted_and_moved_once, close_ledger
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus

pytestmark = pytest.mark.e2e


async def test_three_modes_on_a_costed_odoo_with_faults_book_each_sale_once(
    client: Client, temporal_address: str, costed_odoo_emulator: OdooEmulator
) -> None:
    odoo_emu = costed_odoo_emulator
    stores = {"CP1": Mode.PER_SALE, "CB1": Mode.BATCHED, "CS1": Mode.SUMMARY}
    stream, facts = day_of_sales(
        date(2026, 11, 23),
        stores=tuple(stores),
        per_store=40,
        resubmit_ratio=0.1,
        invalid_per_store=0,
        seed=21,
    )
    per_store = {store: [s for s in stream if s["store_id"] == store] for store in stores}
    per_store["CP1"] = per_store["CP1"][:12]  # per sale costs ~0.6 s of Odoo each
    valid = {k: v for k, v in facts["valid"].items() if v in per_store[k.split(":")[1]]}
    settings = settings_for(
        odoo_emu, temporal_address, batch_size=20, summary_batch_size=20, odoo_timeout_s=30.0
    )
    odoo_emu.faults = Faults(error_rate=0.05, kinds=("transport", "lost_response"), seed=5)
    async with running_worker(client, settings):
        submitted = []
        for store, mode in stores.items():
            submitted += await submit_many(client, settings, per_store[store], mode, "costed")
        settled = await wait_until_settled(client, submitted, timedelta(seconds=280))
        for store in ("CB1", "CS1"):
            await close_ledger(client, store, parse_sale(per_store[store][0]).business_day)
    odoo_emu.faults = Faults()

    assert {r.status for r in settled.values()} == {SaleStatus.POSTED}
    assert odoo_emu.stats()["server_time_s"] > 5  # the calls really cost Odoo's time
    assert_each_sale_posted_and_moved_once(
        OdooClient(settings.odoo()), valid, per_sale_stores=["CP1"], batched_stores=["CB1", "CS1"]
    )
