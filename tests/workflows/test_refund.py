"""Refund against the dev server, the Odoo emulator and the Stripe-compatible gateway."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import odoorpc
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.odoo.claim import Refusal
from activities.odoo.stock import OdooStockActivities
from domain.refund import RefundRejected
from simulators.gateway import Gateway
from simulators.odoo import Faults, OdooEmulator
from tests.conftest import odoo_rpc, running_worker, settings_for
from tests.identities import ISSUER, Signer
from tests.workflows.helpers import eventually
from workers.identity import trust_from
from workers.refunds import request_refund as request_unsigned
from workers.settings import Settings
from workers.submit import Mode, submit_sale, wait_until_settled
from workflows.refund import (
    OpsAction,
    Refund,
    RefundInput,
    RefundResult,
    RefundStatus,
    report_gateway_refund_failed,
)
from workflows.sale_refunds import sale_refunds_workflow_id

# 2 x 10.00 + 1 x 30.00 at 15% = 57.50: 20.00 cash + 37.50 card
SALE_LINES = [
    {"sku": "MUG-WHITE", "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"},
    {"sku": "TEE-BLK-M", "qty": "1", "unit_price": "30.00", "tax_rate": "0.15"},
]


def refund_settings(
    emu: OdooEmulator, address: str, gw: Gateway, tmp: Path | None = None, **policy: Any
) -> Settings:
    extra: dict[str, Any] = {"gateway_api_base": gw.url, **ISSUER.trusted()}
    if policy and tmp is not None:
        path = tmp / "policy.json"
        path.write_text(json.dumps(policy))
        extra["refund_policy"] = str(path)
    return settings_for(emu, address, **extra)


async def posted_sale(client: Client, settings: Settings, gw: Gateway, store: str) -> str:
    """A sale paid 20.00 cash + 37.50 card, posted in Odoo; the card payment is in the gateway."""
    pi = f"pi_{store}_{uuid.uuid4().hex[:6]}"
    gw.create_payment_intent(pi, amount_cents=3750, currency="usd")
    sale = {
        "store_id": store,
        "txn_id": "T1",
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "currency": "USD",
        "lines": SALE_LINES,
        "payments": [
            {"method": "cash", "amount": "20.00"},
            {"method": "card", "amount": "37.50", "reference": pi},
        ],
    }
    sub = await submit_sale(client, settings, sale, Mode.PER_SALE, "test")
    await wait_until_settled(client, [sub], timedelta(seconds=30))
    return pi


async def request_refund(
    client: Client, settings: Settings, raw: dict[str, Any], requester: str = "cashier-ann"
) -> tuple[Any, Any, bool]:
    """Request a refund as `requester` (signed by the test issuer the settings trust)."""
    return await request_unsigned(client, settings, raw, ISSUER.request(raw, requester))


async def awaiting_decision(
    client: Client,
    settings: Settings,
    gw: Gateway,
    store: str,
    requester: str = "cashier-ann",
    **kw: Any,
) -> tuple[Any, Any]:
    """A posted sale and a refund of it (30.00 unless `kw` says otherwise: over the policy's
    limit) requested by `requester`, waiting for a decision: (request, handle)."""
    await posted_sale(client, settings, gw, store)
    raw = refund(store, **({"amount": "30.00"} | kw))
    request, handle, _ = await request_refund(client, settings, raw, requester)
    await eventually(lambda: handle.query(Refund.show), awaiting_approval)
    return request, handle


def approval(sub: str, refund_id: str, **kw: Any) -> Any:
    return ISSUER.approval(sub, refund_id, **kw)


async def concurrent_refunds(
    client: Client, settings: Settings, gw: Gateway, store: str, amount: str, n: int
) -> tuple[str, list[Any], list[RefundResult]]:
    """A posted sale (its card payment id), then `n` refunds of `amount` requested at once:
    what was started, and how each ended."""
    pi = await posted_sale(client, settings, gw, store)
    started = await asyncio.gather(
        *(request_refund(client, settings, refund(store, amount=amount)) for _ in range(n))
    )
    return pi, list(started), [await h.result() for _, h, _ in started]


def refund(store: str, **kw: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "refund_id": f"RF{uuid.uuid4().hex[:8]}",
        "store_id": store,
        "txn_id": "T1",
        "reason": "changed_mind",
        "requested_by": "cashier-ann",
    }
    raw.update(kw)
    return raw


def awaiting_approval(r: RefundResult) -> bool:
    return r.status is RefundStatus.AWAITING_APPROVAL


def refund_moves(odoo: odoorpc.ODOO, refund_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=", f"REFUND:{refund_id}")]],
        {"fields": ["state", "name", "narration"]},
    )
    return rows


async def test_small_refund_passes_by_policy(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        request, handle, dup = await request_refund(
            client, settings, refund(store_id, amount="10.00")
        )
        result = await handle.result()
        _, _, again = await request_refund(
            client, settings, refund(store_id, amount="10.00", refund_id=request.refund_id)
        )
    assert not dup and again  # a second request for the same refund id is absorbed
    assert result.status is RefundStatus.REFUNDED
    assert result.tenders[0].reference == pi and result.tenders[0].amount == Decimal("10.00")
    (refund_,) = gateway.refunds(payment_intent=pi)
    assert refund_["amount"] == 1000 and result.gateway_refunds == [refund_["id"]]
    (move,) = refund_moves(odoo, request.refund_id)
    assert move["state"] == "posted" and result.move_name == move["name"]
    lines = odoo.execute_kw(
        "account.move.line",
        "search_read",
        [[("move_id", "=", move["id"])]],
        {"fields": ["name", "debit", "credit"]},
    )
    assert (
        round(sum(ln["debit"] for ln in lines), 2)
        == round(sum(ln["credit"] for ln in lines), 2)
        == 10.0
    )
    assert all(
        ln["name"].startswith(f"REFUND:{request.refund_id} POS:{store_id}:T1 ") for ln in lines
    )
    assert "cashier-ann" in move["narration"] and "approved by policy" in move["narration"]


async def test_large_refund_approved_by_a_second_person_with_restock(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        raw = refund(store_id, lines=[{"sku": "TEE-BLK-M", "qty": "1"}], restock=True)
        request, handle, _ = await request_refund(client, settings, raw)
        await eventually(lambda: handle.query(Refund.show), awaiting_approval)
        with pytest.raises(WorkflowUpdateFailedError) as self_approval:
            await handle.execute_update(
                Refund.approve, approval("cashier-ann", request.refund_id, role="store_manager")
            )
        with pytest.raises(WorkflowUpdateFailedError) as wrong_role:
            await handle.execute_update(
                Refund.approve, approval("bob", request.refund_id, role="cashier")
            )
        answer = await handle.execute_update(
            Refund.approve, approval("lee", request.refund_id, comment="receipt checked")
        )
        result = await handle.result()
        with pytest.raises(RPCError) as closed:
            await handle.execute_update(
                Refund.reject, approval("kim", request.refund_id, approve=False, role="finance")
            )
    assert "four eyes" in str(self_approval.value.cause)
    assert "role 'cashier' may not decide refunds" in str(wrong_role.value.cause)
    assert "workflow execution already completed" in str(closed.value)
    assert answer == f"refund {request.refund_id} approved by lee"
    assert result.status is RefundStatus.REFUNDED and result.decided_by == "lee"
    assert result.decided_by_sub == "lee" and result.requested_by_sub == "cashier-ann"
    assert result.amount == Decimal("34.50")  # 30.00 + 15% tax, all on the card
    assert [r["amount"] for r in gateway.refunds(payment_intent=pi)] == [3450]
    assert [e.what for e in result.audit][:2] == [
        "requested (changed_mind)",
        "approved as store_manager",
    ]
    (move,) = refund_moves(odoo, request.refund_id)
    assert "lee" in move["narration"] and "receipt checked" in move["narration"]
    picking = odoo.execute_kw(
        "stock.picking",
        "search_read",
        [[("origin", "=", request.key)]],
        {"fields": ["state", "location_dest_id"]},
    )
    assert [p["state"] for p in picking] == ["done"] and picking[0]["location_dest_id"][0] == 8


async def test_unanswered_request_is_reminded_then_expires(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = refund_settings(
        odoo_emulator, temporal_address, gateway, tmp_path, remind_after="PT2S", expire_after="PT4S"
    )
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        request, handle, _ = await request_refund(
            client, settings, refund(store_id, amount="50.00")
        )
        result = await handle.result()
    assert result.status is RefundStatus.REJECTED
    assert result.reasons == ["expired: no decision within 0:00:04"]
    whats = [e.what for e in result.audit]
    assert whats.index("reminder: no decision after 0:00:02") < whats.index("expired")
    assert gateway.refunds(payment_intent=pi) == []
    assert refund_moves(odoo, request.refund_id) == []  # the reservation was released


async def test_declined_by_the_gateway_ends_rejected_without_entry(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        gateway.decline(pi)
        request, handle, _ = await request_refund(client, settings, refund(store_id, amount="5.00"))
        result = await handle.result()
    assert result.status is RefundStatus.REJECTED
    assert result.reasons[0].startswith("RefundDeclined: gateway declined")
    assert refund_moves(odoo, request.refund_id) == []


async def test_paid_then_odoo_failing_is_posted_eventually_with_one_gateway_refund(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        odoo_emulator.faults = Faults(error_rate=1.0, kinds=("http_500",), methods=("action_post",))
        try:
            request, handle, _ = await request_refund(
                client, settings, refund(store_id, amount="12.00")
            )
            shown = await eventually(
                lambda: handle.query(Refund.show),
                lambda r: r.status is RefundStatus.PAID_POSTING_PENDING,
            )
            await asyncio.sleep(3)  # several failed posting attempts
            # A decision on a request that is no longer open is refused by the validator.
            with pytest.raises(WorkflowUpdateFailedError) as late:
                await handle.execute_update(
                    Refund.approve, approval("lee", request.refund_id, role="finance")
                )
        finally:
            odoo_emulator.faults = Faults()
        result = await handle.result()
    assert shown.status is RefundStatus.PAID_POSTING_PENDING
    assert "PaidPostingPending: it takes no decision" in str(late.value.cause)
    assert result.status is RefundStatus.REFUNDED
    assert len(gateway.refunds(payment_intent=pi)) == 1
    assert [m["state"] for m in refund_moves(odoo, request.refund_id)] == ["posted"]


async def test_concurrent_refunds_never_exceed_what_was_paid(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = refund_settings(
        odoo_emulator, temporal_address, gateway, tmp_path, auto_approve_up_to="100"
    )
    async with running_worker(client, settings):
        pi, _, results = await concurrent_refunds(client, settings, gateway, store_id, "40.00", 3)
    done = [r for r in results if r.status is RefundStatus.REFUNDED]
    refused = [r for r in results if r.status is RefundStatus.REJECTED]
    assert len(done) == 1 and len(refused) == 2
    assert all(
        "exceeds what" in r.reasons[0] and "can still refund: 17.50" in r.reasons[0]
        for r in refused
    )
    assert sum(r["amount"] for r in gateway.refunds(payment_intent=pi)) == 3750
    posted = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=like", "REFUND:%"), ("state", "!=", "cancel")]],
        {"fields": ["ref", "state"]},
    )
    ours = [m for m in posted if m["ref"] in {f"REFUND:{r.refund_id}" for r in results}]
    assert [m["state"] for m in ours] == ["posted"]


async def test_invalid_request_and_unknown_sale(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        _, handle, _ = await request_refund(client, settings, refund("NOSTORE", amount="1.00"))
        result = await handle.result()
    assert result.status is RefundStatus.REJECTED
    assert result.reasons[0].startswith("SaleNotPosted: sale POS:NOSTORE:T1 has no posted entry")


async def test_web_ui_signal_approval_runs_the_same_checks(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        request, handle = await awaiting_decision(client, settings, gateway, store_id)
        rid = request.refund_id
        # What the Web UI's "Send a signal" does: the requester's own approval is refused, a
        # forged one (signed by a key nobody trusts) and the old unsigned shape too...
        forged = Signer.new(kid=ISSUER.issuer.kid).approval("lee", rid, role="finance")
        for refused in (
            approval("cashier-ann", rid, role="finance"),
            forged,
            {"by": "lee", "role": "finance"},
        ):
            await handle.signal("approve_from_ui", refused)
        still = await eventually(
            lambda: handle.query(Refund.show),
            lambda r: sum("decision refused" in e.what for e in r.audit) == 3,
        )
        # ...a second person's is taken.
        await handle.signal("approve_from_ui", approval("lee", rid, role="finance", comment="ok"))
        result = await handle.result()
    assert still.status is RefundStatus.AWAITING_APPROVAL
    refusals = [e.what for e in still.audit if "decision refused" in e.what]
    assert "four eyes: cashier-ann requested" in refusals[0]
    assert "forged assertion: its signature does not verify" in refusals[1]
    assert "no assertion" in refusals[2]
    assert result.status is RefundStatus.REFUNDED and result.decided_by == "lee"


# -- issue 7: ids, the sale's lock, dead ends, identities, the store's day ----------------------


@pytest.mark.parametrize("concurrency", ["serial", "postgres"])
async def test_many_concurrent_refunds_of_one_sale_are_decided_one_at_a_time(
    client: Client,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    concurrency: str,
) -> None:
    # Also where Odoo's commits become visible out of id order: the decision must not care.
    emulator: OdooEmulator = request.getfixturevalue(
        "odoo_emulator" if concurrency == "serial" else "postgres_odoo_emulator"
    )
    odoo = odoo_rpc(emulator)
    settings = refund_settings(
        emulator, temporal_address, gateway, tmp_path, auto_approve_up_to="100"
    )
    async with running_worker(client, settings):
        pi, started, results = await concurrent_refunds(
            client, settings, gateway, store_id, "15.00", 8
        )
        lock = client.get_workflow_handle(sale_refunds_workflow_id(store_id, "T1"))
        described = await lock.describe()
    assert all(h.id == f"refund:{req.refund_id}" for req, h, _ in started)
    done = [r for r in results if r.status is RefundStatus.REFUNDED]
    refused = [r for r in results if r.status is RefundStatus.REJECTED]
    # 57.50 paid: three refunds of 15.00 fit, whatever order they are decided in.
    assert len(done) == 3 and len(refused) == 5
    assert all("RefundExceedsSale" in r.reasons[0] for r in refused)
    assert sum(r["amount"] for r in gateway.refunds(payment_intent=pi)) == 3750
    assert described.workflow_type == "SaleRefunds"
    refs = {f"REFUND:{r.refund_id}" for r in results}
    moves = odoo.execute_kw(
        "account.move", "search_read", [[("ref", "in", sorted(refs))]], {"fields": ["state"]}
    )
    assert sorted(m["state"] for m in moves) == ["posted"] * 3


async def test_four_eyes_compare_authenticated_subjects_not_names(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        await posted_sale(client, settings, gateway, store_id)
        raw = refund(store_id, amount="30.00", requested_by="typed by hand")
        request, handle, _ = await request_unsigned(
            client, settings, raw, ISSUER.request(raw, "ann", name="Ann")
        )
        rid = request.refund_id
        await eventually(lambda: handle.query(Refund.show), awaiting_approval)
        # The requester under another display name is still the requester...
        with pytest.raises(WorkflowUpdateFailedError) as self_approval:
            await handle.execute_update(
                Refund.approve, approval("ann", rid, role="finance", name="Lee Park")
            )
        # ...names typed by hand are not taken...
        with pytest.raises(WorkflowUpdateFailedError) as unsigned:
            await handle.execute_update(Refund.approve, {"by": "lee", "role": "finance"})
        # ...and another person with the requester's display name is another person.
        await handle.execute_update(Refund.approve, approval("ann.b", rid, name="Ann"))
        result = await handle.result()
    assert "four eyes: ann requested" in str(self_approval.value.cause)
    assert "no assertion" in str(unsigned.value.cause)
    assert result.requested_by == "Ann" and result.requested_by_sub == "ann"
    assert result.status is RefundStatus.REFUNDED
    assert (result.decided_by, result.decided_by_sub) == ("Ann", "ann.b")


async def test_a_payment_the_gateway_does_not_know_is_rejected_and_released(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        await posted_sale(client, settings, gateway, store_id)
        gateway.reset()  # the gateway no longer knows the card payment
        request, handle, _ = await request_refund(client, settings, refund(store_id, amount="5.00"))
        result = await handle.result()
    assert result.status is RefundStatus.REJECTED
    assert "GatewayRefused" in result.reasons[0] and "No such payment_intent" in result.reasons[0]
    assert refund_moves(odoo, request.refund_id) == []


async def test_a_deleted_draft_needs_attention_and_retry_books_it(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        request, handle, _ = await request_refund(
            client, settings, refund(store_id, amount="30.00")
        )
        await eventually(lambda: handle.query(Refund.show), awaiting_approval)
        (draft,) = refund_moves(odoo, request.refund_id)
        odoo.execute_kw("account.move", "unlink", [[draft["id"]]])  # a person cleans up
        await handle.execute_update(
            Refund.approve, approval("lee", request.refund_id, role="finance")
        )
        stuck = await eventually(
            lambda: handle.query(Refund.show),
            lambda r: r.status is RefundStatus.NEEDS_ATTENTION,
        )
        await handle.signal(Refund.retry, OpsAction(by="kim", comment="write it again"))
        result = await handle.result()
    assert "draft entry was deleted in Odoo" in stuck.reasons[-1]
    assert result.status is RefundStatus.REFUNDED
    assert len(gateway.refunds(payment_intent=pi)) == 1
    (move,) = refund_moves(odoo, request.refund_id)
    assert move["state"] == "posted" and result.move_name == move["name"]


async def test_a_restock_failure_after_paying_needs_attention_not_a_failed_workflow(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = refund_settings(
        odoo_emulator, temporal_address, gateway, tmp_path, auto_approve_up_to="100"
    )
    rid = f"RF{uuid.uuid4().hex[:8]}"
    validate = OdooStockActivities._validate
    refused: list[str] = []

    def wizard_once(self: OdooStockActivities, survivors: dict[str, int]) -> dict[str, Refusal]:
        # Odoo answers the receipt's validation with a wizard once (e.g. a person's setting).
        if f"REFUND:{rid}" in survivors and not refused:
            refused.append(rid)
            return {f"REFUND:{rid}": Refusal("StockNotValidated", "answered a wizard")}
        return validate(self, survivors)

    monkeypatch.setattr(OdooStockActivities, "_validate", wizard_once)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        raw = refund(
            store_id, refund_id=rid, lines=[{"sku": "TEE-BLK-M", "qty": "1"}], restock=True
        )
        _, handle, _ = await request_refund(client, settings, raw)
        stuck = await eventually(
            lambda: handle.query(Refund.show),
            lambda r: r.status is RefundStatus.NEEDS_ATTENTION,
        )
        await handle.signal(Refund.retry, OpsAction(by="kim"))
        result = await handle.result()
    assert "not back in stock" in stuck.reasons[-1] and stuck.move_name
    assert result.status is RefundStatus.REFUNDED and result.picking_name
    assert [r["amount"] for r in gateway.refunds(payment_intent=pi)] == [3450]


async def test_a_refund_the_gateway_fails_later_is_reopened_and_paid_again(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        _, handle, _ = await request_refund(client, settings, refund(store_id, amount="10.00"))
        first = await handle.result()
        events = gateway.fail_refund(first.gateway_refunds[0], "expired_or_canceled_card")
        # Stripe sends both events for one failure: one follow-up, not two.
        said = [await report_gateway_refund_failed(client, settings.task_queue, e) for e in events]
        reopened = client.get_workflow_handle_for(Refund.run, handle.id)
        stuck = await eventually(
            lambda: reopened.query(Refund.show),
            lambda r: r.status is RefundStatus.NEEDS_ATTENTION,
        )
        await reopened.signal(Refund.retry, OpsAction(by="kim", comment="card reissued"))
        result = await reopened.result()
        ignored = await report_gateway_refund_failed(client, settings.task_queue, {"type": "x"})
    assert said[0] == f"reopened {handle.id}"
    assert "expired_or_canceled_card" in stuck.reasons[-1]
    assert result.status is RefundStatus.REFUNDED
    statuses = sorted(r["status"] for r in gateway.refunds(payment_intent=pi))
    assert statuses == ["failed", "succeeded"]
    assert len(result.gateway_refunds) == 2 and result.followed_up == [first.gateway_refunds[0]]
    assert ignored.startswith("ignored")


async def test_a_refund_is_dated_by_the_stores_day(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
    store_id: str,
) -> None:
    now = datetime.now(UTC)
    # An offset that puts the store on another calendar day than UTC right now.
    offset = timedelta(hours=-12) if now.hour < 12 else timedelta(hours=13)
    store_day = (now + offset).date()
    assert store_day != now.date()
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    async with running_worker(client, settings):
        pi = f"pi_{store_id}_tz"
        gateway.create_payment_intent(pi, amount_cents=2300, currency="usd")
        sale = {
            "store_id": store_id,
            "txn_id": "T1",
            "occurred_at": (now + offset).replace(tzinfo=timezone(offset)).isoformat(),
            "currency": "USD",
            "lines": [SALE_LINES[0]],
            "payments": [{"method": "card", "amount": "23.00", "reference": pi}],
        }
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, "test")
        await wait_until_settled(client, [sub], timedelta(seconds=30))
        request, handle, _ = await request_refund(client, settings, refund(store_id, amount="5.00"))
        result = await handle.result()
    assert result.status is RefundStatus.REFUNDED
    (move,) = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=", request.key)]],
        {"fields": ["date"]},
    )
    assert move["date"] == store_day.isoformat()


# -- issue 10: approvals nobody can forge ------------------------------------------------------


def _tampered(token: str, **claims: Any) -> str:
    """The token with claims changed and its signature kept."""
    from domain.approval import b64url, b64url_decode

    head, body, sig = token.split(".")
    payload = json.loads(b64url_decode(body)) | claims
    return ".".join([head, b64url(json.dumps(payload).encode()), sig])


async def test_forged_expired_and_misdirected_assertions_are_refused_before_history(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    settings = settings.model_copy(update={"approval_clock_skew_s": 0.0})
    short = Signer(replace(ISSUER.issuer, lifetime=timedelta(seconds=2)))
    async with running_worker(client, settings):
        request, handle = await awaiting_decision(client, settings, gateway, store_id)
        rid = request.refund_id
        soon_expired = short.approval("lee", rid)
        good = ISSUER.approval("lee", rid)
        assert good.assertion is not None
        attempts: dict[str, object] = {
            "untrusted key": Signer.new(kid=ISSUER.issuer.kid).approval("lee", rid),
            "modified claim": {"assertion": _tampered(good.assertion, role="finance", sub="boss")},
            "other refund": ISSUER.approval("lee", "RF-OTHER"),
            "reject token to approve": ISSUER.approval("lee", rid, approve=False),
            "unauthorised role": ISSUER.approval("bob", rid, role="cashier"),
            "garbage": {"assertion": "not-a-token"},
        }
        reasons = {}
        for what, attempt in attempts.items():
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(Refund.approve, attempt)
            reasons[what] = str(refused.value.cause)
        await asyncio.sleep(3)  # time passes in the workflow too: the short one has expired
        with pytest.raises(WorkflowUpdateFailedError) as expired:
            await handle.execute_update(Refund.approve, soon_expired)
        await handle.execute_update(Refund.approve, good)
        result = await handle.result()
        history = await handle.fetch_history()
    assert "forged assertion" in reasons["untrusted key"]
    assert "forged assertion" in reasons["modified claim"]
    assert f"for refund RF-OTHER, not for refund {rid}" in reasons["other refund"]
    assert "is to reject, not to approve" in reasons["reject token to approve"]
    assert "role 'cashier' may not decide refunds" in reasons["unauthorised role"]
    assert "malformed assertion" in reasons["garbage"]
    assert "assertion expired at" in str(expired.value.cause)
    # Refused updates leave nothing in the history: only the good one was accepted.
    accepted = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert len(accepted) == 1
    assert result.status is RefundStatus.REFUNDED and result.decided_by_sub == "lee"


async def test_a_request_without_a_valid_requester_assertion_is_refused(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    raw = refund(store_id, amount="5.00")
    with pytest.raises(RefundRejected) as unsigned:
        await request_unsigned(client, settings, raw)
    with pytest.raises(RefundRejected) as approval_token:
        await request_unsigned(
            client, settings, raw, ISSUER.sign("ann", raw["refund_id"], "approve")
        )
    # Started around the edge check (e.g. by hand with a stale token): the workflow refuses it.
    async with running_worker(client, settings):
        stale = ISSUER.sign(
            "ann", raw["refund_id"], "request", now=datetime.now(UTC) - timedelta(hours=1)
        )
        handle = await client.start_workflow(
            Refund.run,
            RefundInput(request=raw, trust=trust_from(settings), request_assertion=stale),
            id=f"refund:{raw['refund_id']}",
            task_queue=settings.task_queue,
        )
        result = await handle.result()
    assert "assertion: malformed assertion: it is empty" in str(unsigned.value)
    assert "is to approve, not to request" in str(approval_token.value)
    assert result.status is RefundStatus.REJECTED
    assert result.reasons[0].startswith("requester not verified: assertion expired at")
