"""Summary posting: many sales of one store and day in one balanced entry, exactly once.

What Odoo's own POS does at session close, and the only way past Odoo's cost per record on a
small machine (docs/odoo17-behaviour.md §h2: cost grows with records and lines, not calls).
The ledger (workflows/store_ledger.py) forms a batch and names it once, `SUM:{store}:{day}:{batch}`;
this activity books it:

1. sales Odoo cannot book (unknown SKU, foreign currency...) are refused one by one, and sales
   that already have their own posted entry (`ref` = the sale key, from the per-sale or batched
   path) are reported as booked there: neither is summarised;
2. the summary entry is claimed by draft under its ref (activities/odoo/claim.py), so a retry,
   a lost response or a racing attempt converges on one posted entry;
3. its narration lists every sale it holds (key, total and the whole sale, so a refund can be
   answered from Odoo alone); what the *posted* entry lists is the truth, read back, whichever
   attempt's draft was posted.

`summarised_sales` reads the day's posted summaries back: a ledger run that starts after an
earlier run of the same store-day closed learns from it which sales are already booked
(docs/architecture.md, "Summary posting").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel
from temporalio import activity

from activities.odoo.base import first_attempt, narration, record_from_narration, refusal_of
from activities.odoo.claim import MOVE, Claimed, Refusal, claim
from activities.odoo.sales import OdooSalesActivities, SaleOutcome
from domain.posting import summary_entry_for, summary_ref
from domain.sale import Sale
from workers.metrics import record_sale_outcomes


class PostSummaryInput(BaseModel):
    store_id: str
    business_day: date
    # The summary's ref (`SUM:{store}:{day}:{batch}`), made once by the ledger: also the
    # origin of the picking that moves the summarised sales' goods.
    ref: str
    sales: list[Sale]


class PostSummaryResult(BaseModel):
    ref: str
    move_id: int | None = None
    move_name: str | None = None
    # True when the summary was already posted before this activity ran (a retry).
    already_posted: bool = False
    # One per sale of the input: summarised (posted, stock_origin = ref), booked on its own
    # before (posted, already_posted, owns_stock False), or refused (with why).
    outcomes: list[SaleOutcome]
    # The sales the posted summary holds (its narration), which the picking must move.
    included: list[Sale] = []


class SummaryIndexInput(BaseModel):
    store_id: str
    business_day: date


class SummaryTrace(BaseModel):
    """Where a summary's sales are booked: its entry, and (once moved) its picking."""

    ref: str
    move_id: int | None = None
    move_name: str | None = None
    picking_name: str | None = None
    txn_ids: list[str] = []


class SummaryIndex(BaseModel):
    summaries: list[SummaryTrace]


def not_booked(sale: Sale, error_type: str, reason: str) -> SaleOutcome:
    """A sale the summary does not hold: it goes on alone, with why."""
    return SaleOutcome(
        key=sale.key, txn_id=sale.txn_id, posted=False, error_type=error_type, reason=reason
    )


def summary_record(store_id: str, business_day: date, sales: list[Sale]) -> dict[str, Any]:
    """The narration record of a summary: each sale's key and total, and the sale itself."""
    return {
        "store_id": store_id,
        "business_day": business_day.isoformat(),
        "count": len(sales),
        "sales": [{"key": s.key, "total": str(s.total), "sale": s.ledger_record()} for s in sales],
    }


def sales_of_record(record: dict[str, Any] | None) -> list[Sale]:
    """The sales a summary's narration record holds (nothing for another kind of record)."""
    if not record or not isinstance(record.get("sales"), list):
        return []
    return [Sale.model_validate(item["sale"]) for item in record["sales"]]


