"""Gateway payouts in the general ledger: one posted entry per payout, exactly once, and one
reversal, exactly once, when the gateway later says the payout failed.

The entry (domain/settlement.py) carries `PAYOUT:{payout_id}` in `ref` and is claimed by it
with the protocol every claimed record uses (activities/odoo/claim.py). A failed payout is
never deleted: Odoo's reversal wizard (`account.move.reversal`, `refund_moves`) books the mirror
entry, posted at once, with `reversed_entry_id` pointing at the payout's entry.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.base import (
    OdooActivityBase,
    first_attempt,
    narration,
    raise_refusal,
    refusal_of,
)
from activities.odoo.claim import MOVE, Refusal, claim, find
from activities.odoo.client import OdooUnavailable, error_name, raise_classified
from domain.posting import AmountNotBookable, CurrencyNotBooked
from domain.settlement import PayoutMismatch, PayoutTotals, payout_entry_for, payout_ref


class BookPayoutInput(BaseModel):
    totals: PayoutTotals


class BookedPayout(BaseModel):
    payout_id: str
    ref: str
    move_id: int
    move_name: str
    # True when the entry was already posted before this call (a rerun, a retry after a lost
    # response): nothing new was booked.
    already: bool


class ReversePayoutInput(BaseModel):
    payout_id: str
    # The reversal's date: the day the failure is booked (not in the future: Odoo would leave
    # a future-dated reversal in draft until its cron runs).
    on: date
    reason: str


class ReversedPayout(BaseModel):
    payout_id: str
    # False when Odoo holds no posted entry of the payout: nothing to reverse.
    booked: bool
    move_id: int | None = None
    move_name: str | None = None
    reversal_id: int | None = None
    reversal_name: str | None = None
    already: bool = False


_REFUSALS = (CurrencyNotBooked, PayoutMismatch, AmountNotBookable)


class OdooPayoutActivities(OdooActivityBase):
    @activity.defn
    def book_payout(self, input: BookPayoutInput) -> BookedPayout:
        """Post the payout's entry exactly once. A payout that cannot be booked (its
        transactions do not add up to it, a currency the company does not book, Odoo's refusal)
        is a non-retryable error naming why."""
        totals = input.totals
        ref = payout_ref(totals.payout_id)
        try:
            entry = payout_entry_for(totals, self.profile)
        except _REFUSALS as e:
            raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from e
        vals = self._move_vals(entry)
        # What was booked, readable from Odoo alone (an auditor, the reconciliation).
        vals["narration"] = narration("payout", totals.model_dump(mode="json"))

        def create(keys: list[str]) -> dict[str, Refusal]:
            try:
                self.odoo.call_raw("account.move", "create", vals)
                return {}
            except RPCError as e:
                return {ref: refusal_of(e, f"account.move.create {ref}")}

        result = claim(
            self.odoo,
            MOVE,
            [ref],
            create=create,
            finish=self._post_entries,
            # A first attempt expects no entry yet; a retry (after a lost response, a worker
            # killed after its draft) reads first and converges on what is there.
            fresh=first_attempt(),
        )[ref]
        if isinstance(result, Refusal):
            raise_refusal(result)
        # A draft is named `/` until posted: read the posted name.
        row = self.odoo.call("account.move", "read", [result.id], ["name", "state"])
        if not row or row[0]["state"] != "posted":
            raise OdooUnavailable(f"payout entry {ref} ({result.id}) not posted after posting")
        return BookedPayout(
            payout_id=totals.payout_id,
            ref=ref,
            move_id=result.id,
            move_name=row[0]["name"],
            already=result.already,
        )

    @activity.defn
    def reverse_payout(self, input: ReversePayoutInput) -> ReversedPayout:
        """Reverse the payout's posted entry with Odoo's reversal wizard, exactly once.

        Odoo will reverse an entry as often as it is asked, and nothing in it is unique to
        hold on to, so: (1) read the entry's live reversals (`reversed_entry_id`) and use one
        that exists (a retry after a lost response, an earlier run, a person); (2) only with
        none, run the wizard; (3) read the reversals again. Two attempts racing (an attempt
        that timed out still running beside its retry, two overlapping settlement runs) can
        both pass (1) and both reverse: step (3) then sees both, keeps the lowest id and sets
        every other one back to draft and cancels it (cancelled, not deleted: it consumed a
        sequence number and stays for the auditor). Every racing attempt converges on the same
        survivor, except that PostgreSQL may show a later commit first: an attempt that sees
        only its own reversal returns it, and the attempt that sees both cancels the higher
        one; Odoo still ends with exactly one live reversal, which any later read reports."""
        ref = payout_ref(input.payout_id)
        posted = [r for r in find(self.odoo, MOVE, [ref]).get(ref, []) if r["state"] == "posted"]
        if not posted:
            return ReversedPayout(payout_id=input.payout_id, booked=False)
        original = posted[0]
        reversals = self._reversals(original["id"])
        already = bool(reversals)
        if not reversals:
            self._run_wizard(original["id"], ref, input)
            reversals = self._reversals(original["id"])
            if not reversals:
                raise OdooUnavailable(f"the reversal of {original['name']} ({ref}) is not there")
        survivor, extra = reversals[0], reversals[1:]
        self._cancel(extra)
        return ReversedPayout(
            payout_id=input.payout_id,
            booked=True,
            move_id=original["id"],
            move_name=original["name"],
            reversal_id=survivor["id"],
            reversal_name=survivor["name"],
            already=already,
        )

    def _reversals(self, move_id: int) -> list[dict[str, Any]]:
        """The live (not cancelled) reversals of an entry, lowest id first."""
        rows: list[dict[str, Any]] = self.odoo.call(
            "account.move",
            "search_read",
            [("reversed_entry_id", "=", move_id), ("state", "!=", "cancel")],
            fields=["name", "state"],
            order="id asc",
        )
        return rows

    def _run_wizard(self, move_id: int, ref: str, input: ReversePayoutInput) -> None:
        journal = self.odoo.journal_id(self.profile.bank_journal_code)
        context = {"active_model": "account.move", "active_ids": [move_id]}
        try:
            wizard = self.odoo.call_raw(
                "account.move.reversal",
                "create",
                {
                    "move_ids": [(6, 0, [move_id])],
                    "date": input.on.isoformat(),
                    "reason": input.reason,
                    "journal_id": journal,
                },
                context=context,
            )
            wizard_id = wizard[0] if isinstance(wizard, list) else wizard
            self.odoo.call_raw("account.move.reversal", "refund_moves", [wizard_id])
        except RPCError as e:
            raise_refusal(refusal_of(e, f"account.move.reversal of {ref}"))

    def _cancel(self, rows: list[dict[str, Any]]) -> None:
        """Set extra reversals (a lost race) back to draft and cancel them. A racing attempt
        doing the same makes a call fail: read the state again and go on from there."""
        for row in rows:
            for _ in range(3):
                read = self.odoo.call("account.move", "read", [row["id"]], ["state"])
                state = read[0]["state"] if read else None
                if state in (None, "cancel"):
                    break
                try:
                    if state == "posted":
                        self.odoo.call_raw("account.move", "button_draft", [row["id"]])
                    self.odoo.call_raw("account.move", "button_cancel", [row["id"]])
                    break
                except RPCError as e:
                    if error_name(e) not in (
                        "odoo.exceptions.UserError",
                        "odoo.exceptions.MissingError",
                    ):
                        raise_classified(e, f"account.move cancel of reversal {row['id']}")
            else:
                raise OdooUnavailable(f"extra reversal {row['id']} keeps changing state")
