"""PriceRollout against the dev server, the Odoo emulator and the POS fleet simulator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import odoorpc
import pytest
from temporalio.client import Client

from activities.pos_signing import sign
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from tests.activities.test_pricing_activities import rollout_items
from tests.conftest import SECRET, applied_twice, rollout_settings, running_worker, settings_for
from tests.workflows.helpers import eventually
from tests.workflows.test_cli import one_line_error, run_cli
from workers.rollouts import start_rollout, store_commands
from workflows.price_rollout import (
    CancelRequest,
    PriceRollout,
    RolloutStatus,
    StoreOutcome,
)

CHANGES = [
    {"sku": "MILK-1L", "price": "1.09"},
    {"sku": "COFFEE-250", "price": "5.99"},
    {"sku": "MUG-WHITE", "price": "3.50", "end": "2027-01-31T23:59:59+00:00"},
]


def a_rollout(**overrides: Any) -> dict[str, Any]:
    raw = {
        "rollout_id": f"R{uuid.uuid4().hex[:8]}",
        "changes": CHANGES,
        "target": {"kind": "all"},
        "effective_at": datetime.now(UTC).isoformat(),
        "confirm_within": "PT12S",
        "max_failure_ratio": 0.1,
        "requested_by": "merch-lea",
    }
    raw.update(overrides)
    return raw


def contextual_price(
    odoo: odoorpc.ODOO, sku: str, at: datetime, store: str = "S001", base: str = "Store prices"
) -> float:
    """Odoo's price for a SKU in one store: its own pricelist's, or for a store without one
    the base pricelist's, which every store's falls back to."""
    pid = odoo.execute_kw("product.product", "search", [[("default_code", "=", sku)]])[0]
    ctx = {"date": at.strftime("%Y-%m-%d %H:%M:%S"), "quantity": 1}
    for name in (f"{base} {store}", base):
        pricelists = odoo.execute_kw("product.pricelist", "search", [[("name", "=", name)]])
        if pricelists:  # before the first rollout, there is none: the list price holds
            ctx["pricelist"] = pricelists[0]
            break
    price: float = odoo.execute_kw(
        "product.product", "get_contextual_price", [[pid]], {"context": ctx}
    )
    return price


async def test_rollout_to_80_stores_with_offline_and_rejecting_stores(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    pos.set_knobs("S010", online=False)
    pos.set_knobs("S020", online=False)
    pos.set_knobs("S030", offline_windows=[(0, 4)])  # back before the deadline
    pos.set_knobs("S040", reject_rate=1.0, reject_reason="price below cost floor")
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client, settings, a_rollout(), poll_every=timedelta(seconds=2)
        )
        report = await handle.result()
        history = await handle.fetch_history()

    assert report.status is RolloutStatus.COMPLETED
    outcomes = {s: r.outcome for s, r in report.stores.items()}
    assert len(outcomes) == 80
    assert sorted(s for s, o in outcomes.items() if o is StoreOutcome.CONFIRMED) == sorted(
        set(pos.store_ids()) - {"S010", "S020", "S040"}
    )
    assert outcomes["S010"] is outcomes["S020"] is StoreOutcome.UNREACHABLE
    assert "not reachable before" in (report.stores["S010"].reason or "")
    assert outcomes["S040"] is StoreOutcome.REJECTED
    assert report.stores["S040"].reason == "price below cost floor"
    assert report.failure_ratio == pytest.approx(3 / 80)
    # Odoo was written before any store was commanded.
    kinds = [e.WhichOneof("attributes") for e in history.events]
    scheduled = [
        (i, e.activity_task_scheduled_event_attributes.activity_type.name)
        for i, e in enumerate(history.events)
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    activities = [name for _, name in scheduled]
    assert activities[:3] == ["list_stores", "prepare_price_rollout", "write_pricelist_items"]
    first_send = next(i for i, name in scheduled if name == "send_price_commands")
    last_write = max(i for i, name in scheduled if name == "write_pricelist_items")
    completed = [i for i, k in enumerate(kinds) if k == "activity_task_completed_event_attributes"]
    assert max(i for i in completed if i < first_send) > last_write
    # Commands go out in batches: no workflow per store, a few events per store at most.
    assert "start_child_workflow_execution_initiated_event_attributes" not in kinds
    assert len(history.events) < 3 * 80
    assert report.odoo_written_at and report.commanding_started_at
    assert report.odoo_written_at <= report.commanding_started_at
    # Stores and Odoo agree on the new prices; no store applied a command twice.
    assert pos.prices("S001")["COFFEE-250"] == Decimal("5.99")
    assert pos.prices("S030")["MILK-1L"] == Decimal("1.09")
    assert pos.prices("S010")["MILK-1L"] == Decimal("1.29")
    assert contextual_price(odoo, "COFFEE-250", datetime.now(UTC) + timedelta(minutes=1)) == 5.99
    assert applied_twice(pos) == []


async def test_nothing_reaches_a_store_before_the_effective_time(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    # Far enough out that Odoo is written well before it, even on a loaded machine.
    effective = datetime.now(UTC) + timedelta(seconds=10)
    target = {"kind": "list", "stores": ["S001", "S002", "S003"]}
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client, settings, a_rollout(effective_at=effective.isoformat(), target=target)
        )
        # Once Odoo is written the rollout waits for the effective time: stores see nothing yet.
        progress = await handle.query(PriceRollout.progress)
        while progress.status is not RolloutStatus.SCHEDULED and datetime.now(UTC) < effective:
            await asyncio.sleep(0.2)
            progress = await handle.query(PriceRollout.progress)
        early = [pos.commands(s) for s in ("S001", "S002", "S003")]
        report = await handle.result()
    assert progress.status is RolloutStatus.SCHEDULED
    assert early == [[], [], []]
    assert report.status is RolloutStatus.COMPLETED
    for store in ("S001", "S002", "S003"):
        (command,) = pos.commands(store)
        assert datetime.fromisoformat(command["received_at"]) >= effective


async def test_failure_threshold_exceeded_compensates_stores_and_odoo(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    stores = [f"S{i:03d}" for i in range(41, 51)]
    for store in stores[:3]:
        # The rejections come last, so the other stores have taken the change by then.
        pos.set_knobs(store, reject_rate=1.0, apply_delay_ms=1500)
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    # SKUs no other test changes: Odoo's old prices are the catalogue's, as in the fresh fleet.
    changes = [{"sku": "SOAP-BAR", "price": "1.49"}, {"sku": "BATT-AA4", "price": "4.99"}]
    before = contextual_price(odoo, "SOAP-BAR", datetime.now(UTC) + timedelta(minutes=1), "S041")
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client,
            settings,
            a_rollout(
                target={"kind": "list", "stores": stores}, max_failure_ratio=0.2, changes=changes
            ),
        )
        report = await handle.result()
    assert report.status is RolloutStatus.COMPENSATED
    assert report.compensation is not None
    assert "over the 20.0% threshold" in report.compensation.why
    confirmed = sorted(s for s, r in report.stores.items() if r.outcome is StoreOutcome.CONFIRMED)
    # Every store that took the change, or holds it unconfirmed when the rollout stopped early.
    took = sorted(
        s for s, r in report.stores.items() if r.outcome is not StoreOutcome.REJECTED and r.accepted
    )
    assert confirmed and set(confirmed) <= set(took)
    assert report.compensation.stores_reverted == took
    assert report.compensation.stores_not_reverted == {}  # rejected stores never applied it
    # Stores and Odoo agree again, on the prices in force before the rollout.
    assert report.old_prices == {"SOAP-BAR": Decimal("1.85"), "BATT-AA4": Decimal("5.99")}
    assert before == 1.85
    for store in stores:
        prices = pos.prices(store)
        assert {sku: prices[sku] for sku in report.old_prices} == report.old_prices, store
    assert report.odoo_items == len(stores) * len(changes)
    assert report.compensation.odoo_items_removed == report.odoo_items
    assert rollout_items(odoo, report.rollout_id or "") == []
    assert contextual_price(odoo, "SOAP-BAR", datetime.now(UTC) + timedelta(minutes=1), "S041") == (
        before
    )
    assert applied_twice(pos) == []


async def test_cancel_mid_rollout_compensates(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    stores = [f"S{i:03d}" for i in range(51, 71)]
    # Every store holds the command at once; three apply it quickly, the others slowly.
    pos.set_fleet(apply_delay_ms=3000)
    for store in stores[:3]:
        pos.set_knobs(store, apply_delay_ms=20)
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        pos_url=pos.url,
        rollout_concurrency=5,
        confirmation_url=f"{ingress_url}/v1/pos/confirmations",
    )
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client,
            settings,
            a_rollout(
                target={"kind": "list", "stores": stores},
                confirm_within="PT30S",
                changes=[
                    {"sku": "CHOC-DARK", "price": "1.99"},
                    {"sku": "BREAD-WHT", "price": "2.29"},
                ],
            ),
        )
        await eventually(
            lambda: handle.query(PriceRollout.progress),
            lambda p: p.counts.get("confirmed", 0) >= 3,
            timeout=20,
        )
        await handle.signal(PriceRollout.cancel, CancelRequest(by="ops-sam", reason="wrong file"))
        report = await handle.result()
    assert report.status is RolloutStatus.COMPENSATED
    assert report.compensation is not None
    assert report.compensation.why == "cancelled by ops-sam: wrong file"
    assert len(report.compensation.stores_reverted) >= 3
    assert report.compensation.stores_not_reverted == {}
    assert report.old_prices == {"CHOC-DARK": Decimal("2.10"), "BREAD-WHT": Decimal("2.49")}
    for store in stores:
        prices = pos.prices(store)
        assert {sku: prices[sku] for sku in report.old_prices} == report.old_prices, store
    cancelled = [s for s, r in report.stores.items() if r.outcome is StoreOutcome.CANCELLED]
    assert cancelled
    # A store that held the command unconfirmed gets the revert too (it applied it late).
    assert set(cancelled) <= set(report.compensation.stores_reverted)
    assert applied_twice(pos) == []
    assert report.compensation.odoo_items_removed == report.odoo_items == 2 * len(stores)
    assert rollout_items(odoo, report.rollout_id or "") == []


async def test_invalid_rollout_changes_nothing(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
    odoo: odoorpc.ODOO,
) -> None:
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    items_before = odoo.execute_kw("product.pricelist.item", "search_count", [[]])
    async with running_worker(client, settings):
        bad_sku = a_rollout(changes=[{"sku": "NOPE-404", "price": "1.00"}])
        _, handle = await start_rollout(client, settings, bad_sku)
        report = await handle.result()
        bad_region = a_rollout(target={"kind": "region", "region": "atlantis"})
        _, handle2 = await start_rollout(client, settings, bad_region)
        report2 = await handle2.result()
        bad_store = a_rollout(target={"kind": "list", "stores": ["S001", "X999"]})
        _, handle3 = await start_rollout(client, settings, bad_store)
        report3 = await handle3.result()
    assert report.status is RolloutStatus.REJECTED
    assert report.reasons == [
        "UnknownSku: unknown SKU 'NOPE-404': no active product has this internal reference"
    ]
    assert report2.status is RolloutStatus.REJECTED
    assert len(report2.reasons) == 1 and "unknown region 'atlantis'" in report2.reasons[0]
    assert report3.status is RolloutStatus.REJECTED
    assert report3.reasons == ["UnknownStore: stores not known to the POS platform: X999"]
    assert odoo.execute_kw("product.pricelist.item", "search_count", [[]]) == items_before
    assert all(pos.commands(s) == [] for s in pos.store_ids())


async def test_a_rate_limited_store_is_retried_not_rejected(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    # The platform answers S005's next requests 429 with Retry-After: the store is busy, not
    # refusing; its command must still be applied once and confirmed, with no compensation.
    pos.set_knobs("S005", busy_next=3, busy_status=429, retry_after_s=0)
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client, settings, a_rollout(target={"kind": "list", "stores": ["S005", "S006"]})
        )
        report = await handle.result()
    assert pos.stats()["refused_busy"] == 3
    assert report.status is RolloutStatus.COMPLETED
    outcomes = {s: r.outcome for s, r in report.stores.items()}
    assert outcomes == {"S005": StoreOutcome.CONFIRMED, "S006": StoreOutcome.CONFIRMED}
    assert report.compensation is None and report.failure_ratio == 0
    assert applied_twice(pos) == []


async def test_a_rollout_to_s003_leaves_s001_price_in_odoo_unchanged(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    at = datetime.now(UTC) + timedelta(minutes=1)
    before = contextual_price(odoo, "PEN-BLUE", at, "S001")
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client,
            settings,
            a_rollout(
                target={"kind": "list", "stores": ["S003"]},
                changes=[{"sku": "PEN-BLUE", "price": "0.77"}],
            ),
        )
        report = await handle.result()
    assert report.status is RolloutStatus.COMPLETED
    assert contextual_price(odoo, "PEN-BLUE", at, "S003") == 0.77
    assert contextual_price(odoo, "PEN-BLUE", at, "S001") == before != 0.77


async def test_forged_confirmation_is_refused_and_never_applied(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    pos.set_knobs("S077", apply_delay_ms=600_000)  # the store will not confirm by itself
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)

    async def post(
        http: httpx.AsyncClient, body: bytes, platform: str, secret: str, ts: str
    ) -> int:
        headers = {
            "X-POS-Platform": platform,
            "X-POS-Timestamp": ts,
            "X-POS-Signature": sign(secret, ts, body),
        }
        return (await http.post("/v1/pos/confirmations", content=body, headers=headers)).status_code

    async with running_worker(client, settings), httpx.AsyncClient(base_url=ingress_url) as http:
        rollout, handle = await start_rollout(
            client,
            settings,
            a_rollout(target={"kind": "list", "stores": ["S077"]}, confirm_within="PT20S"),
        )
        command = f"price-rollout:{rollout.rollout_id}:S077"
        await _commanded(handle, "S077")
        body = json.dumps(
            {
                "platform_id": "pos-main",
                "store_id": "S077",
                "command_id": command,
                "status": "applied",
            }
        ).encode()
        now = str(int(time.time()))
        forged = await post(http, body, "pos-main", "not-the-secret", now)
        unknown_platform = await post(http, body, "pos-evil", SECRET, now)
        replayed = await post(http, body, "pos-main", SECRET, "1000")
        other = body.replace(command.encode(), b"price-rollout-NOPE-S077")
        unknown_command = await post(http, other, "pos-main", SECRET, now)
        # Another store's command, or a command of a rollout that does not exist.
        another = body.replace(b'"store_id": "S077"', b'"store_id": "S001"')
        wrong_store = await post(http, another, "pos-main", SECRET, now)
        nope = body.replace(rollout.rollout_id.encode(), b"NOPE")
        unknown_rollout = await post(http, nope, "pos-main", SECRET, now)
        await asyncio.sleep(0.5)
        still = (await handle.query(PriceRollout.progress)).stores["S077"]
        genuine = await post(http, body, "pos-main", SECRET, now)
        report = await handle.result()

    assert (forged, unknown_platform, replayed) == (401, 401, 401)
    assert (unknown_command, wrong_store, unknown_rollout) == (404, 404, 404)
    assert still is StoreOutcome.COMMANDED
    assert genuine == 202
    assert report.stores["S077"].outcome is StoreOutcome.CONFIRMED
    assert report.ignored_signals == []


async def test_bogus_confirmation_sent_to_the_workflow_is_kept_and_cancel_still_works(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    pos.set_knobs("S078", apply_delay_ms=600_000)  # the store will not confirm by itself
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    async with running_worker(client, settings):
        rollout, handle = await start_rollout(
            client,
            settings,
            a_rollout(target={"kind": "list", "stores": ["S078"]}, confirm_within="PT20S"),
        )
        await _commanded(handle, "S078")
        command = f"price-rollout:{rollout.rollout_id}:S078"
        good = {"platform_id": "pos-main", "store_id": "S078", "command_id": command}
        # Straight to the workflow, as a signed-but-wrong confirmation once reached it: it
        # used to fail every workflow task (ValueError: 'bogus' is not a valid CommandState).
        await handle.signal(
            "confirmations",
            [
                {**good, "status": "bogus"},
                "not even an object",
                {**good, "store_id": "S001", "status": "applied"},  # another store's command
                {
                    **good,
                    "command_id": f"price-rollout:{rollout.rollout_id}:S001",
                    "status": "applied",
                },
                {**good, "command_id": "price-rollout:elsewhere:S078", "status": "applied"},
            ],
        )
        await handle.signal("confirmations", {"not": "a list"})
        await handle.signal("cancel", {"by": ""})
        state = await eventually(
            lambda: handle.query(PriceRollout.report),
            lambda r: len(r.ignored_signals) == 7,
        )
        await handle.signal(PriceRollout.cancel, CancelRequest(by="ops-sam", reason="bogus"))
        report = await handle.result()
    assert state.stores["S078"].outcome is StoreOutcome.COMMANDED
    reasons = report.ignored_signals
    assert "status: Input should be 'applied' or 'rejected'" in reasons[0]
    assert reasons[1].startswith("confirmation ignored: input: Input should be a valid")
    assert "S001" in reasons[2] and "no such command was sent" in reasons[2]
    assert "'price-rollout:elsewhere:S078' is not this rollout's" in reasons[3]
    assert reasons[4] == "confirmations: not a list"
    assert reasons[5].startswith("confirmation ignored: platform_id: Field required")
    assert reasons[6].startswith("cancel ignored: by")
    assert report.status is RolloutStatus.COMPENSATED
    assert report.compensation is not None
    assert report.compensation.why == "cancelled by ops-sam: bogus"
    assert report.stores["S078"].outcome is StoreOutcome.CANCELLED
    assert report.stores["S078"].ignored_count == 1
    assert "'S001' is not this command's store" in report.stores["S078"].ignored[0]


async def _commanded(handle: Any, store: str) -> None:
    """Once the store holds its command (the send answered), unconfirmed."""
    await eventually(
        lambda: handle.query(PriceRollout.report),
        lambda r: store in r.stores and r.stores[store].accepted,
        timeout=20,
    )


async def test_confirmations_arriving_together_reach_the_rollout_in_few_signals(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    stores = [f"S{i:03d}" for i in range(1, 41)]
    pos.set_fleet(apply_delay_ms=600_000)  # the stores will not confirm by themselves
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    async with running_worker(client, settings), httpx.AsyncClient(base_url=ingress_url) as http:
        rollout, handle = await start_rollout(
            client,
            settings,
            a_rollout(target={"kind": "list", "stores": stores}, confirm_within="PT30S"),
        )
        await eventually(
            lambda: handle.query(PriceRollout.report),
            lambda r: len(r.stores) == 40 and all(x.accepted for x in r.stores.values()),
            timeout=20,
        )

        async def confirm(store: str) -> int:
            body = json.dumps(
                {
                    "platform_id": "pos-main",
                    "store_id": store,
                    "command_id": f"price-rollout:{rollout.rollout_id}:{store}",
                    "status": "rejected" if store == "S040" else "applied",
                    "reason": "price below cost floor" if store == "S040" else None,
                }
            ).encode()
            ts = str(int(time.time()))
            headers = {
                "X-POS-Platform": "pos-main",
                "X-POS-Timestamp": ts,
                "X-POS-Signature": sign(SECRET, ts, body),
            }
            response = await http.post("/v1/pos/confirmations", content=body, headers=headers)
            return response.status_code

        answers = await asyncio.gather(*(confirm(s) for s in stores))
        # Each was answered once its batch's signal was delivered: the rollout has them all.
        progress = await handle.query(PriceRollout.progress)
        report = await handle.result()
        history = await handle.fetch_history()
        commands = await store_commands(client, "S007")
        env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
        listed = await asyncio.to_thread(
            run_cli, ["price-rollout", "commands", "--store", "S007"], env
        )
        bad = await asyncio.to_thread(run_cli, ["price-rollout", "commands", "--store", "S:7"], env)
    assert answers == [202] * 40
    assert progress.counts == {"confirmed": 39, "rejected": 1}
    assert report.status is RolloutStatus.COMPLETED
    assert report.stores["S040"].reason == "price below cost floor"
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert set(signals) == {"confirmations"} and len(signals) < 40
    # Ops find the command sent to a store without a workflow per store.
    mine = [c for c in commands.commands if c.rollout_workflow_id == handle.id]
    assert [(c.command_id, c.outcome, c.sends) for c in mine] == [
        (f"price-rollout:{rollout.rollout_id}:S007", "confirmed", 1)
    ]
    assert listed.returncode == 0, listed.stderr
    assert f"price-rollout:{rollout.rollout_id}:S007" in listed.stdout
    assert one_line_error(bad).startswith("retailflow: --store: store id 'S:7' must be")


async def test_a_rollout_to_all_stores_writes_odoo_per_sku_and_undoes_it_for_every_store(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    """All 80 stores: one item per SKU in the base pricelist, plus one where a store's own
    item (an earlier rollout to it alone) would shadow it; a subset rollout still writes per
    store; compensation gives every store its price from before, of either kind."""
    base = f"Prices {uuid.uuid4().hex[:6]}"  # Odoo pricelists of this test's own
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        pos_url=pos.url,
        pos_secrets={"pos-main": SECRET},
        confirmation_url=f"{ingress_url}/v1/pos/confirmations",
        store_pricelist=base,
    )
    at = datetime.now(UTC) + timedelta(minutes=3)

    def price(store: str, sku: str = "PEN-BLUE") -> float:
        return contextual_price(odoo, sku, at, store, base)

    def items() -> int:
        n: int = odoo.execute_kw("product.pricelist.item", "search_count", [[]])
        return n

    list_price = price("S001")
    async with running_worker(client, settings):

        async def run(raw: dict[str, Any]) -> Any:
            before = items()
            _, handle = await start_rollout(client, settings, raw, poll_every=timedelta(seconds=2))
            report = await handle.result()
            return report, items() - before

        # A rollout to S002 alone: its own pricelist (with the fallback rule) and one item.
        one = a_rollout(target={"kind": "list", "stores": ["S002"]})
        r1, n1 = await run({**one, "changes": [{"sku": "PEN-BLUE", "price": "0.70"}]})
        assert r1.status is RolloutStatus.COMPLETED and r1.odoo_items == 1 and n1 == 2
        assert (price("S002"), price("S001")) == (0.70, list_price)

        # To all 80 stores: 2 SKUs in the base pricelist, and S002's own PEN-BLUE.
        changes = [{"sku": "PEN-BLUE", "price": "0.75"}, {"sku": "SOAP-BAR", "price": "1.25"}]
        r2, n2 = await run(a_rollout(changes=changes))
        assert r2.status is RolloutStatus.COMPLETED and len(r2.stores) == 80
        assert r2.odoo_items == n2 == 3  # not 80 x 2
        for store in ("S001", "S002", "S080"):
            assert (price(store), price(store, "SOAP-BAR")) == (0.75, 1.25), store
            assert pos.prices(store)["PEN-BLUE"] == Decimal("0.75"), store

        # S003 alone, after: the newest wins there, the others keep the base price.
        three = a_rollout(target={"kind": "list", "stores": ["S003"]})
        r3, _ = await run({**three, "changes": [{"sku": "PEN-BLUE", "price": "0.60"}]})
        assert r3.status is RolloutStatus.COMPLETED
        assert (price("S003"), price("S001")) == (0.60, 0.75)

        # To all stores again, cancelled once Odoo holds it: every store's price comes back.
        later = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
        raw = a_rollout(changes=[{"sku": "PEN-BLUE", "price": "0.80"}], effective_at=later)
        _, handle = await start_rollout(client, settings, raw)
        await eventually(
            lambda: handle.query(PriceRollout.report), lambda r: r.odoo_written_at is not None
        )
        held = {s: price(s) for s in ("S001", "S002", "S003")}
        await handle.signal(PriceRollout.cancel, CancelRequest(by="ops-sam", reason="wrong file"))
        r4 = await handle.result()
    assert held == {"S001": 0.80, "S002": 0.80, "S003": 0.80}
    assert r4.status is RolloutStatus.COMPENSATED and r4.compensation is not None
    assert r4.odoo_items == r4.compensation.odoo_items_removed == 3  # base, S002, S003
    assert r4.old_prices == {"PEN-BLUE": Decimal("0.75")}
    assert r4.store_old_prices == {"S003": {"PEN-BLUE": Decimal("0.60")}}
    assert rollout_items(odoo, r4.rollout_id or "") == []
    assert {s: price(s) for s in ("S001", "S002", "S003", "S080")} == {
        "S001": 0.75,
        "S002": 0.75,
        "S003": 0.60,
        "S080": 0.75,
    }
    assert price("S001", "SOAP-BAR") == 1.25
    assert applied_twice(pos) == []
