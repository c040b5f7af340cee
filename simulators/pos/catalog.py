"""A store's product catalog as the POS platform keeps it: catalog commands (versioned upserts
and withdrawals, idempotent by command id), their validation, and how a store applies one.

A command body is checked whole when it arrives (a malformed one is refused with the field
that is wrong); the items of a well-formed command are then judged one by one when the store
applies it: an item with a barcode that is not a valid EAN-13, UPC-A or EAN-8, or with an SKU
another product already holds in that store, is refused with its reason and the rest apply.
A command older than the store's catalog version is acknowledged and ignored (``stale``), so a
late retry never puts back what a newer command changed. Versions are opaque strings compared
as strings.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InvalidField

CURRENCY = "USD"
MAX_ID_LENGTH = 200
MAX_SKU_LENGTH = 64
MAX_VERSION_LENGTH = 200
MAX_PAGE = 1000
DEFAULT_PAGE = 500
RECEIVED, APPLIED, STALE = "received", "applied", "stale"


class CatalogCommandConflict(Exception):
    """Another body under a command id the store already has: HTTP 409."""

    def __init__(self, store_id: str, command_id: str) -> None:
        super().__init__(
            f"store {store_id} already has catalog command {command_id} with another body"
        )


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest_of(value: Any) -> str:
    return hashlib.blake2b(canonical(value).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True, weakref_slot=True)
class CatalogItem:
    """One product as a store sells it. Shared between stores holding the same body."""

    sku: str
    odoo_id: int
    barcode: str | None
    body: str  # the item's canonical JSON
    digest: str

    def to_dict(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


# Thousands of stores get the same items: one object per distinct body while any store holds it.
_ITEMS: weakref.WeakValueDictionary[str, CatalogItem] = weakref.WeakValueDictionary()


def interned(body: str) -> CatalogItem:
    digest = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
    item = _ITEMS.get(digest)
    if item is None:
        data = json.loads(body)
        item = CatalogItem(
            sku=data["sku"],
            odoo_id=data["odoo_id"],
            barcode=data["barcode"],
            body=body,
            digest=digest,
        )
        _ITEMS[digest] = item
    return item


@dataclass(frozen=True)
class Withdrawal:
    sku: str
    odoo_id: int


@dataclass(frozen=True)
class CatalogCommand:
    command_id: str
    version: str
    upserts: tuple[CatalogItem, ...]
    withdrawals: tuple[Withdrawal, ...]
    digest: str  # of the whole body: a repeat must carry the same one

    def payload_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "upserts": [json.loads(i.body) for i in self.upserts],
                "withdrawals": [{"sku": w.sku, "odoo_id": w.odoo_id} for w in self.withdrawals],
            }
        )

    @classmethod
    def from_stored(cls, command_id: str, payload: str, digest: str) -> CatalogCommand:
        parsed = parse_catalog_command({"command_id": command_id, **json.loads(payload)})
        return cls(parsed.command_id, parsed.version, parsed.upserts, parsed.withdrawals, digest)


# -- validation of a body -------------------------------------------------------------------


def _bad(where: str, why: str) -> InvalidField:
    return InvalidField(where, f"{where}: {why}")


def _text(value: object, where: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise _bad(where, "must be a string")
    if not low <= len(value) <= high or (low and not value.strip()):
        raise _bad(where, f"must be {low}..{high} characters")
    return value


def _odoo_id(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(where, "must be a positive integer")
    return value


def _price(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, 'must be a decimal string such as "12.50"')
    try:
        price = Decimal(value.strip())
    except InvalidOperation:
        raise _bad(where, f"is not a decimal: {value!r}") from None
    if not price.is_finite() or price < 0:
        raise _bad(where, "must be a non-negative amount")
    return str(price)


def _rate(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, 'must be a percent string such as "15"')
    try:
        rate = Decimal(value.strip())
    except InvalidOperation:
        raise _bad(where, f"is not a decimal: {value!r}") from None
    if not rate.is_finite():
        raise _bad(where, "must be a finite percent")
    return value.strip()


def _item(value: object, where: str) -> CatalogItem:
    if not isinstance(value, dict):
        raise _bad(where, "must be an object")
    sku = _text(value.get("sku"), f"{where}.sku", 1, MAX_SKU_LENGTH)
    barcode = value.get("barcode")
    if barcode is not None and not isinstance(barcode, str):
        raise _bad(f"{where}.barcode", "must be a string or null")
    name = _text(value.get("name"), f"{where}.name", 1, 1000)
    category = _text(value.get("category", ""), f"{where}.category", 0, 1000)
    attributes = value.get("attributes", {})
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise _bad(f"{where}.attributes", "must be an object of strings")
    price = _price(value.get("price"), f"{where}.price")
    currency = value.get("currency", CURRENCY)
    if currency != CURRENCY:
        raise _bad(f"{where}.currency", f"must be {CURRENCY}")
    rates = value.get("tax_rates", [])
    if not isinstance(rates, list):
        raise _bad(f"{where}.tax_rates", "must be a list of percent strings")
    tax_rates = [_rate(r, f"{where}.tax_rates[{i}]") for i, r in enumerate(rates)]
    odoo_id = _odoo_id(value.get("odoo_id"), f"{where}.odoo_id")
    body = canonical(
        {
            "sku": sku,
            "barcode": barcode,
            "name": name,
            "category": category,
            "attributes": attributes,
            "price": price,
            "currency": CURRENCY,
            "tax_rates": tax_rates,
            "odoo_id": odoo_id,
        }
    )
    return interned(body)


def _withdrawal(value: object, where: str) -> Withdrawal:
    if not isinstance(value, dict):
        raise _bad(where, "must be an object")
    sku = _text(value.get("sku"), f"{where}.sku", 1, MAX_SKU_LENGTH)
    return Withdrawal(sku=sku, odoo_id=_odoo_id(value.get("odoo_id"), f"{where}.odoo_id"))


def parse_catalog_command(body: object) -> CatalogCommand:
    """The command in ``body`` (decoded JSON), or ``InvalidField`` ("<field>: <why>")."""
    if not isinstance(body, dict):
        raise InvalidField(None, "body: must be a JSON object")
    command_id = _text(body.get("command_id"), "command_id", 1, MAX_ID_LENGTH)
    version = _text(body.get("version"), "version", 1, MAX_VERSION_LENGTH)
    upserts = body.get("upserts", [])
    if not isinstance(upserts, list):
        raise _bad("upserts", "must be a list")
    withdrawals = body.get("withdrawals", [])
    if not isinstance(withdrawals, list):
        raise _bad("withdrawals", "must be a list")
    return CatalogCommand(
        command_id=command_id,
        version=version,
        upserts=tuple(_item(v, f"upserts[{i}]") for i, v in enumerate(upserts)),
        withdrawals=tuple(_withdrawal(v, f"withdrawals[{i}]") for i, v in enumerate(withdrawals)),
        digest=digest_of(
            {
                "command_id": command_id,
                "version": version,
                "upserts": upserts,
                "withdrawals": withdrawals,
            }
        ),
    )


def barcode_problem(barcode: str) -> str | None:
    """Why ``barcode`` is not a valid EAN-13, UPC-A or EAN-8; None when it is."""
    if len(barcode) not in (8, 12, 13) or not (barcode.isascii() and barcode.isdigit()):
        return f"bad barcode: {barcode!r} is not 8, 12 or 13 digits"
    digits = [int(c) for c in barcode]
    # GS1 check digit: weights 3,1,3,... from the right, excluding the check digit.
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    if (10 - total % 10) % 10 != digits[-1]:
        return f"bad barcode: {barcode!r} fails its check digit"
    return None


# -- a store's catalog ----------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class StoreCatalogCommand:
    """A catalog command as one store holds it."""

    command: CatalogCommand
    received_at: str
    state: str = RECEIVED
    applied: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    applied_at: str | None = None

    @property
    def command_id(self) -> str:
        return self.command.command_id

    def answer(self) -> dict[str, Any]:
        return {"command_id": self.command_id, "state": self.state, "version": self.command.version}

    def status_view(self) -> dict[str, Any]:
        return {**self.answer(), "applied": self.applied, "refused": list(self.refused)}


@dataclass(slots=True, eq=False)
class StoreCatalog:
    """What one store sells (by SKU), the catalog version it is at and its catalog commands."""

    items: dict[str, CatalogItem] = field(default_factory=dict)
    sku_of: dict[int, str] = field(default_factory=dict)  # odoo_id -> sku
    version: str | None = None
    commands: dict[str, StoreCatalogCommand] = field(default_factory=dict)

    def put(self, item: CatalogItem) -> None:
        self.items[item.sku] = item
        self.sku_of[item.odoo_id] = item.sku

    def apply(
        self, received: StoreCatalogCommand, stamp: str
    ) -> tuple[list[CatalogItem], list[str]]:
        """Apply the command: ``(items written, SKUs removed)``; its state, counts and
        refusals are set on ``received``."""
        command = received.command
        received.applied_at = stamp
        if self.version is not None and command.version < self.version:
            received.state = STALE
            return [], []
        written: list[CatalogItem] = []
        removed: list[str] = []
        refused: list[dict[str, Any]] = []
        # Withdrawals first: a product archived and another given its SKU in the same batch.
        withdrawn = 0
        for withdrawal in command.withdrawals:
            sku = self.sku_of.pop(withdrawal.odoo_id, None)
            if sku is not None:
                del self.items[sku]
                removed.append(sku)
                withdrawn += 1
        for item in command.upserts:
            reason = None if item.barcode is None else barcode_problem(item.barcode)
            holder = self.items.get(item.sku)
            if reason is None and holder is not None and holder.odoo_id != item.odoo_id:
                reason = f"duplicate SKU: {item.sku} is held by product {holder.odoo_id}"
            if reason is not None:
                refused.append({"sku": item.sku, "odoo_id": item.odoo_id, "reason": reason})
                continue
            old_sku = self.sku_of.get(item.odoo_id)
            if old_sku is not None and old_sku != item.sku:
                del self.items[old_sku]  # the product's SKU changed in Odoo
                removed.append(old_sku)
            self.put(item)
            written.append(item)
        received.state = APPLIED
        received.applied = len(written) + withdrawn
        received.refused = refused
        if self.version is None or command.version > self.version:
            self.version = command.version
        return written, removed

    def page(self, after_sku: str | None, limit: int) -> tuple[list[CatalogItem], str | None]:
        skus = sorted(s for s in self.items if after_sku is None or s > after_sku)
        chosen = skus[:limit]
        more = len(skus) > limit
        return [self.items[s] for s in chosen], (chosen[-1] if more and chosen else None)


def parse_page_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidField("limit", f"limit: must be a whole number from 1 to {MAX_PAGE}")
    return int(value)
