"""Customers in Odoo (activities/odoo/customers.py) against the emulator: one partner per POS
customer id whatever races or lost responses, merge without overwriting, consent by consent
time, loyalty events once, erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import odoorpc
import pytest

from activities.odoo.client import OdooClient, OdooSettings
from activities.odoo.customers import (
    EraseCustomerInput,
    OdooCustomerActivities,
    SyncCustomerInput,
    binder_name,
)
from domain.customer import ERASED_NAME, ConsentRecord, Customer, read_block
from domain.posting import PostingProfile
from simulators.odoo import OdooEmulator
from tests.activities.helpers import ScriptedClient, before


def plain(emu: OdooEmulator) -> OdooCustomerActivities:
    return OdooCustomerActivities(
        OdooClient(OdooSettings(url=f"http://127.0.0.1:{emu.port}", timeout_s=10)),
        PostingProfile(),
    )


@pytest.fixture
def pos_id() -> str:
    return f"C{uuid.uuid4().hex[:8]}"


def partners(odoo: odoorpc.ODOO, pos_id: str) -> list[dict[str, Any]]:
    """Every partner (archived too) retailflow made for this customer, bound or not."""
    key = binder_name("pos", pos_id)
    bound = odoo.execute_kw(
        "ir.model.data",
        "search_read",
        [[("module", "=", "retailflow"), ("name", "=", key)]],
        {"fields": ["res_id"]},
    )
    drafts = odoo.execute_kw(
        "res.partner",
        "search",
        [[("active", "=", False), ("comment", "ilike", key)]],
    )
    ids = sorted({r["res_id"] for r in bound} | set(drafts))
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "res.partner",
        "read",
        [ids],
        {
            "fields": [
                *("name", "email", "phone", "mobile", "street", "street2", "city"),
                *("website", "function", "comment", "active"),
            ]
        },
    )
    return rows


def sync(pos_id: str, **kw: Any) -> SyncCustomerInput:
    customer = kw.pop("customer", None) or Customer(pos_customer_id=pos_id)
    return SyncCustomerInput(platform="pos", pos_customer_id=pos_id, customer=customer, **kw)


def consent(marketing: bool, hour: int, store: str = "S001") -> ConsentRecord:
    return ConsentRecord(
        marketing=marketing,
        at=datetime(2026, 11, 20, hour, tzinfo=UTC),
        source="till",
        recorded_by=store,
    )


def test_one_partner_per_customer_and_merge_fills_only_empty_fields(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, pos_id: str
) -> None:
    acts = plain(odoo_emulator)
    first = acts.sync_customer(sync(pos_id, customer=Customer(pos_customer_id=pos_id)))
    assert first.created and first.filled == []
    [row] = partners(odoo, pos_id)
    assert row["active"] and row["name"] == "POS customer" and row["id"] == first.partner_id
    # Odoo's people fix the email; the store then sends its own and a name and a phone.
    odoo.execute_kw("res.partner", "write", [[row["id"]], {"email": "owned@odoo.test"}])
    jane = Customer(pos_customer_id=pos_id, name="Jane", email="jane@example.com", phone="555 01")
    second = acts.sync_customer(sync(pos_id, customer=jane))
    assert second.partner_id == first.partner_id and not second.created
    assert second.filled == ["name", "phone"]
    [row] = partners(odoo, pos_id)
    assert (row["name"], row["email"], row["phone"]) == ("Jane", "owned@odoo.test", "555 01")


def test_a_racing_attempt_that_binds_first_leaves_one_partner(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, pos_id: str
) -> None:
    other = plain(odoo_emulator)
    ours = ScriptedClient(odoo_emulator)
    # Just before we bind our draft, another attempt runs the whole sync.
    ours.on("ir.model.data", "create", before(lambda: other.sync_customer(sync(pos_id))))
    result = OdooCustomerActivities(ours, PostingProfile()).sync_customer(sync(pos_id))
    rows = partners(odoo, pos_id)
    assert [r["id"] for r in rows] == [result.partner_id] and rows[0]["active"]


def test_a_draft_left_by_a_dead_attempt_is_adopted(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, pos_id: str
) -> None:
    dead = ScriptedClient(odoo_emulator)

    def crash(model: str, method: str, args: tuple[Any, ...]) -> Any:
        raise ConnectionError("worker died")

    dead.on("ir.model.data", "create", crash)
    with pytest.raises(ConnectionError):
        OdooCustomerActivities(dead, PostingProfile()).sync_customer(sync(pos_id))
    [draft] = partners(odoo, pos_id)
    assert not draft["active"]
    result = plain(odoo_emulator).sync_customer(sync(pos_id))
    [row] = partners(odoo, pos_id)
    assert row["id"] == draft["id"] == result.partner_id and row["active"]
    assert "binder" not in (row["comment"] or "")


def test_a_retry_after_a_lost_response_applies_loyalty_once(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, pos_id: str
) -> None:
    acts = plain(odoo_emulator)
    earn = sync(pos_id, loyalty_event="sale:POS:S1:T1", loyalty_delta=20)
    assert acts.sync_customer(earn).loyalty_applied
    again = acts.sync_customer(earn)  # the same call, its answer was lost
    assert not again.loyalty_applied and again.loyalty_points == 20
    back = acts.sync_customer(sync(pos_id, loyalty_event="refund:R1", loyalty_delta=-5))
    assert back.loyalty_points == 15
    [row] = partners(odoo, pos_id)
    assert read_block(row["comment"]).loyalty_points == 15


def test_consent_recorded_in_odoo_never_regresses(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, pos_id: str
) -> None:
    acts = plain(odoo_emulator)
    acts.sync_customer(sync(pos_id, consent=consent(False, 12, "S002")))
    late_but_older = acts.sync_customer(sync(pos_id, consent=consent(True, 9)))
    assert late_but_older.consent == consent(False, 12, "S002")
    [row] = partners(odoo, pos_id)
    assert read_block(row["comment"]).consent == consent(False, 12, "S002")
    newer = acts.sync_customer(sync(pos_id, consent=consent(True, 13)))
    assert newer.consent == consent(True, 13)


def test_erasure_anonymises_the_partner_and_keeps_its_binder(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, pos_id: str
) -> None:
    acts = plain(odoo_emulator)
    jane = Customer(pos_customer_id=pos_id, name="Jane Roe", email="jr@example.com", phone="555")
    synced = acts.sync_customer(sync(pos_id, customer=jane, loyalty_event="e1", loyalty_delta=7))
    odoo.execute_kw(
        "res.partner",
        "write",
        [
            [synced.partner_id],
            {
                "mobile": "555 9",
                "street": "1 Main St",
                "street2": "Apt 4",
                "city": "Springfield",
                "website": "https://jane.example.com",
                "function": "Florist",
            },
        ],
    )
    erased = acts.erase_customer(EraseCustomerInput(platform="pos", pos_customer_id=pos_id))
    assert erased.partner_id == synced.partner_id
    [row] = partners(odoo, pos_id)
    assert row["name"] == ERASED_NAME
    cleared = ("email", "phone", "mobile", "street", "street2", "city", "website", "function")
    assert [row[f] for f in cleared] == [False] * len(cleared)
    block = read_block(row["comment"])
    assert block.erased and block.loyalty_points == 7
    # A later sale of the same customer carrying personal data does not bring it back.
    acts.sync_customer(sync(pos_id, customer=jane, loyalty_event="e2", loyalty_delta=1))
    [row] = partners(odoo, pos_id)
    assert (row["name"], row["email"]) == (ERASED_NAME, False)
    assert read_block(row["comment"]).loyalty_points == 8
    unknown = EraseCustomerInput(platform="pos", pos_customer_id=f"{pos_id}x")
    assert acts.erase_customer(unknown).partner_id is None
