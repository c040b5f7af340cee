"""Refund activities on their own, against the Odoo emulator and the gateway simulator:
a reservation counts every other refund of the sale whatever the ids, a retried draft is checked
again, and a card refund is found by its metadata before another is made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

import odoorpc
import pytest
from temporalio.exceptions import ApplicationError

from activities.gateway_client import GatewayClient, GatewaySettings
from activities.odoo.client import OdooClient, OdooSettings
from activities.odoo.refunds import OdooRefundActivities, ReserveRefundInput
from activities.odoo.sales import OdooSalesActivities, PostSaleInput
from activities.payments import PaymentActivities, RefundPaymentInput
from domain.posting import PostingProfile
from domain.refund import RefundRequest, allocate, parse_refund, value_of
from domain.sale import Sale, parse_sale
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator

ON = date(2026, 11, 20)


@pytest.fixture
def acts(odoo_emulator: OdooEmulator) -> OdooRefundActivities:
    client = OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}", timeout_s=10))
    return OdooRefundActivities(client, PostingProfile())


def posted_sale(acts: OdooRefundActivities) -> Sale:
    """57.50 paid: 20.00 cash + 37.50 card."""
    store = f"A{uuid.uuid4().hex[:6].upper()}"
    sale = parse_sale(
        {
            "store_id": store,
            "txn_id": "T1",
            "occurred_at": "2026-11-20T10:00:00+00:00",
            "currency": "USD",
            "lines": [
                {"sku": "MUG-WHITE", "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"},
                {"sku": "TEE-BLK-M", "qty": "1", "unit_price": "30.00", "tax_rate": "0.15"},
            ],
            "payments": [
                {"method": "cash", "amount": "20.00"},
                {"method": "card", "amount": "37.50", "reference": f"pi_{store}"},
            ],
        }
    )
    OdooSalesActivities(acts.odoo, acts.profile).post_sale(PostSaleInput(sale=sale))
    return sale


def request(sale: Sale, refund_id: str, amount: str) -> RefundRequest:
    return parse_refund(
        {
            "refund_id": refund_id,
            "store_id": sale.store_id,
            "txn_id": sale.txn_id,
            "amount": amount,
            "reason": "changed_mind",
            "requested_by": "ann",
        }
    )


def draft_of_a_dead_attempt(acts: OdooRefundActivities, req: RefundRequest, sale: Sale) -> None:
    """What an attempt leaves when it dies (or its response is lost) right after creating its
    draft, before checking it: a draft nobody checked."""
    value = value_of(req, sale, [])
    acts._create_draft(req, value, allocate(value.amount, sale, []), ON)


def live_refund_refs(odoo: odoorpc.ODOO, sale: Sale) -> list[str]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "account.move.line",
        "search_read",
        [[("name", "=like", f"REFUND:% {sale.key} %")]],
        {"fields": ["move_id"]},
    )
    ids = sorted({r["move_id"][0] for r in rows})
    moves = odoo.execute_kw("account.move", "read", [ids, ["ref", "state"]])
    return sorted(m["ref"] for m in moves if m["state"] in ("draft", "posted"))


def test_a_retry_that_finds_its_own_draft_checks_it_again(
    acts: OdooRefundActivities, odoo: odoorpc.ODOO
) -> None:
    sale = posted_sale(acts)
    first = request(sale, f"R{uuid.uuid4().hex[:6]}", "40.00")
    acts.reserve_refund(ReserveRefundInput(request=first, sale=sale, on=ON))
    second = request(sale, f"R{uuid.uuid4().hex[:6]}", "40.00")
    draft_of_a_dead_attempt(acts, second, sale)
    # The retry of the second refund finds its draft: 40 + 40 > 57.50, so it must not keep it.
    with pytest.raises(ApplicationError) as refused:
        acts.reserve_refund(ReserveRefundInput(request=second, sale=sale, on=ON))
    assert refused.value.type == "RefundExceedsSale"
    assert "can still refund: 17.50" in str(refused.value)
    assert live_refund_refs(odoo, sale) == [first.key]


class _Hiding(OdooRefundActivities):
    """Reads as a PostgreSQL transaction would before another one's commit becomes visible."""

    hidden: ClassVar[set[str]] = set()

    def _refund_moves(self, key_of_sale: str) -> list[dict[str, Any]]:
        return [m for m in super()._refund_moves(key_of_sale) if m["ref"] not in self.hidden]


