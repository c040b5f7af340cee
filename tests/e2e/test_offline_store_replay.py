"""A store offline for a day: some of its sales were posted (batched, or in summary mode) before
it went offline, its ledger for the day closed, then it replays the whole day, ~500 sales, the
posted ones included and a few sent twice. Each sale is posted once and its goods leave once;
the replayed sales already posted are reported as duplicates; nothing is left pending."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.sale import parse_sale
from simulators.odoo import OdooEmulator
from simulators.sales import day_of_sales, seed_catalogue
from tests.conftest import odoo_rpc, running_worker, settings_for
from tests.e2e.helpers import (
    assert_each_sale_posted_and_moved_once,
    close_ledger,
)
from workers.submit import Mode, Submission, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus, posting_workflow_id

pytestmark = pytest.mark.e2e

DAY = date(2026, 11, 25)
POSTED_BEFORE = 120  # the morning's sales, posted before the store went offline
EXACT_DUPLICATES = 12  # sales the POS sends twice within its replay


@pytest.fixture
def own_odoo() -> Iterator[OdooEmulator]:
    emu = OdooEmulator()
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    yield emu
    emu.stop()


@pytest.mark.parametrize("mode", [Mode.BATCHED, Mode.SUMMARY])
async def test_offline_store_replays_its_day_after_the_ledger_closed(
    client: Client, temporal_address: str, own_odoo: OdooEmulator, mode: Mode
) -> None:
    store = f"OFF{uuid.uuid4().hex[:5].upper()}"
    day, facts = day_of_sales(
        DAY, stores=(store,), per_store=500, resubmit_ratio=0, invalid_per_store=0, seed=13
    )
    assert len(day) == 500 and len(facts["valid"]) == 500
    business_day = parse_sale(day[0]).business_day
    assert {parse_sale(s).business_day for s in day} == {business_day}
    morning = day[:POSTED_BEFORE]
    rng = random.Random(4)
    replay: list[dict[str, Any]] = list(day)
    for sale in rng.sample(day, EXACT_DUPLICATES):
        replay.insert(rng.randint(replay.index(sale) + 1, len(replay)), dict(sale))
    assert len(replay) == 500 + EXACT_DUPLICATES

    settings = settings_for(
        own_odoo,
        temporal_address,
        batch_size=50,
        summary_batch_size=50,
        max_concurrent_activities=8,
    )
    odoo = OdooClient(settings.odoo())
    async with running_worker(client, settings):
        # Online: the morning's sales are posted through the store's ledger.
        first = await submit_many(client, settings, morning, mode, "pos")
        assert {s.submission for s in first} == {Submission.QUEUED}
        await wait_until_settled(client, first, timedelta(seconds=120))
        # End of day: the ledger closes with nothing pending.
        closed = await close_ledger(client, store, business_day)
        assert (closed.posted, closed.pending, closed.exceptions) == (POSTED_BEFORE, 0, {})

        # Back online: the store replays its whole day, into a new run of the ledger.
        replayed = await submit_many(client, settings, replay, mode, "pos-replay")
        settled = await wait_until_settled(client, replayed, timedelta(seconds=180))
        # The day is done again: the run ends once what it holds is posted and moved.
        progress = await close_ledger(client, store, business_day)

    # Every sale of the day settled, posted.
    assert set(settled) == {posting_workflow_id(store, s["txn_id"]) for s in day}
    assert {w: r for w, r in settled.items() if r.status is not SaleStatus.POSTED} == {}
    # The replayed sales that were posted in the morning, and those sent twice, are duplicates;
    # nothing is left pending or in exception.
    # (Answered `duplicate` when sent if the ledger already knew them; absorbed by it if not.)
    answered = sum(1 for s in replayed if s.submission is Submission.DUPLICATE)
    assert answered >= POSTED_BEFORE
    assert progress.received + answered == len(replay)
    assert progress.duplicates + answered == POSTED_BEFORE + EXACT_DUPLICATES
    assert (progress.pending, progress.exceptions) == (0, {})
    # One posted entry per sale, no drafts, and goods left exactly once per sale: what left
    # stock is the day's sales counted once (stock used to leave a second time for the sales
    # replayed after the ledger closed).
    assert_each_sale_posted_and_moved_once(odoo, facts["valid"], batched_stores=[store])
