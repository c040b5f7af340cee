"""The stores' catalog on the POS platform: publish a page of the catalog to many stores, read
where their commands stand and which catalog version each holds (docs/catalog.md).

Many stores per activity, async HTTP with bounded concurrency, as the price rollout's batched
commands do: a retried attempt starts from its last heartbeat (commands are idempotent by id,
so a repeat is harmless anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pos import each_store, send_until, why
from activities.pos_client import PosUnavailable
from domain.catalog import CatalogItem, Withdrawal

# HTTP requests one activity keeps in flight to the POS platform.
CONCURRENCY = 50


class CatalogPos(Protocol):
    """What the catalog needs of the POS platform's client (activities/pos_client.py)."""

    async def send_catalog_command(self, store_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def catalog_command_status(self, store_id: str, command_id: str) -> dict[str, Any]: ...

    async def catalog_version(self, store_id: str) -> dict[str, Any]: ...

    async def catalog_page(
        self, store_id: str, after_sku: str | None, limit: int
    ) -> dict[str, Any]: ...


class Outcome(StrEnum):
    ANSWERED = "answered"  # the store has the command: `state` says where it stands
    REFUSED = "refused"  # the platform refused the command itself (4xx): `reason` says why
    UNREACHED = "unreached"  # offline or busy: `reason` is the last error


class CommandState(StrEnum):
    RECEIVED = "received"
    APPLIED = "applied"
    STALE = "stale"  # the store holds a later version: acknowledged, ignored
    UNKNOWN = "unknown"  # the store does not know the command: send it again


class RefusedItem(BaseModel):
    sku: str
    odoo_id: int | None = None
    reason: str


class StoreAnswer(BaseModel):
    outcome: Outcome
    state: CommandState | None = None
    reason: str | None = None
    applied: int = 0
    refused: list[RefusedItem] = []


class StoreAnswers(BaseModel):
    stores: dict[str, StoreAnswer]


class PublishInput(BaseModel):
    """One catalog command to many stores: `commands` maps store -> command id."""

    commands: dict[str, str]
    version: str
    upserts: list[CatalogItem] = []
    withdrawals: list[Withdrawal] = []
    give_up_at: datetime
    concurrency: int = CONCURRENCY


class CommandRefs(BaseModel):
    commands: dict[str, str]  # store -> command id
    concurrency: int = CONCURRENCY


class VersionsInput(BaseModel):
    stores: list[str]
    concurrency: int = CONCURRENCY


class StoreVersions(BaseModel):
    versions: dict[str, str | None] = {}
    unreached: dict[str, str] = {}


class StoreCatalogPageInput(BaseModel):
    store_id: str
    after_sku: str | None = None
    limit: int = 1000


class StoreCatalogPage(BaseModel):
    items: list[Withdrawal]  # (sku, odoo_id) of what the store holds
    next_after_sku: str | None = None


def answer_of(body: dict[str, Any]) -> StoreAnswer:
    """A command's answer or status as the platform gives it (an unknown state: unknown)."""
    try:
        state = CommandState(str(body.get("state")))
    except ValueError:
        state = CommandState.UNKNOWN
    refused: list[RefusedItem] = []
    for r in body.get("refused") or []:
        try:
            refused.append(RefusedItem.model_validate(r))
        except ValidationError:
            refused.append(RefusedItem(sku=str(r)[:64], reason="refused (no reason given)"))
    applied = body.get("applied")
    return StoreAnswer(
        outcome=Outcome.ANSWERED,
        state=state,
        applied=applied if isinstance(applied, int) else 0,
        refused=refused,
    )


class CatalogActivities:
    def __init__(self, pos: CatalogPos) -> None:
        self.pos = pos

    @activity.defn
    async def publish_catalog(self, input: PublishInput) -> StoreAnswers:
        """Send (or resend) each store the page; a store offline or busy is retried with backoff
        until `give_up_at`, then reported unreached (the workflow sends again later)."""
        upserts = [u.model_dump(mode="json") for u in input.upserts]
        withdrawals = [w.model_dump(mode="json") for w in input.withdrawals]

        async def one(store: str, command: str) -> StoreAnswer:
            body = {
                "command_id": command,
                "version": input.version,
                "upserts": upserts,
                "withdrawals": withdrawals,
            }

            async def send() -> StoreAnswer:
                return answer_of(await self.pos.send_catalog_command(store, body))

            return await send_until(
                input.give_up_at,
                send,
                refused=lambda why: StoreAnswer(outcome=Outcome.REFUSED, reason=why[:500]),
                unreached=lambda why: StoreAnswer(outcome=Outcome.UNREACHED, reason=why),
            )

        return await _each(input.commands, input.concurrency, one)

    @activity.defn
    async def catalog_command_statuses(self, input: CommandRefs) -> StoreAnswers:
        """Where each store's command stands (one try each)."""

        async def one(store: str, command: str) -> StoreAnswer:
            try:
                return answer_of(await self.pos.catalog_command_status(store, command))
            except ApplicationError as e:
                if e.type == "PosNotFound":
                    return StoreAnswer(outcome=Outcome.ANSWERED, state=CommandState.UNKNOWN)
                return StoreAnswer(outcome=Outcome.UNREACHED, reason=e.message[:300])
            except PosUnavailable as e:
                return StoreAnswer(outcome=Outcome.UNREACHED, reason=why(e))

        return await _each(input.commands, input.concurrency, one)

    @activity.defn
    async def catalog_versions(self, input: VersionsInput) -> StoreVersions:
        """The catalog version each store holds (None: none yet); one try each."""
        out = StoreVersions()
        gate = asyncio.Semaphore(max(1, input.concurrency))

        async def one(store: str) -> None:
            async with gate:
                try:
                    body = await self.pos.catalog_version(store)
                except (ApplicationError, PosUnavailable) as e:
                    out.unreached[store] = why(e)
                    return
            version = body.get("version")
            out.versions[store] = version if isinstance(version, str) else None

        activity.heartbeat()
        await asyncio.gather(*(one(s) for s in input.stores))
        return out

    @activity.defn
    async def store_catalog_page(self, input: StoreCatalogPageInput) -> StoreCatalogPage:
        """A page of what a store holds (sku and Odoo id only), in SKU order."""
        body = await self.pos.catalog_page(input.store_id, input.after_sku, input.limit)
        items = []
        for item in body.get("items") or []:
            sku, pid = item.get("sku"), item.get("odoo_id")
            if isinstance(sku, str) and isinstance(pid, int):
                items.append(Withdrawal(sku=sku, odoo_id=pid))
        after = body.get("next_after_sku")
        return StoreCatalogPage(
            items=items, next_after_sku=after if isinstance(after, str) else None
        )


async def _each(
    commands: dict[str, str],
    concurrency: int,
    one: Callable[[str, str], Awaitable[StoreAnswer]],
) -> StoreAnswers:
    def unreached(r: StoreAnswer) -> bool:
        return r.outcome is Outcome.UNREACHED

    return StoreAnswers(stores=await each_store(commands, concurrency, one, StoreAnswer, unreached))
