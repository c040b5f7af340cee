"""The Temporal Schedules that drive settlement: applied idempotently, and a missed night run
once however often it is caught up."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus

from domain.schedule import RegionSchedule, SettlementSchedule
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import sales_for
from tests.workflows.test_cli import run_cli
from workers import schedules
from workers.submit import Mode, submit_many
from workflows.settlement import DailySettlement, SettlementResult, close_workflow_id
from workflows.store_ledger import ledger_workflow_id

DAY = date(2026, 11, 20)


@pytest_asyncio.fixture
async def region(client: Client) -> AsyncIterator[str]:
    """A region of its own; its schedules are deleted afterwards."""
    name = f"r{uuid.uuid4().hex[:6]}"
    yield name
    for schedule_id in await schedules.managed_ids(client):
        await client.get_schedule_handle(schedule_id).delete()


def config(region: str, stores: list[str], close_at: str = "02:00") -> SettlementSchedule:
    return SettlementSchedule(
        region=[
            RegionSchedule(name=region, time_zone="Europe/Berlin", close_at=close_at, stores=stores)
        ]
    )


async def test_apply_is_idempotent_and_keeps_what_ops_set(client: Client, region: str) -> None:
    first = await schedules.apply(client, config(region, ["S001"]), "tq")
    again = await schedules.apply(client, config(region, ["S001"]), "tq")
    sid = f"settlement-daily-{region}"
    assert {(a.schedule_id, a.change) for a in first} == {
        (sid, "created"),
        ("gateway-settlement-daily", "created"),
        # The audit log's collector, whatever the file says.
        ("audit-trail", "created"),
        # Odoo's catalog to the stores, every 5 minutes.
        ("catalog-sync", "created"),
        # And nightly with --full: what Odoo deleted is withdrawn.
        ("catalog-sync-full", "created"),
        # The stores' daily inventory audits.
        ("inventory-audit", "created"),
    }
    assert {a.change for a in again} == {"unchanged"}
    assert await schedules.managed_ids(client) == [
        "audit-trail",
        "catalog-sync",
        "catalog-sync-full",
        "gateway-settlement-daily",
        "inventory-audit",
        sid,
    ]
    inventory = await schedules.describe(client, "inventory-audit")
    assert inventory.next_runs and all(
        (t.hour, t.minute) == schedules.INVENTORY_AUDIT_AT for t in inventory.next_runs
    )
    audit = await schedules.describe(client, "audit-trail")
    gaps = {b - a for a, b in zip(audit.next_runs, audit.next_runs[1:], strict=False)}
    assert gaps == {timedelta(minutes=15)}
    catalog = await schedules.describe(client, "catalog-sync")
    gaps = {b - a for a, b in zip(catalog.next_runs, catalog.next_runs[1:], strict=False)}
    assert gaps == {timedelta(minutes=5)}
    full = await schedules.describe(client, "catalog-sync-full")
    assert full.next_runs and all(
        (t.hour, t.minute) == schedules.CATALOG_FULL_AT for t in full.next_runs
    )

    # Fires at 02:00 Berlin time: 01:00 UTC in winter.
    view = await schedules.describe(client, sid)
    assert view.next_runs and all(t.hour == 1 and t.minute == 0 for t in view.next_runs)

    # A paused schedule stays paused when the file changes; the change is applied.
    await schedules.pause(client, sid, "month-end freeze")
    changed = await schedules.apply(client, config(region, ["S001"], close_at="03:30"), "tq")
    assert (sid, "updated") in {(a.schedule_id, a.change) for a in changed}
    view = await schedules.describe(client, sid)
    assert view.paused and view.note == "month-end freeze"
    assert all((t.hour, t.minute) == (2, 30) for t in view.next_runs)

    # A region gone from the file loses its schedule.
    other = SettlementSchedule(region=[RegionSchedule(name=f"{region}x")])
    gone = await schedules.apply(client, other, "tq")
    assert (sid, "deleted") in {(a.schedule_id, a.change) for a in gone}
    assert sid not in await schedules.managed_ids(client)


async def _settlements(client: Client, schedule_id: str) -> list[SettlementResult]:
    query = f'WorkflowType = "DailySettlement" AND TemporalScheduledById = "{schedule_id}"'
    out = []
    async for wf in client.list_workflows(query):
        if wf.status == WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle_for(DailySettlement.run, wf.id, run_id=wf.run_id)
            out.append(await handle.result())
    return out


async def test_a_missed_night_backfilled_twice_closes_the_day_once(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    region: str,
) -> None:
    settings = settings_for(
        odoo_emulator, temporal_address, batch_max_age_s=3600.0, ledger_idle_close_s=3600.0
    )
    sid = f"settlement-daily-{region}"
    plan = config(region, [store_id])
    async with running_worker(client, settings):
        await submit_many(client, settings, sales_for(store_id, 5), Mode.BATCHED, source="test")
        await schedules.apply(client, plan, settings.task_queue)
        # Nobody ran the night that closes DAY (the worker was down, the server too): ops
        # catch it up, and catch it up again by mistake, while the first catch-up still runs.
        await schedules.backfill(client, plan, DAY, DAY, region)
        await schedules.backfill(client, plan, DAY, DAY, region)
        done: list[SettlementResult] = []
        for _ in range(120):
            done = await _settlements(client, sid)
            if len(done) == 2:
                break
            await asyncio.sleep(0.5)
        closes = [
            wf
            async for wf in client.list_workflows(
                f'WorkflowId = "{close_workflow_id(store_id, DAY)}"'
            )
        ]
        recons = [
            wf async for wf in client.list_workflows(f'WorkflowId = "recon:{store_id}:{DAY}"')
        ]
        ledger = await client.get_workflow_handle(ledger_workflow_id(store_id, DAY)).describe()
        for wf in recons:  # it may wait for ops: this test is about the schedule
            if wf.status == WorkflowExecutionStatus.RUNNING:
                await client.get_workflow_handle(wf.id).terminate("test over")

    assert len(done) == 2, "both catch-up runs ended"
    # Each run settled the day the schedule's time closes, DAY, from the time it was scheduled
    # for (not from when it ran): the store's day was closed and reconciled once.
    assert {r.business_day for r in done} == {DAY}
    assert len(closes) == 1 and len(recons) == 1
    assert sorted(s.reconciliation_started for r in done for s in r.stores) == [False, True]
    assert {s.close for r in done for s in r.stores} == {"Closed"}
    assert ledger.status == WorkflowExecutionStatus.COMPLETED


async def test_schedules_from_the_cli_and_its_refusals(
    client: Client, temporal_address: str, region: str, tmp_path: Path
) -> None:
    plan = tmp_path / "settlement.toml"
    plan.write_text(
        f'[tolerance]\nmax_per_tender = "0.10"\n\n[[region]]\nname = "{region}"\n'
        'time_zone = "America/New_York"\nclose_at = "01:30"\nstores = ["S001"]\n'
    )
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_SETTLEMENT_SCHEDULE": str(plan)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), env)

    applied = await asyncio.to_thread(cli, "schedules", "apply")
    again = await asyncio.to_thread(cli, "schedules", "apply")
    listed = await asyncio.to_thread(cli, "schedules", "list")
    paused = await asyncio.to_thread(cli, "schedules", "pause", "--all", "--note", "audit")
    unknown = await asyncio.to_thread(cli, "schedules", "trigger", "settlement-daily-nowhere")
    backwards = await asyncio.to_thread(
        cli, "schedules", "backfill", "--from", "2026-11-22", "--to", "2026-11-20"
    )
    no_region = await asyncio.to_thread(cli, "settlement", "run", "atlantis", "2026-11-20")
    plan.write_text('[[region]]\nname = "x"\ntime_zone = "Mars/Olympus"\n')
    bad_zone = await asyncio.to_thread(cli, "schedules", "apply")
    plan.write_text("[[region]\nname =")
    malformed = await asyncio.to_thread(cli, "schedules", "apply")

    sid = f"settlement-daily-{region}"
    assert applied.returncode == 0, applied.stderr
    assert f"{sid}: created" in applied.stdout
    assert again.stdout.splitlines() == [
        f"{sid}: unchanged",
        "gateway-settlement-daily: unchanged",
        "audit-trail: unchanged",
        "catalog-sync: unchanged",
        "catalog-sync-full: unchanged",
        "inventory-audit: unchanged",
    ]
    # 01:30 in New York is 06:30 UTC in winter.
    assert f"{sid}  active" in listed.stdout and "T06:30" in listed.stdout
    assert paused.returncode == 0 and (await schedules.describe(client, sid)).paused
    for refused, says in (
        (unknown, "no schedule 'settlement-daily-nowhere'"),
        (backwards, "--to 2026-11-20 is before --from 2026-11-22"),
        (no_region, f"no region 'atlantis' in the schedule file (it has: {region})"),
        (bad_zone, "unknown time zone 'Mars/Olympus'"),
        (malformed, "settlement schedule"),
    ):
        assert refused.returncode == 2, refused.stderr
        assert says in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
