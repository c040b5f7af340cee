"""Three-way reconciliation of a store-day (domain/reconciliation.py): each planted kind of
difference is found and explained, the tolerance policy, decisions carried over re-runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.reconciliation import (
    DecisionError,
    DiffKind,
    DiffState,
    GatewayCharge,
    OdooBooking,
    PosTxn,
    ReconReport,
    ReconSources,
    ReconStatus,
    TolerancePolicy,
    accept,
    carry_over,
    check_accept,
    check_repost,
    compare,
    pos_view,
    reconcile,
)
from domain.sale import PaymentMethod

CASH, CARD, GIFT = PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.GIFT_CARD
DAY = date(2026, 11, 26)
D = Decimal
STRICT = TolerancePolicy(max_per_tender=D("0"))
DEFAULT = TolerancePolicy()


def sale(txn: str, cash: str = "0", card: str = "0", gift: str = "0", kind: str = "sale") -> PosTxn:
    tenders = {m: D(a) for m, a in ((CASH, cash), (CARD, card), (GIFT, gift)) if D(a)}
    refs = {f"pi_{txn}": D(card)} if D(card) else {}
    return PosTxn(txn_id=txn, kind=kind, tenders=tenders, card_refs=refs)


def booked(p: PosTxn, entries: int = 1, at: datetime | None = None, **change: str) -> OdooBooking:
    tenders = dict(p.tenders)
    for name, amount in change.items():
        tenders[PaymentMethod(name)] = D(amount)
    return OdooBooking(
        txn_id=p.txn_id,
        kind="refund" if p.kind == "refund" else "sale",
        tenders=tenders,
        entries=[f"POS:S001:{p.txn_id}"] + [f"SUM:S001:{DAY}:b{n}" for n in range(entries - 1)],
        created_at=at,
    )


def captured(p: PosTxn, amount: str | None = None) -> GatewayCharge:
    return GatewayCharge(
        reference=f"pi_{p.txn_id}",
        txn_id=p.txn_id,
        captured=D(amount) if amount is not None else p.tenders[CARD],
    )


def sources(
    pos: list[PosTxn], odoo: list[OdooBooking], gateway: list[GatewayCharge]
) -> ReconSources:
    return ReconSources(store_id="S001", business_day=DAY, pos=pos, odoo=odoo, gateway=gateway)


def clean_day() -> tuple[list[PosTxn], list[OdooBooking], list[GatewayCharge]]:
    pos = [sale("T1", cash="10.00"), sale("T2", card="20.00", gift="5.00"), sale("T3", card="7.77")]
    return pos, [booked(p) for p in pos], [captured(p) for p in pos if CARD in p.tenders]


def kinds(report: ReconReport) -> list[tuple[str, DiffKind]]:
    return [(d.id, d.kind) for d in report.diffs]


def test_a_day_that_agrees_everywhere_is_reconciled_with_totals_per_tender() -> None:
    report = reconcile(sources(*clean_day()), STRICT)
    assert report.status is ReconStatus.RECONCILED
    assert report.diffs == [] and report.matched == 3
    card = next(t for t in report.totals if t.tender is CARD)
    assert (card.pos_sales, card.odoo_sales, card.gateway_captured) == (D("27.77"),) * 3
    cash = next(t for t in report.totals if t.tender is CASH)
    assert (cash.pos_sales, cash.odoo_sales, cash.gateway_captured) == (
        D("10.00"),
        D("10.00"),
        D(0),
    )


def test_a_sale_the_pos_has_and_odoo_lacks_is_missing_in_odoo() -> None:
    pos, odoo, gw = clean_day()
    report = reconcile(sources(pos, odoo[1:], gw), DEFAULT)
    assert kinds(report) == [("missing_in_odoo:T1", DiffKind.MISSING_IN_ODOO)]
    diff = report.diffs[0]
    assert "sale T1 (cash 10.00) was rung up at the POS" in diff.cause
    assert "POS:S001:T1" in diff.cause
    assert report.status is ReconStatus.UNRECONCILED and report.matched == 2
    assert check_repost(report, diff.id, "ann") == "T1"


def test_odoo_booking_a_sale_the_pos_never_rang_or_voided_is_missing_at_pos() -> None:
    pos, odoo, gw = clean_day()
    ghost = booked(sale("T9", cash="3.00"))
    voided = sale("V1", cash="4.00", kind="void")
    report = reconcile(
        sources([*pos, voided], [*odoo, ghost, booked(sale("V1", cash="4.00"))], gw), DEFAULT
    )
    assert kinds(report) == [
        ("missing_at_pos:T9", DiffKind.MISSING_AT_POS),
        ("missing_at_pos:V1", DiffKind.MISSING_AT_POS),
    ]
    assert "never rung up" in report.diffs[0].cause
    assert "voided at the POS" in report.diffs[1].cause


def test_a_card_sale_without_a_capture_is_missing_at_the_gateway() -> None:
    pos, odoo, gw = clean_day()
    report = reconcile(sources(pos, odoo, gw[:1]), DEFAULT)
    assert kinds(report) == [("missing_at_gateway:T3", DiffKind.MISSING_AT_GATEWAY)]
    assert "pi_T3 of 7.77 was never captured" in report.diffs[0].cause


def test_a_card_payment_without_a_reference_is_missing_at_the_gateway() -> None:
    bare = PosTxn(txn_id="T4", tenders={CARD: D("2.00")}, card_refs={"": D("2.00")})
    report = reconcile(sources([bare], [booked(bare)], []), DEFAULT)
    assert kinds(report) == [("missing_at_gateway:T4", DiffKind.MISSING_AT_GATEWAY)]
    assert "carries no gateway reference" in report.diffs[0].cause


def test_a_card_charge_with_no_sale_is_charge_without_sale() -> None:
    pos, odoo, gw = clean_day()
    stray = GatewayCharge(reference="pi_stray", captured=D("12.00"))
    report = reconcile(sources(pos, odoo, [*gw, stray]), DEFAULT)
    assert kinds(report) == [("charge_without_sale:pi_stray", DiffKind.CHARGE_WITHOUT_SALE)]
    assert report.diffs[0].other_amount == D("12.00")
    assert "no sale of the day has that reference" in report.diffs[0].cause
    # The charge's total still counts: the gateway total explains the difference.
    card = next(t for t in report.totals if t.tender is CARD)
    assert card.gateway_captured - card.pos_sales == D("12.00")


def test_an_amount_off_by_a_cent_in_odoo_fails_a_strict_policy_and_passes_the_default() -> None:
    pos, odoo, gw = clean_day()
    odoo[0] = booked(pos[0], cash="10.01")
    strict = reconcile(sources(pos, odoo, gw), STRICT)
    assert kinds(strict) == [("amount_differs:T1:cash", DiffKind.AMOUNT_DIFFERS)]
    diff = strict.diffs[0]
    assert (diff.pos_amount, diff.other_amount) == (D("10.00"), D("10.01"))
    assert "cash 10.00 at the POS, 10.01 booked in Odoo (off by 0.01)" in diff.cause
    assert strict.status is ReconStatus.UNRECONCILED
    lenient = reconcile(sources(pos, odoo, gw), DEFAULT)
    assert lenient.status is ReconStatus.RECONCILED
    assert lenient.diffs[0].state is DiffState.PASSED
    assert "within tolerance" in lenient.diffs[0].note


def test_tolerance_is_per_tender_and_store_day_not_per_transaction() -> None:
    pos = [sale(f"T{n}", cash="1.00") for n in range(6)]
    odoo = [booked(p, cash="1.01") for p in pos]  # 6 cents off in all
    report = reconcile(sources(pos, odoo, []), DEFAULT)
    assert report.status is ReconStatus.UNRECONCILED
    assert all(d.state is DiffState.OPEN for d in report.diffs)
    five = reconcile(sources(pos[:5], odoo[:5], []), DEFAULT)
    assert five.status is ReconStatus.RECONCILED


def test_a_kind_the_policy_does_not_list_never_passes_within_tolerance() -> None:
    pos, odoo, gw = clean_day()
    odoo[0] = booked(pos[0], cash="10.01")
    policy = TolerancePolicy(max_per_tender=D("1"), kinds=frozenset())
    assert reconcile(sources(pos, odoo, gw), policy).status is ReconStatus.UNRECONCILED


def test_a_gateway_capture_off_by_a_cent_is_amount_differs_at_the_gateway() -> None:
    pos, odoo, gw = clean_day()
    gw[1] = captured(pos[2], "7.76")
    report = reconcile(sources(pos, odoo, gw), STRICT)
    assert kinds(report) == [("amount_differs:T3:gateway:pi_T3", DiffKind.AMOUNT_DIFFERS)]
    assert report.diffs[0].source == "gateway"
    assert "card 7.77 at the POS, 7.76 captured by the gateway" in report.diffs[0].cause


def test_a_sale_booked_twice_is_a_duplicate() -> None:
    pos, odoo, gw = clean_day()
    odoo[1] = booked(pos[1], entries=2)
    report = reconcile(sources(pos, odoo, gw), DEFAULT)
    assert kinds(report) == [("duplicate:T2", DiffKind.DUPLICATE)]
    assert (
        "booked in 2 posted entries: POS:S001:T2, SUM:S001:2026-11-26:b0" in report.diffs[0].cause
    )
    card = next(t for t in report.totals if t.tender is CARD)
    assert card.odoo_sales == D("47.77")  # counted twice, as Odoo's books have it


def test_a_sale_captured_twice_is_a_duplicate() -> None:
    pos, odoo, gw = clean_day()
    second = GatewayCharge(reference="pi_again", txn_id="T3", captured=D("7.77"))
    report = reconcile(sources(pos, odoo, [*gw, second]), DEFAULT)
    assert kinds(report) == [("duplicate:T3:gateway:pi_again", DiffKind.DUPLICATE)]
    assert "captured twice" in report.diffs[0].cause


def test_a_sale_booked_after_the_close_is_a_late_sale_that_passes_as_information() -> None:
    pos, odoo, gw = clean_day()
    closed = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    odoo[0] = booked(pos[0], at=datetime(2026, 11, 27, 8, 30))  # Odoo: naive UTC
    odoo[1] = booked(pos[1], at=closed - timedelta(minutes=1))
    report = reconcile(sources(pos, odoo, gw), STRICT, closed_at=closed)
    assert kinds(report) == [("late_sale:T1", DiffKind.LATE_SALE)]
    assert report.diffs[0].state is DiffState.PASSED
    assert "2026-11-27 08:30:00 UTC, after the day closed at 2026-11-27 07:00:00 UTC" in (
        report.diffs[0].cause
    )
    assert report.status is ReconStatus.RECONCILED and report.matched == 3
    assert reconcile(sources(pos, odoo, gw), STRICT).diffs == []  # no close given: not late


def test_refunds_are_matched_by_their_id_per_tender() -> None:
    refund = sale("R1", card="3.00", kind="refund")
    report = reconcile(sources([refund], [booked(refund)], []), STRICT)
    assert report.diffs == []
    card = next(t for t in report.totals if t.tender is CARD)
    assert (card.pos_refunds, card.odoo_refunds) == (D("3.00"), D("3.00"))
    missing = reconcile(sources([refund], [], []), STRICT)
    assert kinds(missing) == [("missing_in_odoo:R1", DiffKind.MISSING_IN_ODOO)]
    with pytest.raises(DecisionError, match="refund"):
        check_repost(missing, "missing_in_odoo:R1", "ann")
    stranger = booked(sale("R2", cash="1.00", kind="refund"))
    assert kinds(reconcile(sources([], [stranger], []), STRICT)) == [
        ("missing_at_pos:R2", DiffKind.MISSING_AT_POS)
    ]


def test_diff_ids_and_order_are_stable_across_runs_and_input_order() -> None:
    pos, odoo, gw = clean_day()
    stray = GatewayCharge(reference="pi_stray", captured=D("1.00"))
    a = reconcile(sources(pos, odoo[1:], [*gw, stray]), STRICT)
    b = reconcile(sources(pos[::-1], odoo[1:][::-1], [stray, *gw[::-1]]), STRICT)
    assert [d.id for d in a.diffs] == [d.id for d in b.diffs]
    assert a == b


def test_the_z_report_is_cross_checked_with_the_journal() -> None:
    pos, odoo, gw = clean_day()
    src = sources(pos, odoo, gw).model_copy(
        update={"pos_z_sales": {CASH: D("10.00"), CARD: D("27.77"), GIFT: D("5.00")}}
    )
    assert reconcile(src, STRICT).diffs == []
    src = src.model_copy(update={"pos_z_sales": {CASH: D("11.00"), CARD: D("27.77"), GIFT: D("5")}})
    assert kinds(reconcile(src, STRICT)) == [
        ("amount_differs:z-report:cash", DiffKind.AMOUNT_DIFFERS)
    ]


def test_accepting_a_diff_records_who_and_why_and_all_accepts_every_open_one() -> None:
    pos, odoo, gw = clean_day()
    report = reconcile(sources(pos, odoo[1:], gw[1:]), DEFAULT)
    assert len(report.open_diffs) == 2
    ids = check_accept(report, "missing_in_odoo:T1", "ann")
    one = accept(report, ids, "ann", "booked by hand in Odoo")
    assert one.status is ReconStatus.UNRECONCILED
    done = one.diff("missing_in_odoo:T1")
    assert done is not None and done.state is DiffState.ACCEPTED and done.decided_by == "ann"
    assert done.note == "accepted by ann: booked by hand in Odoo"
    rest = accept(one, check_accept(one, "all", "bob"), "bob", "")
    assert rest.status is ReconStatus.RECONCILED
    assert [d.state for d in rest.diffs] == [DiffState.ACCEPTED, DiffState.ACCEPTED]


@pytest.mark.parametrize(
    ("diff_id", "by", "message"),
    [
        ("missing_in_odoo:T404", "ann", "no difference 'missing_in_odoo:T404'"),
        ("missing_in_odoo:T1", "  ", "must say who"),
    ],
)
def test_a_decision_on_an_unknown_diff_or_without_a_name_is_refused(
    diff_id: str, by: str, message: str
) -> None:
    pos, odoo, gw = clean_day()
    report = reconcile(sources(pos, odoo[1:], gw), DEFAULT)
    with pytest.raises(DecisionError, match=message):
        check_accept(report, diff_id, by)
    accepted = accept(report, ["missing_in_odoo:T1"], "ann", "")
    with pytest.raises(DecisionError, match="already accepted"):
        check_accept(accepted, "missing_in_odoo:T1", "ann")
    with pytest.raises(DecisionError, match="nothing to accept"):
        check_accept(accepted, "all", "ann")


def test_only_an_open_sale_missing_in_odoo_can_be_reposted() -> None:
    pos, odoo, gw = clean_day()
    stray = GatewayCharge(reference="pi_stray", captured=D("1.00"))
    report = reconcile(sources(pos, odoo, [*gw, stray]), DEFAULT)
    with pytest.raises(DecisionError, match="only a sale missing in Odoo"):
        check_repost(report, "charge_without_sale:pi_stray", "ann")


def test_a_rerun_keeps_acceptances_and_marks_what_went_away_resolved() -> None:
    pos, odoo, gw = clean_day()
    stray = GatewayCharge(reference="pi_stray", captured=D("1.00"))
    first = reconcile(sources(pos, odoo[1:], [*gw, stray]), DEFAULT)
    first = accept(first, ["charge_without_sale:pi_stray"], "ann", "test charge")
    # T1 was reposted: Odoo books it now.
    again = carry_over(reconcile(sources(pos, odoo, [*gw, stray]), DEFAULT), first, DEFAULT)
    assert again.status is ReconStatus.RECONCILED
    states = {d.id: (d.state, d.note) for d in again.diffs}
    assert states == {
        "charge_without_sale:pi_stray": (DiffState.ACCEPTED, "accepted by ann: test charge"),
        "missing_in_odoo:T1": (DiffState.RESOLVED, "gone on a later comparison"),
    }


def test_pos_view_reads_a_journal_transaction() -> None:
    view = pos_view(
        {
            "txn_id": "T1",
            "kind": "sale",
            "payments": [
                {"method": "card", "amount": "4.00", "reference": "pi_1"},
                {"method": "card", "amount": "1.00", "reference": "pi_2"},
                {"method": "cash", "amount": 2},
            ],
        }
    )
    assert view.tenders == {CARD: D("5.00"), CASH: D("2")}
    assert view.card_refs == {"pi_1": D("4.00"), "pi_2": D("1.00")}


def test_compare_leaves_every_diff_open_for_the_policy_to_decide() -> None:
    pos, odoo, gw = clean_day()
    odoo[0] = booked(pos[0], cash="10.01")
    report = compare(sources(pos, odoo, gw))
    assert [d.state for d in report.diffs] == [DiffState.OPEN]


def test_report_formats_table_csv_and_json_carry_totals_and_every_difference() -> None:
    import csv
    import io
    import json

    from workers.cli_recon import render

    pos, odoo, gw = clean_day()
    odoo[0] = booked(pos[0], cash="10.01")
    stray = GatewayCharge(reference="pi_stray", captured=D("12.00"))
    report = reconcile(sources(pos, odoo, [*gw, stray]), DEFAULT)
    clean = reconcile(sources(*clean_day()), DEFAULT).model_copy(update={"store_id": "S002"})

    table = render([report, clean], "table")
    assert "S001 2026-11-26  Unreconciled  matched 2 of 3 POS transactions" in table
    assert "charge_without_sale:pi_stray [open]: the gateway captured 12.00" in table
    assert "amount_differs:T1:cash [passed]" in table and "within tolerance" in table
    assert "2 store-days: 1 reconciled, 1 not" in table

    rows = list(csv.DictReader(io.StringIO(render([report, clean], "csv"))))
    diffs = [r for r in rows if r["row"] == "diff"]
    assert [(r["store_id"], r["diff_id"], r["state"]) for r in diffs] == [
        ("S001", "amount_differs:T1:cash", "passed"),
        ("S001", "charge_without_sale:pi_stray", "open"),
    ]
    card = next(r for r in rows if r["store_id"] == "S001" and r["tender"] == "card")
    assert (card["pos_sales"], card["gateway_captured"]) == ("27.77", "39.77")

    data = json.loads(render([report], "json"))
    assert data[0]["status"] == "Unreconciled"
    assert ReconReport.model_validate(data[0]) == report
