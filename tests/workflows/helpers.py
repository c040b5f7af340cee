"""Helpers for workflow tests: sales of a test's own store, and Odoo lookups."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import odoorpc

from simulators.sales import make_sale

T = TypeVar("T")
DAY = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def sales_for(store: str, n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_sale(rng, store, f"X{i:04d}", DAY) for i in range(n)]


def a_day_with_problems(store: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """25 sales of the store (X0000-X0024), X0003 valid but of a SKU Odoo does not know; and
    the stream a ledger gets: them, an invalid sale (X0025, totals that do not match) and two
    cashier retries (X0000, X0007)."""
    sales = sales_for(store, 25)
    sales[3]["lines"][0]["sku"] = "NOPE-404"
    invalid = sales_for(store, 26)[25]
    invalid["payments"][0]["amount"] = "0.01"
    return sales, [*sales, invalid, sales[0], sales[7]]


def moves_for(odoo: odoorpc.ODOO, ref: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=", ref)]],
        {"fields": ["state", "name", "line_ids"]},
    )
    return rows


def lines_of(odoo: odoorpc.ODOO, move_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "account.move.line",
        "search_read",
        [[("move_id", "=", move_id)]],
        {"fields": ["name", "debit", "credit", "account_id"]},
    )
    return rows


def pickings_for(odoo: odoorpc.ODOO, origin_prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "stock.picking",
        "search_read",
        [[("origin", "=like", f"{origin_prefix}%")]],
        {"fields": ["state", "name", "origin"]},
    )
    return rows


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Poll `probe` until `ok` holds on its value; fail the test if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not there after {timeout} s: {value!r}")
        await asyncio.sleep(0.1)
