"""The adaptive Odoo concurrency limit (activities/odoo/limiter.py): pure logic, a fake clock."""

from __future__ import annotations

import threading

import pytest
from odoorpc.error import RPCError

from activities.odoo.client import OdooClient, OdooSettings, is_strain
from activities.odoo.limiter import LimiterSettings, OdooBusy, OdooLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock | None = None, **kw: float) -> OdooLimiter:
    defaults: dict[str, float] = {
        "min_limit": 2,
        "max_limit": 16,
        "latency_target_s": 1.0,
        "cooldown_s": 5.0,
        "wait_timeout_s": 3.0,
        "max_waiting": 2,
        "heartbeat_every_s": 0.01,
    }
    defaults.update(kw)
    s = LimiterSettings(**defaults)  # type: ignore[arg-type]
    return OdooLimiter(s, clock=clock or Clock())


def test_starts_at_max_and_a_failure_cuts_it_to_seventy_percent() -> None:
    lim = limiter()
    assert lim.limit == 16
    lim.acquire("x")
    assert lim.in_flight == 1
    lim.release(0.1, strained=True)
    assert lim.limit == 11  # 16 * 0.7 = 11.2
    assert lim.in_flight == 0


def test_a_slow_success_counts_as_strain() -> None:
    lim = limiter()
    lim.acquire("x")
    lim.release(1.5, strained=False)
    assert lim.limit == 11


def test_one_decrease_per_cooldown_window_then_another() -> None:
    clock = Clock()
    lim = limiter(clock)
    for _ in range(5):  # one episode: the calls in flight all fail together
        lim.acquire("x")
        lim.release(0.1, strained=True)
    assert lim.limit == 11
    assert lim.decreases == 1
    clock.now += 5.0
    lim.acquire("x")
    lim.release(0.1, strained=True)
    assert lim.limit == 7  # 11.2 * 0.7 = 7.84
    assert lim.decreases == 2


def test_additive_increase_one_per_limit_successes_capped_at_max() -> None:
    clock = Clock()
    lim = limiter(clock, max_limit=4, min_limit=1)
    lim.acquire("x")
    lim.release(0.1, strained=True)  # 4 -> 2.8
    assert lim.limit == 2
    for _ in range(2):  # about `limit` fast successes add one
        lim.acquire("x")
        lim.release(0.1, strained=False)
    assert lim.limit == 3
    for _ in range(100):
        lim.acquire("x")
        lim.release(0.1, strained=False)
    assert lim.limit == 4


def test_never_below_min() -> None:
    clock = Clock()
    lim = limiter(clock, min_limit=3)
    for _ in range(20):
        clock.now += 10
        lim.acquire("x")
        lim.release(0.1, strained=True)
    assert lim.limit == 3


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min <= max"):
        LimiterSettings(min_limit=5, max_limit=4)
    with pytest.raises(ValueError, match="latency_target_s"):
        LimiterSettings(latency_target_s=0)


def test_wait_heartbeats_then_raises_busy_when_no_slot_frees() -> None:
    clock = Clock()
    lim = limiter(clock, max_limit=2, min_limit=2, wait_timeout_s=3.0)
    lim.acquire("a")
    lim.acquire("b")
    beats: list[str] = []

    def beat(what: str) -> None:
        beats.append(what)
        clock.now += 1.0

    with pytest.raises(OdooBusy, match="no slot within 3 s"):
        lim.acquire("account.move.create", beat)
    assert len(beats) >= 3
    assert all("account.move.create" in b for b in beats)
    assert lim.in_flight == 2 and lim.waiting == 0
    assert lim.rejections == 1


def test_too_many_waiting_is_refused_at_once() -> None:
    lim = limiter(max_limit=2, min_limit=2, max_waiting=0)
    lim.acquire("a")
    lim.acquire("b")
    with pytest.raises(OdooBusy, match="0 waiting"):
        lim.acquire("c")


def test_a_heartbeat_failure_leaves_no_slot_taken() -> None:
    lim = limiter(max_limit=2, min_limit=2)
    lim.acquire("a")
    lim.acquire("b")

    def abandoned(what: str) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        lim.acquire("c", abandoned)
    assert lim.in_flight == 2 and lim.waiting == 0


def test_a_waiter_gets_the_slot_released_by_another_thread() -> None:
    lim = limiter(max_limit=2, min_limit=2, wait_timeout_s=60.0, heartbeat_every_s=0.05)
    lim.acquire("a")
    lim.acquire("b")
    got = threading.Event()

    def wait() -> None:
        lim.acquire("c")
        got.set()

    t = threading.Thread(target=wait)
    t.start()
    while lim.waiting == 0:
        threading.Event().wait(0.01)
    assert not got.is_set()
    lim.release(0.1, strained=False)
    t.join(30)
    assert got.is_set()
    assert lim.in_flight == 2


def test_threads_never_exceed_the_limit() -> None:
    lim = limiter(
        max_limit=3, min_limit=3, wait_timeout_s=60.0, max_waiting=50, heartbeat_every_s=0.05
    )
    guard = threading.Lock()
    peak = 0
    current = 0

    def work() -> None:
        nonlocal peak, current
        for _ in range(30):
            lim.acquire("x")
            with guard:
                current += 1
                peak = max(peak, current)
            with guard:
                current -= 1
            lim.release(0.0, strained=False)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert 1 <= peak <= 3
    assert lim.in_flight == 0 and lim.waiting == 0


def test_strain_is_what_the_adapter_retries_not_a_business_refusal() -> None:
    server = RPCError("boom", {"data": {"name": "psycopg2.errors.SerializationFailure"}})
    refusal = RPCError("no", {"data": {"name": "odoo.exceptions.UserError"}})
    assert is_strain(server)
    assert is_strain(ConnectionResetError())
    assert not is_strain(refusal)
    assert not is_strain(KeyError("x"))


def test_the_client_releases_its_slot_and_counts_a_refused_connection_as_strain() -> None:
    # Nothing listens on port 9: the connection is refused (a transport fault).
    client = OdooClient(
        OdooSettings(url="http://127.0.0.1:9", timeout_s=2, limiter=LimiterSettings(cooldown_s=0))
    )
    with pytest.raises(Exception, match="unreachable"):
        client.call_raw("res.partner", "create", {})
    assert client.limiter.in_flight == 0
    assert client.limiter.limit == 11


def test_settings_carry_the_limits_and_refuse_min_over_max(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workers.settings import load_settings

    monkeypatch.setenv("RETAILFLOW_ODOO_CONCURRENCY_MIN", "3")
    monkeypatch.setenv("RETAILFLOW_ODOO_CONCURRENCY_MAX", "5")
    monkeypatch.setenv("RETAILFLOW_ODOO_LATENCY_TARGET_S", "2.5")
    limits = load_settings().odoo().limiter
    assert (limits.min_limit, limits.max_limit, limits.latency_target_s) == (3, 5, 2.5)
    monkeypatch.setenv("RETAILFLOW_ODOO_CONCURRENCY_MIN", "9")
    with pytest.raises(ValueError, match="RETAILFLOW_ODOO_CONCURRENCY_MIN must not exceed"):
        load_settings()


def test_worker_slots_keep_room_for_other_activities_when_odoo_waiters_fill_up() -> None:
    from workers.settings import Settings
    from workers.worker import activity_slots

    s = Settings(max_concurrent_activities=6, odoo_concurrency_max=10, odoo_max_waiting=4)
    # Odoo can hold at most 10 running + 4 waiting threads; 6 stay for POS and gateway.
    assert activity_slots(s) == 20
