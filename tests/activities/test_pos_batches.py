"""Batched POS activities: many stores per call, progress heartbeated so a retried attempt does
not resend what was answered, offline and busy stores retried until the round ends."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.pos import (
    BatchedPosActivities,
    CommandState,
    PriceCommandRefs,
    SendOutcome,
    SendPriceCommandsInput,
    StoreSends,
)
from activities.pos_client import PosClient, PosSettings
from domain.pricing import PriceChange
from simulators.pos import PosPlatform

CHANGES = [PriceChange(sku="MILK-1L", price=Decimal("1.09"))]


@pytest.fixture
def fleet() -> Iterator[PosPlatform]:
    platform = PosPlatform(stores=6, secret="s", platform_id="pos-main", seed=1)
    platform.start(port=0)
    yield platform
    platform.stop()


def sends(stores: list[str], give_up_in: float = 5, **kw: Any) -> SendPriceCommandsInput:
    return SendPriceCommandsInput(
        commands={s: f"price-rollout:B1:{s}" for s in stores},
        changes=CHANGES,
        effective_at=datetime.now(UTC),
        give_up_at=datetime.now(UTC) + timedelta(seconds=give_up_in),
        **kw,
    )


async def test_a_retried_attempt_resumes_from_its_heartbeat(fleet: PosPlatform) -> None:
    pos = PosClient(PosSettings(url=fleet.url))
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    # A first attempt that answered S001 and S002 before its worker died.
    done = StoreSends.model_validate(
        {"stores": {s: {"outcome": "answered", "state": "accepted"} for s in ("S001", "S002")}}
    )
    env.info = dataclasses.replace(
        env.info, heartbeat_details=[done.model_dump(mode="json")], attempt=2
    )
    stores = [f"S00{i}" for i in range(1, 7)]
    try:
        out = await env.run(BatchedPosActivities(pos).send_price_commands, sends(stores))
    finally:
        await pos.aclose()
    assert sorted(out.stores) == stores
    assert all(r.outcome is SendOutcome.ANSWERED for r in out.stores.values())
    # What the first attempt recorded was not sent again; the rest was, once each.
    assert fleet.commands("S001") == fleet.commands("S002") == []
    assert [len(fleet.commands(s)) for s in stores[2:]] == [1, 1, 1, 1]
    assert sorted(StoreSends.model_validate(beats[-1]).stores) == stores


async def test_offline_busy_and_unknown_stores_in_one_batch(fleet: PosPlatform) -> None:
    fleet.set_knobs("S001", online=False)
    fleet.set_knobs("S002", busy_next=2, busy_status=429, retry_after_s=0)
    fleet.set_knobs("S003", offline_windows=[(0, 1.5)])  # back within the round
    pos = PosClient(PosSettings(url=fleet.url))
    activities = BatchedPosActivities(pos)
    try:
        out = await ActivityEnvironment().run(
            activities.send_price_commands,
            sends(["S001", "S002", "S003", "S004", "NOPE"], give_up_in=4),
        )
        statuses = await ActivityEnvironment().run(
            activities.price_command_statuses,
            PriceCommandRefs(commands={"S004": "price-rollout:B1:S004", "S005": "nope"}),
        )
    finally:
        await pos.aclose()
    r = out.stores
    assert r["S001"].outcome is SendOutcome.UNREACHED and "504" in (r["S001"].reason or "")
    assert r["S002"].outcome is r["S003"].outcome is r["S004"].outcome is SendOutcome.ANSWERED
    assert r["S002"].state is CommandState.ACCEPTED
    assert fleet.stats()["refused_busy"] == 2
    assert r["NOPE"].outcome is SendOutcome.REFUSED and "404" in (r["NOPE"].reason or "")
    assert statuses.stores["S004"].state in (CommandState.ACCEPTED, CommandState.APPLIED)
    assert statuses.stores["S005"].state is CommandState.UNKNOWN
