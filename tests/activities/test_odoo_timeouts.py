"""Odoo activities cannot outlive their timeouts: each RPC is bounded under the heartbeat
timeout, the client heartbeats before every RPC, and an attempt Temporal has given up on stops
at its next RPC instead of writing beside its retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.odoo.client import OdooClient, OdooSettings, OdooUnavailable
from simulators.odoo import OdooEmulator
from workflows.policies import ODOO_HEARTBEAT, ODOO_WRITE, odoo_batch_write, odoo_chunk_write


def test_every_odoo_policy_heartbeats_within_more_than_one_rpc() -> None:
    rpc = timedelta(seconds=OdooSettings().timeout_s)
    for policy in (ODOO_WRITE, odoo_batch_write(500), odoo_chunk_write(200)):
        assert policy["heartbeat_timeout"] == ODOO_HEARTBEAT > rpc
        assert policy["start_to_close_timeout"] > ODOO_HEARTBEAT


def test_the_client_heartbeats_before_each_rpc(odoo_emulator: OdooEmulator) -> None:
    client = OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}"))
    beats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    def two_reads() -> None:
        client.call("res.partner", "search", [], limit=1)
        client.call("account.journal", "search", [], limit=1)

    env.run(two_reads)
    assert beats == [("res.partner.search",), ("account.journal.search",)]


def test_an_abandoned_attempt_stops_before_its_next_rpc(odoo_emulator: OdooEmulator) -> None:
    client = OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}"))
    env = ActivityEnvironment()
    sent: list[str] = []

    def write_twice() -> None:
        client.call("res.partner", "create", {"name": "first"})
        sent.append("first")
        env.cancel()  # Temporal timed the attempt out: its retry is already running
        client.call("res.partner", "create", {"name": "second"})
        sent.append("second")

    # The SDK raises CancelledError into a sync activity's thread; should that not land before
    # the next RPC, the client's own check refuses to send it.
    with pytest.raises((CancelledError, OdooUnavailable)):
        env.run(write_twice)
    assert sent == ["first"]
