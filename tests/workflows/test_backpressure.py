"""The ingress sheds load with 429 + Retry-After, starting nothing: when too many sales are still
Posting (overall or for the store), and when a caller is over its rate (workers/backpressure.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.gateway_client import GatewayClient
from activities.odoo.client import OdooClient
from activities.pos_client import PosClient
from domain.posting import PostingProfile
from domain.pricing import PriceChange
from simulators.odoo import OdooEmulator
from simulators.odoo.faults import Faults
from simulators.pos import PosPlatform
from tests.conftest import rollout_settings, running_worker, settings_for
from tests.workflows.helpers import sales_for
from workers.auth import CallerSpec, token_sha256
from workers.backpressure import POSTING_QUERY, BacklogGauge, RateLimiter
from workers.ingress import build_app
from workers.settings import Settings
from workers.submit import Submission, submit_sale
from workers.worker import activity_slots, build_worker
from workflows.price_rollout import StoreCommandInput, StorePriceCommand, command_id
from workflows.sale_posting import posting_workflow_id

TOKEN = "backpressure-token-1"


def callers_file(tmp_path: Path, rate: str = "") -> Path:
    path = tmp_path / "callers.toml"
    path.write_text(
        "[[callers]]\n"
        'id = "till"\n'
        'scopes = ["sales:write", "sales:read"]\n'
        f"{rate}"
        "[[callers.credentials]]\n"
        f'token_sha256 = "{token_sha256(TOKEN)}"\n'
    )
    return path


@pytest_asyncio.fixture
async def http_for(client: Client) -> AsyncIterator[Any]:
    opened: list[httpx.AsyncClient] = []

    def make(settings: Settings) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(settings, client=client)),
            base_url="http://ingress",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


async def started(client: Client, store: str, txn: str) -> bool:
    try:
        await client.get_workflow_handle(posting_workflow_id(store, txn)).describe()
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND
        return False
    return True


async def terminate(client: Client, store: str, sales: list[dict[str, Any]]) -> None:
    for sale in sales:
        try:
            await client.get_workflow_handle(posting_workflow_id(store, sale["txn_id"])).terminate(
                "test over"
            )
        except RPCError:
            pass


async def posting(client: Client, store: str | None = None) -> int:
    query = POSTING_QUERY if store is None else f'{POSTING_QUERY} AND StoreId = "{store}"'
    return (await client.count_workflows(query)).count


async def until_posting(client: Client, store: str, n: int) -> None:
    for _ in range(600):
        if await posting(client, store) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{store}: never {n} sales Posting")


@pytest.mark.parametrize("scope", ["store", "global"])
async def test_a_sale_beyond_the_backlog_is_answered_429_and_starts_nothing(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
    http_for: Any,
    scope: str,
) -> None:
    limits: dict[str, object] = {"ingress_max_store_backlog": 2}
    if scope == "global":
        # Other tests' sales may still be Posting: the limit is 2 above what is there now.
        limits = {"ingress_max_backlog": await posting(client) + 2}
    # Three tokens and next to no refill: the sale shed for the backlog gives its token back,
    # or its retry at the end would find the caller over its rate.
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        callers_file=callers_file(tmp_path, rate="rate_per_s = 0.001\nburst = 3\n"),
        ingress_backlog_cache_s=0.2,
        **limits,
    )
    # An Odoo that refuses connections: the sales stay Posting, retried.
    stuck = settings.model_copy(update={"odoo_url": "http://127.0.0.1:9"})
    http = http_for(settings)
    sales = sales_for(store_id, 4)
    try:
        async with running_worker(client, stuck):
            for sale in sales[:2]:
                answer = await http.post("/v1/sales", content=json.dumps(sale))
                assert answer.status_code == 202, answer.text
            await until_posting(client, store_id, 2)
            await asyncio.sleep(0.3)  # past the cached count
            answer = await http.post("/v1/sales", content=json.dumps(sales[2]))
            assert answer.status_code == 429, answer.text
            assert answer.json()["status"] == "busy"
            assert "awaiting posting" in answer.json()["error"]
            assert int(answer.headers["Retry-After"]) >= 1
            assert not await started(client, store_id, sales[2]["txn_id"])
    finally:
        await terminate(client, store_id, sales)
    # The backlog gone, the same sale is taken.
    await asyncio.sleep(0.3)
    answer = await http.post("/v1/sales", content=json.dumps(sales[2]))
    assert answer.status_code == 202, answer.text
    await terminate(client, store_id, sales)


async def test_a_caller_over_its_rate_gets_429_then_passes_after_retry_after(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
    http_for: Any,
) -> None:
    path = callers_file(tmp_path, rate="rate_per_s = 0.5\nburst = 2\n")
    http = http_for(settings_for(odoo_emulator, temporal_address, callers_file=path))
    sales = sales_for(store_id, 4)
    try:
        answers = [await http.post("/v1/sales", content=json.dumps(s)) for s in sales[:3]]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["status"] == "busy"
        retry_after = int(answers[2].headers["Retry-After"])
        assert retry_after >= 1
        assert not await started(client, store_id, sales[2]["txn_id"])
        # Unauthenticated requests are refused before the rate limit: they spend no token.
        anon = await http.post(
            "/v1/sales", content=json.dumps(sales[3]), headers={"Authorization": "Bearer nope"}
        )
        assert anon.status_code == 401
        await asyncio.sleep(retry_after)
        answer = await http.post("/v1/sales", content=json.dumps(sales[2]))
        assert answer.status_code == 202, answer.text
    finally:
        await terminate(client, store_id, sales)


def test_a_burst_without_a_rate_is_refused() -> None:
    spec: dict[str, Any] = {
        "id": "x",
        "scopes": ["sales:write"],
        "credentials": [{"token_sha256": "0" * 64}],
    }
    assert CallerSpec.model_validate({**spec, "rate_per_s": 2, "burst": 5}).burst == 5
    with pytest.raises(ValueError, match="burst: needs rate_per_s"):
        CallerSpec.model_validate({**spec, "burst": 5})
    with pytest.raises(ValueError, match="rate_per_s"):
        CallerSpec.model_validate({**spec, "rate_per_s": 0})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_backlog_is_counted_once_per_cache_period_however_many_requests() -> None:
    clock = Clock()
    asked: list[str] = []

    async def count(query: str) -> int:
        asked.append(query)
        await asyncio.sleep(0)
        return 7

    gauge = BacklogGauge(count, max_total=10, max_per_store=5, ttl_s=5.0, clock=clock)
    busy = await asyncio.gather(*(gauge.check("S1") for _ in range(50)))
    assert len(asked) == 2  # one global, one for S1
    assert all(b is not None and "store S1" in b.reason for b in busy)
    assert busy[0] is not None and busy[0].retry_after_s == 5
    clock.now = 4.9
    await gauge.check("S1")
    assert len(asked) == 2
    clock.now = 5.0
    await gauge.check("S1")
    assert len(asked) == 4
    # An id that cannot go in a query as it is is not counted per store.
    assert await gauge.check('S1" OR "1"="1') is None


async def test_a_store_id_with_a_non_ascii_letter_is_limited_too() -> None:
    """Every store id the domain accepts is counted per store (quoted as the collector
    quotes: domain.limits.visibility_literal), not only ASCII ones."""
    asked: list[str] = []

    async def count(query: str) -> int:
        asked.append(query)
        return 3

    gauge = BacklogGauge(count, max_total=0, max_per_store=3, ttl_s=5.0)
    busy = await gauge.check("Zürich-01")
    assert busy is not None and "store Zürich-01" in busy.reason
    assert asked == [f'{POSTING_QUERY} AND StoreId = "Zürich-01"']
    assert await gauge.check("S\\1") is None and len(asked) == 1


async def test_a_backlog_that_cannot_be_read_sheds_nothing() -> None:
    async def down(query: str) -> int:
        raise RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")

    gauge = BacklogGauge(down, max_total=1, max_per_store=1, ttl_s=5.0)
    assert await gauge.check("S1") is None


def test_token_bucket_refills_at_its_rate() -> None:
    from workers.auth import Caller

    clock = Clock()
    rates = RateLimiter(clock)
    caller = Caller(id="c", scopes=frozenset(), credentials=(), rate_per_s=2.0, burst=3)
    assert [rates.check(caller) is None for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5  # one token back
    assert rates.check(caller) is None
    over = rates.check(caller)
    assert over is not None and over.retry_after_s == 1
    free = Caller(id="f", scopes=frozenset(), credentials=())
    assert all(rates.check(free) is None for _ in range(100))
    # A request shed for the backlog gives its token back (capped at the burst).
    clock.now = 10.0
    assert [rates.check(caller) is None for _ in range(4)] == [True, True, True, False]
    rates.give_back(caller)
    assert rates.check(caller) is None and rates.check(caller) is not None
    for _ in range(5):
        rates.give_back(caller)
    assert [rates.check(caller) is None for _ in range(4)] == [True, True, True, False]
    rates.give_back(free)  # no rate: nothing to give back


async def test_a_slow_odoo_does_not_starve_pos_activities_on_the_same_worker(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    """Odoo answers every RPC after 3 s and more sales arrive than Odoo may take: the Odoo
    activities hold at most odoo_concurrency_max + odoo_max_waiting slots (the limiter refuses
    the rest, retryable), so a POS activity of the same worker runs while they are stuck."""
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url).model_copy(
        update={
            "max_concurrent_activities": 2,
            "odoo_concurrency_min": 1,
            "odoo_concurrency_max": 2,
            "odoo_max_waiting": 1,
        }
    )
    odoo = OdooClient(settings.odoo())
    pos_client = PosClient(settings.pos())
    gateway = GatewayClient(settings.gateway())
    slots = activity_slots(settings)
    sales = sales_for(store_id, 8)
    rollout = f"STARVE{uuid.uuid4().hex[:6]}"
    command = command_id(rollout, "S077")
    odoo_emulator.faults = Faults(latency_ms=3000)
    try:
        with ThreadPoolExecutor(max_workers=slots) as executor:
            worker = build_worker(
                client,
                settings,
                odoo,
                PostingProfile(),
                executor,
                pos_client,
                gateway,
                max_concurrent_activities=slots,
            )
            async with worker:
                for sale in sales:
                    submitted = await submit_sale(client, settings, sale, None, "test")
                    assert submitted.submission is Submission.ACCEPTED
                # Odoo work piles up: slots running, one waiting, the others refused.
                for _ in range(300):
                    if odoo.limiter.rejections > 0 and odoo.limiter.in_flight == 2:
                        break
                    await asyncio.sleep(0.1)
                assert odoo.limiter.rejections > 0 and odoo.limiter.in_flight == 2
                # Now a POS activity on the same worker: a price command to one store.
                now = datetime.now(UTC)
                await client.start_workflow(
                    StorePriceCommand.run,
                    StoreCommandInput(
                        rollout_id=rollout,
                        store_id="S077",
                        command_id=command,
                        changes=[PriceChange(sku="MILK-1L", price=Decimal("1.19"))],
                        effective_at=now,
                        deadline=now + timedelta(minutes=5),
                    ),
                    id=command,
                    task_queue=settings.task_queue,
                )
                for _ in range(600):
                    if any(c["command_id"] == command for c in pos.commands("S077")):
                        break
                    await asyncio.sleep(0.1)
                delivered = any(c["command_id"] == command for c in pos.commands("S077"))
                # Ordering: the store had its command while the Odoo work was still stuck.
                posting_now = [
                    (
                        await client.get_workflow_handle(
                            posting_workflow_id(store_id, s["txn_id"])
                        ).describe()
                    ).status.name
                    for s in sales
                ]
                in_flight = odoo.limiter.in_flight
                await client.get_workflow_handle(command).terminate("test over")
                odoo_emulator.faults = Faults()
                await terminate(client, store_id, sales)
    finally:
        odoo_emulator.faults = Faults()
        await pos_client.aclose()
        gateway.close()
    assert delivered
    assert posting_now.count("RUNNING") >= 6, posting_now
    assert in_flight >= 1
