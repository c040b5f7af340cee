"""Record the histories that test_replay.py replays: each scenario runs once on a fresh dev
server and Odoo emulator, and its history is saved as JSON under histories/."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.gateway_client import GatewayClient
from activities.odoo.client import OdooClient
from activities.pos_client import PosClient
from domain.inventory import AuditPolicy
from domain.posting import PostingProfile
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from simulators.sales import seed_catalogue
from tests.conftest import odoo_rpc, settings_for
from tests.identities import Signer
from tests.workflows.helpers import sales_for
from tests.workflows.test_reconciliation import unreconciled_then_resolved
from workers.cli_settlement import start_settlement
from workers.client import connect
from workers.codec import decode_message
from workers.identity import trust_from
from workers.ingress import build_app
from workers.refunds import request_refund
from workers.rollouts import start_rollout
from workers.settings import Settings, TemporalSettings
from workers.submit import Mode, submit_many, wait_until_settled
from workers.worker import build_worker
from workflows.audit_trail import AuditTrail, AuditTrailInput
from workflows.customer_sync import CustomerSync
from workflows.inventory_audit import (
    AuditApproval,
    AuditStatus,
    InventoryAudit,
    InventoryAuditRun,
    InventoryAuditRunInput,
    inventory_audit_id,
    inventory_audit_key,
)
from workflows.inventory_publisher import InventoryPublisher, publisher_workflow_id
from workflows.refund import Refund, RefundStatus
from workflows.sale_posting import posting_workflow_id
from workflows.sale_refunds import sale_refunds_workflow_id
from workflows.search_attributes import ALL
from workflows.settlement import DailySettlement, SettlementInput
from workflows.store_ledger import StoreLedger, ledger_workflow_id

OUT = Path(__file__).parent / "histories"
RECON_DAY = date(2026, 11, 21)
BIN = Path(sys.executable).parent


async def record_settlement(client: Client, task_queue: str, gw: Gateway) -> str:
    """GatewaySettlement of two days: a payout booked, one refused (EUR), and on the rerun that
    is saved, the first one already booked and a failed one reversed. Returns its id."""
    first, second = date(2026, 11, 18), date(2026, 11, 19)
    for n, day in enumerate((first, first, second, second)):
        created = int(datetime(day.year, day.month, day.day, 10, n, tzinfo=UTC).timestamp())
        gw.create_payment_intent(f"pi_REC_S{n}", 1000 + n, created=created)
    eur = int(datetime(2026, 11, 18, 11, tzinfo=UTC).timestamp())
    gw.create_payment_intent("pi_REC_EUR", 900, currency="eur", created=eur)
    handle = await start_settlement(client, task_queue, first, second + timedelta(days=1))
    await handle.result()
    gw.fail_payout(f"po_sim{second:%Y%m%d}usd", "account_closed")
    handle = await start_settlement(client, task_queue, first, second + timedelta(days=1))
    await handle.result()
    return handle.id


@dataclass
class Stack:
    client: Client
    settings: Settings
    fleet: PosPlatform
    gw: Gateway


@asynccontextmanager
async def recording(**overrides: object) -> AsyncIterator[Stack]:
    """A fresh dev server, Odoo emulator (catalogue seeded), POS fleet, gateway and a worker."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=list(ALL)
    )
    emu = OdooEmulator()
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    address = env.client.service_client.config.target_host
    client = await connect(TemporalSettings(address=address))
    fleet = PosPlatform(stores=3, secret="rec", platform_id="pos-main", seed=1)
    fleet.start(port=0)
    gw = Gateway(seed=1)
    gw.start(port=0)
    settings = settings_for(emu, address, pos_url=fleet.url, gateway_api_base=gw.url, **overrides)
    pos = PosClient(settings.pos())
    gateway = GatewayClient(settings.gateway())
    try:
        with ThreadPoolExecutor(8) as ex:
            async with build_worker(
                client, settings, OdooClient(settings.odoo()), PostingProfile(), ex, pos, gateway
            ):
                yield Stack(client, settings, fleet, gw)
    finally:
        await pos.aclose()
        gateway.close()
        fleet.stop()
        gw.stop()
        emu.stop()
        await env.shutdown()


