"""PosActivities: what the rollout asks of the POS platform. Async: the client is httpx."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pos_client import PosClient
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
