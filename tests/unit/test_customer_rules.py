"""Customer rules (domain/customer.py) and the sale's optional `customer` block."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.customer import (
    PLACEHOLDER_NAME,
    ConsentRecord,
    Customer,
    CustomerBlock,
    LoyaltyPolicy,
    LoyaltyRule,
    load_loyalty_policy,
    newer_consent,
    partner_create_values,
    partner_fill_values,
    points_for,
    points_to_reverse,
    read_block,
    write_block,
)
from domain.sale import SaleRejected, parse_sale


def sale(**customer: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "store_id": "S001",
        "txn_id": "T1",
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "currency": "USD",
        "lines": [{"sku": "MUG", "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"}],
        "payments": [{"method": "cash", "amount": "23.00"}],
    }
    if customer:
        raw["customer"] = customer
    return raw


def test_a_sale_carries_an_optional_customer_with_consent() -> None:
    assert parse_sale(sale()).customer is None
    parsed = parse_sale(
        sale(
            pos_customer_id="C-42",
            email="jane@example.com",
            phone="+1 555 0100",
            name="Jane",
            consent={"marketing": True, "at": "2026-11-20T09:00:00+01:00", "source": "till"},
        )
    )
    assert parsed.customer is not None
    assert parsed.customer.consent is not None and parsed.customer.consent.marketing is True
    # The Odoo entry keeps the customer by id only.
    assert parsed.ledger_record()["customer"] == {"pos_customer_id": "C-42"}
    assert "customer" not in parse_sale(sale()).ledger_record()


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({"email": "a@b.co"}, "customer.pos_customer_id"),
        ({"pos_customer_id": "jane@example.com"}, "customer.pos_customer_id"),
        ({"pos_customer_id": "C:1"}, "customer.pos_customer_id"),
        ({"pos_customer_id": "C1", "email": "not-an-email"}, "customer.email"),
        ({"pos_customer_id": "C1", "phone": "call me"}, "customer.phone"),
        ({"pos_customer_id": "C1", "loyalty": 5}, "customer.loyalty"),
        (
            {"pos_customer_id": "C1", "consent": {"marketing": True, "source": "till"}},
            "customer.consent.at",
        ),
        (
            {
                "pos_customer_id": "C1",
                "consent": {"marketing": "yes", "at": "2026-11-20T09:00:00Z", "source": "t"},
            },
            "customer.consent.marketing",
        ),
        (
            {
                "pos_customer_id": "C1",
                "consent": {"marketing": True, "at": "2026-11-20T09:00:00", "source": "till"},
            },
            "customer.consent.at",
        ),
    ],
)
def test_a_bad_customer_block_rejects_the_sale_naming_the_field(
    customer: dict[str, Any], field: str
) -> None:
    with pytest.raises(SaleRejected) as rejected:
        parse_sale(sale(**customer))
    assert field in [e.field for e in rejected.value.errors], rejected.value.errors


def test_merge_only_fills_empty_contact_fields() -> None:
    jane = Customer(pos_customer_id="C1", name="Jane", email="jane@example.com", phone="555 0100")
    assert partner_create_values(Customer(pos_customer_id="C1")) == {
        "name": PLACEHOLDER_NAME,
        "customer_rank": 1,
    }
    assert partner_fill_values(
        {"name": "Jane Odoo", "email": "owned@odoo.test", "phone": False}, jane
    ) == {"phone": "555 0100"}
    assert partner_fill_values({"name": PLACEHOLDER_NAME, "email": "", "phone": "1"}, jane) == {
        "name": "Jane",
        "email": "jane@example.com",
    }
    assert partner_fill_values({"name": "X", "email": "x@y.z", "phone": "1"}, jane) == {}


def at(hour: int) -> datetime:
    return datetime(2026, 11, 20, hour, tzinfo=UTC)


def test_consent_is_last_writer_by_consent_time_not_arrival() -> None:
    newer = ConsentRecord(marketing=False, at=at(12), source="app", recorded_by="S002")
    older = ConsentRecord(marketing=True, at=at(9), source="till", recorded_by="S001")
    assert newer_consent(None, older) == older
    assert newer_consent(older, newer) == newer
    assert newer_consent(newer, older) == newer  # arrived later, given earlier: loses
    assert newer_consent(newer, None) == newer
    same_time = newer.model_copy(update={"marketing": True})
    assert newer_consent(newer, same_time) == newer


def test_points_per_sale_follow_the_policy_and_refunds_take_them_back() -> None:
    policy = LoyaltyPolicy(rules=[LoyaltyRule(sku_prefix="GIFT", points_per_unit=Decimal(0))])
    assert points_for([("MUG", Decimal("20.00")), ("GIFT-10", Decimal("10.00"))], policy) == 20
    assert points_for([("MUG", Decimal("9.99"))], LoyaltyPolicy()) == 9
    assert points_for([("MUG", Decimal("10"))], LoyaltyPolicy(points_per_unit=Decimal(2))) == 20
    # A partial refund of a quarter, then the rest: all 20 back, never more.
    first = points_to_reverse(20, Decimal("23.00"), Decimal(0), Decimal("5.75"), 0)
    assert first == 5
    rest = points_to_reverse(20, Decimal("23.00"), Decimal("5.75"), Decimal("40.00"), first)
    assert first + rest == 20
    assert points_to_reverse(0, Decimal("23.00"), Decimal(0), Decimal("23.00"), 0) == 0


def test_the_loyalty_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "loyalty.toml"
    path.write_text('points_per_unit = "2"\n[[rules]]\nsku_prefix = "GIFT"\npoints_per_unit = 0\n')
    policy = load_loyalty_policy(path)
    assert policy.rate_for("GIFT-1") == 0 and policy.rate_for("MUG") == 2
    path.write_text("points = 3\n")
    with pytest.raises(ValueError, match="points"):
        load_loyalty_policy(path)
    assert load_loyalty_policy(None) == LoyaltyPolicy()


def test_the_block_in_the_partner_notes_keeps_odoos_own_notes() -> None:
    block = CustomerBlock(
        consent=ConsentRecord(marketing=True, at=at(9), source="till", recorded_by="S001"),
        loyalty_points=12,
        last_loyalty_event="sale:POS:S001:T1",
    )
    notes = "<p>VIP: call before delivery &amp; ring twice</p>"
    written = write_block(notes, block)
    assert written.startswith(notes) and read_block(written) == block
    again = write_block(written, block.model_copy(update={"loyalty_points": 13}))
    assert again.count("retailflow customer:") == 1 and again.startswith(notes)
    assert read_block(again).loyalty_points == 13
    assert read_block(False) == CustomerBlock() == read_block("<p>retailflow customer: {oops</p>")
    assert read_block(write_block(False, block)) == block
