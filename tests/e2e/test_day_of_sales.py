"""End to end: a day of sales from three stores, cashier retries, invalid sales, and an Odoo
that fails 10% of calls, including "committed, then the response was lost"; with the emulator
answering one call at a time, and again with calls interleaving as on PostgreSQL (commits
visible out of id order, serialization failures on contended stock and records)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.posting import PostingProfile
from domain.sale import parse_sale
from simulators.odoo import Faults, OdooEmulator
from simulators.sales import day_of_sales, seed_catalogue
from tests.conftest import POSTGRES_LIKE, odoo_rpc, running_worker, settings_for
from workers.audit import read_books
from workers.submit import Mode, Submission, submit_many, wait_until_settled
from workflows.sale_posting import EXCEPTION_STATES, SaleStatus, posting_workflow_id

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["serial", "postgres"])
def faulty_odoo(request: pytest.FixtureRequest) -> Iterator[OdooEmulator]:
    emu = OdooEmulator(concurrency=POSTGRES_LIKE if request.param == "postgres" else "serial")
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    yield emu
    emu.stop()


@pytest.mark.parametrize("mode", [Mode.PER_SALE, Mode.BATCHED, Mode.SUMMARY])
async def test_day_of_sales_posts_each_valid_sale_exactly_once(
    client: Client, temporal_address: str, faulty_odoo: OdooEmulator, mode: Mode
) -> None:
    tag = {Mode.PER_SALE: "P", Mode.BATCHED: "B", Mode.SUMMARY: "S"}[mode]
    tag += faulty_odoo.database.concurrency.mode[0]
    stores = (f"E{tag}1", f"E{tag}2", f"E{tag}3")
    # Per-sale books each sale in its own entry, some 0.3 s of Odoo each: a smaller day keeps
    # the suite's time (the faults and the interleaving are the same).
    per_store = 40 if mode is Mode.PER_SALE else 100
    stream, facts = day_of_sales(
        date(2026, 11, 21),
        stores=stores,
        per_store=per_store,
        resubmit_ratio=0.2,
        invalid_per_store=3,
    )
    assert len(stream) == 3 * per_store * 6 // 5 and facts["resubmitted"] == 3 * per_store // 5
    settings = settings_for(
        faulty_odoo,
        temporal_address,
        batch_size=25,
        summary_batch_size=25,
        max_concurrent_activities=8,
    )
    faulty_odoo.faults = Faults(
        error_rate=0.1, kinds=("transport", "http_500", "lost_response"), seed=11
    )
    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, stream, mode, source="e2e")
        settled = await wait_until_settled(client, submitted, timedelta(seconds=300))
    faulty_odoo.faults = Faults()
    stats = faulty_odoo.stats()
    assert stats["faults"]["lost_response"] > 0 and stats["faults"]["transport"] > 0

    # Every invalid sale is kept, in an exception state, with its reason.
    invalid_ids = {
        posting_workflow_id(s, t) for s, t, kind in facts["invalid"] if kind != "malformed_json"
    }
    invalid_ids |= {
        s.workflow_id for s in submitted if s.workflow_id.startswith("sale-unidentified:")
    }
    for wf_id in invalid_ids:
        assert settled[wf_id].status in EXCEPTION_STATES, wf_id
        assert settled[wf_id].reasons, wf_id
    assert sum(1 for s in submitted if s.submission is Submission.REJECTED) >= 6
    # Everything else is posted.
    posted = {w for w, r in settled.items() if r.status is SaleStatus.POSTED}
    assert posted == {posting_workflow_id(*k.split(":")[1:3]) for k in facts["valid"]}

    books = read_books(OdooClient(settings.odoo()), PostingProfile())
    ours = {k: n for k, n in books.posted_per_key.items() if k.split(":")[1] in stores}
    assert ours == dict.fromkeys(facts["valid"], 1)
    assert books.draft_moves == 0
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for raw in facts["valid"].values():
        sale = parse_sale(raw)
        expected[sale.store_id][0] += sale.net_total
        expected[sale.store_id][1] += sale.tax_total
    for store in stores:
        b = books.stores[store]
        assert b.debit == b.credit
        assert [b.revenue, b.tax] == expected[store], store
        assert b.entries == sum(1 for k in facts["valid"] if k.split(":")[1] == store)
        # Summary mode: a handful of summary entries hold the store's ~100 sales.
        assert (b.summaries > 0) is (mode is Mode.SUMMARY)
        assert b.summaries <= b.entries / 10
