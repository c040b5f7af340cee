"""InventoryAudit: one store's counts against Odoo's on-hand at its location, drift fixed.

Id `inventory-audit:{store}:{audit_id}` (a schedule's day, or an on-demand id): one audit per
store and id. The store's counts and Odoo's quants are read page by page; each counted product
gets a verdict (domain/inventory.py). Small drifts are adjusted in Odoo at once, exactly once
(activities/odoo/inventory.py: one inventory move per product named by the audit's key);
drifts worth more than the value threshold wait for an approver's `approve` Update, a signed
assertion for this audit (`retailflow identity assert --refund <audit key> --action approve`)
by another person than the one who started it (four eyes); the rest, and negative stock, are
listed for ops (RetailStatus NeedsAttention) and never adjusted or zeroed. A dry run reports
without writing. The memo `inventory_drift` carries the count of products left in drift.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.availability import AvailabilityActivities, InventoryChangedInput
    from activities.inventory import InventoryActivities, StoreCountsInput
    from activities.odoo.inventory import (
        AdjustmentLine,
        ApplyAdjustmentInput,
        OdooInventoryActivities,
        OnHandInput,
    )
    from activities.pos import ListStoresInput, PosActivities
    from domain.approval import Action, ApprovalClaims, ApprovalTrust, AssertionRefused
    from domain.ids import business_id
    from domain.inventory import AuditPolicy, AuditSummary, Drift, Verdict, drifts, summarise
    from domain.pricing import StoreTarget, TargetKind
    from workflows.policies import ODOO_WRITE, POS_COMMAND_PUBLISH, POS_READ
    from workflows.search_attributes import STORE_ID, show_status

DRIFT_MEMO = "inventory_drift"
MAX_PAGES = 1000


def inventory_audit_id(store_id: str, audit_id: str) -> str:
    return business_id("inventory-audit", store_id, audit_id)


def inventory_audit_key(store_id: str, audit_id: str) -> str:
    """The audit's key: the name of its inventory moves in Odoo, the subject of approvals."""
    return business_id("inventory", store_id, audit_id)


class AuditStatus(StrEnum):
    AUDITING = "Auditing"
    AWAITING_APPROVAL = "AwaitingApproval"
    NEEDS_ATTENTION = "NeedsAttention"
    IN_STEP = "InStep"
    ADJUSTED = "Adjusted"
    DRY_RUN = "DryRun"


class InventoryAuditInput(BaseModel):
    store_id: str
    audit_id: str
    dry_run: bool = False
    policy: AuditPolicy = AuditPolicy()
    trust: ApprovalTrust | None = None
    # Who started it (a verified subject), when a person did: they cannot approve it.
    requested_by_sub: str | None = None
    page_size: int = 200
    approval_timeout: timedelta = timedelta(days=2)
    # How long the store's availability publisher gathers changes before publishing.
    publish_coalesce: timedelta = timedelta(seconds=10)


class AuditApproval(BaseModel):
    """An approver's signed assertion for this audit's key, action approve or reject."""

    assertion: str
    comment: str = ""


class InventoryAuditResult(BaseModel):
    store_id: str
    audit_id: str
    key: str
    status: AuditStatus = AuditStatus.AUDITING
    summary: AuditSummary = AuditSummary()
    drifts: list[Drift] = []
    adjusted: list[str] = []
    already_adjusted: list[str] = []
    # The reasons ops must read: exceptions, negative stock, unreadable rows, a rejection.
    attention: list[str] = []
    decided_by: str | None = None
    decision_comment: str = ""


