"""Realistic POS traffic for the demo, tests and benchmarks: a catalogue, a day of sales per
store, cashier retries (the same sale sent again) and a few invalid sales of every kind."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")

# (sku, name, unit price tax excluded, tax rate)
CATALOGUE: list[tuple[str, str, str, str]] = [
    ("MILK-1L", "Whole milk 1 L", "1.29", "0.15"),
    ("BREAD-WHT", "White bread loaf", "2.49", "0.15"),
    ("EGGS-12", "Free-range eggs x12", "3.99", "0.15"),
    ("COFFEE-250", "Ground coffee 250 g", "6.75", "0.15"),
    ("APPLE-KG", "Apples per kg", "2.20", "0.15"),
    ("SOAP-BAR", "Olive soap bar", "1.85", "0.15"),
    ("TEE-BLK-M", "T-shirt black M", "12.50", "0.15"),
    ("MUG-WHITE", "White mug", "4.40", "0.15"),
    ("BATT-AA4", "AA batteries x4", "5.99", "0.15"),
    ("CHOC-DARK", "Dark chocolate 100 g", "2.10", "0.15"),
    ("RICE-1KG", "Basmati rice 1 kg", "3.20", "0.15"),
    ("PASTA-500", "Spaghetti 500 g", "1.45", "0.15"),
    ("OLIVE-OIL", "Olive oil 500 ml", "7.90", "0.15"),
    ("TEA-GREEN", "Green tea x20", "3.35", "0.15"),
    ("JUICE-OJ", "Orange juice 1 L", "2.95", "0.15"),
    ("TOWEL-BTH", "Bath towel", "14.00", "0.15"),
    ("SOCKS-3PK", "Socks x3", "8.50", "0.15"),
    ("PEN-BLUE", "Blue pens x10", "3.10", "0.15"),
    ("NOTE-A5", "A5 notebook", "2.75", "0.15"),
    ("CANDLE-VN", "Vanilla candle", "6.20", "0.15"),
]
STORES = ("S001", "S002", "S003")


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def sale_totals(lines: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    net = tax = Decimal(0)
    for ln in lines:
        d = Decimal(ln.get("discount_pct", "0"))
        n = _cents(Decimal(ln["qty"]) * Decimal(ln["unit_price"]) * (1 - d / 100))
        net += n
        tax += _cents(n * Decimal(ln["tax_rate"]))
    return net, tax


def make_sale(rng: random.Random, store: str, txn: str, at: datetime) -> dict[str, Any]:
    lines = []
    for sku, _, price, rate in rng.sample(CATALOGUE, rng.randint(1, 4)):
        line: dict[str, Any] = {
            "sku": sku,
            "qty": str(rng.randint(1, 3)),
            "unit_price": price,
            "tax_rate": rate,
        }
        if rng.random() < 0.15:
            line["discount_pct"] = rng.choice(["5", "10", "12.5", "20"])
        lines.append(line)
    net, tax = sale_totals(lines)
    total = net + tax
    method = rng.choices(["card", "cash", "gift_card", "split"], [55, 30, 5, 10])[0]
    if method == "split" and total > 1:
        cash = _cents(total * Decimal(rng.choice(["0.3", "0.5"])))
        payments = [
            {"method": "cash", "amount": str(cash)},
            {"method": "card", "amount": str(total - cash), "reference": f"pi_{store}_{txn}"},
        ]
    else:
        m = "card" if method == "split" else method
        p: dict[str, Any] = {"method": m, "amount": str(total)}
        if m == "card":
            p["reference"] = f"pi_{store}_{txn}"
        payments = [p]
    return {
        "store_id": store,
        "txn_id": txn,
        "occurred_at": at.isoformat(),
        "currency": "USD",
        "lines": lines,
        "payments": payments,
    }


INVALID_KINDS = (
    "mismatched_totals",
    "no_lines",
    "zero_qty",
    "unknown_currency",
    "negative_price",
    "malformed_json",
    "unknown_sku",
)


def make_invalid(rng: random.Random, kind: str, store: str, txn: str, at: datetime) -> Any:
    """An invalid sale of the given kind (a dict, or for malformed JSON the broken text)."""
    sale = make_sale(rng, store, txn, at)
    if kind == "mismatched_totals":
        sale["payments"][0]["amount"] = str(
            Decimal(sale["payments"][0]["amount"]) + Decimal("1.00")
        )
    elif kind == "no_lines":
        sale["lines"] = []
    elif kind == "zero_qty":
        sale["lines"][0]["qty"] = "0"
    elif kind == "unknown_currency":
        sale["currency"] = "XYZ"
    elif kind == "negative_price":
        sale["lines"][0]["unit_price"] = "-1.00"
    elif kind == "malformed_json":
        return '{"store_id": "' + store + '", "txn_id": "' + txn + '", "lines": [ {"sku": '
    elif kind == "unknown_sku":
        # Valid as a sale; Odoo has no such product, so it needs ops.
        sale["lines"][0]["sku"] = "NOPE-404"
    return sale


def day_of_sales(
    day: date,
    stores: tuple[str, ...] = STORES,
    per_store: int = 100,
    resubmit_ratio: float = 0.2,
    invalid_per_store: int = 2,
    seed: int = 7,
    tz: timezone = timezone(timedelta(hours=-5)),
) -> tuple[list[Any], dict[str, Any]]:
    """(stream, facts): the stream in arrival order, with resubmissions; facts say what is in it:
    `valid` (dict key -> sale), `invalid` (list of (store, txn, kind)), `resubmitted` count."""
    rng = random.Random(seed)
    stream: list[Any] = []
    valid: dict[str, dict[str, Any]] = {}
    invalid: list[tuple[str, str, str]] = []
    opening = datetime(day.year, day.month, day.day, 9, 0, tzinfo=tz)
    for store in stores:
        bad_slots = set(rng.sample(range(per_store), invalid_per_store))
        for i in range(per_store):
            txn = f"T{i + 1:05d}"
            at = opening + timedelta(seconds=int(i * 36000 / per_store))
            if i in bad_slots:
                kind = INVALID_KINDS[(len(invalid)) % len(INVALID_KINDS)]
                invalid.append((store, txn, kind))
                stream.append(make_invalid(rng, kind, store, txn, at))
            else:
                sale = make_sale(rng, store, txn, at)
                valid[f"POS:{store}:{txn}"] = sale
                stream.append(sale)
    resubmits = [s for s in stream if isinstance(s, dict)]
    resubmits = rng.sample(resubmits, int(len(stream) * resubmit_ratio))
    for s in resubmits:
        stream.insert(rng.randint(stream.index(s) + 1, len(stream)), s)
    return stream, {"valid": valid, "invalid": invalid, "resubmitted": len(resubmits)}


def seed_catalogue(odoo: Any, on_hand: int = 1000) -> dict[str, int]:
    """Create the catalogue's products in Odoo (15% sale tax, storable) with stock on hand,
    through the public API any Odoo 17 accepts. Idempotent by SKU. Returns SKU -> product id."""
    ids: dict[str, int] = {}
    for sku, name, price, _ in CATALOGUE:
        found = odoo.execute_kw("product.product", "search", [[("default_code", "=", sku)]])
        if found:
            ids[sku] = found[0]
            continue
        pid = odoo.execute_kw(
            "product.product",
            "create",
            [
                {
                    "name": name,
                    "default_code": sku,
                    "list_price": float(price),
                    "type": "product",
                    "taxes_id": [(6, 0, [1])],
                }
            ],
        )
        odoo.execute_kw(
            "stock.quant",
            "create",
            [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": on_hand}],
            {"context": {"inventory_mode": True}},
        )
        ids[sku] = pid
    return ids
