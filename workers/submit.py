"""Submitting sales to Temporal and following them: shared by the CLI, the ingress and the demo.

A sale goes to its own SalePosting workflow (per-sale mode), or by signal-with-start to its
store's StoreLedger for the day (batched and summary modes; a submission that names no mode takes
the store's configured one). Input that fails validation always goes to its
own SalePosting workflow, which keeps it, rejected, with its reasons: nothing is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.limits import oversized_lists, visibility_literal
from domain.sale import Sale, SaleRefused, SaleRejected, parse_sale, read_raw_sale, sale_key
from domain.validation import FieldError
from workers.settings import Settings
from workflows.sale_posting import (
    EXCEPTION_STATES,
    SalePosting,
    SalePostingInput,
    SalePostingResult,
    SaleStatus,
    legacy_posting_workflow_id,
    posting_workflow_id,
    sale_workflow_id,
)
from workflows.search_attributes import RETAIL_STATUS, STORE_ID
from workflows.store_ledger import (
    BATCHED,
    SUMMARY,
    LedgerInput,
    LedgerSubmission,
    LedgerSubmissions,
    StoreLedger,
    ledger_workflow_id,
)


class Mode(StrEnum):
    PER_SALE = "per-sale"
    BATCHED = "batched"
    SUMMARY = "summary"


LEDGER_MODES = {Mode.BATCHED: BATCHED, Mode.SUMMARY: SUMMARY}


class Submission(StrEnum):
    ACCEPTED = "accepted"  # a new SalePosting workflow
    QUEUED = "queued"  # handed to the store's ledger
    DUPLICATE = "duplicate"  # this sale already has a workflow: absorbed
    REJECTED = "rejected"  # invalid: kept, rejected, in its own workflow
    FAILED = "failed"  # not submitted (Temporal refused or unreachable): send it again


class Submitted(BaseModel):
    workflow_id: str
    submission: Submission
    store_id: str | None = None
    txn_id: str | None = None
    errors: list[FieldError] = []
    # For a batched duplicate: where the ledger had the sale when it answered. `posted` is
    # final, even if that ledger run has closed since and a new run of its id knows nothing.
    ledger_state: str | None = None


def raw_from_text(text: str | bytes) -> dict[str, Any] | str:
    """A JSON line as a sale object (numbers exact), or the text itself when it is not one
    (kept, rejected). Raises SaleRefused for input beyond the edge's limits (size, nesting,
    id lengths, more lines or payments than a sale may have): start nothing."""
    raw = read_raw_sale(text)
    problems = oversized_lists(raw)
    if problems:
        raise SaleRefused([FieldError(field=field, message=message) for field, message in problems])
    return raw


async def submit_sale(
    client: Client,
    settings: Settings,
    raw: dict[str, Any] | str,
    mode: Mode | None,
    source: str,
) -> Submitted:
    """Start the sale's posting. `mode` None: the store's configured mode (settings)."""
    try:
        sale: Sale | None = parse_sale(raw)
        errors: list[FieldError] = []
    except SaleRejected as e:
        sale, errors = None, e.errors
    mode = _mode_for(settings, mode, sale)
    if sale is not None and mode in LEDGER_MODES and isinstance(raw, dict):
        # A chunk of one: answered `duplicate` here when the ledger knows the sale, so the POS
        # hears it; queued to the ledger otherwise.
        return (await _submit_chunk(client, settings, [(raw, sale)], mode))[0]

    workflow_id = sale_workflow_id(raw)
    store = raw.get("store_id") if isinstance(raw, dict) else None
    txn = raw.get("txn_id") if isinstance(raw, dict) else None
    result = Submitted(
        workflow_id=workflow_id,
        submission=Submission.REJECTED if errors else Submission.ACCEPTED,
        store_id=store if isinstance(store, str) else None,
        txn_id=txn if isinstance(txn, str) else None,
        errors=errors,
    )
    try:
        await client.start_workflow(
            SalePosting.run,
            SalePostingInput(sale=raw, source=source),
            id=workflow_id,
            task_queue=settings.task_queue,
            # A sale id is used once, ever: a resubmission after it closed is a duplicate too.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(STORE_ID, result.store_id)] if result.store_id else []
            ),
            static_summary=(
                f"Sale {result.store_id}/{result.txn_id}" if result.txn_id else "Unidentified sale"
            ),
        )
    except WorkflowAlreadyStartedError:
        result.submission = Submission.DUPLICATE
        if sale is not None and await _ended_rejected(client, workflow_id):
            result.submission = await _resubmit_corrected(client, settings, raw, source, result)
    return result


def _mode_for(settings: Settings, mode: Mode | None, sale: Sale | None) -> Mode:
    """The mode asked for, or else the store's configured one (settings)."""
    if mode is not None:
        return mode
    return Mode(settings.posting_mode_for(sale.store_id) if sale else settings.posting_mode)