@workflow.defn
class InventoryAudit:
    def __init__(self) -> None:
        self._r: InventoryAuditResult | None = None
        self._input: InventoryAuditInput | None = None
        self._decision: tuple[bool, str, str] | None = None  # approve, by, comment

    @workflow.run
    async def run(self, input: InventoryAuditInput) -> InventoryAuditResult:
        self._input = input
        key = inventory_audit_key(input.store_id, input.audit_id)
        r = self._r = InventoryAuditResult(
            store_id=input.store_id, audit_id=input.audit_id, key=key
        )
        workflow.upsert_search_attributes([STORE_ID.value_set(input.store_id)])
        self._show(AuditStatus.AUDITING)
        try:
            counted = await self._read(input, r)
        except ActivityError as e:
            r.attention.append(f"audit could not read the store or Odoo: {_reason(e)}")
            return self._finish(AuditStatus.NEEDS_ATTENTION)
        r.summary = summarise(counted, r.drifts)
        workflow.upsert_memo({DRIFT_MEMO: len(r.drifts)})
        r.attention.extend(
            d.reason for d in r.drifts if d.verdict is Verdict.EXCEPTION or d.negative
        )
        if input.dry_run:
            return self._finish(AuditStatus.DRY_RUN)
        await self._adjust(input, [d for d in r.drifts if d.verdict is Verdict.ADJUST])
        needing = [d for d in r.drifts if d.verdict is Verdict.NEEDS_APPROVAL]
        if needing:
            self._show(
                AuditStatus.AWAITING_APPROVAL,
                f"{len(needing)} adjustment(s) above the value threshold",
                [d.reason for d in needing],
            )
            decided = await self._wait_decision(input.approval_timeout)
            if decided is None:
                r.attention.append(
                    f"no decision on {len(needing)} adjustment(s) above the value threshold "
                    f"within {input.approval_timeout}"
                )
            elif decided:
                await self._adjust(input, needing)
            else:
                r.attention.append(
                    f"{len(needing)} adjustment(s) rejected by {r.decided_by}: "
                    f"{r.decision_comment or 'no comment'}"
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        left = len(r.drifts) - len(r.adjusted) - len(r.already_adjusted)
        workflow.upsert_memo({DRIFT_MEMO: max(left, 0)})
        if r.attention:
            return self._finish(AuditStatus.NEEDS_ATTENTION)
        return self._finish(AuditStatus.ADJUSTED if r.drifts else AuditStatus.IN_STEP)

    async def _read(self, input: InventoryAuditInput, r: InventoryAuditResult) -> int:
        after: str | None = None
        counted = 0
        for _ in range(MAX_PAGES):
            page = await workflow.execute_activity_method(
                InventoryActivities.store_counts,
                StoreCountsInput(store_id=input.store_id, after_sku=after, limit=input.page_size),
                **POS_READ,
            )
            r.attention.extend(f"unreadable count: {u}" for u in page.unreadable)
            if page.counts:
                odoo = await workflow.execute_activity_method(
                    OdooInventoryActivities.on_hand,
                    OnHandInput(
                        store_id=input.store_id,
                        product_ids=[c.product_id for c in page.counts if c.product_id],
                        skus=[c.sku for c in page.counts if not c.product_id],
                    ),
                    **ODOO_WRITE,
                )
                r.drifts.extend(drifts(page.counts, odoo.on_hand, input.policy))
                counted += len(page.counts)
            if page.next_after is None:
                break
            after = page.next_after
        return counted

    async def _adjust(self, input: InventoryAuditInput, found: list[Drift]) -> None:
        assert self._r is not None
        lines = [
            AdjustmentLine(product_id=d.product_id, sku=d.sku, delta=d.delta)
            for d in found
            if d.product_id is not None
        ]
        if not lines:
            return
        try:
            done = await workflow.execute_activity_method(
                OdooInventoryActivities.apply_adjustment,
                ApplyAdjustmentInput(key=self._r.key, store_id=input.store_id, lines=lines),
                **ODOO_WRITE,
            )
        except ActivityError as e:
            self._r.attention.append(f"Odoo refused the adjustment: {_reason(e)}")
            return
        self._r.adjusted.extend(done.applied)
        self._r.already_adjusted.extend(done.already)
        # The store's availability follows what Odoo now has (coalesced by its publisher).
        await workflow.execute_activity_method(
            AvailabilityActivities.inventory_changed,
            InventoryChangedInput(
                store_id=input.store_id,
                product_ids=[ln.product_id for ln in lines],
                coalesce=input.publish_coalesce,
            ),
            **POS_COMMAND_PUBLISH,
        )

    async def _wait_decision(self, timeout: timedelta) -> bool | None:
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
        except TimeoutError:
            return None
        assert self._decision is not None
        return self._decision[0]

    # -- approval ---------------------------------------------------------------------------

    @workflow.update
    async def approve(self, approval: AuditApproval) -> str:
        return self._decide(True, approval)

    @approve.validator
    def _validate_approve(self, approval: AuditApproval) -> None:
        self._check(True, approval)

    @workflow.update
    async def reject(self, approval: AuditApproval) -> str:
        return self._decide(False, approval)

    @reject.validator
    def _validate_reject(self, approval: AuditApproval) -> None:
        self._check(False, approval)

    def _check(self, approve: bool, approval: AuditApproval) -> ApprovalClaims:
        r, input = self._r, self._input
        if r is None or input is None:
            raise ValueError("the audit has not started")
        if r.status is not AuditStatus.AWAITING_APPROVAL or self._decision is not None:
            raise ValueError(f"audit {r.key} is {r.status.value}: it takes no decision")
        action: Action = "approve" if approve else "reject"
        trust = input.trust or ApprovalTrust()
        try:
            # cryptography imports its exception classes when it raises: pass them through.
            with workflow.unsafe.imports_passed_through():
                claims = trust.verify(approval.assertion, workflow.now(), r.key, action)
        except AssertionRefused as e:
            raise ValueError(f"decision refused: {e}") from None
        if claims.role not in input.policy.approver_roles:
            allowed = ", ".join(sorted(input.policy.approver_roles))
            raise ValueError(
                f"role {claims.role!r} may not approve inventory adjustments (allowed: {allowed})"
            )
        if approve and input.requested_by_sub and claims.sub == input.requested_by_sub:
            raise ValueError(f"four eyes: {claims.sub} started audit {r.key} and cannot approve it")
        return claims

    def _decide(self, approve: bool, approval: AuditApproval) -> str:
        assert self._r is not None
        try:  # verified again: the validator's answer is not kept, and replay needs it
            claims = self._check(approve, approval)
        except ValueError as e:
            raise ApplicationError(str(e), type="DecisionRefused", non_retryable=True) from None
        self._decision = (approve, claims.name, approval.comment)
        self._r.decided_by, self._r.decision_comment = claims.name, approval.comment
        verb = "approved" if approve else "rejected"
        return f"audit {self._r.key} {verb} by {claims.name}"

    @workflow.query
    def progress(self) -> InventoryAuditResult | None:
        return self._r

    # -- status -----------------------------------------------------------------------------

    def _show(
        self, status: AuditStatus, detail: str = "", reasons: list[str] | None = None
    ) -> None:
        assert self._r is not None
        self._r.status = status
        r = self._r
        facts = [
            f"counted {r.summary.counted}, adjusted {len(r.adjusted) + len(r.already_adjusted)}, "
            f"exceptions {r.summary.exceptions}, negative {r.summary.negative}"
        ]
        show_status(status.value, detail, facts, reasons or [])

    def _finish(self, status: AuditStatus) -> InventoryAuditResult:
        assert self._r is not None
        self._show(status, reasons=self._r.attention)
        return self._r


def _reason(e: ActivityError) -> str:
    cause = e.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}"
    return str(cause or e)


