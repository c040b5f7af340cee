"""What Odoo holds for the sales retailflow posted: the auditor's view, by store.

It reads only what any auditor could read over Odoo's API: posted moves whose `ref` is a sale
key, summary entries (`SUM:{store}:{day}:{batch}`) with the sale keys their narration lists, and
their items, by account code. The demo, the tests and the benchmarks check against it.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from pydantic import BaseModel

from activities.odoo.base import record_from_narration
from activities.odoo.client import OdooClient
from activities.odoo.summary import sales_of_record
from domain.money import ZERO
from domain.posting import PostingProfile


class StoreBooks(BaseModel):
    store_id: str
    # Sales booked: each in its own entry, or listed by a summary entry.
    entries: int = 0
    summaries: int = 0
    revenue: Decimal = ZERO
    tax: Decimal = ZERO
    debit: Decimal = ZERO
    credit: Decimal = ZERO


class OdooBooks(BaseModel):
    stores: dict[str, StoreBooks]
    # sale key -> number of posted moves that book it, its own or a summary (must be 1 each)
    posted_per_key: dict[str, int]
    draft_moves: int

    @property
    def duplicated_keys(self) -> list[str]:
        return sorted(k for k, n in self.posted_per_key.items() if n > 1)


def _d(x: float) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def read_books(odoo: OdooClient, profile: PostingProfile, prefix: str = "POS:") -> OdooBooks:
    summaries = "SUM:" + prefix.removeprefix("POS:")
    moves = odoo.call(
        "account.move",
        "search_read",
        ["|", ("ref", "=like", f"{prefix}%"), ("ref", "=like", f"{summaries}%")],
        fields=["ref", "state"],
    )
    posted_per_key: dict[str, int] = defaultdict(int)
    drafts = 0
    posted_summaries = []
    for m in moves:
        if m["state"] == "posted":
            if m["ref"].startswith("SUM:"):
                posted_summaries.append(m["id"])
            else:
                posted_per_key[m["ref"]] += 1
        elif m["state"] == "draft":
            drafts += 1
    summary_count: dict[str, int] = defaultdict(int)
    if posted_summaries:
        for row in odoo.call("account.move", "read", posted_summaries, ["ref", "narration"]):
            summary_count[row["ref"].split(":")[1]] += 1
            for sale in sales_of_record(record_from_narration(row["narration"])):
                posted_per_key[sale.key] += 1
    codes = odoo.account_ids([profile.revenue_account, profile.tax_account])
    revenue_id, tax_id = codes[profile.revenue_account], codes[profile.tax_account]
    lines = odoo.call(
        "account.move.line",
        "search_read",
        [
            ("parent_state", "=", "posted"),
            "|",
            ("move_id.ref", "=like", f"{prefix}%"),
            ("move_id.ref", "=like", f"{summaries}%"),
        ],
        fields=["name", "debit", "credit", "account_id", "move_id"],
    )
    stores: dict[str, StoreBooks] = {}
    for line in lines:
        store = line["name"].split(":")[1]
        books = stores.setdefault(store, StoreBooks(store_id=store))
        debit, credit = _d(line["debit"]), _d(line["credit"])
        books.debit += debit
        books.credit += credit
        account = line["account_id"][0]
        if account == revenue_id:
            books.revenue += credit - debit
        elif account == tax_id:
            books.tax += credit - debit
    for key, n in posted_per_key.items():
        store = key.split(":")[1]
        stores.setdefault(store, StoreBooks(store_id=store)).entries += n
    for store, n in summary_count.items():
        stores.setdefault(store, StoreBooks(store_id=store)).summaries += n
    return OdooBooks(stores=stores, posted_per_key=dict(posted_per_key), draft_moves=drafts)