class OdooSummaryActivities(OdooSalesActivities):
    @activity.defn
    def post_summary(self, input: PostSummaryInput) -> PostSummaryResult:
        """Book a batch of one store's sales in one posted summary entry, exactly once."""
        refused = self._screen(input.sales)
        candidates = [s for s in input.sales if s.key not in refused]
        own = self._own_entries([s.key for s in candidates])
        outcomes: dict[str, SaleOutcome] = {}
        for sale in input.sales:
            if sale.key in refused:
                r = refused[sale.key]
                outcomes[sale.key] = not_booked(sale, r.error_type, r.reason)
            elif sale.key in own:
                move_id, move_name = own[sale.key]
                outcomes[sale.key] = SaleOutcome(
                    key=sale.key,
                    txn_id=sale.txn_id,
                    posted=True,
                    move_id=move_id,
                    move_name=move_name,
                    already_posted=True,
                    owns_stock=False,
                )
        to_book = [s for s in candidates if s.key not in own]
        result = PostSummaryResult(ref=input.ref, outcomes=[])
        if to_book:
            vals = self._move_vals(
                summary_entry_for(to_book, self.profile, input.ref, input.business_day)
            )
            vals["narration"] = narration(
                "summary",
                summary_record(input.store_id, input.business_day, to_book),
                stock_origin=input.ref,
            )
            claimed = claim(
                self.odoo,
                MOVE,
                [input.ref],
                create=lambda keys: self._create_summary(input.ref, vals),
                finish=self._post_entries,
                fresh=first_attempt(),
            )[input.ref]
            if isinstance(claimed, Refusal):
                # Nothing was booked: every sale goes on alone (its own workflow shows why).
                why = f"summary {input.ref}: {claimed.error_type}: {claimed.reason}"
                for sale in to_book:
                    outcomes[sale.key] = not_booked(sale, "SummaryRefused", why)
            else:
                self._summarised(claimed, input, result, outcomes)
        result.outcomes = [outcomes[s.key] for s in input.sales if s.key in outcomes]
        record_sale_outcomes("summary", result.outcomes)
        return result

    def _summarised(
        self,
        claimed: Claimed,
        input: PostSummaryInput,
        result: PostSummaryResult,
        outcomes: dict[str, SaleOutcome],
    ) -> None:
        """Record what the posted summary holds: its own narration is the truth."""
        rows = self.odoo.call("account.move", "read", [claimed.id], ["narration", "name"])
        included = sales_of_record(record_from_narration(rows[0]["narration"] if rows else None))
        # A draft is named `/` until it is posted: the posted name, read back.
        name = rows[0]["name"] if rows else claimed.name
        result.move_id, result.move_name = claimed.id, name
        result.already_posted = claimed.already
        result.included = included
        for sale in included:
            outcomes[sale.key] = SaleOutcome(
                key=sale.key,
                txn_id=sale.txn_id,
                posted=True,
                move_id=claimed.id,
                move_name=name,
                # Whether this attempt or an earlier one posted the summary, the sale is new.
                already_posted=False,
                stock_origin=input.ref,
            )
        held = {s.key for s in included}
        for sale in input.sales:
            if sale.key not in outcomes and sale.key not in held:
                # Not in the posted summary (an earlier attempt booked a different batch under
                # this ref, which the ledger never does): the sale goes on alone, not lost.
                outcomes[sale.key] = not_booked(
                    sale, "NotInSummary", f"summary {input.ref} was posted without this sale"
                )

    def _own_entries(self, keys: list[str]) -> dict[str, tuple[int, str]]:
        """Sales that already have their own posted entry (per-sale or batched path)."""
        if not keys:
            return {}
        rows = self.odoo.call(
            "account.move",
            "search_read",
            [("ref", "in", keys), ("state", "=", "posted")],
            fields=["ref", "name"],
            order="id asc",
        )
        own: dict[str, tuple[int, str]] = {}
        for row in rows:
            own.setdefault(row["ref"], (row["id"], row["name"]))
        return own

    def _create_summary(self, ref: str, vals: dict[str, Any]) -> dict[str, Refusal]:
        try:
            self.odoo.call_raw("account.move", "create", vals)
            return {}
        except RPCError as e:
            return {ref: refusal_of(e, f"account.move.create {ref}")}

    @activity.defn
    def summarised_sales(self, input: SummaryIndexInput) -> SummaryIndex:
        """The posted summaries of one store-day, and the sales each holds."""
        prefix = summary_ref(input.store_id, input.business_day, "")
        rows = self.odoo.call(
            "account.move",
            "search_read",
            [("ref", "=like", f"{prefix}%"), ("state", "=", "posted")],
            fields=["ref", "name", "narration"],
            order="id asc",
        )
        summaries = []
        for row in rows:
            # `=like` treats `_` and `%` in a store id as wildcards: keep exact prefixes only.
            if not str(row["ref"]).startswith(prefix):
                continue
            sales = sales_of_record(record_from_narration(row["narration"]))
            summaries.append(
                SummaryTrace(
                    ref=row["ref"],
                    move_id=row["id"],
                    move_name=row["name"],
                    txn_ids=[s.txn_id for s in sales],
                )
            )
        return SummaryIndex(summaries=summaries)
