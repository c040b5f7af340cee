"""PriceRollout: command-and-confirm price changes to a store fleet, Odoo first.

Workflow id `price-rollout:{rollout_id}`. Validate (the rollout, its SKUs in Odoo, its stores on
the POS platform: all before any write) → write the pricelist items in Odoo, recording the old
prices → durable timer to the effective time → one `StorePriceCommand` child per store, with
bounded concurrency, each commanding its store and waiting for the confirmation (a signal from
the ingress callback, or a poll), resending until `confirm_within` → report confirmed / rejected
/ unreachable stores → past `max_failure_ratio`, or when ops cancel, compensate: restore the
old prices in every store that took the change and remove the items in Odoo.

A child per store keeps each history small (80 to 2,000 stores), lets ops find every command
sent to a store (`StoreId` search attribute), and makes the command id (= the child's workflow
id, `price-rollout:{rollout_id}:{store_id}`) the key a confirmation is routed by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    StringConstraints,
    ValidationError,
    field_serializer,
    model_validator,
)
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from activities.odoo.pricing import (
        ItemsInto,
        OdooPricingActivities,
        PreparePriceRolloutInput,
        PricelistItem,
        RemovePricelistItemsInput,
        WritePricelistItemsInput,
    )
    from activities.pos import (
        BATCH_CONCURRENCY,
        SEND_ROUND,
        BatchedPosActivities,
        CommandState,
        ListStoresInput,
        PosActivities,
        PriceCommandRef,
        PriceCommandRefs,
        PriceCommandStatus,
        SendOutcome,
        SendPriceCommandInput,
        SendPriceCommandsInput,
        StoreSend,
        StoreSends,
    )
    from domain.ids import SEPARATOR, BadIdPart, business_id
    from domain.pricing import PriceChange, Rollout, RolloutRejected, TargetKind, parse_rollout
    from workers.metrics_names import SDK_DUPLICATES_COUNTER
    from workflows.policies import POS_READ, odoo_chunk_write
    from workflows.search_attributes import RETAIL_STATUS, STORE_ID, status_details


ROLLOUT_KIND = "price-rollout"
# Rollouts started before ids were joined by ':' used '-', which rollout and store ids may
# contain: `R-1`+`S1` and `R`+`1-S1` were one command. Those still in flight keep their ids.
LEGACY_PREFIX = "price-rollout-"
COLON_IDS_PATCH = "price-rollout-colon-ids"
# Rollouts started before commands were sent in batches have one child workflow per store:
# they keep that path to their end (their histories replay it).
BATCHED_PATCH = "price-rollout-batched-commands"
REVERT = "revert"
# Rollouts to all stores started before their items went once into the base pricelist wrote
# one item per store and SKU: they keep doing so (and undo it so) to their end.
BASE_ITEMS_PATCH = "price-rollout-base-items"
# From this change on, a batched rollout keeps in its memo when its stores had to confirm by and
# how many have not (visibility listings return memos: metrics read them, no histories).
UNCONFIRMED_MEMO_PATCH = "price-rollout-unconfirmed-memo"
CONFIRM_BY_MEMO = "confirm_by"
UNCONFIRMED_MEMO = "unconfirmed_stores"


def count_duplicate_confirmation() -> None:
    """A store confirmed again what it had confirmed: absorbed, counted on the SDK metrics
    endpoint (the workflow metric meter records nothing while replaying)."""
    workflow.metric_meter().create_counter(
        SDK_DUPLICATES_COUNTER, "Resubmissions absorbed without acting twice, by kind"
    ).add(1, {"kind": "confirmation"})


def rollout_workflow_id(rollout_id: str) -> str:
    """`price-rollout:{rollout_id}`."""
    return business_id(ROLLOUT_KIND, rollout_id)


def legacy_rollout_workflow_id(rollout_id: str) -> str:
    """The id a rollout started by an older release has: look it up when the new one is absent."""
    return f"{LEGACY_PREFIX}{rollout_id}"


def command_id(rollout_id: str, store_id: str, revert: bool = False, legacy: bool = False) -> str:
    """`price-rollout:{rollout}:{store}` (`...:revert` for its compensation): the command's id
    at the store and the id of the child workflow a confirmation is routed to."""
    if legacy:
        return f"{LEGACY_PREFIX}{rollout_id}-{store_id}" + ("-revert" if revert else "")
    return business_id(ROLLOUT_KIND, rollout_id, store_id, *(["revert"] if revert else []))


def is_rollout_command_id(value: str) -> bool:
    """Whether a confirmation's command id can name a store command (new or legacy form)."""
    return value.startswith((f"{ROLLOUT_KIND}{SEPARATOR}", LEGACY_PREFIX))


class CommandRef(BaseModel):
    """What a `price-rollout:{rollout}:{store}[:revert]` command id names."""

    rollout_id: str
    store_id: str
    revert: bool = False


def parse_command_id(value: str) -> CommandRef | None:
    """The rollout, store and kind a command id names; None for anything else (the legacy
    `-` form included: it cannot be split unambiguously)."""
    parts = value.split(SEPARATOR)
    if len(parts) == 4 and parts[3] == REVERT:
        parts, revert = parts[:3], True
    else:
        revert = False
    if len(parts) != 3 or parts[0] != ROLLOUT_KIND or not all(parts[1:]):
        return None
    if any(p != p.strip() or not p.isprintable() for p in parts[1:]):
        return None
    return CommandRef(rollout_id=parts[1], store_id=parts[2], revert=revert)