async def _to_ledger(
    client: Client, settings: Settings, sale: Sale, mode: Mode, sales: LedgerSubmissions
) -> None:
    """Signal-with-start the sale's ledger (store and day) with `add_sales(sales)`."""
    await client.start_workflow(
        StoreLedger.run,
        LedgerInput(
            store_id=sale.store_id,
            business_day=sale.business_day,
            mode=LEDGER_MODES[mode],
            batch_size=(
                settings.summary_batch_size if mode is Mode.SUMMARY else settings.batch_size
            ),
            max_batch_age=timedelta(seconds=settings.batch_max_age_s),
            idle_close_after=timedelta(seconds=settings.ledger_idle_close_s),
        ),
        id=ledger_workflow_id(sale.store_id, sale.business_day),
        task_queue=settings.task_queue,
        start_signal="add_sales",
        start_signal_args=[sales],
        static_summary=f"Ledger of store **{sale.store_id}** for {sale.business_day}",
    )


# Sales of one ledger sent in one signal by `submit_many` (a few hundred KiB at most).
LEDGER_CHUNK = 200


async def _submit_chunk(
    client: Client, settings: Settings, chunk: list[tuple[dict[str, Any], Sale]], mode: Mode
) -> list[Submitted]:
    """Many sales of one ledger: one query for the ones it knows, one signal for the rest."""
    first = chunk[0][1]
    ledger_id = ledger_workflow_id(first.store_id, first.business_day)
    known = await _ledger_states(client, ledger_id, [sale.txn_id for _, sale in chunk])
    out, fresh = [], []
    for raw, sale in chunk:
        state = known.get(sale.txn_id)
        out.append(
            Submitted(
                workflow_id=ledger_id,
                submission=Submission.DUPLICATE if state else Submission.QUEUED,
                store_id=sale.store_id,
                txn_id=sale.txn_id,
                ledger_state=state,
            )
        )
        if not state:
            fresh.append(LedgerSubmission(sale=raw))
    if fresh:
        await _to_ledger(client, settings, first, mode, LedgerSubmissions(submissions=fresh))
    return out


# How long a submission waits for a ledger to say whether it knows a sale: past this, the sale is
# queued (the ledger absorbs a duplicate anyway) rather than holding the POS up.
LEDGER_QUERY_TIMEOUT = timedelta(seconds=5)


async def _ledger_states(client: Client, ledger_id: str, txn_ids: list[str]) -> dict[str, str]:
    """The sales the ledger knows, with where it has them; {} when no ledger answers."""
    handle = client.get_workflow_handle_for(StoreLedger.run, ledger_id)
    try:
        states = await handle.query(
            StoreLedger.sale_statuses, txn_ids, rpc_timeout=LEDGER_QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError):
        return {}  # no ledger yet, or none answering: queue them
    return {t: s for t, s in states.items() if s != "unknown"}


