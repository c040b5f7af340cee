"""Refund rules: refundable amounts across partial refunds and mixed tenders; the policy."""

from __future__ import annotations

from datetime import UTC, date, datetime
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
    excess,
    identity,
    parse_refund,
    refund_business_day,
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
        ({"requested_by": "\u200b"}, "requested_by", "must name a person"),
        ({"refund_id": "RF:1"}, "refund_id", "string should match pattern"),
        ({"refund_id": "RF 1"}, "refund_id", "string should match pattern"),
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


@pytest.mark.parametrize("spelling", ["Mia", " mia ", "MIA", "ｍｉａ", "mi\u200ba", "mia\t"])
def test_four_eyes_see_one_person_in_any_spelling(spelling: str) -> None:
    r = parse_refund(request(requested_by="mia"))
    with pytest.raises(DecisionRefused, match="four eyes"):
        check_decision(RefundPolicy(), r, Decision(approve=True, by=spelling, role="store_manager"))
    assert identity(spelling) == "mia"


def test_an_empty_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="must name a person"):
        Decision(approve=True, by="\u200b\u200b", role="finance")


def test_refund_ids_and_keys_refuse_the_separator() -> None:
    from domain.ids import BadIdPart
    from workflows.refund import gateway_refund_key, refund_workflow_id, refund_workflow_ids

    assert refund_workflow_id("RF-1") == "refund:RF-1"
    assert refund_workflow_ids("RF-1") == ["refund:RF-1", "refund-RF-1"]
    assert gateway_refund_key("RF-1", 2) == "refund:RF-1:2"
    assert gateway_refund_key("RF-1", 2, attempt=3) == "refund:RF-1:2:attempt3"
    with pytest.raises(BadIdPart):
        refund_workflow_id("RF:1")


def test_a_refund_is_dated_by_the_stores_day_not_utc() -> None:
    evening = parse_sale(
        {**sale().model_dump(mode="json"), "occurred_at": "2026-11-26T19:00:00-05:00"}
    )
    # 02:00 UTC on the 27th is still the evening of the 26th at the store.
    assert refund_business_day(datetime(2026, 11, 27, 2, 0, tzinfo=UTC), evening) == date(
        2026, 11, 26
    )
    assert refund_business_day(datetime(2026, 11, 27, 6, 0, tzinfo=UTC), evening) == date(
        2026, 11, 27
    )


def test_excess_counts_every_refund_per_tender_and_sku() -> None:
    s = sale()
    card = Tender(method=CARD, reference="pi_1", amount=Decimal("20.00"))
    fits = [
        PriorRefund(refund_id="A", tenders=[card], lines=[RefundLine(sku="MUG", qty=Decimal(1))])
    ]
    assert excess(s, fits) == []
    too_much = [
        *fits,
        PriorRefund(refund_id="B", tenders=[card], lines=[RefundLine(sku="MUG", qty=Decimal(2))]),
    ]
    assert excess(s, too_much) == [
        "card pi_1: 40.00 refunded, 37.50 paid",
        "MUG: 3 returned, 2 sold",
    ]