# Items (or prices) per Odoo activity call: work that grows with the rollout is done in chunks
# that each fit an activity timeout (5,000 SKUs to 80 stores are 400,000 items).
CHUNK = 200

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def item_chunks(
    changes: list[PriceChange], stores: list[str], size: int = CHUNK
) -> list[tuple[list[PriceChange], list[str]]]:
    """(changes, stores) blocks of at most `size` items (one item per store and change)."""
    out: list[tuple[list[PriceChange], list[str]]] = []
    for change_chunk in chunks(changes, size):
        per_call = max(1, size // len(change_chunk))
        out.extend((change_chunk, store_chunk) for store_chunk in chunks(stores, per_call))
    return out


# Store and SKU pairs per call of a rollout to all stores that looks up (or removes) items in
# the stores' own pricelists: each call costs a few reads, and writes only for the stores whose
# own rules would shadow the base item (at most this many items).
LOOKUP = 5_000


# -- one store ------------------------------------------------------------------------------


class StoreOutcome(StrEnum):
    PENDING = "pending"
    COMMANDED = "commanded"  # accepted by the store, confirmation awaited
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StoreConfirmation(BaseModel):
    """What a store says back, delivered by the ingress callback as a signal."""

    model_config = ConfigDict(extra="ignore")

    platform_id: Name
    store_id: Name
    command_id: Name
    status: Literal["applied", "rejected"]
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    applied_at: datetime | None = None


# At most this many ignored signals are kept with their reasons (then only counted): a
# misbehaving sender cannot grow a history without bound.
MAX_IGNORED = 20


def invalid_reason(model: type[BaseModel], raw: Any) -> tuple[BaseModel | None, str | None]:
    """`raw` validated as `model`, or why not in one line naming the fields (never raises)."""
    if isinstance(raw, model):
        return raw, None
    try:
        return model.model_validate(raw), None
    except ValidationError as e:
        why = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
            for err in e.errors(include_url=False)
        )
        return None, why[:500]


class StoreCommandInput(BaseModel):
    rollout_id: str
    store_id: str
    command_id: str
    changes: list[PriceChange]
    effective_at: datetime
    deadline: datetime
    callback_url: str | None = None
    poll_every: timedelta = timedelta(seconds=30)


class StoreCommandResult(BaseModel):
    # In a rollout's report these are left out of the payload (the key and the rollout id
    # give them back): a 10,000-store report stays far below Temporal's 2 MB payload limit.
    store_id: str = ""
    command_id: str = ""
    outcome: StoreOutcome
    accepted: bool = False  # the store holds the command (it applies it, even if late)
    reason: str | None = None
    confirmed_at: datetime | None = None
    sends: int = 0
    polls: int = 0
    # Confirmations this command could not take (malformed, another store's), with why.
    ignored: list[str] = []
    ignored_count: int = 0


@workflow.defn
class StorePriceCommand:
    """Command one store and wait for its confirmation, resending until the deadline."""

    def __init__(self) -> None:
        self._confirmation: PriceCommandStatus | None = None
        self._result: StoreCommandResult | None = None

    @workflow.run
    async def run(self, input: StoreCommandInput) -> StoreCommandResult:
        r = self._result = StoreCommandResult(
            store_id=input.store_id, command_id=input.command_id, outcome=StoreOutcome.PENDING
        )
        workflow.upsert_search_attributes([STORE_ID.value_set(input.store_id)])
        try:
            await self._command(input, r)
        except asyncio.CancelledError:
            r.outcome = StoreOutcome.CANCELLED
            return r
        c = self._confirmation
        if c is not None and c.state is CommandState.APPLIED:
            r.outcome, r.confirmed_at = StoreOutcome.CONFIRMED, c.applied_at or workflow.now()
        elif c is not None and c.state is CommandState.REJECTED:
            r.outcome, r.reason = StoreOutcome.REJECTED, c.reason or "rejected by the store"
        elif r.outcome is not StoreOutcome.REJECTED:
            r.outcome = StoreOutcome.UNREACHABLE
            r.reason = r.reason or (
                f"accepted but not confirmed by {input.deadline.isoformat()}"
                if r.accepted
                else f"not reachable before {input.deadline.isoformat()}"
            )
        return r

    async def _command(self, input: StoreCommandInput, r: StoreCommandResult) -> None:
        while self._confirmation is None:
            remaining = input.deadline - workflow.now()
            if remaining <= timedelta(0):
                return
            if not r.accepted:
                r.sends += 1
                try:
                    status = await workflow.execute_activity_method(
                        PosActivities.send_price_command,
                        SendPriceCommandInput(
                            store_id=input.store_id,
                            command_id=input.command_id,
                            changes=input.changes,
                            effective_at=input.effective_at,
                            callback_url=input.callback_url,
                        ),
                        start_to_close_timeout=timedelta(seconds=10),
                        # Temporal resends with backoff until the deadline: an offline store
                        # is retried, never dropped early.
                        schedule_to_close_timeout=remaining,
                        retry_policy=RetryPolicy(
                            initial_interval=timedelta(seconds=1),
                            maximum_interval=timedelta(seconds=30),
                        ),
                    )
                except ActivityError as e:
                    if isinstance(e.cause, ApplicationError) and e.cause.non_retryable:
                        r.outcome, r.reason = StoreOutcome.REJECTED, e.cause.message
                    else:
                        # Retries ran out at the deadline; say what the last try met.
                        last = "" if isinstance(e.cause, TemporalTimeout) else f" ({e.cause})"
                        r.reason = f"not reachable before {input.deadline.isoformat()}{last}"
                    return
                r.accepted = status.state is not CommandState.UNKNOWN
                r.outcome = StoreOutcome.COMMANDED
                if status.state in (CommandState.APPLIED, CommandState.REJECTED):
                    self._confirmation = status
                    return
            wait = min(input.poll_every, input.deadline - workflow.now())
            if wait <= timedelta(0):
                return
            try:
                await workflow.wait_condition(lambda: self._confirmation is not None, timeout=wait)
                return
            except TimeoutError:
                pass
            # No confirmation yet: ask the store (the callback may have been lost).
            r.polls += 1
            try:
                status = await workflow.execute_activity_method(
                    PosActivities.price_command_status,
                    PriceCommandRef(store_id=input.store_id, command_id=input.command_id),
                    **POS_READ,
                )
            except ActivityError:
                continue  # unreachable right now; keep waiting for the callback
            if status.state in (CommandState.APPLIED, CommandState.REJECTED):
                self._confirmation = status
            elif status.state is CommandState.UNKNOWN:
                r.accepted = False  # the store lost it: send it again

    @workflow.signal
    def confirm(self, confirmation: Any) -> None:
        """A store's confirmation (a StoreConfirmation). Checked here rather than by the SDK's
        decoding: a malformed one is kept with its reason for ops, never fails the workflow."""
        parsed, why = invalid_reason(StoreConfirmation, confirmation)
        if self._result is None:
            return  # the run has not started: nothing can be waiting for it yet
        if isinstance(parsed, StoreConfirmation) and parsed.store_id != self._result.store_id:
            why = f"store_id: {parsed.store_id!r} is not this command's store"
        if why is not None or not isinstance(parsed, StoreConfirmation):
            self._ignore(f"confirmation ignored: {why}")
            return
        if self._confirmation is None:
            self._confirmation = PriceCommandStatus(
                state=CommandState(parsed.status),
                reason=parsed.reason,
                applied_at=parsed.applied_at,
            )
        else:
            count_duplicate_confirmation()

    def _ignore(self, why: str) -> None:
        r = self._result
        if r is None:
            return
        workflow.logger.warning("%s: %s", r.command_id, why)
        r.ignored_count += 1
        if len(r.ignored) < MAX_IGNORED:
            r.ignored.append(why)
        workflow.set_current_details(
            status_details(
                r.outcome.value, f"{r.ignored_count} signal(s) ignored", reasons=r.ignored[-3:]
            )
        )

    @workflow.query
    def state(self) -> StoreCommandResult | None:
        return self._result