async def _ended_rejected(client: Client, workflow_id: str) -> bool:
    """True when the sale's workflow ended Rejected (invalid input): its id may be used again."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return (
        desc.status == WorkflowExecutionStatus.COMPLETED
        and desc.typed_search_attributes.get(RETAIL_STATUS) == SaleStatus.REJECTED.value
    )


async def _resubmit_corrected(
    client: Client,
    settings: Settings,
    raw: dict[str, Any] | str,
    source: str,
    result: Submitted,
) -> Submission:
    """A valid sale under the txn id of a rejected one: a new run of its workflow. Only a run
    that ended Rejected (nothing posted) is replaced; a concurrent resubmission loses the start
    race and is a duplicate; the claim by `ref` keeps even a late double start from posting
    twice."""
    try:
        await client.start_workflow(
            SalePosting.run,
            SalePostingInput(sale=raw, source=source),
            id=result.workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(STORE_ID, result.store_id)] if result.store_id else []
            ),
            static_summary=f"Sale {result.store_id}/{result.txn_id} (corrected)",
        )
    except WorkflowAlreadyStartedError:
        return Submission.DUPLICATE
    return Submission.ACCEPTED


async def submit_many(
    client: Client,
    settings: Settings,
    raws: Iterable[dict[str, Any] | str],
    mode: Mode | None,
    source: str,
    concurrency: int = 32,
) -> list[Submitted]:
    """Submit in order of arrival (a ledger sees a store's sales in file order). One result per
    input, in order: a sale that could not be submitted is `failed` with the error, and the
    others still go (nothing is silently skipped). Valid sales bound for a ledger (batched or
    summary mode) go in chunks: one query and one signal per chunk of a ledger's sales, not per
    sale, so Temporal is not what limits a store's volume."""
    gate = asyncio.Semaphore(concurrency)
    raws = list(raws)

    def failed(raw: dict[str, Any] | str, e: Exception) -> Submitted:
        store = raw.get("store_id") if isinstance(raw, dict) else None
        txn = raw.get("txn_id") if isinstance(raw, dict) else None
        return Submitted(
            workflow_id="",
            submission=Submission.FAILED,
            store_id=store if isinstance(store, str) else None,
            txn_id=txn if isinstance(txn, str) else None,
            errors=[FieldError(field="submission", message=f"{type(e).__name__}: {e}")],
        )

    async def one(raw: dict[str, Any] | str) -> Submitted:
        async with gate:
            try:
                return await submit_sale(client, settings, raw, mode, source)
            except Exception as e:
                return failed(raw, e)

    async def ledger(items: list[tuple[int, dict[str, Any], Sale]], how: Mode) -> None:
        # A ledger's chunks one after the other: it sees its sales in order.
        for start in range(0, len(items), LEDGER_CHUNK):
            part = items[start : start + LEDGER_CHUNK]
            async with gate:
                try:
                    answers = await _submit_chunk(
                        client, settings, [(r, s) for _, r, s in part], how
                    )
                except Exception as e:
                    answers = [failed(raw, e) for _, raw, _ in part]
            for (i, _, _), answer in zip(part, answers, strict=True):
                results[i] = answer

    async def single(i: int) -> None:
        results[i] = await one(raws[i])

    results: list[Submitted | None] = [None] * len(raws)
    singles: list[int] = []
    ledgers: dict[tuple[str, str, Mode], list[tuple[int, dict[str, Any], Sale]]] = {}
    for i, raw in enumerate(raws):
        sale = _valid(raw)
        how = _mode_for(settings, mode, sale)
        if sale is None or how not in LEDGER_MODES or not isinstance(raw, dict):
            singles.append(i)
            continue
        ledgers.setdefault((sale.store_id, sale.business_day.isoformat(), how), []).append(
            (i, raw, sale)
        )
    await asyncio.gather(
        *(ledger(items, how) for (_, _, how), items in ledgers.items()),
        *(single(i) for i in singles),
    )
    return [r for r in results if r is not None]


def _valid(raw: dict[str, Any] | str) -> Sale | None:
    try:
        return parse_sale(raw)
    except SaleRejected:
        return None


FINAL = {SaleStatus.POSTED, *EXCEPTION_STATES}
LEDGER_PREFIX = "ledger:"


async def sale_result(client: Client, store_id: str, txn_id: str) -> SalePostingResult | None:
    """Where a sale stands: its SalePosting workflow (under today's id, or the `sale-S-T` id of
    a sale started before ids were joined by `:`), or else the ledgers of its store. A sale
    rejected on its own but whose corrected version a ledger took is answered by the ledger."""
    own: SalePostingResult | None = None
    for wf_id in (
        posting_workflow_id(store_id, txn_id),
        legacy_posting_workflow_id(store_id, txn_id),
    ):
        handle = client.get_workflow_handle_for(SalePosting.run, wf_id)
        try:
            found = await handle.query(SalePosting.status)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            continue
        # An old id is shared by colliding sales: only trust it when it is this sale's.
        if found.key in (None, sale_key(store_id, txn_id)):
            own = found
            break
    if own is not None and own.status is not SaleStatus.REJECTED:
        return own
    try:
        store = visibility_literal(store_id, "store_id")
    except ValueError:
        return own  # no ledger can be looked up by such a store id without changing the query
    query = f'WorkflowType = "StoreLedger" AND StoreId = {store}'
    async for wf in client.list_workflows(query, limit=20):
        ledger = client.get_workflow_handle_for(StoreLedger.run, wf.id, run_id=wf.run_id)
        trace = (await ledger.query(StoreLedger.sale_traces, [txn_id]))[txn_id]
        state = trace.status
        if state == "posted":
            # In summary mode: the summary entry that holds the sale, and its picking (whose
            # origin is the summary's ref).
            return SalePostingResult(
                key=sale_key(store_id, txn_id),
                status=SaleStatus.POSTED,
                move_name=trace.move_name,
                picking_name=trace.picking_name,
                stock_origin=trace.summary_ref,
                summary_ref=trace.summary_ref,
            )
        if state == "pending":
            return SalePostingResult(key=sale_key(store_id, txn_id), status=SaleStatus.POSTING)
    return own


async def _current_status(handle: WorkflowHandle[Any, Any]) -> SaleStatus | None:
    desc = await handle.describe()
    value = desc.typed_search_attributes.get(RETAIL_STATUS)
    return SaleStatus(value) if value else None


async def wait_until_settled(
    client: Client, submitted: list[Submitted], timeout: timedelta, poll: float = 0.5
) -> dict[str, SalePostingResult]:
    """Wait until every submitted sale is posted or in an exception state; results by workflow
    id of the sale (`sale:S:T`). Sales that were not submitted (`failed`) are skipped. Raises
    TimeoutError naming what is still open."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout.total_seconds()
    gate = asyncio.Semaphore(20)
    # A sale that was not submitted (`failed`, no workflow id) has nothing to wait for.
    followed = [s for s in submitted if s.submission is not Submission.FAILED and s.workflow_id]
    # Queued sales, and batched duplicates a ledger answered for, are followed in their ledger.
    in_ledger = [s for s in followed if s.workflow_id.startswith(LEDGER_PREFIX)]
    sale_ids = {s.workflow_id for s in followed if s not in in_ledger}
    queued: dict[str, tuple[str, set[str]]] = {}
    settled: dict[str, SalePostingResult] = {}
    for s in in_ledger:
        if not (s.store_id and s.txn_id):
            continue
        if s.ledger_state == "posted":
            wf_id = posting_workflow_id(s.store_id, s.txn_id)
            settled[wf_id] = SalePostingResult(
                key=sale_key(s.store_id, s.txn_id), status=SaleStatus.POSTED
            )
        else:
            queued.setdefault(s.workflow_id, (s.store_id, set()))[1].add(s.txn_id)

    async def check_sale(wf_id: str) -> None:
        async with gate:
            handle = client.get_workflow_handle(wf_id)
            try:
                status = await _current_status(handle)
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND:
                    return  # handed off by a ledger, not started yet: look again next round
                raise
            if status in FINAL:
                if status is SaleStatus.POSTED:
                    settled[wf_id] = SalePostingResult(key=None, status=status)
                else:
                    settled[wf_id] = await handle.query(SalePosting.status)

    async def check_ledger(ledger_id: str, store: str, txns: set[str]) -> None:
        handle = client.get_workflow_handle_for(StoreLedger.run, ledger_id)
        states = await handle.query(StoreLedger.sale_statuses, sorted(txns))
        for txn, state in states.items():
            wf_id = posting_workflow_id(store, txn)
            if state == "posted":
                settled[wf_id] = SalePostingResult(
                    key=sale_key(store, txn), status=SaleStatus.POSTED
                )
                txns.discard(txn)
            elif state == "exception":
                sale_ids.add(wf_id)
                txns.discard(txn)

    while True:
        open_sales = [w for w in sale_ids if w not in settled]
        await asyncio.gather(
            *(check_sale(w) for w in open_sales),
            *(check_ledger(lid, store, txns) for lid, (store, txns) in queued.items() if txns),
        )
        remaining = [w for w in sale_ids if w not in settled] + [
            f"{lid}:{t}" for lid, (_, txns) in queued.items() for t in txns
        ]
        if not remaining:
            return settled
        if loop.time() > deadline:
            raise TimeoutError(
                f"{len(remaining)} sales still open after {timeout}: {', '.join(remaining[:10])}"
            )
        await asyncio.sleep(poll)
