"""The gateway simulator speaks Stripe: the official ``stripe`` SDK, pointed at it by its API
base alone, reads payment intents and charges, makes refunds and lists settlement data, and
gets Stripe's errors as the SDK's own exception classes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
import stripe

from simulators.gateway import Gateway, StripeError

PI = "pi_S001_T00042"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(db_path=None, seed=1)
    gw.start(host="127.0.0.1", port=0)
    gw.create_payment_intent(PI, amount_cents=1591, currency="usd", metadata={"store": "S001"})
    yield gw
    gw.stop()


def stripe_client(
    gw: Gateway, api_key: str = "sk_test_retailflow", retries: int = 0
) -> tuple[stripe.StripeClient, stripe.RequestsClient]:
    http = stripe.RequestsClient()
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": gw.url},
        http_client=http,
        max_network_retries=retries,
    )
    return client, http


@pytest.fixture
def client(gateway: Gateway) -> Iterator[stripe.StripeClient]:
    sdk, http = stripe_client(gateway)
    yield sdk
    http.close()


def admin(gw: Gateway, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(gw.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_payment_intent_and_its_charge(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.retrieve(PI)
    assert isinstance(intent, stripe.PaymentIntent)
    assert (intent.id, intent.amount, intent.amount_received) == (PI, 1591, 1591)
    assert (intent.currency, intent.status) == ("usd", "succeeded")
    assert intent.metadata["store"] == "S001"
    assert isinstance(intent.latest_charge, str) and intent.latest_charge.startswith("ch_")

    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (1591, 0, False)
    assert charge.payment_intent == PI

    expanded = client.v1.payment_intents.retrieve(PI, {"expand": ["latest_charge"]})
    assert isinstance(expanded.latest_charge, stripe.Charge)
    assert expanded.latest_charge.id == charge.id


def test_full_refund_defaults_to_the_remaining_amount(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    refund = client.v1.refunds.create(
        {"payment_intent": PI, "reason": "requested_by_customer", "metadata": {"refund_id": "R1"}}
    )
    assert isinstance(refund, stripe.Refund)
    assert refund.id.startswith("re_")
    assert (refund.amount, refund.currency, refund.status) == (1591, "usd", "succeeded")
    assert (refund.payment_intent, refund.reason) == (PI, "requested_by_customer")
    assert refund.metadata.to_dict() == {"refund_id": "R1"}

    charge = client.v1.charges.retrieve(refund.charge)
    assert (charge.amount_refunded, charge.refunded) == (1591, True)
    assert [r["id"] for r in gateway.refunds(payment_intent=PI)] == [refund.id]
    assert client.v1.refunds.retrieve(refund.id).amount == 1591


def test_partial_refunds_add_up_and_list_by_payment_intent(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    gateway.create_payment_intent("pi_other", amount_cents=999)
    client.v1.refunds.create({"payment_intent": "pi_other", "amount": 100})
    first = client.v1.refunds.create({"payment_intent": PI, "amount": 500})
    second = client.v1.refunds.create({"payment_intent": PI, "amount": 591})

    charge = client.v1.charges.retrieve(first.charge)
    assert (charge.amount_refunded, charge.refunded) == (1091, False)

    listed = client.v1.refunds.list({"payment_intent": PI})
    assert isinstance(listed, stripe.ListObject)
    assert listed.url == "/v1/refunds" and listed.has_more is False
    assert [r.id for r in listed.data] == [second.id, first.id]  # newest first
    assert sum(r.amount for r in listed.data) == 1091


def test_over_refund_is_refused_with_amount_too_large(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    client.v1.refunds.create({"payment_intent": PI, "amount": 500})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": PI, "amount": 1092})
    err = caught.value
    assert (err.http_status, err.code, err.param) == (400, "amount_too_large", "amount")
    assert err.user_message == (
        "Refund amount ($10.92) is greater than unrefunded amount on charge ($10.91)"
    )
    assert err.error is not None and err.error.type == "invalid_request_error"
    assert [r["amount"] for r in gateway.refunds(payment_intent=PI)] == [500]


def test_fully_refunded_charge_is_charge_already_refunded(client: stripe.StripeClient) -> None:
    client.v1.refunds.create({"payment_intent": PI})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": PI, "amount": 1})
    assert (caught.value.http_status, caught.value.code) == (400, "charge_already_refunded")


def test_same_key_same_parameters_replays_the_same_refund(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    params: dict[str, Any] = {"payment_intent": PI, "amount": 500, "metadata": {"refund_id": "R1"}}
    first = client.v1.refunds.create(params, {"idempotency_key": "refund-R1"})
    again = client.v1.refunds.create(params, {"idempotency_key": "refund-R1"})

    assert again.id == first.id
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(gateway.refunds(payment_intent=PI)) == 1
    assert client.v1.charges.retrieve(first.charge).amount_refunded == 500
    stats = gateway.stats()
    assert (stats["refunds_created"], stats["idempotent_replays"]) == (1, 1)


def test_same_key_other_parameters_is_an_idempotency_error(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    client.v1.refunds.create({"payment_intent": PI, "amount": 500}, {"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.refunds.create({"payment_intent": PI, "amount": 501}, {"idempotency_key": "k"})
    assert caught.value.http_status == 400
    assert "same parameters they were first used with" in (caught.value.user_message or "")
    assert [r["amount"] for r in gateway.refunds(payment_intent=PI)] == [500]


def test_a_stored_error_is_replayed_for_its_key(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    """A refused refund is a result too: once the charge has room, the key still answers the
    refusal it first got (Stripe stores whatever an executed request returned)."""
    gateway.create_payment_intent("pi_small", amount_cents=100)
    params = {"payment_intent": "pi_small", "amount": 200}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.refunds.create(params, {"idempotency_key": "too-much"})
        assert caught.value.code == "amount_too_large"
    assert caught.value.headers is not None
    assert caught.value.headers.get("Idempotent-Replayed") == "true"


def test_declined_refunds_are_card_errors(gateway: Gateway, client: stripe.StripeClient) -> None:
    gateway.create_payment_intent("pi_fine", amount_cents=700)
    gateway.decline(PI)
    with pytest.raises(stripe.CardError) as caught:
        client.v1.refunds.create({"payment_intent": PI, "amount": 500})
    assert (caught.value.http_status, caught.value.code) == (402, "refund_declined")

    assert (
        client.v1.charges.retrieve(client.v1.payment_intents.retrieve(PI).latest_charge)[
            "amount_refunded"
        ]
        == 0
    )
    assert [(r["status"], r["failure_reason"]) for r in gateway.refunds(payment_intent=PI)] == [
        ("failed", "declined")
    ]
    assert client.v1.refunds.create({"payment_intent": "pi_fine"}).status == "succeeded"
    assert gateway.stats()["declines"] == 1


def test_decline_rate_over_http(gateway: Gateway, client: stripe.StripeClient) -> None:
    status, body = admin(gateway, "PUT", "/_sim/declines", {"payment_intents": [], "rate": 1.0})
    assert (status, body) == (200, {"payment_intents": [], "rate": 1.0})
    with pytest.raises(stripe.CardError):
        client.v1.refunds.create({"payment_intent": PI})
    admin(gateway, "PUT", "/_sim/declines", {"rate": 0.0})
    assert client.v1.refunds.create({"payment_intent": PI}).amount == 1591


def test_unknown_objects_are_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.retrieve("pi_nope")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert caught.value.user_message == "No such payment_intent: 'pi_nope'"

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": "pi_nope", "amount": 1})
    assert (caught.value.code, caught.value.param) == ("resource_missing", "payment_intent")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.retrieve("re_nope")
    assert caught.value.code == "resource_missing"


def test_bad_parameters_are_invalid_requests(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": PI, "reason": "changed_mind"})
    assert caught.value.param == "reason"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": PI, "amount": 0})
    assert caught.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({})
    assert caught.value.code == "parameter_missing"


@pytest.mark.parametrize("key", ["sk_live_abcdefghijklmnop", "pk_test_123", "nonsense"])
def test_keys_other_than_secret_test_keys_are_refused(gateway: Gateway, key: str) -> None:
    client, http = stripe_client(gateway, api_key=key)
    try:
        with pytest.raises(stripe.AuthenticationError) as caught:
            client.v1.payment_intents.retrieve(PI)
        assert caught.value.http_status == 401
    finally:
        http.close()


def test_balance_transactions_and_payouts(gateway: Gateway, client: stripe.StripeClient) -> None:
    day = 1_767_225_600  # 2026-01-01T00:00:00Z
    gateway.create_payment_intent("pi_old", amount_cents=1000, created=day + 3600)
    gateway.create_payment_intent("pi_old2", amount_cents=2000, created=day + 7200)
    client.v1.refunds.create({"payment_intent": PI, "amount": 500})

    window = client.v1.balance_transactions.list(
        {"created": {"gte": day, "lt": day + 86400}, "limit": 10}
    )
    assert (window.object, window.url, window.has_more) == (
        "list",
        "/v1/balance_transactions",
        False,
    )
    assert [(t.type, t.amount, t.fee, t.net) for t in window.data] == [
        ("charge", 2000, 88, 1912),  # newest first; fee 2.9 % + 30
        ("charge", 1000, 59, 941),
    ]
    assert all(isinstance(t, stripe.BalanceTransaction) for t in window.data)
    assert window.data[0].source.startswith("ch_")

    everything = client.v1.balance_transactions.list({"limit": 100})
    refund_txn = next(t for t in everything.data if t.type == "refund")
    assert (refund_txn.amount, refund_txn.fee, refund_txn.net) == (-500, 0, -500)
    assert refund_txn.source.startswith("re_")

    page = client.v1.balance_transactions.list({"limit": 1})
    assert len(page.data) == 1 and page.has_more is True
    paged = list(client.v1.balance_transactions.list({"limit": 2}).auto_paging_iter())
    # 3 charges, 1 refund, and the own transaction of each day's payout (2 days).
    assert sorted(t.type for t in paged) == ["charge"] * 3 + ["payout"] * 2 + ["refund"]

    payouts = client.v1.payouts.list({"created": {"gte": day, "lt": day + 3 * 86400}})
    assert [(p.amount, p.created, p.status) for p in payouts.data] == [
        (1912 + 941, day + 86400, "paid")
    ]
    in_payout = client.v1.balance_transactions.list({"payout": payouts.data[0].id})
    assert sorted(t.net for t in in_payout.data) == [941, 1912]


def test_admin_payment_intents_are_idempotent_by_id(gateway: Gateway) -> None:
    status, made = admin(
        gateway,
        "POST",
        "/_sim/payment_intents",
        {"id": "pi_admin", "amount": 250, "currency": "eur"},
    )
    assert (status, made["id"], made["amount"], made["currency"]) == (200, "pi_admin", 250, "eur")
    status, again = admin(
        gateway, "POST", "/_sim/payment_intents", {"id": "pi_admin", "amount": 999}
    )
    assert (status, again["amount"], again["latest_charge"]) == (200, 250, made["latest_charge"])
    assert admin(gateway, "POST", "/_sim/payment_intents", {"amount": 1})[0] == 400

    _, stats = admin(gateway, "GET", "/_sim/stats")
    assert set(stats) >= {"requests", "refunds_created", "idempotent_replays", "faults", "declines"}
    assert admin(gateway, "POST", "/_sim/reset")[0] == 200
    assert gateway.ledger.refunds() == []
    with pytest.raises(StripeError) as caught:
        gateway.payment_intent("pi_admin")
    assert caught.value.code == "resource_missing"


def test_a_database_file_keeps_refunds_and_keys_across_restarts(tmp_path: Any) -> None:
    path = str(tmp_path / "gateway.sqlite")
    with Gateway(db_path=path, seed=1) as gw:
        gw.start()
        gw.create_payment_intent(PI, amount_cents=1591)
        client, http = stripe_client(gw)
        with closing(http):
            refund = client.v1.refunds.create({"payment_intent": PI}, {"idempotency_key": "R9"})
    with Gateway(db_path=path, seed=1) as gw:
        gw.start()
        client, http = stripe_client(gw)
        with closing(http):
            again = client.v1.refunds.create({"payment_intent": PI}, {"idempotency_key": "R9"})
            assert again.id == refund.id
            assert client.v1.charges.retrieve(refund.charge).refunded is True
            gw.create_payment_intent("pi_after_restart", amount_cents=300)
            fresh = client.v1.refunds.create({"payment_intent": "pi_after_restart"})
            assert fresh.id != refund.id and fresh.charge != refund.charge