# -- batched commands: a few history events per store, not a workflow ------------------------

# Stores per activity call: its input and result (about 100 bytes a store) stay small.
STORES_PER_CALL = 500
# Unreached stores are sent their command again after this, doubling up to RESEND_MAX.
RESEND_FIRST = timedelta(seconds=1)
RESEND_MAX = timedelta(seconds=30)
SEND_HEARTBEAT = timedelta(seconds=30)
# A status read of a few hundred stores, `BATCH_CONCURRENCY` at a time (10 s each at worst).
POS_BATCH_READ: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "heartbeat_timeout": SEND_HEARTBEAT,
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
}


class _Fleet:
    """The commands of one kind (the change, or its revert) to many stores, in the rollout's
    own state: per-store results, and how many are still open (neither confirmed, rejected nor
    given up)."""

    def __init__(self, revert: bool, stores: list[str], results: dict[str, StoreCommandResult]):
        self.revert = revert
        self.results = results
        for store in stores:
            results[store] = StoreCommandResult(outcome=StoreOutcome.PENDING)
        self.open = set(stores)
        self.last_error: dict[str, str] = {}
        self.closed = False


# -- the rollout ----------------------------------------------------------------------------


class RolloutStatus(StrEnum):
    REJECTED = "Rejected"  # invalid: nothing was changed anywhere
    SCHEDULED = "Scheduled"  # Odoo written, waiting for the effective time
    COMMANDING = "Commanding"
    COMPLETED = "Completed"
    COMPENSATING = "Compensating"
    COMPENSATED = "Compensated"


class PriceRolloutInput(BaseModel):
    rollout: dict[str, Any]
    pricelist: str = "Store prices"
    callback_url: str | None = None
    concurrency: int = 100
    poll_every: timedelta = timedelta(seconds=30)


class CancelRequest(BaseModel):
    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""


class RolloutProgress(BaseModel):
    rollout_id: str | None
    status: RolloutStatus | None
    total: int
    counts: dict[str, int]
    stores: dict[str, StoreOutcome]


class Compensation(BaseModel):
    why: str
    stores_reverted: list[str] = []
    stores_not_reverted: dict[str, str] = {}
    odoo_items_removed: int = 0


class RolloutReport(BaseModel):
    rollout_id: str | None
    status: RolloutStatus
    reasons: list[str] = []
    requested_by: str | None = None
    # The prices in force before the rollout, per SKU, and where a store's own pricelist gave
    # another: store -> SKU -> price. Compensation restores these.
    old_prices: dict[str, Decimal] = {}
    store_old_prices: dict[str, dict[str, Decimal]] = {}
    # How many pricelist items the rollout owns in Odoo (one per store and SKU; to all stores,
    # one per SKU in the base pricelist and one per SKU a store's own rules would shadow).
    odoo_items: int = 0
    stores: dict[str, StoreCommandResult] = {}
    failure_ratio: float = 0.0
    compensation: Compensation | None = None
    # Signals the rollout could not take (a malformed cancel or confirmation), with why.
    ignored_signals: list[str] = []
    ignored_count: int = 0
    # When Odoo held every item of the rollout, and when the first store was commanded (the
    # effective time, or later when writing Odoo took longer).
    odoo_written_at: datetime | None = None
    commanding_started_at: datetime | None = None

    @field_serializer("stores")
    def _compact_stores(
        self, stores: dict[str, StoreCommandResult], info: SerializationInfo
    ) -> dict[str, Any]:
        """Each store's result without what its key and the rollout id say, nor defaults."""
        mode = "json" if info.mode_is_json() else "python"
        out: dict[str, Any] = {}
        for store, r in stores.items():
            d = r.model_dump(mode=mode, exclude_defaults=True)
            if d.get("store_id") == store:
                del d["store_id"]
            if d.get("command_id") and d["command_id"] == _command_id_or_none(
                self.rollout_id, store
            ):
                del d["command_id"]
            out[store] = d
        return out

    @model_validator(mode="after")
    def _complete_stores(self) -> RolloutReport:
        for store, r in self.stores.items():
            if not r.store_id:
                r.store_id = store
            if not r.command_id:
                r.command_id = _command_id_or_none(self.rollout_id, store) or ""
        return self


