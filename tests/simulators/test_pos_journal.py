"""The store's own journal on the POS simulator: ring up (idempotent by txn id), the Z-report
per tender, paged reads of the full sales, offline stores, persistence across a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.pos import PosPlatform

from .conftest_pos import running_platform

DAY = "2026-11-26"


def txn(
    txn_id: str, *payments: tuple[str, str], kind: str | None = None, at: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": "S001",
        "txn_id": txn_id,
        "occurred_at": at or f"{DAY}T10:00:00-05:00",
        "currency": "USD",
        "lines": [{"sku": "MILK-1L", "qty": "1", "unit_price": "1.00", "tax_rate": "0"}],
        "payments": [
            {"method": m, "amount": a, **({"reference": f"pi_{txn_id}"} if m == "card" else {})}
            for m, a in payments
        ],
    }
    if kind:
        body["kind"] = kind
    return body


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    with running_platform(stores=2) as platform:
        yield platform


@pytest.fixture
def http(pos: PosPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pos.url, timeout=10) as client:
        yield client


def test_a_transaction_is_recorded_once_and_a_different_body_conflicts(http: httpx.Client) -> None:
    first = http.post("/v1/stores/S001/transactions", json=txn("T1", ("cash", "5.00")))
    assert first.status_code == 201, first.text
    assert first.json() == {"store_id": "S001", "txn_id": "T1", "kind": "sale", "day": DAY}
    again = http.post("/v1/stores/S001/transactions", json=txn("T1", ("cash", "5.00")))
    assert again.status_code == 200
    other = http.post("/v1/stores/S001/transactions", json=txn("T1", ("cash", "6.00")))
    assert other.status_code == 409
    assert "T1" in other.json()["error"]
    page = http.get("/v1/stores/S001/transactions", params={"day": DAY}).json()
    assert [t["payments"][0]["amount"] for t in page["transactions"]] == ["5.00"]


def test_bad_transactions_are_refused_naming_the_field(http: httpx.Client) -> None:
    cases = [
        ({**txn("T1", ("cash", "1.00")), "kind": "gift"}, "kind"),
        ({**txn("T1", ("cash", "1.00")), "occurred_at": "2026-11-26T10:00:00"}, "occurred_at"),
        (txn("T1", ("cheque", "1.00")), "payments[0].method"),
        (txn("T1", ("cash", "1.001")), "payments[0].amount"),
        ({**txn("T1", ("cash", "1.00")), "store_id": "S002"}, "store_id"),
    ]
    for body, field in cases:
        r = http.post("/v1/stores/S001/transactions", json=body)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["field"] == field
    assert http.get("/v1/stores/S001/z-report", params={"day": "26-11-2026"}).status_code == 422


def test_z_report_counts_and_sums_per_tender_for_sales_refunds_and_voids(
    http: httpx.Client,
) -> None:
    bulk = [
        txn("T1", ("cash", "5.00")),
        txn("T2", ("card", "7.50"), ("gift_card", "2.50")),
        txn("T3", ("card", "3.00")),
        txn("R1", ("card", "3.00"), kind="refund"),
        txn("V1", ("cash", "9.99"), kind="void"),
        # Another day in the POS's own offset (UTC would say the 26th).
        txn("T9", ("cash", "1.00"), at="2026-11-25T21:00:00-05:00"),
    ]
    r = http.post("/_sim/stores/S001/transactions", json=bulk)
    assert r.json() == {"store_id": "S001", "recorded": 6, "absorbed": 0}
    again = http.post("/_sim/stores/S001/transactions", json=bulk[:2])
    assert again.json()["absorbed"] == 2
    z = http.get("/v1/stores/S001/z-report", params={"day": DAY}).json()
    assert z["sales"]["count"] == 3 and z["sales"]["amount"] == "18.00"
    assert z["sales"]["tenders"]["card"] == {"count": 2, "amount": "10.50"}
    assert z["sales"]["tenders"]["gift_card"] == {"count": 1, "amount": "2.50"}
    assert z["refunds"]["tenders"]["card"] == {"count": 1, "amount": "3.00"}
    assert z["voids"]["tenders"]["cash"] == {"count": 1, "amount": "9.99"}
    assert z["totals"]["net"] == "15.00"
    assert z["totals"]["net_by_tender"] == {"cash": "5.00", "card": "7.50", "gift_card": "2.50"}
    assert z["totals"]["transactions"] == 5
    other = http.get("/v1/stores/S001/z-report", params={"day": "2026-11-25"}).json()
    assert other["sales"]["tenders"]["cash"]["amount"] == "1.00"


def test_transactions_page_in_id_order(http: httpx.Client) -> None:
    ids = [f"T{n:03d}" for n in range(7)]
    http.post("/_sim/stores/S001/transactions", json=[txn(i, ("cash", "1.00")) for i in ids[::-1]])
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params: dict[str, Any] = {"day": DAY, "limit": 3}
        if after:
            params["starting_after"] = after
        page = http.get("/v1/stores/S001/transactions", params=params).json()
        pages += 1
        seen += [t["txn_id"] for t in page["transactions"]]
        if not page["has_more"]:
            break
        after = seen[-1]
    assert seen == ids and pages == 3
    assert (
        http.get("/v1/stores/S001/transactions", params={"day": DAY, "limit": 0}).status_code == 422
    )


def test_an_offline_store_answers_like_its_other_routes(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S002", online=False)
    assert http.get("/v1/stores/S002/z-report", params={"day": DAY}).status_code == 504
    body = {**txn("T1", ("cash", "1.00")), "store_id": "S002"}
    assert http.post("/v1/stores/S002/transactions", json=body).status_code == 504
    assert http.get("/v1/stores/S002/transactions", params={"day": DAY}).status_code == 504
    assert http.get("/v1/stores/S404/z-report", params={"day": DAY}).status_code == 404


def test_the_journal_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "pos.sqlite")
    with running_platform(stores=2, db_path=db) as pos:
        httpx.post(f"{pos.url}/v1/stores/S001/transactions", json=txn("T1", ("card", "4.00")))
    with running_platform(stores=2, db_path=db) as pos:
        z = httpx.get(f"{pos.url}/v1/stores/S001/z-report", params={"day": DAY}).json()
        assert z["sales"]["tenders"]["card"]["amount"] == "4.00"
        again = httpx.post(
            f"{pos.url}/v1/stores/S001/transactions", json=txn("T1", ("card", "5.00"))
        )
        assert again.status_code == 409


def test_one_transaction_is_read_back_as_rung_up(http: httpx.Client) -> None:
    http.post("/v1/stores/S001/transactions", json=txn("T 1", ("card", "2.00")))
    one = http.get("/v1/stores/S001/transactions/T%201")
    assert one.status_code == 200
    assert one.json()["payments"][0]["reference"] == "pi_T 1"
    assert http.get("/v1/stores/S001/transactions/T2").status_code == 404
