"""PosActivities: what the rollout asks of the POS platform. Async: the client is httpx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pos_client import PosClient, PosUnavailable
from domain.pricing import PriceChange, StoreTarget, TargetKind, store_id_problem


class ListStoresInput(BaseModel):
    target: StoreTarget


class ListStoresResult(BaseModel):
    stores: list[str]


class CommandState(StrEnum):
    ACCEPTED = "accepted"
    APPLIED = "applied"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # the store does not know this command (never received, or lost it)


class SendPriceCommandInput(BaseModel):
    store_id: str
    command_id: str
    changes: list[PriceChange]
    effective_at: datetime
    callback_url: str | None = None


class PriceCommandRef(BaseModel):
    store_id: str
    command_id: str


class PriceCommandStatus(BaseModel):
    state: CommandState
    reason: str | None = None
    applied_at: datetime | None = None

    @classmethod
    def from_platform(cls, body: dict[str, Any]) -> PriceCommandStatus:
        return cls(
            state=CommandState(body["status"]),
            reason=body.get("reason"),
            applied_at=body.get("applied_at"),
        )


class PosActivities:
    def __init__(self, pos: PosClient) -> None:
        self.pos = pos

    @activity.defn
    async def list_stores(self, input: ListStoresInput) -> ListStoresResult:
        """Resolve a target to store ids; a listed store the platform does not know is an error."""
        t = input.target
        fleet = await self.pos.stores(region=t.region if t.kind is TargetKind.REGION else None)
        known = [s.get("store_id") if isinstance(s, dict) else s for s in fleet]
        # A store id goes into command ids: one that could make two commands one is refused
        # before anything is written, rather than failing the rollout later.
        bad = [p for p in (store_id_problem(k) for k in known) if p]
        if bad:
            raise ApplicationError(
                f"the POS platform lists stores that cannot be commanded: {'; '.join(bad[:5])}",
                type="BadStoreId",
                non_retryable=True,
            )
        if t.kind is not TargetKind.LIST:
            return ListStoresResult(stores=sorted(str(k) for k in known))
        unknown = sorted(set(t.stores) - set(known))
        if unknown:
            raise ApplicationError(
                f"stores not known to the POS platform: {', '.join(unknown)}",
                type="UnknownStore",
                non_retryable=True,
            )
        return ListStoresResult(stores=list(t.stores))

    @activity.defn
    async def send_price_command(self, input: SendPriceCommandInput) -> PriceCommandStatus:
        """Send (or resend: commands are idempotent by id) a price command to one store."""
        body = await self.pos.send_price_command(
            input.store_id,
            input.command_id,
            [c.model_dump(mode="json") for c in input.changes],
            input.effective_at,
            input.callback_url,
        )
        return PriceCommandStatus.from_platform(body)

    @activity.defn
    async def price_command_status(self, input: PriceCommandRef) -> PriceCommandStatus:
        try:
            body = await self.pos.command_status(input.store_id, input.command_id)
        except ApplicationError as e:
            if e.type == "PosNotFound":
                return PriceCommandStatus(state=CommandState.UNKNOWN)
            raise
        return PriceCommandStatus.from_platform(body)


# -- fleet scale: many stores per activity --------------------------------------------------

# HTTP requests one batched activity keeps in flight to the POS platform.
BATCH_CONCURRENCY = 50
# How long one batched send keeps retrying a store that is offline or busy before it returns
# (the workflow resends the stores still unreached later, until the rollout's deadline).
SEND_ROUND = timedelta(seconds=20)


class SendOutcome(StrEnum):
    ANSWERED = "answered"  # the store has the command: `state` says where it stands
    REFUSED = "refused"  # the platform refused the command for good (4xx): `reason` says why
    UNREACHED = "unreached"  # offline or busy all along this round: `reason` is the last error


class StoreSend(BaseModel):
    """One store's answer to a batched send or status read."""

    outcome: SendOutcome
    state: CommandState | None = None
    reason: str | None = None
    applied_at: datetime | None = None


class SendPriceCommandsInput(BaseModel):
    """The same kind of command to many stores: `commands` maps store -> command id; every
    store gets `changes` unless `overrides` gives it its own (a revert to its own old prices)."""

    commands: dict[str, str]
    changes: list[PriceChange]
    overrides: dict[str, list[PriceChange]] = {}
    effective_at: datetime
    callback_url: str | None = None
    # Stop retrying unreached stores then (the rollout's deadline, or the round's end).
    give_up_at: datetime
    concurrency: int = BATCH_CONCURRENCY


class PriceCommandRefs(BaseModel):
    commands: dict[str, str]  # store -> command id
    concurrency: int = BATCH_CONCURRENCY


class StoreSends(BaseModel):
    stores: dict[str, StoreSend]


def _status(body: dict[str, Any]) -> StoreSend:
    s = PriceCommandStatus.from_platform(body)
    return StoreSend(
        outcome=SendOutcome.ANSWERED, state=s.state, reason=s.reason, applied_at=s.applied_at
    )


R = TypeVar("R", bound=BaseModel)


