"""The POS adapter: a busy platform (429/503 with Retry-After) is a retry, never a rejection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.pos import ListStoresInput, PosActivities, SendPriceCommandInput
from activities.pos_client import PosClient, PosSettings, PosUnavailable, retry_after
from domain.pricing import PriceChange, StoreTarget


def client_answering(*responses: httpx.Response) -> tuple[PosClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return PosClient(PosSettings(url="http://pos.test"), httpx.MockTransport(handler)), seen


def command() -> SendPriceCommandInput:
    return SendPriceCommandInput(
        store_id="S001",
        command_id="price-rollout:R1:S001",
        changes=[PriceChange(sku="MILK-1L", price=Decimal("1.09"))],
        effective_at=datetime(2026, 11, 27, 6, tzinfo=UTC),
    )


@pytest.mark.parametrize("status", [429, 503])
async def test_busy_platform_is_retried_after_the_advised_delay(status: int) -> None:
    pos, _ = client_answering(
        httpx.Response(status, headers={"Retry-After": "7"}, text="slow down")
    )
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(PosActivities(pos).send_price_command, command())
    assert e.value.type == "PosBusy"
    assert not e.value.non_retryable  # a 429 used to be a permanent rejection of the store
    assert e.value.next_retry_delay == timedelta(seconds=7)


async def test_429_without_retry_after_is_retried_with_the_policy_backoff() -> None:
    pos, _ = client_answering(httpx.Response(429))
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(PosActivities(pos).send_price_command, command())
    assert (e.value.type, e.value.non_retryable, e.value.next_retry_delay) == (
        "PosBusy",
        False,
        None,
    )


async def test_other_refusals_stay_permanent_and_other_5xx_retryable() -> None:
    pos, _ = client_answering(httpx.Response(422, text="bad price"), httpx.Response(502))
    activities = PosActivities(pos)
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(activities.send_price_command, command())
    assert e.value.non_retryable and e.value.type == "PosRefused"
    with pytest.raises(PosUnavailable):
        await ActivityEnvironment().run(activities.send_price_command, command())


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 27, 6, 0, 0, tzinfo=UTC)
    assert retry_after("3", now) == timedelta(seconds=3)
    assert retry_after("Fri, 27 Nov 2026 06:00:30 GMT", now) == timedelta(seconds=30)
    assert retry_after("Fri, 27 Nov 2026 05:00:00 GMT", now) == timedelta(0)
    assert retry_after("99999999999", now) == timedelta(minutes=10)  # capped
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


async def test_a_store_id_that_could_collide_refuses_the_rollout_before_any_write() -> None:
    stores = {"stores": [{"store_id": "S001"}, {"store_id": "A:1"}]}
    pos, _ = client_answering(httpx.Response(200, json=stores))
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(
            PosActivities(pos).list_stores, ListStoresInput(target=StoreTarget.parse("all"))
        )
    assert e.value.non_retryable and e.value.type == "BadStoreId"
    assert "'A:1'" in str(e.value)