class InventoryAuditRunInput(BaseModel):
    """The scheduled audit of a fleet: these stores (all of the POS platform's when empty)."""

    stores: list[str] = []
    policy: AuditPolicy = AuditPolicy()
    trust: ApprovalTrust | None = None
    dry_run: bool = False


class InventoryAuditRunResult(BaseModel):
    audit_id: str
    started: list[str] = []
    # Audited under this id already (a catch-up run, a second trigger the same day).
    already: list[str] = []


@workflow.defn
class InventoryAuditRun:
    """Starts one InventoryAudit per store for today (UTC); each goes on alone (an approval may
    take days), so this run ends once all are started."""

    @workflow.run
    async def run(self, input: InventoryAuditRunInput) -> InventoryAuditRunResult:
        audit_id = workflow.now().date().isoformat()
        stores = input.stores
        if not stores:
            listed = await workflow.execute_activity_method(
                PosActivities.list_stores,
                ListStoresInput(target=StoreTarget(kind=TargetKind.ALL)),
                **POS_READ,
            )
            stores = listed.stores
        result = InventoryAuditRunResult(audit_id=audit_id)
        for store in stores:
            try:
                await workflow.start_child_workflow(
                    InventoryAudit.run,
                    InventoryAuditInput(
                        store_id=store,
                        audit_id=audit_id,
                        dry_run=input.dry_run,
                        policy=input.policy,
                        trust=input.trust,
                    ),
                    id=inventory_audit_id(store, audit_id),
                    # One audit per store and day, also when the schedule catches up.
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
                result.started.append(store)
            except WorkflowAlreadyStartedError:
                result.already.append(store)
        return result
