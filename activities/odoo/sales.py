"""Sales into the general ledger: one posted journal entry per sale, exactly once.

Each sale's entry carries the sale key (`POS:{store}:{txn}`) in `ref` and the whole sale, as
JSON, in its narration (so refunds can be answered from Odoo alone); it is claimed by draft
(activities/odoo/claim.py), alone or in batches of many sales per RPC.
"""

from __future__ import annotations

from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.odoo.base import (
    OdooActivityBase,
    narration,
    raise_refusal,
    refusal_of,
)
from activities.odoo.claim import MOVE, Claimed, Refusal, claim
from domain.posting import CurrencyNotBooked, journal_entry_for
from domain.sale import Sale


class PostSaleInput(BaseModel):
    sale: Sale


class PostSaleResult(BaseModel):
    key: str
    move_id: int
    move_name: str
    # True when this key was already posted before this activity ran (a resubmitted sale, or
    # a retry after a lost response): nothing new was booked.
    already_posted: bool


class PostSalesBatchInput(BaseModel):
    sales: list[Sale]


class SaleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    txn_id: str
    posted: bool
    move_id: int | None = None
    move_name: str | None = None
    already_posted: bool = False
    error_type: str | None = None
    reason: str | None = None


class PostSalesBatchResult(BaseModel):
    outcomes: list[SaleOutcome]


class OdooSalesActivities(OdooActivityBase):
    @activity.defn
    def post_sale(self, input: PostSaleInput) -> PostSaleResult:
        """Post one sale's entry exactly once. Business refusals are non-retryable."""
        outcome = self._post([input.sale])[0]
        if not outcome.posted:
            raise_refusal(Refusal(outcome.error_type or "OdooError", outcome.reason or "refused"))
        assert outcome.move_id is not None and outcome.move_name is not None
        return PostSaleResult(
            key=outcome.key,
            move_id=outcome.move_id,
            move_name=outcome.move_name,
            already_posted=outcome.already_posted,
        )

    @activity.defn
    def post_sales_batch(self, input: PostSalesBatchInput) -> PostSalesBatchResult:
        """Post many sales in a few RPCs. A refused sale is reported, never blocks the rest."""
        return PostSalesBatchResult(outcomes=self._post(input.sales))

    def _post(self, sales: list[Sale]) -> list[SaleOutcome]:
        refused: dict[str, Refusal] = {}
        vals: dict[str, dict[str, Any]] = {}
        _, problems = self.odoo.products({line.sku for s in sales for line in s.lines})
        for sale in sales:
            unknown = [problems[ln.sku] for ln in sale.lines if ln.sku in problems]
            if unknown:
                kind = "UnknownSku" if unknown[0].startswith("unknown") else "AmbiguousSku"
                refused[sale.key] = Refusal(kind, "; ".join(dict.fromkeys(unknown)))
                continue
            try:
                vals[sale.key] = self._move_vals(journal_entry_for(sale, self.profile))
            except CurrencyNotBooked as e:
                refused[sale.key] = Refusal("CurrencyNotBooked", str(e))
                continue
            # The whole sale rides along, so Odoo alone can answer a refund later.
            vals[sale.key]["narration"] = narration("sale", sale.model_dump(mode="json"))

        claimed = claim(
            self.odoo,
            MOVE,
            vals,
            create=lambda keys: self._create_drafts({k: vals[k] for k in keys}),
            finish=self._post_entries,
        )
        return [self._outcome(sale, refused.get(sale.key) or claimed[sale.key]) for sale in sales]

    @staticmethod
    def _outcome(sale: Sale, result: Claimed | Refusal) -> SaleOutcome:
        if isinstance(result, Refusal):
            return SaleOutcome(
                key=sale.key,
                txn_id=sale.txn_id,
                posted=False,
                error_type=result.error_type,
                reason=result.reason,
            )
        return SaleOutcome(
            key=sale.key,
            txn_id=sale.txn_id,
            posted=True,
            move_id=result.id,
            move_name=result.name,
            already_posted=result.already,
        )

    def _create_drafts(self, vals: dict[str, dict[str, Any]]) -> dict[str, Refusal]:
        """Create every draft in one RPC; if Odoo refuses the batch, find the culprit(s)."""
        try:
            self.odoo.call_raw("account.move", "create", list(vals.values()))
            return {}
        except RPCError as e:
            if len(vals) == 1:
                key = next(iter(vals))
                return {key: refusal_of(e, f"account.move.create {key}")}
        refused: dict[str, Refusal] = {}
        for key, one in vals.items():
            try:
                self.odoo.call_raw("account.move", "create", one)
            except RPCError as e:
                refused[key] = refusal_of(e, f"account.move.create {key}")
        return refused
