"""CatalogSync: Odoo's product master to every store's catalog, incrementally (docs/catalog.md).

Run by the `catalog-sync` Schedule every few minutes and on demand (`retailflow catalog sync`).
Each run reads the catalog version every target store holds, starts from the earliest (a store
that was offline catches up from its own last confirmed version), and reads Odoo's changed
products page by page along the cursor (domain/catalog.py). Each page is one command to each
store still behind it, command-and-confirm as the price rollout does: sent in batches, confirmed
by polling with backoff, resent to stragglers. A store that does not confirm a page by the
deadline gets no later page in this run (its version must never jump over a page it missed);
the next run resumes it from its version. Items a store refuses (a bad barcode, a duplicate SKU)
are kept with the store's reason: the run ends `NeedsAttention`, `retailflow catalog exceptions`
lists them. `--full` then withdraws from each caught-up store what Odoo no longer has.

The cursor, the stores' positions and the report are carried across continue-as-new, so a full
sync of 20,000 products to thousands of stores keeps each history small.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.catalog import (
        CatalogActivities,
        CommandRefs,
        CommandState,
        Outcome,
        PublishInput,
        StoreAnswers,
        StoreCatalogPageInput,
        VersionsInput,
    )
    from activities.odoo.catalog import (
        OdooCatalogActivities,
        ProductPage,
        ProductStatesInput,
        ReadProductsInput,
        Stream,
    )
    from activities.pos import ListStoresInput, PosActivities
    from domain.catalog import (
        BadVersion,
        CatalogCursor,
        Cursor,
        MappedPage,
        Withdrawal,
        cursor_of_version,
        horizon_of,
        withdrawals_for,
    )
    from domain.ids import SEPARATOR, business_id
    from domain.pricing import StoreTarget, TargetKind
    from workflows.policies import POS_LISTING, POS_READ, odoo_chunk_write
    from workflows.search_attributes import show_status

SYNC_KIND = "catalog-sync"
SCHEDULE_ID = "catalog-sync"
# Stores per activity call (inputs and results stay far below Temporal's payload limit).
STORES_PER_CALL = 500
PER_CALL = 50
SEND_ROUND = timedelta(seconds=20)
RESEND_FIRST = timedelta(seconds=1)
RESEND_MAX = timedelta(seconds=30)
POLL_MAX = timedelta(seconds=30)
HEARTBEAT = timedelta(seconds=30)
POS_BATCH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "heartbeat_timeout": HEARTBEAT,
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
}
# At most this many refused items are kept in the report with their reasons (then counted).
MAX_EXCEPTIONS = 1000
STORE_PAGE = 1000


def sync_workflow_id(sync_id: str) -> str:
    return business_id(SYNC_KIND, sync_id)


def catalog_command_id(sync_id: str, store_id: str, page: int | str) -> str:
    """`catalog-sync:{sync}:{store}:{page}`: a retried send is the same command (<= 200
    characters: a long sync id is shortened to a digest)."""
    sync = sync_id.replace(SEPARATOR, "_")
    if len(sync) > 80:
        sync = hashlib.sha256(sync.encode()).hexdigest()[:32]
    return business_id(SYNC_KIND, sync, store_id, str(page))


class SyncStatus(StrEnum):
    SYNCING = "Syncing"
    COMPLETED = "Completed"
    NEEDS_ATTENTION = "NeedsAttention"
    REJECTED = "Rejected"


class CatalogException(BaseModel):
    """An item a store refused, or a product no store can take (store `*`), with why."""

    store_id: str
    sku: str | None
    odoo_id: int | None
    reason: str


class CatalogSyncReport(BaseModel):
    sync_id: str = ""
    status: SyncStatus = SyncStatus.SYNCING
    full: bool = False
    stores: int = 0
    pages: int = 0
    products_read: int = 0
    upserts: int = 0
    withdrawals: int = 0
    commands_sent: int = 0
    # Stores that got every page of the run, and their catalog version at its end.
    caught_up: int = 0
    version: str | None = None
    # Stores left behind this run (offline, refusing commands), with why: the next run
    # resumes each from its own version.
    behind: dict[str, str] = {}
    exceptions: list[CatalogException] = []
    exception_count: int = 0
    reasons: list[str] = []


class Carry(BaseModel):
    """What a run hands to its continuation."""

    cursor: CatalogCursor
    stream: Stream
    known: dict[str, str | None]  # store -> the version it holds, as far as this run knows
    active: list[str]  # stores still taking pages this run
    page_no: int
    full_done: list[str] = []
    # Stores whose known version moved past what they were sent (pages with nothing to publish).
    unsent: list[str] = []
    report: CatalogSyncReport
    # Stores record versions capped at this second (None: a run begun before the cap).
    horizon: str | None = None
    # The seconds the sync's variants stream read (None: a run begun before it was kept).
    variants_read: tuple[str, str] | None = None


class CatalogSyncInput(BaseModel):
    sync_id: str = ""  # "" = the workflow id
    full: bool = False
    stores: list[str] | None = None  # None: every store of the POS platform
    page_size: int = 200
    concurrency: int = 100
    confirm_within: timedelta = timedelta(minutes=10)
    # The first poll for a page's confirmations, then doubling to POLL_MAX.
    poll_every: timedelta = timedelta(milliseconds=500)
    pages_per_run: int = 20
    # Writes newer than this are published at once but read again by the next sync: one that
    # commits late (Odoo's write_date is its transaction's start) is not skipped. Odoo's
    # default limit_time_real (120 s) bounds an HTTP request's transaction. Even with 0, the
    # run's own start second is read again (a record can be written twice in one second).
    settle: timedelta = timedelta(seconds=120)
    carry: Carry | None = None


def _later(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def start_cursor(versions: list[str | None], values: bool = True) -> CatalogCursor:
    """Each stream from the earliest position any store holds (the attribute values' from the
    start for a store whose version does not follow them). `values` False: a sync that does
    not follow the attribute values (begun before it existed)."""
    cursors = [cursor_of_version(v) for v in versions] or [CatalogCursor()]
    return CatalogCursor(
        variants=min((c.variants for c in cursors), key=Cursor.token),
        templates=min((c.templates for c in cursors), key=Cursor.token),
        values=min((c.values or Cursor() for c in cursors), key=Cursor.token) if values else None,
    )


@workflow.defn
class CatalogSync:
    def __init__(self) -> None:
        self._report = CatalogSyncReport()
        self._unsent: set[str] = set()

    @workflow.run
    async def run(self, input: CatalogSyncInput) -> CatalogSyncReport:
        sync_id = input.sync_id or workflow.info().workflow_id
        if input.carry is not None:
            c = input.carry
            self._report = c.report
            cursor, stream, known, active = c.cursor, c.stream, c.known, c.active
            page_no, full_done, horizon = c.page_no, c.full_done, c.horizon
            self._unsent = set(c.unsent)
            variants_read = c.variants_read
        else:
            self._report = CatalogSyncReport(sync_id=sync_id, full=input.full)
            self._status(SyncStatus.SYNCING)
            begun = await self._begin(input)
            if begun is None:
                return self._finish(SyncStatus.REJECTED)
            known, active = begun
            cursor = start_cursor(
                [known[s] for s in active], values=workflow.patched("catalog-values-stream")
            )
            stream, page_no, full_done = Stream.VARIANTS, 0, []
            variants_read = (cursor.variants.stamp, horizon_of(workflow.now(), timedelta(0)))
            horizon = (
                horizon_of(workflow.now(), input.settle)
                if workflow.patched("catalog-settle")
                else None
            )
        rep = self._report
        pages_this_run = 0
        # The next page is read while this one is published (reading moves nothing).
        prefetch = workflow.patched("catalog-prefetch")
        prefetched: asyncio.Task[ProductPage] | None = None
        # A stream's last page goes out with the position after the next streams' pages that
        # have nothing to publish (their variants were read already): a store's version then
        # moves past them, and the next sync does not read them again.
        absorb = workflow.patched("catalog-absorb")
        held: ProductPage | None = None  # read ahead, for `stream`

        def take(read_page: ProductPage) -> None:
            """Count a page read and move past it, keeping what no store can take."""
            nonlocal page_no, pages_this_run, cursor
            page_no += 1
            pages_this_run += 1
            rep.pages += 1
            rep.products_read += read_page.rows
            cursor = read_page.cursor
            for u in read_page.page.unpublishable:
                self._exception("*", u.sku, u.odoo_id, u.reason)

        def next_stream(of: Stream) -> Stream | None:
            if of is Stream.VARIANTS:
                return Stream.TEMPLATES
            if of is Stream.TEMPLATES and cursor.values is not None:
                return Stream.VALUES
            return None

        def read(at: CatalogCursor, of: Stream, number: int) -> Awaitable[ProductPage]:
            return workflow.execute_activity_method(
                OdooCatalogActivities.read_changed_products,
                ReadProductsInput(
                    cursor=at,
                    stream=of,
                    limit=input.page_size,
                    variants_read=None if of is Stream.VARIANTS else variants_read,
                    horizon=horizon,
                ),
                summary=f"{of.value} page {number}",
                **odoo_chunk_write(input.page_size),
            )

        def carry_on() -> None:
            workflow.continue_as_new(
                input.model_copy(
                    update={
                        "sync_id": sync_id,
                        "carry": Carry(
                            cursor=cursor,
                            stream=stream,
                            known=known,
                            active=active,
                            page_no=page_no,
                            full_done=full_done,
                            unsent=sorted(self._unsent),
                            report=rep,
                            horizon=horizon,
                            variants_read=variants_read,
                        ),
                    }
                )
            )

        while active:
            if held is not None:
                page, held = held, None
            elif prefetched is not None:
                page, prefetched = await prefetched, None
            else:
                if pages_this_run >= input.pages_per_run or (
                    workflow.info().is_continue_as_new_suggested()
                ):
                    carry_on()
                page = await read(cursor, stream, page_no + 1)
            if page.rows == 0:
                following = next_stream(stream)
                if following is None:
                    break
                stream = following
                continue
            take(page)
            while absorb and not page.more and (following := next_stream(stream)) is not None:
                ahead = await read(cursor, following, page_no + 1)
                stream = following
                if ahead.rows == 0:
                    continue
                if ahead.more or ahead.page.upserts or ahead.page.withdrawals:
                    held = ahead  # something to publish: a page of its own
                    break
                take(ahead)
            if prefetch and page.more and pages_this_run < input.pages_per_run:
                prefetched = asyncio.ensure_future(read(cursor, stream, page_no + 1))
            # A store already at (or past) this page's position has it. A store records the
            # position capped at the horizon (domain/catalog.py), never past it.
            version = cursor.version()
            recorded = cursor.capped(horizon).version()
            targets = [s for s in active if (known.get(s) or "") < version]
            if targets and (page.page.upserts or page.page.withdrawals):
                # A store never records an earlier version than it holds (a sync with a
                # shorter settle may have put it past this horizon): the store would take the
                # command as stale and ignore it.
                rep.upserts += len(page.page.upserts)
                rep.withdrawals += len(page.page.withdrawals)
                by_version: dict[str, list[str]] = {}
                for s in targets:
                    by_version.setdefault(max(recorded, known.get(s) or ""), []).append(s)
                for v, stores in sorted(by_version.items()):
                    await self._publish(input, sync_id, page_no, v, page.page, stores, known)
            else:
                for s in targets:
                    known[s] = _later(known.get(s), recorded)  # the next page carries it
                    self._unsent.add(s)
            active = [s for s in active if s not in rep.behind]
            self._progress(len(active))
        if prefetched is not None:
            prefetched.cancel()  # every store fell behind: nobody to publish to

        # A store whose last pages had nothing to publish (their variants were read already)
        # is sent its version alone: the next sync starts past those pages, not before them.
        if workflow.patched("catalog-version-only"):
            lagging: dict[str, list[str]] = {}
            for s in active:
                if s in self._unsent and known.get(s) is not None:
                    lagging.setdefault(known[s] or "", []).append(s)
            for v, stores in sorted(lagging.items()):
                await self._publish(input, sync_id, "end", v, MappedPage(), stores, known)
            active = [s for s in active if s not in rep.behind]

        if input.full:
            for store in [s for s in active if s not in full_done]:
                if workflow.info().is_continue_as_new_suggested():
                    carry_on()
                await self._withdraw_gone(input, sync_id, store, known)
                full_done.append(store)
            active = [s for s in active if s not in rep.behind]

        # Stores whose last page carried no items still hold their earlier version: those are
        # not behind, only unchanged.
        rep.caught_up = len(active)
        rep.version = cursor.capped(horizon).version() if active else None
        return self._finish(
            SyncStatus.NEEDS_ATTENTION if rep.exception_count else SyncStatus.COMPLETED
        )

    async def _begin(
        self, input: CatalogSyncInput
    ) -> tuple[dict[str, str | None], list[str]] | None:
        """The target stores and the version each holds; None when the input is refused."""
        rep = self._report
        try:
            target = (
                StoreTarget(kind=TargetKind.LIST, stores=tuple(input.stores))
                if input.stores
                else StoreTarget(kind=TargetKind.ALL)
            )
        except ValueError as e:
            rep.reasons = [f"stores: {str(e).splitlines()[-1]}"]
            return None
        try:
            stores = (
                await workflow.execute_activity_method(
                    PosActivities.list_stores, ListStoresInput(target=target), **POS_LISTING
                )
            ).stores
        except ActivityError as e:
            rep.reasons = [f"stores: {e.cause or e}"]
            return None
        rep.stores = len(stores)
        known: dict[str, str | None] = {}
        active: list[str] = []
        for chunk in [stores[i : i + STORES_PER_CALL] for i in range(0, len(stores), 500)]:
            read = await workflow.execute_activity_method(
                CatalogActivities.catalog_versions,
                VersionsInput(stores=chunk, concurrency=PER_CALL),
                **POS_BATCH,
            )
            for store, why in read.unreached.items():
                rep.behind[store] = f"version not readable: {why}"
            for store, version in read.versions.items():
                try:
                    cursor_of_version(version)
                except BadVersion as e:
                    rep.behind[store] = str(e)
                    continue
                known[store] = version
                active.append(store)
        return known, sorted(active)

    async def _publish(
        self,
        input: CatalogSyncInput,
        sync_id: str,
        page_no: int | str,
        version: str,
        page: MappedPage,
        targets: list[str],
        known: dict[str, str | None],
    ) -> None:
        """Command-and-confirm one page to the target stores, until each has applied it (or
        found it stale), refused it, or the deadline passed."""
        rep = self._report
        commands = {s: catalog_command_id(sync_id, s, page_no) for s in targets}
        open_ = set(targets)
        accepted: set[str] = set()
        last_error: dict[str, str] = {}
        deadline = workflow.now() + input.confirm_within
        resend_after, poll_after = RESEND_FIRST, input.poll_every
        next_send, next_poll = workflow.now(), workflow.now() + input.poll_every

        def took(answers: StoreAnswers) -> None:
            for store, a in answers.stores.items():
                if store not in open_:
                    continue
                if a.outcome is Outcome.UNREACHED:
                    last_error[store] = a.reason or "no answer"
                elif a.outcome is Outcome.REFUSED:
                    open_.discard(store)
                    rep.behind[store] = f"page {page_no} refused: {a.reason}"
                elif a.state is CommandState.UNKNOWN:
                    accepted.discard(store)
                elif a.state in (CommandState.APPLIED, CommandState.STALE):
                    open_.discard(store)
                    self._unsent.discard(store)
                    known[store] = _later(known.get(store), version)
                    for r in a.refused:
                        self._exception(store, r.sku, r.odoo_id, r.reason)
                else:
                    accepted.add(store)

        async def batches(calls: list[Callable[[], Awaitable[None]]]) -> None:
            gate = asyncio.Semaphore(max(1, input.concurrency // PER_CALL))

            async def gated(call: Callable[[], Awaitable[None]]) -> None:
                async with gate:
                    await call()

            await asyncio.gather(*(gated(c) for c in calls))

        def send(chunk: list[str]) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                rep.commands_sent += len(chunk)
                try:
                    took(
                        await workflow.execute_activity_method(
                            CatalogActivities.publish_catalog,
                            PublishInput(
                                commands={s: commands[s] for s in chunk},
                                version=version,
                                upserts=page.upserts,
                                withdrawals=page.withdrawals,
                                give_up_at=min(deadline, workflow.now() + SEND_ROUND),
                                concurrency=PER_CALL,
                            ),
                            start_to_close_timeout=SEND_ROUND + timedelta(minutes=2),
                            heartbeat_timeout=HEARTBEAT,
                            retry_policy=RetryPolicy(
                                initial_interval=timedelta(seconds=1), maximum_attempts=3
                            ),
                            summary=f"page {page_no} to {len(chunk)} stores",
                        )
                    )
                except ActivityError as e:
                    for s in chunk:
                        last_error[s] = str(e.cause or e)[:300]

            return call

        def poll(chunk: list[str]) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                try:
                    took(
                        await workflow.execute_activity_method(
                            CatalogActivities.catalog_command_statuses,
                            CommandRefs(commands={s: commands[s] for s in chunk}),
                            summary=f"page {page_no}: {len(chunk)} statuses",
                            **POS_BATCH,
                        )
                    )
                except ActivityError:
                    pass  # unreachable right now: asked again at the next poll

            return call

        def split(stores: list[str]) -> list[list[str]]:
            return [stores[i : i + STORES_PER_CALL] for i in range(0, len(stores), 500)]

        while open_ and workflow.now() < deadline:
            now = workflow.now()
            unsent = sorted(open_ - accepted)
            if unsent and now >= next_send:
                await batches([send(c) for c in split(unsent)])
                next_send = workflow.now() + resend_after
                resend_after = min(resend_after * 2, RESEND_MAX)
                continue
            waiting = sorted(open_ & accepted)
            if waiting and now >= next_poll:
                await batches([poll(c) for c in split(waiting)])
                next_poll = workflow.now() + poll_after
                poll_after = min(poll_after * 2, POLL_MAX)
                continue
            wake = min(deadline, next_poll if waiting else deadline)
            if unsent:
                wake = min(wake, next_send)
            await asyncio.sleep(max((wake - now).total_seconds(), 0.001))
        for store in sorted(open_):
            why = (
                "accepted but not applied"
                if store in accepted
                else f"not reachable ({last_error.get(store, 'no answer')})"
            )
            rep.behind[store] = f"page {page_no}: {why} by {deadline.isoformat()}"

    async def _withdraw_gone(
        self, input: CatalogSyncInput, sync_id: str, store: str, known: dict[str, str | None]
    ) -> None:
        """--full: withdraw from the store what Odoo no longer has, or has archived."""
        after: str | None = None
        n = 0
        while True:
            held = await workflow.execute_activity_method(
                CatalogActivities.store_catalog_page,
                StoreCatalogPageInput(store_id=store, after_sku=after, limit=STORE_PAGE),
                **POS_READ,
            )
            if held.items:
                states = await workflow.execute_activity_method(
                    OdooCatalogActivities.product_states,
                    ProductStatesInput(odoo_ids=[i.odoo_id for i in held.items]),
                    **odoo_chunk_write(len(held.items) // 10),
                )
                gone: list[Withdrawal] = withdrawals_for(
                    [i.model_dump() for i in held.items], states.active
                )
                if gone:
                    n += 1
                    self._report.withdrawals += len(gone)
                    # The store's own version: the withdrawal is not older than what it holds.
                    version = known.get(store) or CatalogCursor().version()
                    await self._publish(
                        input,
                        sync_id,
                        f"full-{n}",
                        version,
                        MappedPage(withdrawals=gone),
                        [store],
                        known,
                    )
                    if store in self._report.behind:
                        return
            if held.next_after_sku is None:
                return
            after = held.next_after_sku

    def _exception(self, store: str, sku: str | None, odoo_id: int | None, reason: str) -> None:
        """Keep a refusal once: a product read by more than one stream (its variant and its
        template written) is published, and refused, more than once in one sync. Once
        MAX_EXCEPTIONS are kept, a refusal not among them is counted each time."""
        rep = self._report
        got = CatalogException(store_id=store, sku=sku, odoo_id=odoo_id, reason=reason[:500])
        if got in rep.exceptions:
            return
        if len(rep.exceptions) < MAX_EXCEPTIONS:
            rep.exceptions.append(got)
        rep.exception_count += 1

    def _progress(self, active: int) -> None:
        rep = self._report
        show_status(
            rep.status.value,
            f"{rep.pages} pages, {active} stores taking pages",
            [f"{len(rep.behind)} stores behind, {rep.exception_count} refused items"],
        )

    def _status(self, status: SyncStatus) -> None:
        self._report.status = status
        show_status(status.value, f"{self._report.pages} pages")

    def _finish(self, status: SyncStatus) -> CatalogSyncReport:
        self._report.status = status
        rep = self._report
        show_status(
            status.value,
            f"{rep.pages} pages, {rep.caught_up} of {rep.stores} stores caught up",
            [f"{len(rep.behind)} stores behind, {rep.exception_count} refused items"],
            [*rep.reasons, *(f"{e.store_id} {e.sku}: {e.reason}" for e in rep.exceptions[:5])],
        )
        return rep

    @workflow.query
    def report(self) -> CatalogSyncReport:
        return self._report

    @workflow.query
    def exceptions(self) -> list[CatalogException]:
        return self._report.exceptions