async def in_clear(client: Client, history: WorkflowHistory) -> None:
    """Saved decrypted: the session's key is thrown away, and replay reads clear payloads."""
    codec = client.data_converter.payload_codec
    assert codec is not None
    for event in history.events:
        await decode_message(event, codec)


async def save(client: Client, *workflow_ids: str) -> None:
    OUT.mkdir(exist_ok=True)
    for wf_id in workflow_ids:
        history = await client.get_workflow_handle(wf_id).fetch_history()
        await in_clear(client, history)
        (OUT / f"{wf_id}.json").write_text(history.to_json())
        print("saved", wf_id)


async def main_settlement() -> None:
    """Only the settlement scenario (`python -m tests.workflows.record_histories settlement`)."""
    async with recording() as st:
        await save(st.client, await record_settlement(st.client, st.settings.task_queue, st.gw))


CLOSE_DAY = date(2026, 11, 22)


async def main_close() -> None:
    """A night settled (`python -m tests.workflows.record_histories close`): a store's ledger
    closed by StoreDayClose, then its day reconciled, started by DailySettlement."""
    sales = [
        sale | {"occurred_at": f"{CLOSE_DAY.isoformat()}T1{n}:00:00+00:00"}
        for n, sale in enumerate(sales_for("S001", 3, seed=4))
    ]
    async with recording(batch_max_age_s=3600.0, ledger_idle_close_s=3600.0) as st:
        st.fleet.ring_up_many("S001", sales)
        for sale in sales:
            for p in sale["payments"]:
                if p["method"] == "card":
                    st.gw.create_payment_intent(
                        p["reference"],
                        int(Decimal(p["amount"]) * 100),
                        metadata={"store_id": "S001", "txn_id": sale["txn_id"]},
                        created=int(datetime.fromisoformat(sale["occurred_at"]).timestamp()),
                    )
        await submit_many(st.client, st.settings, sales, Mode.BATCHED, "rec")
        night_id = f"settlement:rec:{CLOSE_DAY.isoformat()}"
        night = await st.client.execute_workflow(
            DailySettlement.run,
            SettlementInput(
                region="rec",
                stores=["S001"],
                business_day=CLOSE_DAY,
                poll_every=timedelta(seconds=1),
            ),
            id=night_id,
            task_queue=st.settings.task_queue,
        )
        recon = st.client.get_workflow_handle(night.stores[0].reconciliation or "")
        print("reconciliation:", (await recon.result())["status"])
        await save(st.client, night_id, f"close:S001:{CLOSE_DAY}")


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=list(ALL)
    )
    emu = OdooEmulator()
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    address = env.client.service_client.config.target_host
    client = await connect(TemporalSettings(address=address))
    settings = settings_for(emu, address, batch_size=3)
    fleet = PosPlatform(stores=3, secret="rec", platform_id="pos-main", seed=1)
    fleet.start(port=0)
    ingress = uvicorn.Server(
        uvicorn.Config(
            build_app(
                settings.model_copy(update={"pos_secrets": {"pos-main": SecretStr("rec")}}), client
            ),
            host="127.0.0.1",
            port=0,
            log_level="warning",
        )
    )
    serving = asyncio.create_task(ingress.serve())
    while not ingress.started:
        await asyncio.sleep(0.01)
    port = ingress.servers[0].sockets[0].getsockname()[1]
    gw = Gateway(seed=1)
    gw.start(port=0)
    settings = settings.model_copy(update={"pos_url": fleet.url, "gateway_api_base": gw.url})
    rollout_cfg = settings.model_copy(
        update={"confirmation_url": f"http://127.0.0.1:{port}/v1/pos/confirmations"}
    )
    sales = sales_for("REC", 5)
    sales[1]["lines"][0]["sku"] = "NOPE-404"
    invalid = dict(sales_for("REC", 6)[5], currency="XYZ")
    pos = PosClient(settings.pos())
    gateway = GatewayClient(settings.gateway())
    with ThreadPoolExecutor(8) as ex:
        async with build_worker(
            client, settings, OdooClient(settings.odoo()), PostingProfile(), ex, pos, gateway
        ):
            per_sale = await submit_many(
                client, settings, [sales[0], invalid], Mode.PER_SALE, "rec"
            )
            batched = await submit_many(client, settings, sales[1:], Mode.BATCHED, "rec")
            await wait_until_settled(client, per_sale + batched, timedelta(seconds=60))
            ledger = client.get_workflow_handle(ledger_workflow_id("REC", date(2026, 11, 20)))
            await ledger.signal(StoreLedger.close)
            await ledger.result()
            # A rollout to three stores, confirmed by signed callbacks; one store rejects it.
            fleet.set_knobs("S003", reject_rate=1.0)
            _, rollout = await start_rollout(
                client,
                rollout_cfg,
                {
                    "rollout_id": "REC1",
                    "changes": [{"sku": "MILK-1L", "price": "1.19"}],
                    "target": {"kind": "all"},
                    "effective_at": datetime.now(UTC).isoformat(),
                    "confirm_within": "PT20S",
                    "requested_by": "recorder",
                },
            )
            await rollout.result()
            # Refunds of a card sale: one passes by policy, one waits for a second person.
            gw.create_payment_intent("pi_REC_T9", amount_cents=5750, currency="usd")
            card_sale = {
                "store_id": "REC",
                "txn_id": "T9",
                "occurred_at": "2026-11-20T10:00:00+00:00",
                "currency": "USD",
                "lines": [
                    {"sku": "TEE-BLK-M", "qty": "1", "unit_price": "50.00", "tax_rate": "0.15"}
                ],
                "payments": [{"method": "card", "amount": "57.50", "reference": "pi_REC_T9"}],
            }
            posted = await submit_many(client, settings, [card_sale], Mode.PER_SALE, "rec")
            await wait_until_settled(client, posted, timedelta(seconds=30))
            base = {
                "store_id": "REC",
                "txn_id": "T9",
                "reason": "changed_mind",
                "requested_by": "ann",
            }
            signer = Signer.new("recorder")
            settings = settings.model_copy(update=signer.trusted())
            small_ask = {**base, "refund_id": "REC-A", "amount": "5.00"}
            _, small, _ = await request_refund(
                client, settings, small_ask, signer.request(small_ask, "ann")
            )
            await small.result()
            large_ask = {**base, "refund_id": "REC-B", "amount": "30.00"}
            _, large, _ = await request_refund(
                client, settings, large_ask, signer.request(large_ask, "ann")
            )
            while (await large.query(Refund.show)).status is not RefundStatus.AWAITING_APPROVAL:
                await asyncio.sleep(0.1)
            await large.execute_update(Refund.approve, signer.approval("lee", "REC-B"))
            await large.result()
            settlement = await record_settlement(client, settings.task_queue, gw)
            # A store-day reconciled after ops reposted a missing sale and accepted a charge.
            recon, _, _ = await unreconciled_then_resolved(client, settings, fleet, gw, RECON_DAY)
            await recon.result()
            OUT.mkdir(exist_ok=True)
            for wf_id in [
                per_sale[0].workflow_id,
                per_sale[1].workflow_id,
                ledger.id,
                posting_workflow_id("REC", "X0001"),  # handed off by the ledger, waiting for ops
                rollout.id,
                f"{rollout.id}:S001",
                f"{rollout.id}:S003",
                small.id,
                large.id,
                sale_refunds_workflow_id("REC", "T9"),
                settlement,
                recon.id,
            ]:
                history = await client.get_workflow_handle(wf_id).fetch_history()
                await in_clear(client, history)
                (OUT / f"{wf_id}.json").write_text(history.to_json())
                print("saved", wf_id)
    ingress.should_exit = True
    await serving
    fleet.stop()
    gw.stop()
    emu.stop()
    await env.shutdown()


