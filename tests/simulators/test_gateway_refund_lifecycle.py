"""The gateway forgets idempotency keys after a configurable time, lists refunds with their
metadata, and fails a succeeded refund later with Stripe's events and a signed webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import stripe

from simulators.gateway import Gateway
from tests.simulators.test_gateway_api import admin, stripe_client

PI = "pi_S001_T00077"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(db_path=None, seed=2)
    gw.start(host="127.0.0.1", port=0)
    gw.create_payment_intent(PI, amount_cents=5000, currency="usd")
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[stripe.StripeClient]:
    sdk, http = stripe_client(gateway)
    yield sdk
    http.close()


def make_refund(client: stripe.StripeClient, key: str, amount: int = 1000) -> stripe.Refund:
    return client.v1.refunds.create(
        params={"payment_intent": PI, "amount": amount, "metadata": {"refund_id": "R1"}},
        options={"idempotency_key": key},
    )


def test_a_key_is_replayed_within_its_ttl_and_forgotten_after(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    first = make_refund(client, "k1")
    assert make_refund(client, "k1").id == first.id  # replayed: 24 h by default
    status, body = admin(gateway, "PUT", "/_sim/idempotency", {"ttl_s": 0})
    assert status == 200 and body == {"ttl_s": 0.0}
    again = make_refund(client, "k1")
    # Past its time, the key is a new request: a second refund, as at Stripe after 24 h.
    assert again.id != first.id
    assert [r["amount"] for r in gateway.refunds(payment_intent=PI)] == [1000, 1000]


def test_refunds_are_listed_by_payment_intent_with_their_metadata(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    gateway.create_payment_intent("pi_other", amount_cents=900, currency="usd")
    made = make_refund(client, "k2", 700)
    client.v1.refunds.create(params={"payment_intent": "pi_other", "amount": 100})
    listed = client.v1.refunds.list(params={"payment_intent": PI, "limit": 100})
    assert [(r.id, r.metadata.to_dict(), r.status) for r in listed.data] == [
        (made.id, {"refund_id": "R1"}, "succeeded")
    ]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers["Stripe-Signature"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_refund_failing_later_is_evented_signed_and_refundable_again(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    status, _ = admin(
        gateway,
        "PUT",
        "/_sim/webhook",
        {"url": f"http://127.0.0.1:{server.server_address[1]}/hook", "secret": "whsec_t"},
    )
    try:
        made = make_refund(client, "k3", 2000)
        status, body = admin(
            gateway,
            "POST",
            f"/_sim/refunds/{made.id}/fail",
            {"failure_reason": "expired_or_canceled_card"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    assert [e["type"] for e in body["events"]] == ["charge.refund.updated", "refund.failed"]
    refund = client.v1.refunds.retrieve(made.id)
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    assert refund.failure_balance_transaction
    intent = client.v1.payment_intents.retrieve(PI)
    assert client.v1.charges.retrieve(str(intent.latest_charge)).amount_refunded == 0
    events = client.v1.events.list(params={"type": "refund.failed"})
    assert [e.data.object["id"] for e in events.data] == [made.id]
    # The webhook got both events, each verifiable with the SDK as a real endpoint would.
    assert len(_Hook.received) == 2
    for payload, signature in _Hook.received:
        event = stripe.Webhook.construct_event(payload.decode(), signature, "whsec_t")
        assert event.data.object["status"] == "failed"
    with pytest.raises(stripe.SignatureVerificationError):  # wrong secret: refused by the SDK too
        stripe.Webhook.construct_event(_Hook.received[0][0].decode(), _Hook.received[0][1], "x")
    # A failed refund cannot fail twice; the admin route says why.
    status, body = admin(gateway, "POST", f"/_sim/refunds/{made.id}/fail", {})
    assert status == 400 and "only a succeeded one fails" in body["error"]
    assert json.loads(_Hook.received[1][0])["type"] == "refund.failed"
