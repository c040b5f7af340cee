"""Real adapter clients against the Odoo emulator, with a wrapper that lets a test script Odoo's
answers or slip another attempt's step into the middle of a call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import odoorpc
from odoorpc.error import RPCError
from temporalio.client import Client

from activities.odoo.client import OdooClient, OdooSettings
from activities.pos_client import PosClient
from domain.posting import PostingProfile
from simulators.odoo import OdooEmulator
from workers.settings import Settings
from workers.worker import build_worker

# (model, method, args) -> None to let the call through, or a value/exception to answer with.
Hook = Callable[[str, str, tuple[Any, ...]], Any]
PASS = object()


class ScriptedClient(OdooClient):
    """An OdooClient whose calls pass through `hooks` first: a hook may answer instead of Odoo
    (a scripted reply or raised error), or run something (another attempt's step) before the
    real call goes out. Each hook runs once unless it says otherwise."""

    def __init__(self, emu: OdooEmulator) -> None:
        super().__init__(OdooSettings(url=f"http://127.0.0.1:{emu.port}", timeout_s=10))
        self.hooks: list[tuple[str, str, Hook, bool]] = []
        self.calls: list[tuple[str, str]] = []

    def on(self, model: str, method: str, hook: Hook, keep: bool = False) -> None:
        """Run `hook` on the next such call (on every one with `keep`, until `clear`)."""
        self.hooks.append((model, method, hook, keep))

    def clear(self) -> None:
        self.hooks.clear()

    def _hooked(self, model: str, method: str, args: tuple[Any, ...]) -> Any:
        self.calls.append((model, method))
        for i, (m, meth, hook, keep) in enumerate(self.hooks):
            if (m, meth) == (model, method):
                if not keep:
                    del self.hooks[i]
                return hook(model, method, args)
        return PASS

    def call(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        answer = self._hooked(model, method, args)
        return super().call(model, method, *args, **kwargs) if answer is PASS else answer

    def call_raw(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        answer = self._hooked(model, method, args)
        return super().call_raw(model, method, *args, **kwargs) if answer is PASS else answer


def odoo_error(name: str, message: str) -> RPCError:
    """An RPCError shaped like the one odoorpc raises for a real Odoo exception."""
    return RPCError(
        message,
        {"code": 200, "message": "Odoo Server Error", "data": {"name": name, "message": message}},
    )


def raising(exc: BaseException) -> Hook:
    def hook(model: str, method: str, args: tuple[Any, ...]) -> Any:
        raise exc

    return hook


def answering(value: Any) -> Hook:
    return lambda model, method, args: value


def before(step: Callable[[], object]) -> Hook:
    """Run `step` (another attempt's work), then let the call through."""

    def hook(model: str, method: str, args: tuple[Any, ...]) -> Any:
        step()
        return PASS

    return hook


def new_product(odoo: odoorpc.ODOO, sku: str) -> int:
    """A storable product of its own, so a test can count exactly the goods it moved."""
    return int(
        odoo.execute_kw(
            "product.product", "create", [{"name": sku, "default_code": sku, "type": "product"}]
        )
    )


def moved(odoo: odoorpc.ODOO, sku: str) -> float:
    """Quantity of `sku` that left the warehouse in done moves (returns subtract)."""
    rows = odoo.execute_kw(
        "stock.move",
        "search_read",
        [[("product_id.default_code", "=", sku), ("state", "=", "done")]],
        {"fields": ["quantity", "location_dest_id", "location_id"]},
    )
    customers = odoo.execute_kw("stock.location", "search", [[("usage", "=", "customer")]])
    out = sum(r["quantity"] for r in rows if r["location_dest_id"][0] in customers)
    back = sum(r["quantity"] for r in rows if r["location_id"][0] in customers)
    return float(out - back)


def sale_of(store: str, txn: str, sku: str, qty: str = "2") -> dict[str, Any]:
    return {
        "store_id": store,
        "txn_id": txn,
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "currency": "USD",
        "lines": [{"sku": sku, "qty": qty, "unit_price": "10.00", "tax_rate": "0.15"}],
        "payments": [{"method": "cash", "amount": f"{int(qty) * 11.5:.2f}"}],
    }


@asynccontextmanager
async def worker_with(client: Client, settings: Settings, odoo: OdooClient) -> AsyncIterator[None]:
    """A worker whose Odoo activities use `odoo` (e.g. a ScriptedClient)."""
    pos = PosClient(settings.pos())
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        try:
            async with build_worker(client, settings, odoo, PostingProfile(), executor, pos):
                yield
        finally:
            await pos.aclose()
