"""The emulator as a process: file persistence, the command line, concurrent clients."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import odoorpc

from simulators.odoo import OdooEmulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_database_file_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    path = str(tmp_path / "odoo.sqlite")
    first = OdooEmulator(db_path=path)
    first.start()
    try:
        client = odoorpc.ODOO("127.0.0.1", port=first.port)
        client.login("retail", "admin", "admin")
        pid = client.env["res.partner"].create({"name": "Persisted Partner"})
        accounts = client.env["account.account"].search_count([])
    finally:
        first.stop()
    second = OdooEmulator(db_path=path)
    second.start()
    try:
        client = odoorpc.ODOO("127.0.0.1", port=second.port)
        client.login("retail", "admin", "admin")
        assert client.env["res.partner"].search([("name", "=", "Persisted Partner")]) == [pid]
        assert client.env["account.account"].search_count([]) == accounts  # not seeded twice
    finally:
        second.stop()


def test_extra_users_can_log_in(tmp_path: Path) -> None:
    emu = OdooEmulator(users={"admin": "admin", "pos": "secret"})
    emu.start()
    try:
        client = odoorpc.ODOO("127.0.0.1", port=emu.port)
        client.login("retail", "pos", "secret")
        assert client.env.uid > 2
        assert client.env.user.login == "pos"
    finally:
        emu.stop()


def test_command_line_serves_odoo(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.odoo",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "cli.sqlite"),
            "--latency-ms",
            "1",
            "--error-rate",
            "0",
            "--faults",
            "transport,lost_response",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = odoorpc.ODOO("127.0.0.1", port=port)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        client.login("retail", "admin", "admin")
        assert client.version == "17.0"
        assert client.env["account.journal"].search([("code", "=", "MISC")]) == [3]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0
    assert (tmp_path / "cli.sqlite").exists()


def test_concurrent_clients_get_distinct_entries(emulator: OdooEmulator) -> None:
    errors: list[BaseException] = []
    created: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            client = odoorpc.ODOO("127.0.0.1", port=emulator.port)
            client.login("retail", "admin", "admin")
            for i in range(10):
                vals = {
                    "journal_id": 3,
                    "date": "2023-02-10",
                    "ref": f"CONC-{n}-{i}",
                    "line_ids": [
                        (0, 0, {"account_id": 42, "debit": 10, "credit": 0}),
                        (0, 0, {"account_id": 24, "debit": 0, "credit": 10}),
                    ],
                }
                mid = client.env["account.move"].create(vals)
                client.env["account.move"].action_post([mid])
                with lock:
                    created.append(mid)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    client = odoorpc.ODOO("127.0.0.1", port=emulator.port)
    client.login("retail", "admin", "admin")
    names = [r["name"] for r in client.env["account.move"].read(created, ["name"])]
    assert len(created) == 40
    assert len(set(names)) == 40
    assert sorted(names) == [f"MISC/2023/02/{i:04d}" for i in range(1, 41)]


def test_command_line_fault_flags() -> None:
    from simulators.odoo.__main__ import parse_args

    args = parse_args(
        [
            "--port",
            "0",
            "--error-rate",
            "0.1",
            "--fault-mix",
            "transport=1,lost_response=3",
            "--fault-methods",
            "create,action_post",
            "--users",
            "admin:admin,pos:pw",
            "--seed",
            "4",
        ]
    )
    assert args.fault_mix == {"transport": "1", "lost_response": "3"}
    assert args.fault_methods == ("create", "action_post")
    assert args.users == {"admin": "admin", "pos": "pw"}
    assert args.faults == ("transport", "http_500", "lost_response")
    assert args.seed == 4
