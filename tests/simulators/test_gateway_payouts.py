"""What a Stripe account shows for settlement, read with the official ``stripe`` SDK: payment
intents found by search, payouts with their own balance transactions, the transactions each
payout settles (paginated), and a payout that fails later."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe

from simulators.gateway import Gateway, GatewayFaults

from .test_gateway_api import stripe_client

DAY = 86400
D1 = 1_795_000_000 - 1_795_000_000 % DAY  # a UTC midnight


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(db_path=None, seed=7)
    gw.start(host="127.0.0.1", port=0)
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[stripe.StripeClient]:
    sdk, http = stripe_client(gateway)
    yield sdk
    http.close()


def _store_days(gw: Gateway) -> None:
    """Three stores, two days, 25 sales per store-day; S002's day 1 is what we look for."""
    for day in (D1, D1 + DAY):
        for store in ("S001", "S002", "S003"):
            for n in range(25):
                gw.create_payment_intent(
                    f"pi_{store}_{day}_{n:03d}",
                    amount_cents=1000 + n,
                    metadata={"store_id": store, "txn_id": f"T{n:03d}"},
                    created=day + 3600 + n * 60,
                )


def test_search_finds_a_store_day_across_pages_with_expanded_charges(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    _store_days(gateway)
    query = (
        f"metadata['store_id']:'S002' AND created>={D1} AND created<{D1 + DAY} "
        "AND status:'succeeded'"
    )
    first = client.v1.payment_intents.search(
        params={"query": query, "limit": 10, "expand": ["data.latest_charge"]}
    )
    assert first.object == "search_result"
    assert first.url == "/v1/payment_intents/search"
    assert first.has_more and isinstance(first.next_page, str)
    assert len(first.data) == 10

    found = list(first.auto_paging_iter())
    assert len(found) == 25
    assert {pi.metadata["store_id"] for pi in found} == {"S002"}
    assert len({pi.id for pi in found}) == 25
    assert [pi.created for pi in found] == sorted((pi.created for pi in found), reverse=True)
    assert all(D1 <= pi.created < D1 + DAY for pi in found)
    # Every page, not only the first, carries the expansion.
    assert all(isinstance(pi.latest_charge, stripe.Charge) for pi in found)
    assert sum(pi.latest_charge.amount for pi in found) == sum(1000 + n for n in range(25))


def test_search_operators_and_other_metadata_keys(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    _store_days(gateway)

    def ids(query: str) -> set[str]:
        page = client.v1.payment_intents.search(params={"query": query, "limit": 100})
        return {pi.id for pi in page.auto_paging_iter()}

    first_minute = D1 + 3600
    assert ids(f"created>{first_minute} AND created<={first_minute + 60}") == {
        f"pi_{s}_{D1}_001" for s in ("S001", "S002", "S003")
    }
    assert ids(f'metadata["txn_id"]:"T007" AND created<{D1 + DAY}') == {
        f"pi_{s}_{D1}_007" for s in ("S001", "S002", "S003")
    }
    assert ids("metadata['store_id']:'S009'") == set()
    assert ids("status:'canceled'") == set()
    assert len(ids("currency:'usd' AND metadata['store_id']:'S003'")) == 50
    last = client.v1.payment_intents.search(params={"query": "metadata['store_id']:'S001'"})
    assert len(last.data) == 10  # Stripe's default limit


@pytest.mark.parametrize(
    ("params", "param", "words"),
    [
        ({"query": "metadata['store_id']:'S1' OR created>1"}, "query", "OR"),
        ({"query": "-status:'succeeded'"}, "query", "-status"),
        ({"query": "description~'x'"}, "query", "description~'x'"),
        ({"query": "customer:'cus_1'"}, "query", "customer"),
        ({"query": "created>='yesterday'"}, "query", "integer"),
        ({"query": "metadata['store_id']>'S1'"}, "query", "exactly"),
        ({"query": ""}, "query", "query"),
        ({"query": "status:'succeeded'", "limit": 101}, "limit", "100"),
        ({"query": "status:'succeeded'", "limit": 0}, "limit", "1"),
        ({"query": "status:'succeeded'", "page": "not-a-token"}, "page", "page"),
        ({"query": "status:'succeeded'", "starting_after": "pi_x"}, "starting_after", "unknown"),
    ],
)
def test_search_refuses_what_it_cannot_answer_as_stripe_does(
    gateway: Gateway, client: stripe.StripeClient, params: dict[str, object], param: str, words: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.search(params=params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert words.lower() in str(caught.value.user_message).lower()


def test_search_of_a_store_day_is_an_index_range_not_a_scan(gateway: Gateway) -> None:
    """100,000 intents must not be read to find one store-day's 500: the statements the search
    runs (first page and a later page) are planned by SQLite on the (store_id, created) index,
    without sorting the matches."""
    from sqlalchemy import event

    from simulators.gateway.search import search_payment_intents

    _store_days(gateway)
    engine = gateway.ledger.engine
    seen: list[tuple[str, object]] = []

    def capture(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        if "FROM gw_payment_intent" in statement and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        query = f"metadata['store_id']:'S002' AND created>={D1} AND created<{D1 + DAY}"
        with gateway.ledger.session() as s:
            _, token, _ = search_payment_intents(s, {"query": query, "limit": "10"})
            assert token is not None
            search_payment_intents(s, {"query": query, "limit": "10", "page": token})
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) == 2
    for statement, parameters in seen:
        with engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()  # type: ignore[arg-type]
        detail = " ".join(str(row[-1]) for row in plan)
        assert "ix_gw_pi_store_created" in detail, detail
        assert "TEMP B-TREE" not in detail, detail


def _by_type(transactions: list[stripe.BalanceTransaction]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t in transactions:
        out.setdefault(t.type, []).append(t.net)
    return out


def test_a_payout_settles_its_transactions_page_by_page_with_their_fees(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    now = int(time.time())
    today = now - now % DAY
    amounts = [500 + n for n in range(150)]
    for n, amount in enumerate(amounts):
        gateway.create_payment_intent(f"pi_today_{n:03d}", amount, created=today + n % 60)
    refund = client.v1.refunds.create({"payment_intent": "pi_today_000", "amount": 200})
    second = client.v1.refunds.create({"payment_intent": "pi_today_001", "amount": 100})
    gateway.fail_refund(second.id, "expired_or_canceled_card")

    payout = client.v1.payouts.retrieve(f"po_sim{time.strftime('%Y%m%d', time.gmtime(now))}usd")
    assert payout.status == "pending"  # the day is not over
    own = client.v1.balance_transactions.list({"type": "payout", "limit": 100}).data
    mine = [t for t in own if t.id == payout.balance_transaction]
    assert len(mine) == 1 and mine[0].amount == -payout.amount and mine[0].source == payout.id

    first = client.v1.balance_transactions.list({"payout": payout.id, "limit": 100})
    assert len(first.data) == 100 and first.has_more
    settled = list(first.auto_paging_iter())
    assert len(settled) == 150 + 3 and len({t.id for t in settled}) == 153
    kinds = _by_type(settled)
    assert sorted(kinds) == ["charge", "refund", "refund_failure"]
    assert sorted(kinds["refund"]) == [-200, -100]
    assert kinds["refund_failure"] == [100]
    fees = sum(t.fee for t in settled)
    assert fees == sum(round(a * 0.029) + 30 for a in amounts)
    assert sum(t.amount for t in settled) - fees == sum(t.net for t in settled) == payout.amount
    assert refund.balance_transaction in {t.id for t in settled}


def test_a_failed_payout_gives_the_money_back_and_says_so(
    gateway: Gateway, client: stripe.StripeClient
) -> None:
    from .test_gateway_api import admin

    _store_days(gateway)  # days long past: their payouts are paid
    day1 = client.v1.payouts.retrieve(f"po_sim{time.strftime('%Y%m%d', time.gmtime(D1))}usd")
    assert (day1.status, day1.created, day1.failure_code) == ("paid", D1 + DAY, None)
    paid = client.v1.payouts.list({"status": "paid", "limit": 100}).data
    assert {p.id for p in paid} >= {day1.id}

    status, body = admin(gateway, "POST", f"/_sim/payouts/{day1.id}/fail", {})
    assert status == 200 and [e["type"] for e in body["events"]] == ["payout.failed"]
    failed = client.v1.payouts.retrieve(day1.id)
    assert (failed.status, failed.failure_code) == ("failed", "account_closed")
    assert failed.failure_message and failed.amount == day1.amount
    events = client.v1.events.list({"type": "payout.failed"}).data
    assert [e.data.object["id"] for e in events] == [day1.id]
    assert events[0].data.previous_attributes["status"] == "paid"

    # The money is back on the balance, and goes out again with today's payout.
    back = client.v1.balance_transactions.list({"type": "payout_failure"}).data
    assert [(t.amount, t.source, t.reporting_category) for t in back] == [
        (day1.amount, day1.id, "payout_reversal")
    ]
    assert back[0].id == failed.failure_balance_transaction
    today = client.v1.payouts.retrieve(_today_payout())
    settled = list(client.v1.balance_transactions.list({"payout": today.id}).auto_paging_iter())
    assert [t.id for t in settled] == [back[0].id] and today.amount == day1.amount

    # Once failed, always failed; a payout not sent yet cannot fail.
    assert admin(gateway, "POST", f"/_sim/payouts/{day1.id}/fail", {})[0] == 400
    assert admin(gateway, "POST", f"/_sim/payouts/{today.id}/fail", {})[0] == 400
    assert admin(gateway, "POST", "/_sim/payouts/po_nope/fail", {})[0] == 400
    assert admin(gateway, "POST", f"/_sim/payouts/{day1.id}/fail", {"failure_code": "x"})[0] == 400


def _today_payout() -> str:
    return f"po_sim{time.strftime('%Y%m%d', time.gmtime())}usd"


def test_payouts_persist_their_status(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.sqlite")
    gw = Gateway(db_path=path, seed=3)
    gw.create_payment_intent("pi_old", 1000, created=D1 + 60)
    payout_id = gw.ledger.list_payouts({})["data"][0]["id"]
    gw.fail_payout(payout_id, "no_account")
    gw.ledger.close()
    again = Gateway(db_path=path, seed=3)
    try:
        payout = again.ledger.payout(payout_id)
        assert (payout["status"], payout["failure_code"]) == ("failed", "no_account")
    finally:
        again.ledger.close()


@pytest.mark.parametrize("path", ["/v1/payouts", "/v1/balance_transactions"])
def test_faults_reach_the_settlement_routes(
    gateway: Gateway, client: stripe.StripeClient, path: str
) -> None:
    gateway.create_payment_intent("pi_old", 1000, created=D1 + 60)
    payout_id = f"po_sim{time.strftime('%Y%m%d', time.gmtime(D1))}usd"
    read = {
        "/v1/payouts": lambda: client.v1.payouts.retrieve(payout_id),
        "/v1/balance_transactions": lambda: client.v1.balance_transactions.list(
            {"payout": payout_id}
        ),
    }[path]
    gateway.faults = GatewayFaults(error_rate=1.0, kinds=("http_500",), paths=(path,), max_faults=1)
    with pytest.raises(stripe.APIError):
        read()
    assert read() is not None  # the fault budget is spent: the retry goes through
    gateway.faults = GatewayFaults(
        error_rate=1.0, kinds=("transport",), paths=(path,), max_faults=1
    )
    with pytest.raises(stripe.APIConnectionError):
        read()
    assert gateway.stats()["faults"]["http_500"] == 1
    assert gateway.stats()["faults"]["transport"] == 1