async def main_signed() -> None:
    """A refund decided with signed assertions (`... record_histories signed`): requested
    with a `request` assertion, a forged approval from the Web UI noted and ignored, then a
    store manager's signed approval."""
    signer = Signer.new("recorder")
    async with recording(**signer.trusted()) as st:
        st.gw.create_payment_intent("pi_REC_S1", amount_cents=5750, currency="usd")
        sale = {
            "store_id": "REC",
            "txn_id": "S1",
            "occurred_at": "2026-11-20T10:00:00+00:00",
            "currency": "USD",
            "lines": [{"sku": "TEE-BLK-M", "qty": "1", "unit_price": "50.00", "tax_rate": "0.15"}],
            "payments": [{"method": "card", "amount": "57.50", "reference": "pi_REC_S1"}],
        }
        posted = await submit_many(st.client, st.settings, [sale], Mode.PER_SALE, "rec")
        await wait_until_settled(st.client, posted, timedelta(seconds=30))
        ask = {
            "refund_id": "REC-S",
            "store_id": "REC",
            "txn_id": "S1",
            "amount": "30.00",
            "reason": "changed_mind",
            "requested_by": "ann",
        }
        _, handle, _ = await request_refund(
            st.client, st.settings, ask, signer.request(ask, "ann", name="Ann")
        )
        while (await handle.query(Refund.show)).status is not RefundStatus.AWAITING_APPROVAL:
            await asyncio.sleep(0.1)
        forged = Signer.new("recorder").approval("lee", "REC-S")
        await handle.signal(Refund.approve_from_ui, forged)
        await handle.execute_update(
            Refund.approve, signer.approval("lee", "REC-S", name="Lee", comment="receipt seen")
        )
        result = await handle.result()
        print("signed refund:", result.status.value, "decided by", result.decided_by_sub)
        await save(st.client, handle.id)


