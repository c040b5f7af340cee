"""The demo's master-data part: Odoo's catalog reaching the stores (a price change, a new
product, one the stores refuse), and a store's stock drift found and fixed by an inventory
audit (docs/catalog.md, docs/inventory.md). Run by `retailflow demo` after the day's sales."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any

from temporalio.client import Client

from workers.cli_catalog import render_summary
from workers.identity import trust_from
from workers.settings import Settings
from workflows.catalog_sync import (
    CatalogSync,
    CatalogSyncInput,
    CatalogSyncReport,
    SyncStatus,
    sync_workflow_id,
)
from workflows.inventory_audit import (
    AuditStatus,
    InventoryAudit,
    InventoryAuditInput,
    InventoryAuditResult,
    inventory_audit_id,
)

# The product whose price changes in Odoo, and the drift planted at one store.
REPRICED = ("MUG-WHITE", 10.90)
AUDITED_STORE = "S001"
# (sku, units the store counts off Odoo's on-hand): within the audit's 10 units, adjusted;
# beyond it, listed for ops and left alone.
PLANTED_DRIFT = (("SOAP-BAR", -3), ("TEA-GREEN", 40))


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def _put(port: int, path: str, body: object) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


async def _sync(client: Client, settings: Settings, sync_id: str) -> CatalogSyncReport:
    return await client.execute_workflow(
        CatalogSync.run,
        CatalogSyncInput(sync_id=sync_id),
        id=sync_workflow_id(sync_id),
        task_queue=settings.task_queue,
        static_summary=f"demo catalog sync ({sync_id})",
    )


def _store_item(pos_port: int, store: str, sku: str) -> dict[str, Any] | None:
    page = _get(pos_port, f"/v1/stores/{store}/catalog?after_sku={sku[:-1]}&limit=50")
    return next((i for i in page["items"] if i["sku"] == sku), None)


async def show_catalog(client: Client, settings: Settings, odoo: Any, pos_port: int) -> bool:
    """A first sync publishes Odoo's catalog; then a price change, a new product and one with
    a bad barcode reach the stores in an incremental sync. True when it went as planted."""
    print("\ncatalog, Odoo -> stores (docs/catalog.md):")
    first = await _sync(client, settings, "demo-initial")
    print("  $ retailflow catalog sync\n  " + render_summary(first).replace("\n", "\n  "))

    sku, price = REPRICED
    (pid,) = odoo.execute_kw("product.product", "search", [[("default_code", "=", sku)]])
    (tmpl,) = odoo.execute_kw("product.product", "read", [[pid], ["product_tmpl_id"]])
    odoo.execute_kw(
        "product.template", "write", [[tmpl["product_tmpl_id"][0]], {"list_price": price}]
    )
    for new in (
        {"name": "Scarf, wool", "default_code": "SCARF-WOOL", "list_price": 24.0},
        {"name": "Gift box", "default_code": "GIFT-BOX", "barcode": "4006381333932"},
    ):
        odoo.execute_kw("product.product", "create", [new])
    print(
        f"  in Odoo: {sku} now {price:.2f}; new products SCARF-WOOL and GIFT-BOX (its barcode "
        "has a wrong check digit)"
    )
    second = await _sync(client, settings, "demo-incremental")
    print("  $ retailflow catalog sync\n  " + render_summary(second).replace("\n", "\n  "))
    print(
        "  (here the whole catalog again: a sync reads again what was written in the 2 minutes "
        "before the previous one, so a write Odoo commits late is not missed; docs/catalog.md)"
    )
    item = _store_item(pos_port, "S002", sku)
    scarf = _store_item(pos_port, "S002", "SCARF-WOOL")
    print(
        f"  store S002 now sells {sku} at {item['price'] if item else '?'} and has SCARF-WOOL: "
        f"{'yes' if scarf else 'no'}"
    )
    for e in second.exceptions[:3]:
        print(f"  refused by {e.store_id}: {e.sku}: {e.reason}")
    return (
        first.status is not SyncStatus.REJECTED
        and item is not None
        and Decimal(item["price"]) == Decimal(str(price))
        and scarf is not None
        and any(e.sku == "GIFT-BOX" for e in second.exceptions)
    )


async def show_drift(client: Client, settings: Settings, odoo: Any, pos_port: int) -> bool:
    """The store counts differ from Odoo: one small drift is adjusted in Odoo once, one large
    one is listed for ops. True when it went as planted."""
    print(f"\ninventory audit of {AUDITED_STORE} (docs/inventory.md):")
    items = []
    for sku, off in PLANTED_DRIFT:
        (row,) = odoo.execute_kw(
            "product.product",
            "search_read",
            [[("default_code", "=", sku)]],
            {"fields": ["qty_available"], "context": {"location": 8}},
        )
        counted = Decimal(str(row["qty_available"])) + off
        if counted == counted.to_integral_value():
            counted = counted.quantize(Decimal(1))
        items.append({"sku": sku, "product_id": row["id"], "qty": str(counted)})
        print(f"  the store counts {sku}: {counted} (Odoo has {row['qty_available']:g})")
    # The store's count sheet holds just these two (replacing what its sales left).
    _put(pos_port, f"/_sim/stores/{AUDITED_STORE}/inventory", {"items": items, "replace": True})

    async def audit() -> InventoryAuditResult:
        return await client.execute_workflow(
            InventoryAudit.run,
            InventoryAuditInput(
                store_id=AUDITED_STORE, audit_id="demo", trust=trust_from(settings)
            ),
            id=inventory_audit_id(AUDITED_STORE, "demo"),
            task_queue=settings.task_queue,
            static_summary=f"demo inventory audit of {AUDITED_STORE}",
        )

    result = await audit()
    print(f"  $ retailflow inventory audit --store {AUDITED_STORE} --audit-id demo")
    print(f"  {result.status.value}: adjusted {', '.join(result.adjusted) or 'nothing'}")
    for d in result.drifts:
        print(f"    {d.verdict.value:<15} {d.reason}")
    (after,) = odoo.execute_kw(
        "product.product",
        "search_read",
        [[("default_code", "=", PLANTED_DRIFT[0][0])]],
        {"fields": ["qty_available"], "context": {"location": 8}},
    )
    print(
        f"  Odoo's {PLANTED_DRIFT[0][0]} is now {after['qty_available']:g}, as counted; the "
        f"{PLANTED_DRIFT[1][0]} difference waits for ops (RetailStatus NeedsAttention)"
    )
    return (
        result.status is AuditStatus.NEEDS_ATTENTION
        and result.adjusted == [PLANTED_DRIFT[0][0]]
        and Decimal(str(after["qty_available"])) == Decimal(items[0]["qty"])
    )
