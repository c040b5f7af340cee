"""The gateway's webhook at the ingress: a refund the gateway fails later reaches its workflow;
an event not signed with the endpoint's secret, or not an event at all, is refused with 400."""

from __future__ import annotations

import asyncio
import json

import httpx
from pydantic import SecretStr
from temporalio.client import Client

from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, serving
from tests.workflows.helpers import eventually
from tests.workflows.test_refund import posted_sale, refund, refund_settings, request_refund
from workers.ingress import build_app
from workflows.refund import Refund, RefundStatus

SECRET = "whsec_test_webhook"


async def test_a_refund_the_gateway_fails_later_needs_attention_through_the_webhook(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway).model_copy(
        update={"gateway_webhook_secret": SecretStr(SECRET)}
    )
    gateway.webhook_secret = SECRET
    async with running_worker(client, settings), serving(settings, client) as url:
        gateway.webhook_url = f"{url}/v1/gateway/webhook"
        await posted_sale(client, settings, gateway, store_id)
        _, handle, _ = await request_refund(client, settings, refund(store_id, amount="10.00"))
        paid = await handle.result()
        assert paid.status is RefundStatus.REFUNDED
        # Days later the card turns out closed: the gateway posts its events to the webhook
        # (from its own thread, as a remote gateway would).
        events = await asyncio.to_thread(
            gateway.fail_refund, paid.gateway_refunds[0], "expired_or_canceled_card"
        )
        reopened = client.get_workflow_handle_for(Refund.run, handle.id)
        stuck = await eventually(
            lambda: reopened.query(Refund.show),
            lambda r: r.status is RefundStatus.NEEDS_ATTENTION,
            timeout=30,
        )
        # Stripe may deliver an event again: answered 200, followed up once.
        again = await asyncio.to_thread(gateway.deliver, events[-1])
        other = {**events[-1], "type": "charge.succeeded"}
        ignored = await asyncio.to_thread(gateway.deliver, other)
        shown = await reopened.query(Refund.show)

    assert [e["type"] for e in events] == ["charge.refund.updated", "refund.failed"]
    assert "expired_or_canceled_card" in stuck.reasons[-1]
    assert "the customer does not have this money" in stuck.reasons[-1]
    assert again == 200 and ignored == 200
    assert shown.status is RefundStatus.NEEDS_ATTENTION
    assert shown.followed_up == paid.gateway_refunds


async def test_unsigned_forged_and_malformed_events_are_refused_with_400(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, gateway: Gateway
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway).model_copy(
        update={"gateway_webhook_secret": SecretStr(SECRET)}
    )
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "refund.failed",
        "data": {
            "object": {
                "id": "re_1",
                "object": "refund",
                "status": "failed",
                "metadata": {"refund_id": "NOPE"},
            }
        },
    }
    body = json.dumps(event).encode()
    gateway.webhook_secret = SECRET
    signed = gateway.signature(body)
    gateway.webhook_secret = "whsec_someone_else"
    forged = gateway.signature(body)
    gateway.webhook_secret = SECRET
    stale = gateway.signature(body, timestamp=1_000_000_000)

    def sig(value: str) -> dict[str, str]:
        return {"Stripe-Signature": value, "Content-Type": "application/json"}

    transport = httpx.ASGITransport(app=build_app(settings, client=client))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        post = "/v1/gateway/webhook"
        answers = {
            "missing": await http.post(post, content=body),
            "forged": await http.post(post, content=body, headers=sig(forged)),
            "garbled": await http.post(post, content=body, headers=sig("t=abc,v1=zz")),
            "stale": await http.post(post, content=body, headers=sig(stale)),
            "tampered": await http.post(
                post, content=body.replace(b"NOPE", b"NOPF"), headers=sig(signed)
            ),
        }
        malformed = {}
        for name, text in {
            "not json": b"{not json",
            "a list": b"[1, 2]",
            "deep": b"[" * 5000 + b"]" * 5000,
            "not utf-8": b"\xff\xfe{}",
        }.items():
            malformed[name] = await http.post(
                post, content=text, headers=sig(gateway.signature(text))
            )
        ok = await http.post(post, content=body, headers=sig(signed))

    for name, answer in answers.items():
        assert answer.status_code == 400, (name, answer.text)
        assert answer.json()["status"] == "refused"
        assert answer.json()["error"].startswith("Stripe-Signature: "), name
    for name, answer in malformed.items():
        assert answer.status_code == 400, (name, answer.text)
        assert answer.json()["error"].startswith("body: not one JSON event"), name
    # Signed and well formed: received (a refund retailflow does not know is ignored).
    assert ok.status_code == 200
    assert ok.json() == {"status": "received", "result": "ignored: no refund NOPE"}
