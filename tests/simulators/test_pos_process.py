"""The POS platform as a process: a database file across restarts, the command line, and a
burst of concurrent commands across many stores."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import httpx

from simulators.pos import PosPlatform, StoreKnobs, verify

from .conftest_pos import SECRET, command, receiving, running_platform, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_database_file_keeps_the_fleet_across_restarts(tmp_path: Path) -> None:
    path = str(tmp_path / "pos.sqlite")
    with running_platform(stores=4, db_path=path) as first:
        first.set_knobs("S002", reject_rate=1.0, reject_reason="frozen", apply_delay_ms=0)
        first.set_knobs("S003", online=False)
        first.set_knobs("S001", apply_delay_ms=0)
        first.set_knobs("S004", apply_delay_ms=60_000)  # still waiting when the process stops
        with httpx.Client(base_url=first.url) as client:
            client.post(
                "/v1/stores/S001/price-commands", json=command("p-1", [("MILK-1L", "1.59")])
            )
            client.post("/v1/stores/S002/price-commands", json=command("p-2"))
            client.post("/v1/stores/S004/price-commands", json=command("p-4", [("MUG-WHITE", "3")]))
        wait_for(lambda: first.stats()["commands_pending"] == 1)

    with running_platform(stores=4, db_path=path) as second:
        assert second.store_ids() == ["S001", "S002", "S003", "S004"]  # not seeded twice
        assert second.prices("S001")["MILK-1L"] == Decimal("1.59")
        assert second.knobs("S002") == StoreKnobs(
            reject_rate=1.0, reject_reason="frozen", apply_delay_ms=0
        )
        assert not second.is_online("S003")
        [rejected] = second.commands("S002")
        assert (rejected["status"], rejected["reason"]) == ("rejected", "frozen")
        with httpx.Client(base_url=second.url) as client:
            again = client.post("/v1/stores/S001/price-commands", json=command("p-1"))
            assert again.status_code == 200
            assert again.json()["status"] == "applied"
        assert [c["apply_count"] for c in second.commands("S001")] == [1]
        # Received before the restart, not applied yet: the store applies it now.
        wait_for(lambda: second.commands("S004")[0]["status"] == "applied")
        assert second.prices("S004")["MUG-WHITE"] == Decimal("3.00")
        assert [c["apply_count"] for c in second.commands("S004")] == [1]


def test_a_confirmation_cut_short_by_a_stop_is_sent_after_the_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "pos.sqlite")
    with receiving(statuses=[503]) as receiver:
        with running_platform(stores=2, db_path=path) as first:
            first.set_knobs("S001", apply_delay_ms=0)
            with httpx.Client(base_url=first.url) as client:
                body = command("pc-1", None, receiver.url)
                client.post("/v1/stores/S001/price-commands", json=body)
            wait_for(receiver.received)  # the first attempt failed; stopped while retrying
        assert first.stats()["confirmations_failed"] == 0

        unsent = PosPlatform(stores=2, db_path=path, secret=SECRET)
        try:
            assert unsent.commands("S001")[0]["confirmation"] == "pending"
        finally:
            unsent.stop()  # never started: nothing sent

        receiver.statuses = [200]
        seen = len(receiver.received())
        with running_platform(stores=2, db_path=path) as second:
            wait_for(lambda: second.stats()["confirmations_sent"] == 1)
            assert second.commands("S001")[0]["confirmation"] == "sent"
            assert [c["apply_count"] for c in second.commands("S001")] == [1]
        calls = receiver.received()[seen:]
    assert [(c.body["command_id"], c.body["status"]) for c in calls] == [("pc-1", "applied")]


def test_the_command_line_serves_the_fleet(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.pos",
            "--stores",
            "3",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "cli.sqlite"),
            "--secret",
            "cli-secret",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            def up() -> httpx.Response | None:
                try:
                    return client.get("/v1/stores")
                except httpx.TransportError:
                    return None

            stores = wait_for(up, timeout=20, interval=0.1).json()["stores"]
            assert [s["store_id"] for s in stores] == ["S001", "S002", "S003"]
            with receiving() as receiver:
                body = command("cli-1", [("EGGS-12", "3.49")], receiver.url)
                assert client.post("/v1/stores/S003/price-commands", json=body).status_code == 202
                [callback] = wait_for(receiver.received)
            headers = {k.lower(): v for k, v in callback.headers.items()}
            assert verify(
                "cli-secret", headers["x-pos-timestamp"], callback.raw, headers["x-pos-signature"]
            )
            prices = client.get("/v1/stores/S003/prices").json()["prices"]
            assert prices["EGGS-12"] == "3.49"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr.decode()


def test_a_burst_of_concurrent_commands_is_applied_once_each_and_confirmed() -> None:
    stores, senders, per_sender = 300, 50, 8
    with running_platform(stores=stores) as pos, receiving() as receiver:
        pos.set_fleet(apply_delay_ms=0)
        ids = pos.store_ids()
        errors: list[str] = []
        limits = httpx.Limits(max_connections=senders)

        with httpx.Client(base_url=pos.url, timeout=10, limits=limits) as client:

            def send(worker: int) -> None:
                for n in range(per_sender):
                    store_id = ids[(worker * per_sender + n) % stores]
                    body = command(f"burst-{worker}-{n}", [("APPLE-KG", "2.35")], receiver.url)
                    response = client.post(f"/v1/stores/{store_id}/price-commands", json=body)
                    if response.status_code != 202:
                        errors.append(response.text)

            threads = [threading.Thread(target=send, args=(w,)) for w in range(senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        total = senders * per_sender
        wait_for(lambda: pos.stats()["confirmations_sent"] == total, timeout=30)
        assert errors == []
        stats = pos.stats()
        assert stats["commands_received"] == total
        assert stats["commands_applied"] == total
        assert stats["commands_pending"] == 0
        counts = [c["apply_count"] for s in ids for c in pos.commands(s)]
        assert counts == [1] * total
        confirmed = {c.body["command_id"] for c in receiver.received()}
        assert len(confirmed) == total
        assert all(pos.prices(s)["APPLE-KG"] == Decimal("2.35") for s in ids)
