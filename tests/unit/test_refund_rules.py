"""Refund rules: refundable amounts across partial refunds and mixed tenders; the policy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.posting import PostingProfile, refund_entry_for
from domain.refund import (
    Decision,
    DecisionRefused,
    PriorRefund,
    RefundLine,
    RefundPolicy,
    RefundRejected,
    Tender,
    allocate,
    amount_for_lines,
    approval_needed,
    check_decision,
    parse_refund,
    refundable_amount,
    refundable_tenders,
    value_of_amount,
)
from domain.sale import PaymentMethod, Sale, parse_sale

CASH, CARD, GIFT = PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.GIFT_CARD


def sale() -> Sale:
    # 2 x 10.00 + 1 x 30.00 = 50.00 net, 7.50 tax -> 57.50, paid 20 cash + 37.50 card
    return parse_sale(
        {
            "store_id": "S001",
            "txn_id": "T1",
            "occurred_at": "2026-11-26T10:00:00+00:00",
            "currency": "USD",
            "lines": [
                {"sku": "MUG", "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"},
                {"sku": "TEE", "qty": "1", "unit_price": "30.00", "tax_rate": "0.15"},
            ],
            "payments": [
                {"method": "cash", "amount": "20.00"},
                {"method": "card", "amount": "37.50", "reference": "pi_1"},
            ],
        }
    )


def request(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "refund_id": "RF1",
        "store_id": "S001",
        "txn_id": "T1",
        "amount": "10.00",
        "reason": "changed_mind",
        "requested_by": "cashier-ann",
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def test_card_first_then_cash() -> None:
    tenders = allocate(Decimal("40.00"), sale(), [])
    assert tenders == [
        Tender(method=CARD, reference="pi_1", amount=Decimal("37.50")),
        Tender(method=CASH, amount=Decimal("2.50")),
    ]


def test_partial_refunds_reduce_what_is_left_per_tender() -> None:
    prior = [
        PriorRefund(
            refund_id="A", tenders=[Tender(method=CARD, reference="pi_1", amount=Decimal("30.00"))]
        )
    ]
    assert refundable_amount(sale(), prior) == Decimal("27.50")
    assert refundable_tenders(sale(), prior) == [
        Tender(method=CARD, reference="pi_1", amount=Decimal("7.50")),
        Tender(method=CASH, amount=Decimal("20.00")),
    ]
    prior.append(PriorRefund(refund_id="B", tenders=allocate(Decimal("27.50"), sale(), prior)))
    assert refundable_amount(sale(), prior) == Decimal("0.00")


def test_over_refund_is_refused_with_the_numbers() -> None:
    prior = [PriorRefund(refund_id="A", tenders=[Tender(method=CASH, amount=Decimal("20.00"))])]
    with pytest.raises(RefundRejected) as e:
        allocate(Decimal("40.00"), sale(), prior)
    assert str(e.value) == (
        "amount: refund 40.00 exceeds what POS:S001:T1 can still refund: 37.50 "
        "(paid 57.50, already refunded 20.00)"
    )


def test_gift_card_between_card_and_cash() -> None:
    s = sale().model_copy(
        update={
            "payments": [
                *sale().payments[:1],
                sale().payments[1].model_copy(update={"method": GIFT}),
            ]
        }
    )
    assert [t.method for t in allocate(Decimal("50.00"), s, [])] == [GIFT, CASH]


def test_lines_are_valued_pro_rata_with_tax() -> None:
    assert amount_for_lines(sale(), [RefundLine(sku="MUG", qty=Decimal(1))], []) == Decimal("11.50")
    prior = [PriorRefund(refund_id="A", tenders=[], lines=[RefundLine(sku="MUG", qty=Decimal(1))])]
    assert amount_for_lines(sale(), [RefundLine(sku="MUG", qty=Decimal(1))], prior) == Decimal(
        "11.50"
    )
    with pytest.raises(RefundRejected) as e:
        amount_for_lines(sale(), [RefundLine(sku="MUG", qty=Decimal(2))], prior)
    assert e.value.errors[0].field == "lines[0].qty"
    assert e.value.errors[0].message == "2 of MUG asked back, 1 left to return (sold 2, returned 1)"
    with pytest.raises(RefundRejected, match="HAT is not in sale POS:S001:T1"):
        amount_for_lines(sale(), [RefundLine(sku="HAT", qty=Decimal(1))], [])


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        (
            {"amount": None},
            "refund",
            "give either lines (sku, qty) or an amount, not both or neither",
        ),
        ({"lines": [{"sku": "MUG", "qty": "1"}]}, "refund", "give either lines"),
        ({"amount": "0"}, "amount", "input should be greater than 0"),
        (
            {"amount": None, "lines": [{"sku": "A", "qty": "1"}, {"sku": "A", "qty": "2"}]},
            "refund",
            "lines: SKU A appears more than once",
        ),
        ({"restock": True}, "refund", "restock needs lines"),
        ({"requested_by": ""}, "requested_by", "string should have at least 1 character"),
    ],
)
def test_request_validation(overrides: dict[str, Any], field: str, message: str) -> None:
    raw = request(**{k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            raw.pop(k, None)
    with pytest.raises(RefundRejected) as e:
        parse_refund(raw)
    assert e.value.errors[0].field == field
    assert e.value.errors[0].message.startswith(message)


def test_policy_auto_approval() -> None:
    policy = RefundPolicy()
    r = parse_refund(request())
    assert approval_needed(policy, r, Decimal("25.00")) is None
    assert (
        approval_needed(policy, r, Decimal("25.01"))
        == "25.01 is over the auto-approval limit of 25.00"
    )
    damaged = parse_refund(request(reason="damaged"))
    assert approval_needed(policy, damaged, Decimal("99.00")) is None
    assert approval_needed(policy, damaged, Decimal("100.01")) is not None


def test_four_eyes_and_roles() -> None:
    policy = RefundPolicy()
    r = parse_refund(request(requested_by="mia"))
    check_decision(policy, r, Decision(approve=True, by="lee", role="store_manager"))
    with pytest.raises(DecisionRefused, match="four eyes: mia requested refund RF1"):
        check_decision(policy, r, Decision(approve=True, by="mia", role="store_manager"))
    with pytest.raises(DecisionRefused, match="role 'cashier' may not decide refunds"):
        check_decision(policy, r, Decision(approve=True, by="lee", role="cashier"))
    # Declining your own request is allowed; approving it is not.
    check_decision(policy, r, Decision(approve=False, by="mia", role="finance"))


@settings(max_examples=200, deadline=None)
@given(cents_=st.integers(min_value=1, max_value=5750))
def test_refund_entries_balance_and_carry_both_keys(cents_: int) -> None:
    amount = Decimal(cents_) / 100
    value = value_of_amount(sale(), amount)
    tenders = allocate(amount, sale(), [])
    entry = refund_entry_for(
        "REFUND:RF1",
        "POS:S001:T1",
        date(2026, 11, 27),
        value.net,
        value.tax_by_rate,
        [(t.method, t.amount) for t in tenders],
        PostingProfile(),
    )
    assert value.net + sum(value.tax_by_rate.values(), Decimal(0)) == amount
    assert entry.total_debit == entry.total_credit == amount
    assert all(ln.name.startswith("REFUND:RF1 POS:S001:T1 ") for ln in entry.lines)
