"""Faults injected into the gateway simulator, seen through the real ``stripe`` SDK: dropped
connections and lost responses, the SDK's own retries with its idempotency key, HTTP 500s,
concurrent use of one key, and run-time control over ``/_sim/faults``."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
import stripe

from simulators.gateway import Gateway, GatewayFaults

PI = "pi_S002_T00007"
REFUNDS_ONLY = {"methods": ("POST",), "paths": ("/v1/refunds",)}


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(db_path=None, seed=2)
    gw.start(host="127.0.0.1", port=0)
    gw.create_payment_intent(PI, amount_cents=2500, currency="usd")
    yield gw
    gw.stop()


def sdk(gw: Gateway, retries: int) -> tuple[stripe.StripeClient, stripe.RequestsClient]:
    http = stripe.RequestsClient()
    client = stripe.StripeClient(
        "sk_test_retailflow",
        base_addresses={"api": gw.url},
        http_client=http,
        max_network_retries=retries,
    )
    return client, http


@pytest.fixture
def retrying(gateway: Gateway) -> Iterator[stripe.StripeClient]:
    client, http = sdk(gateway, retries=2)
    with closing(http):
        yield client


@pytest.fixture
def single_shot(gateway: Gateway) -> Iterator[stripe.StripeClient]:
    client, http = sdk(gateway, retries=0)
    with closing(http):
        yield client


def test_lost_response_then_sdk_retry_makes_exactly_one_refund(
    gateway: Gateway, retrying: stripe.StripeClient
) -> None:
    gateway.faults = GatewayFaults(
        error_rate=1.0, kinds=("lost_response",), max_faults=1, **REFUNDS_ONLY
    )
    refund = retrying.v1.refunds.create(
        {"payment_intent": PI, "amount": 700}, {"idempotency_key": "refund-R7"}
    )
    assert refund.amount == 700
    assert refund.last_response.headers["Idempotent-Replayed"] == "true"
    assert [r["id"] for r in gateway.refunds(payment_intent=PI)] == [refund.id]
    stats = gateway.stats()
    assert stats["faults"]["lost_response"] == 1
    assert (stats["refunds_created"], stats["idempotent_replays"]) == (1, 1)


def test_lost_response_without_retries_leaves_the_refund_made(
    gateway: Gateway, single_shot: stripe.StripeClient
) -> None:
    gateway.faults = GatewayFaults(error_rate=1.0, kinds=("lost_response",), **REFUNDS_ONLY)
    with pytest.raises(stripe.APIConnectionError):
        single_shot.v1.refunds.create({"payment_intent": PI}, {"idempotency_key": "R8"})
    made = gateway.refunds(payment_intent=PI)
    assert [r["amount"] for r in made] == [2500]

    gateway.faults = GatewayFaults()
    again = single_shot.v1.refunds.create({"payment_intent": PI}, {"idempotency_key": "R8"})
    assert again.id == made[0]["id"]
    assert len(gateway.refunds(payment_intent=PI)) == 1


def test_transport_fault_is_retried_by_the_sdk_before_any_work(
    gateway: Gateway, retrying: stripe.StripeClient, single_shot: stripe.StripeClient
) -> None:
    gateway.faults = GatewayFaults(error_rate=1.0, kinds=("transport",), **REFUNDS_ONLY)
    with pytest.raises(stripe.APIConnectionError):
        single_shot.v1.refunds.create({"payment_intent": PI, "amount": 100})
    assert gateway.refunds(payment_intent=PI) == []

    gateway.faults = GatewayFaults(
        error_rate=1.0, kinds=("transport",), max_faults=2, **REFUNDS_ONLY
    )
    refund = retrying.v1.refunds.create({"payment_intent": PI, "amount": 100})
    assert refund.last_response.headers.get("Idempotent-Replayed") is None
    assert [r["id"] for r in gateway.refunds(payment_intent=PI)] == [refund.id]
    assert gateway.stats()["faults"]["transport"] == 3


def test_http_500_is_an_api_error_and_does_no_work(
    gateway: Gateway, single_shot: stripe.StripeClient
) -> None:
    gateway.faults = GatewayFaults(error_rate=1.0, kinds=("http_500",), **REFUNDS_ONLY)
    with pytest.raises(stripe.APIError) as caught:
        single_shot.v1.refunds.create({"payment_intent": PI}, {"idempotency_key": "R5"})
    assert caught.value.http_status == 500
    assert gateway.refunds(payment_intent=PI) == []

    # The 500 happened before the work: nothing was stored against the key.
    gateway.faults = GatewayFaults()
    refund = single_shot.v1.refunds.create({"payment_intent": PI}, {"idempotency_key": "R5"})
    assert refund.last_response.headers.get("Idempotent-Replayed") is None


def test_path_filter_spares_other_routes(
    gateway: Gateway, single_shot: stripe.StripeClient
) -> None:
    gateway.faults = GatewayFaults(
        error_rate=1.0, kinds=("transport", "http_500"), seed=1, **REFUNDS_ONLY
    )
    for _ in range(5):
        assert single_shot.v1.payment_intents.retrieve(PI).amount == 2500
    assert single_shot.v1.refunds.list({"payment_intent": PI}).data == []
    assert gateway.stats()["faults_total"] == 0


def test_concurrent_requests_with_one_key_conflict(gateway: Gateway) -> None:
    gateway.faults = GatewayFaults(latency_ms=400, **REFUNDS_ONLY)
    outcomes: dict[str, Any] = {}

    def refund(name: str) -> None:
        client, http = sdk(gateway, retries=0)
        with closing(http):
            try:
                outcomes[name] = client.v1.refunds.create(
                    {"payment_intent": PI, "amount": 300}, {"idempotency_key": "same"}
                ).id
            except stripe.StripeError as exc:
                outcomes[name] = exc

    first = threading.Thread(target=refund, args=("first",))
    first.start()
    time.sleep(0.15)
    refund("second")
    first.join(timeout=10)

    assert isinstance(outcomes["first"], str)
    conflict = outcomes["second"]
    assert isinstance(conflict, stripe.APIError)
    assert conflict.http_status == 409
    assert conflict.error is not None and conflict.error.code == "idempotency_key_in_use"
    assert [r["id"] for r in gateway.refunds(payment_intent=PI)] == [outcomes["first"]]


def _call(gw: Gateway, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(gw.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_faults_are_switched_over_http(gateway: Gateway, single_shot: stripe.StripeClient) -> None:
    status, body = _call(
        gateway,
        "PUT",
        "/_sim/faults",
        {"error_rate": 1.0, "kinds": ["http_500"], "paths": ["/v1/payment_intents"]},
    )
    assert status == 200
    assert (body["error_rate"], body["kinds"], body["paths"]) == (
        1.0,
        ["http_500"],
        ["/v1/payment_intents"],
    )
    assert gateway.faults.paths == ("/v1/payment_intents",)
    with pytest.raises(stripe.APIError):
        single_shot.v1.payment_intents.retrieve(PI)
    # The admin routes are never faulted.
    assert _call(gateway, "GET", "/_sim/faults")[0] == 200

    assert _call(gateway, "PUT", "/_sim/faults", {"bogus": 1})[0] == 400
    assert _call(gateway, "PUT", "/_sim/faults", {"kinds": ["meteor"]})[0] == 400
    assert _call(gateway, "PUT", "/_sim/faults", {"error_rate": 0.0})[1]["error_rate"] == 0.0
    assert single_shot.v1.payment_intents.retrieve(PI).amount == 2500


def test_seeded_fault_draws_repeat() -> None:
    def draws(seed: int) -> list[str | None]:
        faults = GatewayFaults(error_rate=0.5, seed=seed)
        return [faults.draw("POST", "/v1/refunds") for _ in range(40)]

    assert draws(3) == draws(3)
    assert {None, "transport", "http_500", "lost_response"} == set(draws(3))
    with pytest.raises(ValueError):
        GatewayFaults(error_rate=1.5)
