"""Store behaviour knobs through the real API: rejections, lost confirmations, offline stores
and offline windows, and confirmation delivery that retries or gives up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from simulators.pos import PosPlatform

from .conftest_pos import command, receiving, running_platform, wait_for


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    with running_platform(stores=6) as platform:
        platform.set_fleet(apply_delay_ms=0)
        yield platform


@pytest.fixture
def http(pos: PosPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pos.url, timeout=10) as client:
        yield client


def status(http: httpx.Client, store_id: str, command_id: str) -> str:
    response = http.get(f"/v1/stores/{store_id}/price-commands/{command_id}")
    assert response.status_code == 200, response.text
    value: str = response.json()["status"]
    return value


def test_reject_rate_one_rejects_with_the_reject_reason(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S001", reject_rate=1.0, reject_reason="margin below floor")
    with receiving() as receiver:
        body = command("rj-1", [("MILK-1L", "0.10")], receiver.url)
        assert http.post("/v1/stores/S001/price-commands", json=body).status_code == 202
        [callback] = wait_for(receiver.received)
    assert callback.body["status"] == "rejected"
    assert callback.body["reason"] == "margin below floor"
    answer = http.get("/v1/stores/S001/price-commands/rj-1").json()
    assert (answer["status"], answer["reason"]) == ("rejected", "margin below floor")
    assert pos.prices("S001")["MILK-1L"] == Decimal("1.29")


def outcomes_with_seed(seed: int) -> dict[str, str]:
    with running_platform(stores=2, seed=seed) as platform:
        platform.set_knobs("S001", reject_rate=0.5, apply_delay_ms=0)
        with httpx.Client(base_url=platform.url) as client:
            for n in range(40):
                client.post("/v1/stores/S001/price-commands", json=command(f"seed-{n}"))
        wait_for(lambda: platform.stats()["commands_pending"] == 0)
        return {c["command_id"]: c["status"] for c in platform.commands("S001")}


def test_random_rejections_repeat_with_the_same_seed() -> None:
    first, again, other = outcomes_with_seed(7), outcomes_with_seed(7), outcomes_with_seed(8)
    assert first == again
    assert set(first.values()) == {"applied", "rejected"}
    assert first != other


def test_lost_confirmations_apply_but_never_call_back(pos: PosPlatform, http: httpx.Client) -> None:
    pos.set_knobs("S002", lose_confirmations=True)
    with receiving() as receiver:
        body = command("lost-1", [("SOAP-BAR", "1.55")], receiver.url)
        assert http.post("/v1/stores/S002/price-commands", json=body).status_code == 202
        wait_for(lambda: status(http, "S002", "lost-1") == "applied")
        time.sleep(0.3)  # a callback would have arrived by now
        assert receiver.received() == []
    assert pos.prices("S002")["SOAP-BAR"] == Decimal("1.55")
    assert pos.commands("S002")[0]["confirmation"] == "lost"
    assert pos.stats()["confirmations_lost"] == 1
    assert pos.stats()["confirmations_sent"] == 0


def test_an_offline_store_answers_504_and_records_nothing(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S003", online=False)
    with receiving() as receiver:
        refused = http.post(
            "/v1/stores/S003/price-commands", json=command("off-1", None, receiver.url)
        )
        assert refused.status_code == 504
        assert refused.json() == {"error": "store S003 is offline"}
        assert http.get("/v1/stores/S003/prices").status_code == 504
        assert http.get("/v1/stores/S003/price-commands/off-1").status_code == 504
        listed = {s["store_id"]: s["online"] for s in http.get("/v1/stores").json()["stores"]}
        assert listed["S003"] is False
        assert listed["S001"] is True

        pos.set_knobs("S003", online=True)
        # Nothing was queued while it was offline: the store never heard of off-1.
        assert http.get("/v1/stores/S003/price-commands/off-1").status_code == 404
        assert pos.commands("S003") == []
        time.sleep(0.2)
        assert receiver.received() == []
    stats = pos.stats()
    assert stats["commands_received"] == 0
    assert stats["refused_offline"] == 3
    assert http.post("/v1/stores/S003/price-commands", json=command("off-2")).status_code == 202


def test_an_offline_window_refuses_inside_it_then_the_store_is_back(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S004", offline_windows=[(0, 1.0)])
    assert not pos.is_online("S004")
    assert http.post("/v1/stores/S004/price-commands", json=command("win-1")).status_code == 504
    assert pos.store("S004")["offline_until"] is not None
    wait_for(lambda: pos.is_online("S004"), timeout=3)
    assert http.post("/v1/stores/S004/price-commands", json=command("win-1")).status_code == 202
    wait_for(lambda: status(http, "S004", "win-1") == "applied")
    assert [c["apply_count"] for c in pos.commands("S004")] == [1]


def test_a_later_offline_window_leaves_the_store_online_until_it_starts(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S005", offline_windows=[(1.0, 30)])
    assert http.post("/v1/stores/S005/price-commands", json=command("lw-1")).status_code == 202
    wait_for(lambda: not pos.is_online("S005"), timeout=3)
    assert http.post("/v1/stores/S005/price-commands", json=command("lw-2")).status_code == 504


@pytest.mark.parametrize("outage", ["switched_off", "window"])
def test_a_command_due_while_the_store_is_offline_is_applied_when_it_is_back(
    pos: PosPlatform, http: httpx.Client, outage: str
) -> None:
    pos.set_knobs("S006", apply_delay_ms=400)
    with receiving() as receiver:
        body = command("late-1", [("BATT-AA4", "4.99")], receiver.url)
        assert http.post("/v1/stores/S006/price-commands", json=body).status_code == 202
        if outage == "switched_off":
            pos.set_knobs("S006", online=False)
        else:
            pos.set_knobs("S006", offline_windows=[(0, 1.5)])
        time.sleep(0.8)  # well past the apply delay, still offline
        [held] = pos.commands("S006")
        assert held["status"] == "accepted"
        assert held["apply_count"] == 0
        assert receiver.received() == []
        assert pos.store("S006")["waiting_to_apply"] == 1

        if outage == "switched_off":
            pos.set_knobs("S006", online=True)
        [callback] = wait_for(receiver.received, timeout=3)
    assert callback.body["status"] == "applied"
    assert pos.prices("S006")["BATT-AA4"] == Decimal("4.99")
    assert [c["apply_count"] for c in pos.commands("S006")] == [1]


def test_a_confirmation_answered_5xx_is_retried_until_delivered(
    pos: PosPlatform, http: httpx.Client
) -> None:
    with receiving(statuses=[503, 500, 200]) as receiver:
        body = command("retry-1", None, receiver.url)
        http.post("/v1/stores/S001/price-commands", json=body)
        wait_for(lambda: pos.stats()["confirmations_sent"] == 1, timeout=5)
        calls = receiver.received()
    assert len(calls) == 3
    assert {c.body["command_id"] for c in calls} == {"retry-1"}
    assert pos.commands("S001")[0]["confirmation"] == "sent"
    assert pos.stats()["confirmations_failed"] == 0


def test_a_confirmation_answered_4xx_is_not_retried(pos: PosPlatform, http: httpx.Client) -> None:
    with receiving(statuses=[401]) as receiver:
        http.post("/v1/stores/S001/price-commands", json=command("refused-1", None, receiver.url))
        wait_for(lambda: pos.stats()["confirmations_failed"] == 1, timeout=5)
        time.sleep(0.3)  # a retry would have come by now
        assert len(receiver.received()) == 1
    assert pos.commands("S001")[0]["confirmation"] == "failed"
    assert status(http, "S001", "refused-1") == "applied"  # the store applied it anyway


def test_an_unreachable_callback_gives_up_after_the_retries(
    pos: PosPlatform, http: httpx.Client
) -> None:
    with receiving() as receiver:
        dead_url = receiver.url
    http.post("/v1/stores/S002/price-commands", json=command("dead-1", None, dead_url))
    wait_for(lambda: pos.stats()["confirmations_failed"] == 1, timeout=8)
    assert pos.stats()["confirmations_sent"] == 0
    assert pos.commands("S002")[0]["confirmation"] == "failed"


@pytest.mark.parametrize("status_code", [429, 503])
def test_a_busy_store_answers_with_retry_after_and_records_nothing(
    pos: PosPlatform, http: httpx.Client, status_code: int
) -> None:
    pos.set_knobs("S004", busy_rate=1.0, busy_status=status_code, retry_after_s=2)
    refused = http.post("/v1/stores/S004/price-commands", json=command("busy-1"))
    assert refused.status_code == status_code
    assert refused.headers["Retry-After"] == "2"
    assert pos.commands("S004") == []
    assert pos.stats()["refused_busy"] == 1
    pos.set_knobs("S004", busy_rate=0.0)
    assert http.post("/v1/stores/S004/price-commands", json=command("busy-1")).status_code == 202
    pos.set_knobs("S004", busy_next=2, busy_status=503)
    codes = [http.get("/v1/stores/S004/prices").status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_busy_knobs_are_checked(pos: PosPlatform) -> None:
    with pytest.raises(ValueError, match="busy_status must be 429 or 503"):
        pos.set_knobs("S004", busy_status=500)
    with pytest.raises(ValueError, match="busy_rate must be between 0 and 1"):
        pos.set_knobs("S004", busy_rate=2)