async def reconciliation_only() -> None:
    """Record the Reconciliation history alone (`... record_histories reconciliation`)."""
    async with recording() as st:
        recon, _, _ = await unreconciled_then_resolved(
            st.client, st.settings, st.fleet, st.gw, RECON_DAY
        )
        await recon.result()
        await save(st.client, recon.id)


async def main_audit() -> None:
    """The audit trail collected once over two sales (`... record_histories audit`)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with recording(audit_db=f"{tmp}/audit.db") as st:
            posted = await submit_many(
                st.client, st.settings, sales_for("AUD", 2), Mode.PER_SALE, "rec"
            )
            await wait_until_settled(st.client, posted, timedelta(seconds=60))
            result = await st.client.execute_workflow(
                AuditTrail.run,
                AuditTrailInput(scope=f'TaskQueue = "{st.settings.task_queue}"'),
                id="audit-trail:rec",
                task_queue=st.settings.task_queue,
            )
            print("audit trail:", result.events, "events of", result.workflows, "workflows")
            await save(st.client, "audit-trail:rec")


async def main_catalog() -> None:
    """A CatalogSync: a store offline, an item refused for its barcode, pages confirmed by
    polling (`... record_histories catalog`)."""
    from datetime import timedelta as td

    from workflows.catalog_sync import CatalogSync, CatalogSyncInput, sync_workflow_id

    async with recording() as st:
        odoo = odoo_rpc_of(st.settings)
        odoo.execute_kw(
            "product.product",
            "create",
            [{"name": "Bad barcode", "default_code": "REC-BAD", "barcode": "1234567890123"}],
        )
        st.fleet.set_knobs("S003", online=False)
        report = await st.client.execute_workflow(
            CatalogSync.run,
            CatalogSyncInput(sync_id="rec", page_size=10, confirm_within=td(seconds=5)),
            id=sync_workflow_id("rec"),
            task_queue=st.settings.task_queue,
        )
        print("catalog sync:", report.status, report.pages, "pages", report.behind)
        await save(st.client, sync_workflow_id("rec"))


def odoo_rpc_of(settings: Settings) -> Any:
    import odoorpc

    port = int(settings.odoo_url.rsplit(":", 1)[1])
    rpc = odoorpc.ODOO("127.0.0.1", port=port, timeout=30)
    rpc.login("retail", "admin", "admin")
    return rpc


async def main_customers() -> None:
    """A customer's CustomerSync over two sales, per sale and batched, with consent (`...
    record_histories customers`); the per-sale SalePosting that handed its customer over too."""
    async with recording() as st:
        customer = {
            "pos_customer_id": "REC-C1",
            "name": "Rec Customer",
            "consent": {"marketing": True, "at": "2026-11-20T09:00:00+00:00", "source": "till"},
        }
        sales = sales_for("RECC", 2)
        for sale in sales:
            sale["customer"] = customer
        posted = [
            *await submit_many(st.client, st.settings, sales[:1], Mode.PER_SALE, "rec"),
            *await submit_many(st.client, st.settings, sales[1:], Mode.BATCHED, "rec"),
        ]
        await wait_until_settled(st.client, posted, timedelta(seconds=60))
        handle = st.client.get_workflow_handle_for(CustomerSync.run, "customer:pos:REC-C1")
        while (await handle.query(CustomerSync.status)).events < 2:
            await asyncio.sleep(0.2)
        await save(st.client, handle.id, posting_workflow_id("RECC", "X0000"))


async def main_inventory() -> None:
    """Inventory (`... record_histories inventory`): the daily run starts S001's audit, which
    adjusts one product, lists a drift beyond the threshold, waits for a signed approval of a
    dear one and applies it; the store's publisher then publishes Odoo's on-hand once."""
    signer = Signer.new("recorder")
    async with recording(**signer.trusted()) as st:
        odoo = OdooClient(st.settings.odoo())
        rows = odoo.call(
            "product.product",
            "search_read",
            [("default_code", "in", ["MILK-1L", "TEA-GREEN", "TOWEL-BTH"])],
            fields=["default_code"],
        )
        ids = {r["default_code"]: r["id"] for r in rows}
        odoo.call("product.product", "write", [ids["TOWEL-BTH"]], {"standard_price": 40.0})
        counts = {"MILK-1L": "998", "TEA-GREEN": "900", "TOWEL-BTH": "997"}
        st.fleet.inventory.set_counts(
            "S001",
            {"items": [{"sku": k, "product_id": ids[k], "qty": q} for k, q in counts.items()]},
        )
        run = await st.client.execute_workflow(
            InventoryAuditRun.run,
            InventoryAuditRunInput(
                stores=["S001"],
                policy=AuditPolicy(quantity_threshold=Decimal(10), value_threshold=Decimal(100)),
                trust=trust_from(st.settings),
            ),
            id="inventory-audit-run:rec",
            task_queue=st.settings.task_queue,
        )
        audit = st.client.get_workflow_handle_for(
            InventoryAudit.run, inventory_audit_id("S001", run.audit_id)
        )
        while True:
            progress = await audit.query(InventoryAudit.progress)
            if progress is not None and progress.status is AuditStatus.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.2)
        key = inventory_audit_key("S001", run.audit_id)
        await audit.execute_update(
            InventoryAudit.approve,
            AuditApproval(
                assertion=signer.sign("lee", key, "approve", role="store_manager", name="Lee"),
                comment="recounted",
            ),
        )
        result = await audit.result()
        print("inventory audit:", result.status.value, "adjusted", result.adjusted)
        publisher = st.client.get_workflow_handle_for(
            InventoryPublisher.run, publisher_workflow_id("S001")
        )
        while (await publisher.query(InventoryPublisher.state)).published < 1:
            await asyncio.sleep(0.5)
        await publisher.terminate("recorded")
        await save(st.client, "inventory-audit-run:rec", audit.id, publisher.id)


if __name__ == "__main__":
    scenarios = {
        "catalog": main_catalog,
        "customers": main_customers,
        "inventory": main_inventory,
        "audit": main_audit,
        "settlement": main_settlement,
        "close": main_close,
        "reconciliation": reconciliation_only,
        "signed": main_signed,
    }
    which = sys.argv[1:]
    asyncio.run(scenarios[which[0]]() if which else main())
    sys.stdout.flush()
    os._exit(0)