def _command_id_or_none(rollout_id: str | None, store: str) -> str | None:
    try:
        return command_id(rollout_id, store) if rollout_id else None
    except BadIdPart:
        return None


@workflow.defn
class PriceRollout:
    def __init__(self) -> None:
        self._report = RolloutReport(rollout_id=None, status=RolloutStatus.SCHEDULED)
        self._states: dict[str, StoreOutcome] = {}
        self._counts: dict[str, int] = {}
        self._failures = 0
        self._cancel: CancelRequest | None = None
        self._legacy_ids = False
        self._product_ids: dict[str, int] = {}
        # Batched commands (no child per store): the commands of each kind (the change, its
        # revert) and their results, which confirmations update as they arrive.
        self._batched = False
        self._fleets: dict[bool, _Fleet] = {}
        self._rollout_id: str | None = None
        # A rollout to all stores: its items are in the base pricelist (BASE_ITEMS_PATCH).
        self._base_items = False

    @workflow.run
    async def run(self, input: PriceRolloutInput) -> RolloutReport:
        # A rollout started by an older release keeps its '-' command ids (its children exist).
        self._legacy_ids = not workflow.patched(COLON_IDS_PATCH)
        self._batched = workflow.patched(BATCHED_PATCH)
        rep = self._report
        raw_id = input.rollout.get("rollout_id")
        rep.rollout_id = raw_id if isinstance(raw_id, str) else None
        try:
            rollout = parse_rollout(input.rollout)
        except RolloutRejected as e:
            rep.reasons = [str(err) for err in e.errors]
            return self._finish(RolloutStatus.REJECTED)
        rep.requested_by = rollout.requested_by
        self._rollout_id = rollout.rollout_id

        # Everything that can refuse the rollout runs before the first write.
        try:
            stores = (
                await workflow.execute_activity_method(
                    PosActivities.list_stores, ListStoresInput(target=rollout.target), **POS_READ
                )
            ).stores
            if not stores:
                rep.reasons = [f"target: no store matches {rollout.target}"]
                return self._finish(RolloutStatus.REJECTED)
            for changes in chunks(rollout.changes, CHUNK):
                prepared = await workflow.execute_activity_method(
                    OdooPricingActivities.prepare_price_rollout,
                    PreparePriceRolloutInput(
                        changes=changes,
                        at=rollout.effective_at,
                        pricelist=input.pricelist,
                        stores=stores,
                    ),
                    **odoo_chunk_write(len(changes)),
                )
                self._product_ids.update(prepared.product_ids)
                rep.old_prices.update(prepared.old_prices)
                for store, prices in prepared.store_old_prices.items():
                    rep.store_old_prices.setdefault(store, {}).update(prices)
        except ActivityError as e:
            if isinstance(e.cause, ApplicationError) and e.cause.non_retryable:
                rep.reasons = [f"{e.cause.type}: {e.cause.message}"]
                return self._finish(RolloutStatus.REJECTED)
            raise
        for store in stores:
            self._set_state(store, StoreOutcome.PENDING)

        # Odoo, the system of record, first.
        self._base_items = rollout.target.kind is TargetKind.ALL and workflow.patched(
            BASE_ITEMS_PATCH
        )
        for changes, store_chunk, into in self._odoo_writes(rollout, stores):
            written = await workflow.execute_activity_method(
                OdooPricingActivities.write_pricelist_items,
                WritePricelistItemsInput(
                    rollout_id=rollout.rollout_id,
                    pricelist=input.pricelist,
                    stores=store_chunk,
                    items=[
                        PricelistItem(
                            product_id=self._product_ids[c.sku],
                            price=c.price,
                            start=rollout.window_of(c)[0],
                            end=rollout.window_of(c)[1],
                        )
                        for c in changes
                    ],
                    into=into,
                ),
                **odoo_chunk_write(len(changes) * max(1, len(store_chunk))),
            )
            rep.odoo_items += written.written
        rep.odoo_written_at = workflow.now()
        self._set_status(RolloutStatus.SCHEDULED)

        wait = rollout.effective_at - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._cancel is not None, timeout=wait)
            except TimeoutError:
                pass
        if self._cancel is None:
            self._set_status(RolloutStatus.COMMANDING)
            rep.commanding_started_at = workflow.now()
            if self._batched:
                await self._command_fleet(input, rollout, stores)
            else:
                await self._command_stores(input, rollout, stores)

        failed = [s for s, r in rep.stores.items() if r.outcome is not StoreOutcome.CONFIRMED]
        rep.failure_ratio = len(failed) / len(stores)
        why = None
        if self._cancel is not None:
            why = f"cancelled by {self._cancel.by}: {self._cancel.reason}".rstrip(": ")
        elif rep.failure_ratio > rollout.max_failure_ratio:
            why = (
                f"{len(failed)} of {len(stores)} stores failed ({rep.failure_ratio:.1%}), over "
                f"the {rollout.max_failure_ratio:.1%} threshold"
            )
        if why is None:
            return self._finish(RolloutStatus.COMPLETED)
        if self._batched:
            await self._compensate_fleet(input, rollout, why)
        else:
            await self._compensate(input, rollout, why)
        return self._finish(RolloutStatus.COMPENSATED)

    def _odoo_writes(
        self, rollout: Rollout, stores: list[str]
    ) -> list[tuple[list[PriceChange], list[str], ItemsInto]]:
        """The write calls: a rollout to some stores puts an item per store and SKU in their
        own pricelists. One to all stores puts an item per SKU in the base pricelist, which
        every store falls back to, then one per SKU in the stores whose own rules for it would
        shadow the base item (so the newest rollout still wins there): items grow with the
        distinct prices, not with stores times SKUs."""
        if not self._base_items:
            return [(c, s, ItemsInto.STORES) for c, s in item_chunks(rollout.changes, stores)]
        out: list[tuple[list[PriceChange], list[str], ItemsInto]] = []
        for changes in chunks(rollout.changes, CHUNK):
            out.append((changes, [], ItemsInto.BASE))
            per_call = max(1, LOOKUP // len(changes))
            out.extend((changes, s, ItemsInto.OVERRIDES) for s in chunks(stores, per_call))
        return out

    def _odoo_removals(
        self, rollout: Rollout, stores: list[str]
    ) -> list[tuple[list[PriceChange], list[str], bool]]:
        """The remove calls, undoing `_odoo_writes` (the base items go with the first)."""
        if not self._base_items:
            return [(c, s, False) for c, s in item_chunks(rollout.changes, stores)]
        out: list[tuple[list[PriceChange], list[str], bool]] = []
        for changes in chunks(rollout.changes, CHUNK):
            per_call = max(1, LOOKUP // len(changes))
            out.extend((changes, s, i == 0) for i, s in enumerate(chunks(stores, per_call) or [[]]))
        return out

    async def _remove_items(self, input: PriceRolloutInput, rollout: Rollout) -> int:
        removed = 0
        for changes, store_chunk, base in self._odoo_removals(rollout, sorted(self._states)):
            done = await workflow.execute_activity_method(
                OdooPricingActivities.remove_pricelist_items,
                RemovePricelistItemsInput(
                    rollout_id=rollout.rollout_id,
                    pricelist=input.pricelist,
                    stores=store_chunk,
                    product_ids=[self._product_ids[c.sku] for c in changes],
                    base=base,
                ),
                **odoo_chunk_write(len(changes) * max(1, len(store_chunk))),
            )
            removed += done.removed
        return removed

    async def _command_stores(
        self, input: PriceRolloutInput, rollout: Rollout, stores: list[str]
    ) -> None:
        deadline = workflow.now() + rollout.confirm_within
        gate = asyncio.Semaphore(input.concurrency)
        max_failures = rollout.max_failure_ratio * len(stores)
        handles: dict[str, workflow.ChildWorkflowHandle[Any, StoreCommandResult]] = {}

        def stopping() -> bool:
            return self._cancel is not None or self._failures > max_failures

        async def one(store: str) -> None:
            async with gate:
                if stopping():
                    return
                self._set_state(store, StoreOutcome.COMMANDED)
                handle = await self._command_store(
                    input, rollout, store, rollout.changes, rollout.effective_at, deadline
                )
                handles[store] = handle
                result = await handle
                del handles[store]
                self._report.stores[store] = result
                self._set_state(store, result.outcome)
                if result.outcome is not StoreOutcome.CONFIRMED:
                    self._failures += 1
                self._update_details()

        async def watch() -> None:
            # Ops cancelled, or the threshold is already certain to be exceeded: stop waiting.
            await workflow.wait_condition(stopping)
            for h in list(handles.values()):
                h.cancel()

        watcher = asyncio.ensure_future(watch())
        await asyncio.gather(*(one(s) for s in stores))
        watcher.cancel()
        for store in [s for s, state in self._states.items() if state is StoreOutcome.PENDING]:
            self._report.stores[store] = StoreCommandResult(
                store_id=store,
                command_id=command_id(rollout.rollout_id, store, legacy=self._legacy_ids),
                outcome=StoreOutcome.CANCELLED,
                reason="not commanded: the rollout stopped first",
            )
            self._set_state(store, StoreOutcome.CANCELLED)

    async def _compensate(self, input: PriceRolloutInput, rollout: Rollout, why: str) -> None:
        """Stores that took the change get the old prices back; Odoo loses the new items."""
        self._set_status(RolloutStatus.COMPENSATING)
        comp = self._report.compensation = Compensation(why=why)

        def old(store: str) -> list[PriceChange]:
            own = self._report.store_old_prices.get(store, {})
            return [
                PriceChange(
                    sku=c.sku,
                    price=own.get(c.sku, self._report.old_prices[c.sku]),
                    currency=c.currency,
                )
                for c in rollout.changes
            ]

        # A store that rejected the change never applied it; any other that holds the command
        # (or may: a command cancelled in flight) gets the old prices back.
        touched = [
            s
            for s, r in self._report.stores.items()
            if r.outcome is not StoreOutcome.REJECTED
            and (r.accepted or r.outcome in (StoreOutcome.CONFIRMED, StoreOutcome.CANCELLED))
        ]
        deadline = workflow.now() + rollout.confirm_within
        gate = asyncio.Semaphore(input.concurrency)

        async def revert(store: str) -> None:
            async with gate:
                handle = await self._command_store(
                    input, rollout, store, old(store), workflow.now(), deadline, revert=True
                )
                result = await handle
                if result.outcome is StoreOutcome.CONFIRMED:
                    comp.stores_reverted.append(store)
                elif self._report.stores[store].accepted or result.accepted:
                    comp.stores_not_reverted[store] = f"{result.outcome.value}: {result.reason}"
                # A cancelled command the store never received needs no revert.

        await asyncio.gather(*(revert(s) for s in touched))
        comp.stores_reverted.sort()
        comp.odoo_items_removed += await self._remove_items(input, rollout)

    async def _command_store(
        self,
        input: PriceRolloutInput,
        rollout: Rollout,
        store: str,
        changes: list[PriceChange],
        effective_at: datetime,
        deadline: datetime,
        revert: bool = False,
    ) -> workflow.ChildWorkflowHandle[Any, StoreCommandResult]:
        """Start the child that commands one store (the change, or its revert)."""
        cid = command_id(rollout.rollout_id, store, revert=revert, legacy=self._legacy_ids)
        return await workflow.start_child_workflow(
            StorePriceCommand.run,
            StoreCommandInput(
                rollout_id=rollout.rollout_id,
                store_id=store,
                command_id=cid,
                changes=changes,
                effective_at=effective_at,
                deadline=deadline,
                callback_url=input.callback_url,
                poll_every=input.poll_every,
            ),
            id=cid,
            static_summary=(
                f"restore {len(changes)} prices in {store}"
                if revert
                else f"{len(changes)} prices to {store}"
            ),
        )

    # -- batched commands (rollouts started by this release) --------------------------------

    async def _command_fleet(
        self, input: PriceRolloutInput, rollout: Rollout, stores: list[str]
    ) -> None:
        fleet = self._fleets[False] = _Fleet(False, stores, self._report.stores)
        max_failures = rollout.max_failure_ratio * len(stores)

        def stopping() -> bool:
            return self._cancel is not None or self._failures > max_failures

        deadline = workflow.now() + rollout.confirm_within
        memo = workflow.patched(UNCONFIRMED_MEMO_PATCH)
        if memo:  # until the deadline none is late; then the count below replaces this one
            workflow.upsert_memo(
                {CONFIRM_BY_MEMO: deadline.isoformat(), UNCONFIRMED_MEMO: len(stores)}
            )
        await self._run_fleet(input, rollout, fleet, {}, rollout.changes, deadline, stopping)
        for store in sorted(fleet.open):
            r = fleet.results[store]
            if stopping():
                r.outcome = StoreOutcome.CANCELLED
                if not r.sends:
                    r.reason = "not commanded: the rollout stopped first"
            else:
                r.outcome = StoreOutcome.UNREACHABLE
                r.reason = self._unreached_reason(fleet, store, deadline)
            self._set_state(store, r.outcome)
        if memo:
            late = sum(1 for r in fleet.results.values() if r.outcome is StoreOutcome.UNREACHABLE)
            workflow.upsert_memo({UNCONFIRMED_MEMO: late})
        fleet.open.clear()
        fleet.closed = True
        self._update_details()

    async def _compensate_fleet(self, input: PriceRolloutInput, rollout: Rollout, why: str) -> None:
        """Stores that took the change (or may have: a command cancelled in flight) get their
        old prices back, as batched commands; Odoo loses the rollout's items."""
        self._set_status(RolloutStatus.COMPENSATING)
        comp = self._report.compensation = Compensation(why=why)
        rep = self._report
        touched = sorted(
            s
            for s, r in rep.stores.items()
            if r.outcome is not StoreOutcome.REJECTED
            and (
                r.accepted
                or r.outcome is StoreOutcome.CONFIRMED
                or (r.outcome is StoreOutcome.CANCELLED and r.sends > 0)
            )
        )
        base = [
            PriceChange(sku=c.sku, price=rep.old_prices[c.sku], currency=c.currency)
            for c in rollout.changes
        ]
        overrides = {
            store: [
                PriceChange(
                    sku=c.sku,
                    price=rep.store_old_prices[store].get(c.sku, rep.old_prices[c.sku]),
                    currency=c.currency,
                )
                for c in rollout.changes
            ]
            for store in touched
            if rep.store_old_prices.get(store)
        }
        if touched:
            fleet = self._fleets[True] = _Fleet(True, touched, {})
            deadline = workflow.now() + rollout.confirm_within
            await self._run_fleet(
                input, rollout, fleet, overrides, base, deadline, lambda: False, revert=True
            )
            fleet.closed = True
            for store in touched:
                r = fleet.results[store]
                if r.outcome is StoreOutcome.CONFIRMED:
                    comp.stores_reverted.append(store)
                elif rep.stores[store].accepted or r.accepted:
                    reason = r.reason or self._unreached_reason(fleet, store, deadline)
                    outcome = StoreOutcome.REJECTED if r.reason else StoreOutcome.UNREACHABLE
                    comp.stores_not_reverted[store] = f"{outcome.value}: {reason}"
                # A command cancelled before the store received it needs no revert.
        comp.odoo_items_removed += await self._remove_items(input, rollout)

    @staticmethod
    def _unreached_reason(fleet: _Fleet, store: str, deadline: datetime) -> str:
        r = fleet.results[store]
        if r.accepted:
            return f"accepted but not confirmed by {deadline.isoformat()}"
        last = fleet.last_error.get(store)
        return f"not reachable before {deadline.isoformat()}" + (f" ({last})" if last else "")

    async def _run_fleet(
        self,
        input: PriceRolloutInput,
        rollout: Rollout,
        fleet: _Fleet,
        overrides: dict[str, list[PriceChange]],
        changes: list[PriceChange],
        deadline: datetime,
        stopping: Callable[[], bool],
        revert: bool = False,
    ) -> None:
        """Send every store its command, then wait for the confirmations (signals from the
        ingress, in batches), resending to unreached stores with backoff and polling the
        stores that accepted but have not confirmed, until all are settled or the deadline."""
        resend_after = RESEND_FIRST
        next_send = workflow.now()
        next_poll = workflow.now() + input.poll_every
        effective_at = workflow.now() if revert else rollout.effective_at

        def settled() -> bool:
            return not fleet.open or stopping()

        while not settled() and workflow.now() < deadline:
            now = workflow.now()
            unsent = [s for s in sorted(fleet.open) if not fleet.results[s].accepted]
            if unsent and now >= next_send:
                await self._send_round(
                    input,
                    rollout,
                    fleet,
                    unsent,
                    overrides,
                    changes,
                    effective_at,
                    deadline,
                    stopping,
                )
                next_send = workflow.now() + resend_after
                resend_after = min(resend_after * 2, RESEND_MAX)
                continue
            if now >= next_poll:
                waiting = [s for s in sorted(fleet.open) if fleet.results[s].accepted]
                if waiting:
                    await self._poll_round(input, fleet, waiting, stopping)
                next_poll = workflow.now() + input.poll_every
                continue
            wake = min(next_poll, deadline)
            if any(not fleet.results[s].accepted for s in fleet.open):
                wake = min(wake, next_send)
            try:
                await workflow.wait_condition(settled, timeout=max(wake - now, timedelta(0)))
            except TimeoutError:
                pass

    async def _batches(
        self,
        calls: list[Callable[[], Awaitable[None]]],
        parallel: int,
        stopping: Callable[[], bool],
    ) -> None:
        """Run the activity calls, `parallel` at a time; cancel those in flight on stop."""
        gate = asyncio.Semaphore(max(1, parallel))

        async def gated(call: Callable[[], Awaitable[None]]) -> None:
            async with gate:
                if not stopping():
                    await call()

        tasks = [asyncio.ensure_future(gated(c)) for c in calls]
        await workflow.wait_condition(lambda: all(t.done() for t in tasks) or stopping())
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _send_round(
        self,
        input: PriceRolloutInput,
        rollout: Rollout,
        fleet: _Fleet,
        stores: list[str],
        overrides: dict[str, list[PriceChange]],
        changes: list[PriceChange],
        effective_at: datetime,
        deadline: datetime,
        stopping: Callable[[], bool],
    ) -> None:
        per_call = max(1, min(input.concurrency, BATCH_CONCURRENCY))
        parallel = max(1, input.concurrency // per_call)
        size = min(STORES_PER_CALL, max(per_call, -(-len(stores) // parallel)))

        def call(chunk: list[str]) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                now = workflow.now()
                for store in chunk:
                    fleet.results[store].sends += 1
                    if not fleet.revert and self._states.get(store) is StoreOutcome.PENDING:
                        self._set_state(store, StoreOutcome.COMMANDED)
                try:
                    sent = await workflow.execute_activity_method(
                        BatchedPosActivities.send_price_commands,
                        SendPriceCommandsInput(
                            commands={
                                s: command_id(rollout.rollout_id, s, revert=fleet.revert)
                                for s in chunk
                            },
                            changes=changes,
                            overrides={s: overrides[s] for s in chunk if s in overrides},
                            effective_at=effective_at,
                            callback_url=input.callback_url,
                            give_up_at=min(deadline, now + SEND_ROUND),
                            concurrency=per_call,
                        ),
                        start_to_close_timeout=SEND_ROUND
                        + timedelta(seconds=60)
                        + timedelta(seconds=10) * (len(chunk) // per_call + 1),
                        heartbeat_timeout=SEND_HEARTBEAT,
                        # Temporal retries a lost attempt until the deadline; the next one
                        # resumes from its heartbeat.
                        schedule_to_close_timeout=max(deadline - now, timedelta(seconds=30)),
                        retry_policy=RetryPolicy(
                            initial_interval=timedelta(seconds=1),
                            maximum_interval=timedelta(seconds=10),
                        ),
                        summary=f"{len(chunk)} {'reverts' if fleet.revert else 'commands'}",
                    )
                except ActivityError as e:
                    for store in chunk:
                        fleet.last_error[store] = str(e.cause or e)[:300]
                    return
                self._took(fleet, sent)

            return send

        calls = [call(chunk) for chunk in chunks(stores, size)]
        await self._batches(calls, parallel, stopping)
        self._update_details()

    async def _poll_round(
        self,
        input: PriceRolloutInput,
        fleet: _Fleet,
        stores: list[str],
        stopping: Callable[[], bool],
    ) -> None:
        """Ask the stores that accepted but did not confirm (a callback may have been lost)."""
        rid = self._rollout_id or ""
        per_call = max(1, min(input.concurrency, BATCH_CONCURRENCY))

        def call(chunk: list[str]) -> Callable[[], Awaitable[None]]:
            async def poll() -> None:
                for store in chunk:
                    fleet.results[store].polls += 1
                try:
                    read = await workflow.execute_activity_method(
                        BatchedPosActivities.price_command_statuses,
                        PriceCommandRefs(
                            commands={s: command_id(rid, s, revert=fleet.revert) for s in chunk},
                            concurrency=per_call,
                        ),
                        summary=f"{len(chunk)} statuses",
                        **POS_BATCH_READ,
                    )
                except ActivityError:
                    return  # unreachable right now; keep waiting for the callbacks
                self._took(fleet, read)

            return poll

        calls = [call(chunk) for chunk in chunks(stores, STORES_PER_CALL)]
        await self._batches(calls, max(1, input.concurrency // per_call), stopping)
        self._update_details()

    def _took(self, fleet: _Fleet, answers: StoreSends) -> None:
        """What the stores answered to a send or a status read."""
        for store, a in answers.stores.items():
            if store not in fleet.open:
                continue
            r = fleet.results[store]
            if a.outcome is SendOutcome.UNREACHED:
                fleet.last_error[store] = a.reason or "no answer"
            elif a.outcome is SendOutcome.REFUSED:
                self._settle(fleet, store, StoreOutcome.REJECTED, reason=a.reason or "refused")
            elif a.state is CommandState.UNKNOWN:
                r.accepted = False  # the store lost it (or never got it): send it again
            else:
                r.accepted = True
                self._answered(fleet, store, a)

    def _answered(self, fleet: _Fleet, store: str, a: StoreSend | PriceCommandStatus) -> None:
        if a.state is CommandState.APPLIED:
            at = a.applied_at or workflow.now()
            self._settle(fleet, store, StoreOutcome.CONFIRMED, confirmed_at=at)
        elif a.state is CommandState.REJECTED:
            self._settle(fleet, store, StoreOutcome.REJECTED, reason=a.reason or "rejected")
        elif fleet.results[store].outcome is StoreOutcome.PENDING:
            fleet.results[store].outcome = StoreOutcome.COMMANDED

    def _settle(
        self,
        fleet: _Fleet,
        store: str,
        outcome: StoreOutcome,
        reason: str | None = None,
        confirmed_at: datetime | None = None,
    ) -> None:
        r = fleet.results[store]
        r.outcome, r.reason, r.confirmed_at = outcome, reason, confirmed_at
        if outcome is StoreOutcome.CONFIRMED:
            r.accepted = True
        fleet.open.discard(store)
        if not fleet.revert:
            self._set_state(store, outcome)
            if outcome is not StoreOutcome.CONFIRMED:
                self._failures += 1

    @workflow.signal
    async def confirmations(self, batch: Any) -> None:
        """Store confirmations, a list of StoreConfirmation, as the ingress coalesced them. Each
        is checked here too: one that names no command of this rollout, or is malformed, is
        kept with its reason for ops (the first few) and counted, never fails the workflow."""
        items = batch if isinstance(batch, list) else [batch]
        if not isinstance(batch, list):
            self._ignore_signal("confirmations: not a list")
        forward: list[tuple[str, StoreConfirmation]] = []
        for raw in items:
            parsed, why = invalid_reason(StoreConfirmation, raw)
            if not isinstance(parsed, StoreConfirmation):
                self._ignore_signal(f"confirmation ignored: {why}")
                continue
            if not self._batched:
                forward.append((parsed.command_id, parsed))
                continue
            self._confirmed(parsed)
        if forward:
            await self._forward(forward)
        self._update_details()

    def _confirmed(self, c: StoreConfirmation) -> None:
        ref = parse_command_id(c.command_id)
        fleet = self._fleets.get(ref.revert) if ref else None
        if ref is None or ref.rollout_id != self._rollout_id:
            self._ignore_signal(f"confirmation ignored: {c.command_id!r} is not this rollout's")
            return
        if fleet is None or ref.store_id not in fleet.results:
            self._ignore_signal(f"confirmation ignored: {c.command_id!r}: no such command was sent")
            return
        r = fleet.results[ref.store_id]
        if c.store_id != ref.store_id:
            self._ignore_store(r, f"store_id: {c.store_id!r} is not this command's store")
        elif ref.store_id in fleet.open:
            r.accepted = True
            self._answered(
                fleet,
                ref.store_id,
                PriceCommandStatus(
                    state=CommandState(c.status), reason=c.reason, applied_at=c.applied_at
                ),
            )
        elif r.outcome in (StoreOutcome.CONFIRMED, StoreOutcome.REJECTED):
            count_duplicate_confirmation()  # the store answered already: nothing to do again

    async def _forward(self, items: list[tuple[str, StoreConfirmation]]) -> None:
        """A rollout started before batched commands: its children take the confirmations."""
        for cid, c in items:
            try:
                await workflow.get_external_workflow_handle(cid).signal(
                    StorePriceCommand.confirm, c
                )
            except Exception as e:  # the child closed or never existed
                self._ignore_signal(f"confirmation for {cid!r} not forwarded: {e}")

    def _ignore_store(self, r: StoreCommandResult, why: str) -> None:
        r.ignored_count += 1
        if len(r.ignored) < MAX_IGNORED:
            r.ignored.append(f"confirmation ignored: {why}")

    def _ignore_signal(self, why: str) -> None:
        workflow.logger.warning("%s", why)
        self._report.ignored_count += 1
        if len(self._report.ignored_signals) < MAX_IGNORED:
            self._report.ignored_signals.append(why)

    @workflow.query
    def store_commands(self, store_id: str) -> list[StoreCommandResult]:
        """Every command this rollout sent to one store (the change, its revert), with its
        outcome: `retailflow price-rollout commands --store S` asks every rollout."""
        out = []
        for fleet in (self._fleets.get(False), self._fleets.get(True)):
            r = fleet.results.get(store_id) if fleet else None
            if fleet is not None and r is not None and r.sends:
                out.append(
                    r.model_copy(
                        update={
                            "store_id": store_id,
                            "command_id": command_id(
                                self._rollout_id or "", store_id, revert=fleet.revert
                            ),
                        }
                    )
                )
        return out

    @workflow.signal
    def cancel(self, request: Any) -> None:
        """Stop the rollout and restore the old prices everywhere it reached (a CancelRequest).
        A malformed request is kept in the report's reasons, never fails the workflow."""
        parsed, why = invalid_reason(CancelRequest, request)
        if not isinstance(parsed, CancelRequest):
            workflow.logger.warning("cancel ignored: %s", why)
            if len(self._report.ignored_signals) < MAX_IGNORED:
                self._report.ignored_signals.append(f"cancel ignored: {why}")
            self._update_details()
            return
        if self._cancel is None:
            self._cancel = parsed

    @workflow.query
    def progress(self) -> RolloutProgress:
        return RolloutProgress(
            rollout_id=self._report.rollout_id,
            status=self._report.status,
            total=len(self._states),
            counts={k: n for k, n in self._counts.items() if n},
            stores=dict(self._states),
        )

    @workflow.query
    def report(self) -> RolloutReport:
        return self._report

    def _set_status(self, status: RolloutStatus) -> None:
        self._report.status = status
        workflow.upsert_search_attributes([RETAIL_STATUS.value_set(status.value)])
        self._update_details()

    def _set_state(self, store: str, outcome: StoreOutcome) -> None:
        old = self._states.get(store)
        if old is not None:
            self._counts[old.value] -= 1
        self._states[store] = outcome
        self._counts[outcome.value] = self._counts.get(outcome.value, 0) + 1

    def _update_details(self) -> None:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self._counts.items()) if n)
        comp = self._report.compensation
        workflow.set_current_details(
            status_details(
                self._report.status.value,
                counts or "no stores yet",
                [f"compensation: {comp.why}"] if comp else [],
                [*self._report.reasons, *self._report.ignored_signals],
            )
        )

    def _finish(self, status: RolloutStatus) -> RolloutReport:
        self._report.stores = dict(sorted(self._report.stores.items()))
        self._set_status(status)
        return self._report
