"""Reconciliation: one store-day's three-way match (POS, Odoo, gateway), and ops' decisions.

Workflow id `recon:{store}:{day}` (domain/ids.py). It reads the three sources and compares them
in one activity (activities/recon.py); the report is its result and its `report` query.
`Reconciled` (every difference within the tolerance policy, or none): done. `Unreconciled`:
`RetailStatus = "Unreconciled"`, each open difference a line of the current details, and it
waits for ops:

* `accept(ReconDecision(diff_id | "all", by, comment))`: the difference is accepted, kept in the
  report with who and why;
* `repost(ReconDecision(diff_id, by, comment))`, for a sale missing in Odoo: the POS's own copy
  of the sale goes through the normal sale workflow (`SalePosting`, as a child, under the
  sale's own id), never written to Odoo directly; then the comparison runs again, and the
  differences it no longer finds are kept, `resolved`.

Both are Updates whose validators refuse an unknown difference or a decision naming nobody,
with a clear message; `accept_from_ui` / `repost_from_ui` are signal variants for the Web UI
that never raise (a refused decision is noted). With no decision within `ops_timeout`
(7 days by default) the workflow ends with the report as it stands, `Unreconciled`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.recon import PosSaleInput, ReconActivities, ReconcileInput
    from domain.ids import business_id
    from domain.reconciliation import (
        DecisionError,
        DiffState,
        ReconReport,
        ReconStatus,
        TolerancePolicy,
        accept,
        carry_over,
        check_accept,
        check_repost,
    )
    from workflows.policies import ODOO_HEARTBEAT, POS_READ
    from workflows.sale_posting import (
        SalePosting,
        SalePostingInput,
        SalePostingResult,
        SaleStatus,
        posting_workflow_id,
    )
    from workflows.search_attributes import BUSINESS_DAY, STORE_ID, show_status

# Reads of a whole store-day: a few paged RPCs to each source; retried without limit (an
# outage delays the reconciliation, it never fails it).
RECON_READ: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": ODOO_HEARTBEAT,
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=0,
    ),
}


# From this change on, the workflow keeps its unreconciled amount in its memo (visibility
# listings return memos), so metrics can read it without histories or queries.
UNRECONCILED_MEMO_PATCH = "recon-unreconciled-memo"
UNRECONCILED_MEMO = "unreconciled_amount"


def unreconciled_amount(report: ReconReport) -> Decimal:
    """The sum of the open differences' amounts (a fault seen by two comparisons counts in
    both): 0 once every difference is matched, accepted or resolved."""
    return sum((d.delta for d in report.open_diffs), Decimal(0))


def reconciliation_workflow_id(store_id: str, business_day: date) -> str:
    """`recon:{store}:{day}`."""
    return business_id("recon", store_id, business_day.isoformat())


class ReconciliationInput(BaseModel):
    store_id: str
    business_day: date
    # When the day was closed: an entry created after it is a late sale (informational).
    closed_at: datetime | None = None
    tolerance: TolerancePolicy = TolerancePolicy()
    # How long an unreconciled store-day waits for ops before it ends, Unreconciled.
    ops_timeout: timedelta = timedelta(days=7)


class ReconDecision(BaseModel):
    diff_id: str  # a diff's id, or "all" (accept only)
    by: str
    comment: str = ""


@workflow.defn
class Reconciliation:
    def __init__(self) -> None:
        self._report: ReconReport | None = None
        self._input: ReconciliationInput | None = None
        self._reposts: list[tuple[str, ReconDecision]] = []
        self._notes: list[str] = []

    @workflow.run
    async def run(self, input: ReconciliationInput) -> ReconReport:
        self._input = input
        workflow.upsert_search_attributes(
            [
                STORE_ID.value_set(input.store_id),
                BUSINESS_DAY.value_set(input.business_day.isoformat()),
            ]
        )
        show_status(ReconStatus.RECONCILING.value, f"{input.store_id} {input.business_day}")
        self._report = await self._compare()
        deadline = workflow.now() + input.ops_timeout
        while self._report.status is not ReconStatus.RECONCILED:
            self._show()
            remaining = deadline - workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: bool(self._reposts) or self._reconciled(),
                    timeout=max(remaining, timedelta(seconds=1)),
                )
            except TimeoutError:
                self._notes.append(f"no ops decision within {input.ops_timeout}")
                break
            while self._reposts:
                txn_id, decision = self._reposts.pop(0)
                await self._repost(txn_id, decision)
        self._show()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._report

    # -- ops --------------------------------------------------------------------------------

    @workflow.update
    async def accept(self, decision: ReconDecision) -> str:
        """Accept a difference (or "all" open ones) with a comment: kept, marked who and why."""
        return self._accept(decision)

    @accept.validator
    def _validate_accept(self, decision: ReconDecision) -> None:
        self._check_accept(decision)

    @workflow.update
    async def repost(self, decision: ReconDecision) -> str:
        """Re-drive a sale missing in Odoo through the normal sale workflow, from the POS's
        copy; the comparison runs again afterwards."""
        txn_id = self._check_repost(decision)
        self._reposts.append((txn_id, decision))
        return f"sale {txn_id} queued for posting through SalePosting"

    @repost.validator
    def _validate_repost(self, decision: ReconDecision) -> None:
        self._check_repost(decision)

    @workflow.signal
    def accept_from_ui(self, decision: ReconDecision) -> None:
        """For the Web UI's "Send a signal": {"diff_id": "...", "by": "...", "comment": "..."}."""
        try:
            self._check_accept(decision)
        except DecisionError as e:
            self._notes.append(f"accept by {decision.by!r} refused: {e}")
            return
        self._accept(decision)

    @workflow.signal
    def repost_from_ui(self, decision: ReconDecision) -> None:
        try:
            txn_id = self._check_repost(decision)
        except DecisionError as e:
            self._notes.append(f"repost by {decision.by!r} refused: {e}")
            return
        self._reposts.append((txn_id, decision))

    @workflow.query
    def report(self) -> ReconReport | None:
        return self._report

    @workflow.query
    def notes(self) -> list[str]:
        return self._notes

    def _check_accept(self, decision: ReconDecision) -> list[str]:
        if self._report is None:
            raise DecisionError("the comparison has not run yet: try again in a moment")
        return check_accept(self._report, decision.diff_id, decision.by)

    def _check_repost(self, decision: ReconDecision) -> str:
        if self._report is None:
            raise DecisionError("the comparison has not run yet: try again in a moment")
        txn_id = check_repost(self._report, decision.diff_id, decision.by)
        if any(t == txn_id for t, _ in self._reposts):
            raise DecisionError(f"diff_id: sale {txn_id} is already queued for a repost")
        return txn_id

    def _accept(self, decision: ReconDecision) -> str:
        assert self._report is not None
        ids = self._check_accept(decision)
        self._report = accept(self._report, ids, decision.by, decision.comment)
        self._notes.append(f"{decision.by} accepted {', '.join(ids)}: {decision.comment}")
        return f"accepted {len(ids)} difference(s); the store-day is {self._report.status.value}"

    def _reconciled(self) -> bool:
        return self._report is not None and self._report.status is ReconStatus.RECONCILED

    # -- steps ------------------------------------------------------------------------------

    async def _compare(self) -> ReconReport:
        assert self._input is not None
        i = self._input
        return await workflow.execute_activity_method(
            ReconActivities.reconcile_store_day,
            ReconcileInput(
                store_id=i.store_id,
                business_day=i.business_day,
                closed_at=i.closed_at,
                tolerance=i.tolerance,
            ),
            **RECON_READ,
        )

    async def _repost(self, txn_id: str, decision: ReconDecision) -> None:
        assert self._input is not None and self._report is not None
        store = self._input.store_id
        sale = await workflow.execute_activity_method(
            ReconActivities.pos_sale, PosSaleInput(store_id=store, txn_id=txn_id), **POS_READ
        )
        outcome: str
        try:
            result: SalePostingResult = await workflow.execute_child_workflow(
                SalePosting.run,
                SalePostingInput(sale=sale, source=f"recon repost by {decision.by}"),
                id=posting_workflow_id(store, txn_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Sale {store}/{txn_id} (reposted by {decision.by})",
            )
            outcome = f"SalePosting ended {result.status.value}" + (
                f": {'; '.join(result.reasons)}" if result.reasons else ""
            )
            posted = result.status is SaleStatus.POSTED
        except WorkflowAlreadyStartedError:
            outcome = "its SalePosting workflow is still running: resolve it there first"
            posted = False
        except ChildWorkflowError as e:
            outcome = f"SalePosting failed: {e.cause or e}"
            posted = False
        except ApplicationError as e:
            outcome = f"SalePosting could not start: {e}"
            posted = False
        self._notes.append(f"{decision.by} reposted {txn_id}: {outcome}")
        if not posted:
            diff_id = f"missing_in_odoo:{txn_id}"
            diffs = [
                d.model_copy(update={"note": f"repost by {decision.by}: {outcome}"})
                if d.id == diff_id
                else d
                for d in self._report.diffs
            ]
            self._report = self._report.model_copy(update={"diffs": diffs})
            return
        fresh = await self._compare()
        self._report = carry_over(fresh, self._report, self._input.tolerance)
        resolved = f"resolved by repost ({decision.by}: {decision.comment or 'no comment'})"
        diffs = [
            d.model_copy(update={"note": resolved})
            if d.id == f"missing_in_odoo:{txn_id}" and d.state is DiffState.RESOLVED
            else d
            for d in self._report.diffs
        ]
        self._report = self._report.model_copy(update={"diffs": diffs})

    def _show(self) -> None:
        assert self._report is not None
        r = self._report
        facts = [
            f"{r.matched} of {r.pos_transactions} POS transactions matched; "
            f"{len(r.diffs)} differences, {len(r.open_diffs)} open"
        ]
        show_status(
            r.status.value,
            f"{r.store_id} {r.business_day}",
            facts,
            reasons=[d.line() for d in r.diffs],
        )
        if workflow.patched(UNRECONCILED_MEMO_PATCH):
            workflow.upsert_memo({UNRECONCILED_MEMO: str(unreconciled_amount(r))})