def why(e: BaseException) -> str:
    """An error's first line, short enough to report per store."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


async def send_until(
    give_up_at: datetime,
    send: Callable[[], Awaitable[R]],
    refused: Callable[[str], R],
    unreached: Callable[[str], R],
) -> R:
    """`send()` to one store, again with backoff (0.5 s doubling to 5 s, or the store's
    Retry-After) while it is offline or busy, until `give_up_at`: then `unreached(why)`. A
    refusal (a non-retryable answer) is `refused(message)` at once. Shared by the price
    commands and the catalog's (activities/catalog.py)."""
    delay = 0.5
    while True:
        try:
            return await send()
        except ApplicationError as e:
            if e.non_retryable:
                return refused(e.message)
            error: BaseException = e
            wait = e.next_retry_delay.total_seconds() if e.next_retry_delay else delay
        except PosUnavailable as e:
            error, wait = e, delay
        left = (give_up_at - datetime.now(UTC)).total_seconds()
        if left <= wait:
            return unreached(why(error))
        await asyncio.sleep(wait)
        delay = min(delay * 2, 5.0)


class BatchedPosActivities:
    """A rollout's commands and status reads, hundreds of stores per activity: async HTTP with
    bounded concurrency. Progress is heartbeated, so a retried attempt (a worker died) skips the
    stores already answered; a resend is harmless anyway (commands are idempotent by id)."""

    def __init__(self, pos: PosClient) -> None:
        self.pos = pos

    @activity.defn
    async def send_price_commands(self, input: SendPriceCommandsInput) -> StoreSends:
        """Send (or resend) each store its command; a store offline or busy is retried with
        backoff until `give_up_at`, then reported unreached."""

        async def one(store: str, command: str) -> StoreSend:
            changes = input.overrides.get(store, input.changes)
            body = [c.model_dump(mode="json") for c in changes]

            async def send() -> StoreSend:
                return _status(
                    await self.pos.send_price_command(
                        store, command, body, input.effective_at, input.callback_url
                    )
                )

            return await send_until(
                input.give_up_at,
                send,
                refused=lambda why: StoreSend(outcome=SendOutcome.REFUSED, reason=why),
                unreached=lambda why: StoreSend(outcome=SendOutcome.UNREACHED, reason=why),
            )

        return await _each(input.commands, input.concurrency, one)

    @activity.defn
    async def price_command_statuses(self, input: PriceCommandRefs) -> StoreSends:
        """Where each store's command stands (one try each): a store that does not know it
        says `unknown` (send it again), one that does not answer is unreached."""

        async def one(store: str, command: str) -> StoreSend:
            try:
                return _status(await self.pos.command_status(store, command))
            except ApplicationError as e:
                if e.type == "PosNotFound":
                    return StoreSend(outcome=SendOutcome.ANSWERED, state=CommandState.UNKNOWN)
                return StoreSend(outcome=SendOutcome.UNREACHED, reason=e.message)
            except PosUnavailable as e:
                return StoreSend(outcome=SendOutcome.UNREACHED, reason=why(e))

        return await _each(input.commands, input.concurrency, one)


async def each_store(
    commands: dict[str, str],
    concurrency: int,
    one: Callable[[str, str], Awaitable[R]],
    answer: type[R],
    unreached: Callable[[R], bool],
) -> dict[str, R]:
    """`one(store, command)` for every store, `concurrency` at a time, heartbeating what is
    done (`{"stores": {store: answer}}`); a retried attempt starts from its last heartbeat.
    An unreached store is not progress: a retried attempt tries it again. Shared by the price
    commands and the catalog's (activities/catalog.py)."""
    info = activity.info()
    done: dict[str, R] = {}
    if info.heartbeat_details:
        try:
            stores = info.heartbeat_details[0]["stores"]
            done = {str(s): answer.model_validate(r) for s, r in stores.items()}
        except (ValidationError, TypeError, KeyError, AttributeError):
            done = {}
    done = {s: r for s, r in done.items() if s in commands}
    missed: dict[str, R] = {}
    gate = asyncio.Semaphore(max(1, concurrency))
    last_beat = 0.0

    def beat(force: bool = False) -> None:
        nonlocal last_beat
        now = time.monotonic()
        if force or now - last_beat >= 1.0:
            last_beat = now
            activity.heartbeat({"stores": {s: r.model_dump(mode="json") for s, r in done.items()}})

    async def run(store: str, command: str) -> None:
        async with gate:
            result = await one(store, command)
        if unreached(result):
            missed[store] = result
        else:
            done[store] = result
        beat()

    beat(force=True)
    await asyncio.gather(*(run(s, c) for s, c in commands.items() if s not in done))
    beat(force=True)
    return {**missed, **done}


async def _each(
    commands: dict[str, str],
    concurrency: int,
    one: Callable[[str, str], Awaitable[StoreSend]],
) -> StoreSends:
    def unreached(r: StoreSend) -> bool:
        return r.outcome is SendOutcome.UNREACHED

    return StoreSends(stores=await each_store(commands, concurrency, one, StoreSend, unreached))
