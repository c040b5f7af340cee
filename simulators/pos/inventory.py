"""Each store's stock as the store sees it: its counts, and the availability Odoo publishes.

Counts (``GET /v1/stores/{store}/inventory?after_sku=&limit=``) are what the store last counted
per SKU, lowered by every sale it rings up afterwards and raised by its refunds (a count below
zero is kept: the store sold more than it had, typically offline). Tests set counts through
``PUT /_sim/stores/{store}/inventory``. Availability (``PUT /v1/stores/{store}/availability``)
is Odoo's on-hand that the integration publishes; a command id is applied once, the same id
again answers what it answered the first time. Kept in memory: a restart forgets both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .errors import InvalidField
from .journal import Transaction

if TYPE_CHECKING:
    from .platform import PosPlatform

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ITEMS = 5000


@dataclass
class Count:
    sku: str
    product_id: int | None
    qty: Decimal
    counted_at: str

    def view(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "product_id": self.product_id,
            "qty": str(self.qty),
            "counted_at": self.counted_at,
        }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _qty(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise InvalidField(where, "qty must be a number")
    try:
        qty = Decimal(str(value))
    except InvalidOperation:
        raise InvalidField(where, "qty must be a number") from None
    if not qty.is_finite():
        raise InvalidField(where, "qty must be a finite number")
    return qty


def _sku(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise InvalidField(where, "sku must be a non-empty string of at most 64 characters")
    return value


def _product_id(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidField(where, "product_id must be a positive integer or null")
    return value


def _items(body: object) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidField("items", "the body must be a JSON object with a list of items")
    items: list[dict[str, Any]] = body["items"]
    if len(items) > MAX_ITEMS:
        raise InvalidField("items", f"at most {MAX_ITEMS} items per request")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidField(f"items[{i}]", "each item must be a JSON object")
    return items


class StoreInventory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, Count]] = {}
        self._availability: dict[str, dict[str, dict[str, Any]]] = {}
        self._commands: dict[str, dict[str, dict[str, Any]]] = {}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._availability.clear()
            self._commands.clear()

    def counts(self, store_id: str, after_sku: str | None, limit: int | None) -> dict[str, Any]:
        size = DEFAULT_LIMIT if limit is None else limit
        if size < 1 or size > MAX_LIMIT:
            raise InvalidField("limit", f"limit must be between 1 and {MAX_LIMIT}")
        with self._lock:
            skus = sorted(self._counts.get(store_id, {}))
            if after_sku:
                skus = [s for s in skus if s > after_sku]
            page = [self._counts[store_id][s].view() for s in skus[:size]]
        return {"store_id": store_id, "items": page, "has_more": len(skus) > size}

    def set_counts(self, store_id: str, body: object) -> dict[str, Any]:
        """Tests: set counts (``{"items": [{sku, qty, product_id?, counted_at?}], "replace"?}``)."""
        items = _items(body)
        parsed = [
            Count(
                sku=_sku(item.get("sku"), f"items[{i}].sku"),
                product_id=_product_id(item.get("product_id"), f"items[{i}].product_id"),
                qty=_qty(item.get("qty"), f"items[{i}].qty"),
                counted_at=str(item.get("counted_at") or _now_iso()),
            )
            for i, item in enumerate(items)
        ]
        replace = isinstance(body, dict) and body.get("replace") is True
        with self._lock:
            counts = self._counts.setdefault(store_id, {})
            if replace:
                counts.clear()
            for count in parsed:
                counts[count.sku] = count
            return {"store_id": store_id, "counted": len(counts)}

    def rung_up(self, txns: list[Transaction]) -> None:
        """A store's new sales lower its counts, its refunds raise them (voids move nothing)."""
        with self._lock:
            for txn in txns:
                sign = {"sale": -1, "refund": 1}.get(txn.kind)
                counts = self._counts.get(txn.store_id)
                if sign is None or not counts:
                    continue
                for line in txn.body.get("lines") or []:
                    if not isinstance(line, dict):
                        continue
                    count = counts.get(str(line.get("sku")))
                    try:
                        qty = Decimal(str(line.get("qty")))
                    except InvalidOperation:
                        continue
                    if count is not None and qty.is_finite():
                        count.qty += sign * qty

    def put_availability(self, store_id: str, body: object) -> tuple[bool, dict[str, Any]]:
        """Odoo's on-hand for some SKUs; once per ``command_id``."""
        if not isinstance(body, dict):
            raise InvalidField(None, "the body must be a JSON object")
        command_id = body.get("command_id")
        if not isinstance(command_id, str) or not command_id.strip() or len(command_id) > 200:
            raise InvalidField("command_id", "command_id must be a non-empty string")
        items = _items(body)
        parsed = {
            _sku(item.get("sku"), f"items[{i}].sku"): {
                "qty": str(_qty(item.get("qty"), f"items[{i}].qty")),
                "product_id": _product_id(item.get("product_id"), f"items[{i}].product_id"),
            }
            for i, item in enumerate(items)
        }
        with self._lock:
            seen = self._commands.setdefault(store_id, {})
            if command_id in seen:
                return False, seen[command_id]
            current = self._availability.setdefault(store_id, {})
            current.update(parsed)
            view = {"store_id": store_id, "command_id": command_id, "applied": len(parsed)}
            seen[command_id] = view
            return True, view

    def availability(self, store_id: str) -> dict[str, Any]:
        with self._lock:
            current = self._availability.get(store_id, {})
            return {
                "store_id": store_id,
                "items": [{"sku": s, **v} for s, v in sorted(current.items())],
                "commands": len(self._commands.get(store_id, {})),
            }


def inventory_route(
    platform: PosPlatform,
    method: str,
    sim: bool,
    resource: str,
    store_id: str,
    query: dict[str, list[str]],
    body: Callable[[], Any],
) -> tuple[int, Any]:
    """The inventory routes: counts (read; set under ``/_sim``) and availability."""
    inventory = platform.inventory
    if sim:
        platform.is_online(store_id)  # UnknownStore: 404
        if method == "PUT":
            return 200, inventory.set_counts(store_id, body())
        if method == "GET":
            return 200, inventory.counts(store_id, None, MAX_LIMIT)
        return 405, {"error": f"{method} is not allowed on /_sim/stores/{store_id}/inventory"}
    if resource == "inventory" and method == "GET":
        platform.reachable(store_id)
        limit = query.get("limit", [None])[-1]
        if limit is not None and not limit.isdigit():
            raise InvalidField("limit", "limit must be a positive integer")
        after = query.get("after_sku", [None])[-1] or None
        return 200, inventory.counts(store_id, after, int(limit) if limit else None)
    if resource == "availability" and method == "PUT":
        platform.reachable(store_id)
        created, view = inventory.put_availability(store_id, body())
        return (201 if created else 200), view
    if resource == "availability" and method == "GET":
        platform.is_online(store_id)
        return 200, inventory.availability(store_id)
    return 405, {"error": f"{method} is not allowed on /v1/stores/{store_id}/{resource}"}
