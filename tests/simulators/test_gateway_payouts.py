"""What a Stripe account shows for settlement, read with the official ``stripe`` SDK: payment
intents found by search, payouts with their own balance transactions, the transactions each
payout settles (paginated), and a payout that fails later."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from simulators.gateway import Gateway

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