def test_a_reservation_counts_other_refunds_whatever_their_ids(
    acts: OdooRefundActivities, odoo: odoorpc.ODOO
) -> None:
    sale = posted_sale(acts)
    early = request(sale, f"R{uuid.uuid4().hex[:6]}", "40.00")
    late = request(sale, f"R{uuid.uuid4().hex[:6]}", "40.00")
    # `early` inserted its draft first (lower id) but its commit is not yet visible to `late`,
    # which inserts, sees nothing else and is accepted with the higher id.
    draft_of_a_dead_attempt(acts, early, sale)
    hiding = _Hiding(acts.odoo, acts.profile)
    _Hiding.hidden = {early.key}
    hiding.reserve_refund(ReserveRefundInput(request=late, sale=sale, on=ON))
    # `early` now checks its draft: counting only lower ids it would keep it (80 > 57.50).
    with pytest.raises(ApplicationError, match=r"can still refund: 17\.50"):
        acts.reserve_refund(ReserveRefundInput(request=early, sale=sale, on=ON))
    assert live_refund_refs(odoo, sale) == [late.key]


# -- the gateway ------------------------------------------------------------------------------


@pytest.fixture
def payments(gateway: Gateway) -> Iterator[PaymentActivities]:
    client = GatewayClient(GatewaySettings(api_base=gateway.url))
    yield PaymentActivities(client)
    client.close()


def pay(payments: PaymentActivities, pi: str, key: str, refund_id: str) -> str:
    return payments.refund_payment(
        RefundPaymentInput(
            payment_intent=pi,
            amount=Decimal("10.00"),
            idempotency_key=key,
            metadata={"refund_id": refund_id, "sale": "POS:S1:T1"},
            find_by=["refund_id"],
        )
    ).gateway_refund_id


def test_a_retry_after_the_key_expired_finds_the_refund_already_made(
    gateway: Gateway, payments: PaymentActivities
) -> None:
    gateway.create_payment_intent("pi_exp", amount_cents=5000, currency="usd")
    first = pay(payments, "pi_exp", "refund:R1:1", "R1")
    gateway.ledger.expire_idempotency_keys(0)  # a day later
    assert pay(payments, "pi_exp", "refund:R1:1", "R1") == first
    assert len(gateway.refunds(payment_intent="pi_exp")) == 1


def test_a_refund_paid_under_the_old_key_form_is_not_paid_again(
    gateway: Gateway, payments: PaymentActivities
) -> None:
    gateway.create_payment_intent("pi_old", amount_cents=5000, currency="usd")
    before_upgrade = pay(payments, "pi_old", "refund-R2-1", "R2")
    assert pay(payments, "pi_old", "refund:R2:1", "R2") == before_upgrade
    assert len(gateway.refunds(payment_intent="pi_old")) == 1


def test_a_failed_refund_is_not_taken_for_the_refund(
    gateway: Gateway, payments: PaymentActivities
) -> None:
    gateway.create_payment_intent("pi_fail", amount_cents=5000, currency="usd")
    failed = pay(payments, "pi_fail", "refund:R3:1", "R3")
    gateway.fail_refund(failed)
    again = pay(payments, "pi_fail", "refund:R3:1:attempt2", "R3")
    assert again != failed
    assert [r["status"] for r in gateway.refunds(payment_intent="pi_fail")] == [
        "succeeded",
        "failed",
    ]
