"""InventoryAudit on the dev server with the Odoo emulator and the POS simulator: drift under
the thresholds adjusted once (re-run and lost answers included), beyond the quantity threshold
an exception, above the value threshold an approval first (four eyes), negative stock reported,
and a sale leaving the store's own location."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import odoorpc
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.gateway_client import GatewayClient
from activities.odoo.client import OdooClient
from activities.pos_client import PosClient
from domain.inventory import AuditPolicy, Verdict
from domain.posting import PostingProfile
from simulators.odoo import Faults, OdooEmulator
from simulators.pos import PosPlatform
from tests.conftest import RETAILFLOW, settings_for
from tests.identities import ISSUER
from tests.workflows.helpers import eventually
from tests.workflows.test_refund import refund, request_refund
from workers.business_metrics import inventory_drift
from workers.identity import trust_from
from workers.settings import Settings
from workers.submit import Mode, submit_sale, wait_until_settled
from workers.worker import build_worker
from workflows.inventory_audit import (
    DRIFT_MEMO,
    AuditApproval,
    AuditStatus,
    InventoryAudit,
    InventoryAuditInput,
    InventoryAuditResult,
    InventoryAuditRun,
    InventoryAuditRunInput,
    inventory_audit_id,
    inventory_audit_key,
)
from workflows.inventory_publisher import (
    InventoryChanged,
    InventoryPublisher,
    PublisherInput,
    publisher_workflow_id,
)
from workflows.refund import RefundStatus

POLICY = AuditPolicy(quantity_threshold=Decimal(10), value_threshold=Decimal(100))


@asynccontextmanager
async def inventory_worker(
    client: Client, settings: Settings, profile: PostingProfile
) -> AsyncIterator[None]:
    odoo = OdooClient(settings.odoo())
    pos = PosClient(settings.pos())
    gateway = GatewayClient(settings.gateway())
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = build_worker(client, settings, odoo, profile, executor, pos, gateway)
        try:
            async with worker:
                yield
        finally:
            await pos.aclose()
            gateway.close()


class Shop:
    """One store with its own location in Odoo and products with a price and stock there."""

    def __init__(self, odoo: odoorpc.ODOO, pos: PosPlatform, store: str) -> None:
        self.odoo, self.pos, self.store = odoo, pos, store
        self.tag = uuid.uuid4().hex[:6].upper()
        self.location_name = f"WH/Stock/{store}-{self.tag}"
        self.location = int(
            odoo.execute_kw(
                "stock.location",
                "create",
                [{"name": f"{store}-{self.tag}", "location_id": 8, "usage": "internal"}],
            )
        )
        self.profile = PostingProfile(store_locations={store: self.location_name})

    def product(self, name: str, on_hand: float, price: float = 1.0) -> tuple[str, int]:
        sku = f"{name}-{self.tag}"
        pid = int(
            self.odoo.execute_kw(
                "product.product",
                "create",
                [{"name": sku, "default_code": sku, "type": "product", "standard_price": price}],
            )
        )
        if on_hand:
            self.odoo.execute_kw(
                "stock.quant",
                "create",
                [
                    {
                        "product_id": pid,
                        "location_id": self.location,
                        "inventory_quantity_auto_apply": on_hand,
                    }
                ],
                {"context": {"inventory_mode": True}},
            )
        return sku, pid

    def count(self, *items: tuple[str, int | None, str]) -> None:
        self.pos.inventory.set_counts(
            self.store,
            {"items": [{"sku": s, "product_id": p, "qty": q} for s, p, q in items]},
        )

    def on_hand(self, pid: int) -> float:
        rows = self.odoo.execute_kw(
            "stock.quant",
            "search_read",
            [[("product_id", "=", pid), ("location_id", "=", self.location)]],
            {"fields": ["quantity"]},
        )
        return float(sum(r["quantity"] for r in rows))

    def inventory_moves(self, key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.odoo.execute_kw(
            "stock.move",
            "search_read",
            [[("name", "=", key), ("is_inventory", "=", True)]],
            {"fields": ["product_id", "quantity", "state"]},
        )
        return rows


@pytest_asyncio.fixture
async def shop(odoo: odoorpc.ODOO, pos: PosPlatform, client: Client) -> AsyncIterator[Shop]:
    yield Shop(odoo, pos, "S007")
    # The store's publisher lives on beyond a test's task queue: end it.
    try:
        await client.get_workflow_handle(publisher_workflow_id("S007")).terminate("test over")
    except RPCError:
        pass  # none running


@pytest.fixture
def settings(odoo_emulator: OdooEmulator, temporal_address: str, pos: PosPlatform) -> Settings:
    return settings_for(odoo_emulator, temporal_address, pos_url=pos.url, **ISSUER.trusted())


async def audit(
    client: Client, settings: Settings, shop: Shop, audit_id: str, **extra: Any
) -> InventoryAuditResult:
    async with inventory_worker(client, settings, shop.profile):
        return await client.execute_workflow(
            InventoryAudit.run,
            audit_input(settings, shop, audit_id, **extra),
            id=inventory_audit_id(shop.store, audit_id),
            task_queue=settings.task_queue,
            result_type=InventoryAuditResult,
        )


def audit_input(settings: Settings, shop: Shop, audit_id: str, **extra: Any) -> InventoryAuditInput:
    return InventoryAuditInput(
        store_id=shop.store,
        audit_id=audit_id,
        policy=POLICY,
        trust=trust_from(settings),
        page_size=2,
        publish_coalesce=timedelta(seconds=1),
        **extra,
    )


async def test_drift_under_the_threshold_is_adjusted_once(
    client: Client, settings: Settings, shop: Shop, odoo_emulator: OdooEmulator
) -> None:
    short, short_id = shop.product("SHORT", on_hand=5)
    extra, extra_id = shop.product("EXTRA", on_hand=2)
    same, same_id = shop.product("SAME", on_hand=3)
    shop.count((short, short_id, "3"), (extra, None, "6"), (same, same_id, "3"))
    audit_id = f"day-{shop.tag}"
    key = inventory_audit_key(shop.store, audit_id)
    # Odoo applies the count but its answer is lost: the retry finds the moves, counts nothing
    # again.
    odoo_emulator.faults = Faults(
        error_rate=1.0, kinds=("lost_response",), methods=("stock.quant.action_apply_inventory",)
    )
    try:
        result = await audit(client, settings, shop, audit_id)
    finally:
        odoo_emulator.faults = Faults()
    assert result.status is AuditStatus.ADJUSTED, result.attention
    assert result.summary.counted == 3
    assert sorted(result.already_adjusted) == sorted([short, extra])
    assert (shop.on_hand(short_id), shop.on_hand(extra_id), shop.on_hand(same_id)) == (3, 6, 3)
    assert sorted(m["quantity"] for m in shop.inventory_moves(key)) == [2.0, 4.0]
    # The same audit again: nothing left to adjust, nothing booked twice.
    again = await audit(client, settings, shop, audit_id)
    assert again.status is AuditStatus.IN_STEP and again.drifts == []
    assert len(shop.inventory_moves(key)) == 2
    desc = await client.get_workflow_handle(inventory_audit_id(shop.store, audit_id)).describe()
    assert (await desc.memo_value(DRIFT_MEMO)) == 0
    # The store is told what Odoo now has (the first audit's adjustments), by its publisher.

    async def published() -> dict[str, str]:
        view = shop.pos.inventory.availability(shop.store)
        return {i["sku"]: i["qty"] for i in view["items"]}

    async with inventory_worker(client, settings, shop.profile):
        await eventually(published, lambda p: p == {short: "3", extra: "6"}, timeout=60)


async def test_drift_beyond_the_quantity_threshold_is_an_exception_and_negative_is_reported(
    client: Client, settings: Settings, shop: Shop
) -> None:
    big, big_id = shop.product("BIG", on_hand=50)
    gone, gone_id = shop.product("GONE", on_hand=1)
    shop.count((big, big_id, "2"), (gone, gone_id, "1"))
    # The store sells 3 GONE while Odoo has not seen it yet (offline): its count goes to -2.
    shop.pos.ring_up(
        shop.store,
        {
            "store_id": shop.store,
            "txn_id": f"T-{shop.tag}",
            "occurred_at": "2026-11-20T10:00:00+00:00",
            "currency": "USD",
            "lines": [{"sku": gone, "qty": "3", "unit_price": "1.00", "tax_rate": "0"}],
            "payments": [{"method": "cash", "amount": "3.00"}],
        },
    )
    result = await audit(client, settings, shop, f"day-{shop.tag}")
    assert result.status is AuditStatus.NEEDS_ATTENTION
    verdicts = {d.sku: (d.verdict, d.counted, d.negative) for d in result.drifts}
    assert verdicts == {
        big: (Verdict.EXCEPTION, Decimal(2), False),
        gone: (Verdict.EXCEPTION, Decimal(-2), True),
    }
    assert any("beyond the threshold" in r for r in result.attention)
    assert any("negative count" in r for r in result.attention)
    # Neither adjusted nor zeroed.
    assert (shop.on_hand(big_id), shop.on_hand(gone_id)) == (50, 1)
    assert result.summary.negative == 1
    desc = await client.get_workflow_handle(
        inventory_audit_id(shop.store, f"day-{shop.tag}")
    ).describe()
    assert (await desc.memo_value(DRIFT_MEMO)) == 2
    assert desc.typed_search_attributes is not None
    # The drift gauge reads it from visibility: the store's latest audit left 2 in drift.
    await eventually(
        lambda: inventory_drift(client, datetime.now(UTC)),
        lambda drift: drift.get((("store_id", shop.store),)) == 2.0,
    )


async def test_drift_above_the_value_threshold_waits_for_a_second_person(
    client: Client, settings: Settings, shop: Shop
) -> None:
    dear, dear_id = shop.product("DEAR", on_hand=4, price=60)
    shop.count((dear, dear_id, "1"))
    audit_id = f"day-{shop.tag}"
    key = inventory_audit_key(shop.store, audit_id)
    async with inventory_worker(client, settings, shop.profile):
        handle = await client.start_workflow(
            InventoryAudit.run,
            audit_input(settings, shop, audit_id, requested_by_sub="ops-olga"),
            id=inventory_audit_id(shop.store, audit_id),
            task_queue=settings.task_queue,
        )
        await eventually(
            lambda: handle.query(InventoryAudit.progress),
            lambda r: r is not None and r.status is AuditStatus.AWAITING_APPROVAL,
        )
        assert shop.on_hand(dear_id) == 4
        # The one who started it cannot approve; a cashier's role is not enough.
        for assertion in (
            ISSUER.sign("ops-olga", key, "approve", role="inventory_manager"),
            ISSUER.sign("cashier-ann", key, "approve", role="cashier"),
            ISSUER.sign("mgr-max", "inventory:OTHER:x", "approve", role="store_manager"),
        ):
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(
                    InventoryAudit.approve, AuditApproval(assertion=assertion)
                )
        said = await handle.execute_update(
            InventoryAudit.approve,
            AuditApproval(
                assertion=ISSUER.sign("mgr-max", key, "approve", role="store_manager"),
                comment="recounted twice",
            ),
        )
        assert "approved by mgr-max" in said
        result = await handle.result()
    assert result.status is AuditStatus.ADJUSTED
    assert result.decided_by == "mgr-max" and result.adjusted == [dear]
    assert shop.on_hand(dear_id) == 1
    assert [m["quantity"] for m in shop.inventory_moves(key)] == [3.0]


async def test_a_dry_run_reports_and_writes_nothing(
    client: Client, settings: Settings, shop: Shop
) -> None:
    sku, pid = shop.product("DRY", on_hand=5)
    shop.count((sku, pid, "4"))
    result = await audit(client, settings, shop, f"dry-{shop.tag}", dry_run=True)
    assert result.status is AuditStatus.DRY_RUN
    assert [(d.sku, d.delta) for d in result.drifts] == [(sku, Decimal(-1))]
    assert shop.on_hand(pid) == 5


async def test_a_sale_leaves_the_stores_own_location(
    client: Client, settings: Settings, shop: Shop
) -> None:
    sku, pid = shop.product("SOLD", on_hand=5)
    async with inventory_worker(client, settings, shop.profile):
        sale = {
            "store_id": shop.store,
            "txn_id": f"T-{shop.tag}",
            "occurred_at": "2026-11-20T10:00:00+00:00",
            "currency": "USD",
            "lines": [{"sku": sku, "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"}],
            "payments": [{"method": "cash", "amount": "23.00"}],
        }
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, "test")
        await wait_until_settled(client, [sub], timedelta(seconds=30))
        assert shop.on_hand(pid) == 3
        # The sale told the store's publisher: the store sees Odoo's new on-hand, unasked.
        await eventually(lambda: published(shop, sku), lambda qty: qty == 3, timeout=60)
        # One comes back (11.50, under the auto-approval limit): to the same store's shelf.
        raw = refund(shop.store, txn_id=sale["txn_id"], lines=[{"sku": sku, "qty": "1"}])
        _, handle, _ = await request_refund(client, settings, {**raw, "restock": True})
        result = await handle.result()
        assert result.status is RefundStatus.REFUNDED, result
        assert shop.on_hand(pid) == 4
        await eventually(lambda: published(shop, sku), lambda qty: qty == 4, timeout=60)


async def published(shop: Shop, sku: str) -> Decimal | None:
    """The on-hand of `sku` the store was last sent (None: never)."""
    items = shop.pos.inventory.availability(shop.store)["items"]
    return next((Decimal(i["qty"]) for i in items if i["sku"] == sku), None)


async def test_the_daily_run_audits_each_store_once_a_day(
    client: Client, settings: Settings, shop: Shop
) -> None:
    sku, pid = shop.product("DAILY", on_hand=2)
    shop.count((sku, pid, "1"))
    run_input = InventoryAuditRunInput(
        stores=[shop.store], policy=POLICY, trust=trust_from(settings), dry_run=True
    )
    async with inventory_worker(client, settings, shop.profile):
        first = await client.execute_workflow(
            InventoryAuditRun.run,
            run_input,
            id=f"inventory-audit-run-{shop.tag}-1",
            task_queue=settings.task_queue,
        )
        assert first.started == [shop.store]
        child = client.get_workflow_handle_for(
            InventoryAudit.run, inventory_audit_id(shop.store, first.audit_id)
        )
        result = await child.result()
        assert result.status is AuditStatus.DRY_RUN and len(result.drifts) == 1
        # A catch-up (or second) run the same day finds the store audited.
        second = await client.execute_workflow(
            InventoryAuditRun.run,
            run_input,
            id=f"inventory-audit-run-{shop.tag}-2",
            task_queue=settings.task_queue,
        )
    assert second.started == [] and second.already == [shop.store]


async def test_cli_ensures_locations_and_audits_a_store(
    client: Client,
    settings: Settings,
    shop: Shop,
    odoo: odoorpc.ODOO,
    tmp_path: Path,
    temporal_address: str,
) -> None:
    new_location = f"WH/Stock/CLI-{shop.tag}"
    profile_file = tmp_path / "profile.json"
    profile_file.write_text(
        json.dumps({"store_locations": {shop.store: shop.location_name, "S008": new_location}})
    )
    env = {
        "TEMPORAL_ADDRESS": temporal_address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_ODOO_URL": settings.odoo_url,
        "RETAILFLOW_POSTING_PROFILE": str(profile_file),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RETAILFLOW), *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    ensured = await asyncio.to_thread(cli, "stock", "locations", "ensure")
    assert ensured.returncode == 0, ensured.stderr
    assert f"S008: {new_location}" in ensured.stdout and "created" in ensured.stdout
    assert f"{shop.store}: {shop.location_name} (id {shop.location}) exists" in ensured.stdout
    again = await asyncio.to_thread(cli, "stock", "locations", "ensure", "--store", "S008")
    assert "exists" in again.stdout and "created" not in again.stdout
    assert (
        len(odoo.execute_kw("stock.location", "search", [[("complete_name", "=", new_location)]]))
        == 1
    )

    sku, pid = shop.product("CLI", on_hand=5)
    shop.count((sku, pid, "4"))
    async with inventory_worker(client, settings, shop.profile):
        dry = await asyncio.to_thread(
            cli, "inventory", "audit", "--store", shop.store, "--audit-id", "cli", "--dry-run"
        )
    assert dry.returncode == 0, dry.stderr
    assert "DryRun" in dry.stdout and "store counts 4, Odoo has 5" in dry.stdout
    assert shop.on_hand(pid) == 5
    bad = await asyncio.to_thread(cli, "inventory", "audit", "--store", "A:B")
    assert bad.returncode == 2 and "cannot be part of" in bad.stderr


async def test_changes_are_coalesced_into_one_publication(
    client: Client, settings: Settings, shop: Shop
) -> None:
    products = [shop.product(f"P{n}", on_hand=n) for n in range(1, 6)]
    async with inventory_worker(client, settings, shop.profile):
        for _, pid in products:
            # Five changes in a burst (e.g. five sales posted): each signals the publisher.
            await client.start_workflow(
                InventoryPublisher.run,
                PublisherInput(store_id=shop.store, coalesce=timedelta(seconds=2)),
                id=publisher_workflow_id(shop.store),
                task_queue=settings.task_queue,
                start_signal="changed",
                start_signal_args=[InventoryChanged(product_ids=[pid])],
            )
        handle = client.get_workflow_handle_for(
            InventoryPublisher.run, publisher_workflow_id(shop.store)
        )
        state = await eventually(
            lambda: handle.query(InventoryPublisher.state), lambda s: s.published >= 1, timeout=30
        )
        view = shop.pos.inventory.availability(shop.store)
        assert state.published == 1 and state.pending == []
        assert view["commands"] == 1
        assert {i["sku"]: i["qty"] for i in view["items"]} == {
            sku: str(n) for n, (sku, _) in enumerate(products, start=1)
        }
