"""The audit trail from real histories: a sale and a refund decided by a second person, collected
twice (each event recorded once), exported, verified, tampered with; the table refuses UPDATE."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.audit_store import AuditStore
from activities.audit_trail import EPOCH
from domain.audit_log import digest
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker
from tests.workflows.test_cli import run_cli
from tests.workflows.test_refund import approval, awaiting_decision, posted_sale, refund_settings
from workflows.audit_trail import AuditTrail, AuditTrailInput, AuditTrailResult
from workflows.refund import Refund, RefundStatus


async def collect(client: Client, task_queue: str, **kw: object) -> AuditTrailResult:
    return await client.execute_workflow(
        AuditTrail.run,
        AuditTrailInput(scope=f'TaskQueue = "{task_queue}"', **kw),  # type: ignore[arg-type]
        id=f"audit-trail-test-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )


async def test_a_sale_and_a_refund_decision_are_recorded_once_and_verify(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    db = tmp_path / "audit.db"
    settings = refund_settings(odoo_emulator, temporal_address, gateway).model_copy(
        update={"audit_db": str(db)}
    )
    scope = f'TaskQueue = "{settings.task_queue}"'
    env = {
        "TEMPORAL_ADDRESS": temporal_address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_AUDIT_DB": str(db),
        "RETAILFLOW_MASKING_KEY": "a-masking-key-for-this-test",
    }
    async with running_worker(client, settings):
        request, handle = await awaiting_decision(client, settings, gateway, store_id)
        decision = approval(
            "lee", request.refund_id, role="store_manager", comment="receipt checked by Jane"
        )
        await handle.execute_update(Refund.approve, decision)
        assert (await handle.result()).status is RefundStatus.REFUNDED

        first = await collect(client, settings.task_queue)
        again = await collect(client, settings.task_queue)
        # Even from the beginning of time, with the cursor ignored: nothing twice.
        rewound = await collect(client, settings.task_queue, closed_since=EPOCH)
        by_cli = await asyncio.to_thread(run_cli, ["audit", "collect", "--scope", scope], env)

    assert first.events > 0 and first.workflows >= 3
    assert again.events == 0 and rewound.events == 0
    assert by_cli.returncode == 0, by_cli.stderr
    assert "recorded 0 audit events" in by_cli.stdout

    store = AuditStore(db)
    try:
        now = datetime.now(UTC)
        records = list(store.export(now - timedelta(days=2), now + timedelta(days=1)))
    finally:
        store.close()
    keys = [r["event_key"] for r in records]
    assert len(keys) == len(set(keys)) == first.events
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    seen = {
        (r["workflow_type"], r["kind"], r["action"], r["target"], r["outcome"]) for r in records
    }
    assert {
        ("SalePosting", "start", "SalePosting", "temporal", "started"),
        ("SalePosting", "write", "post_sale", "odoo", "completed"),
        ("SalePosting", "close", "SalePosting", "temporal", "completed"),
        ("Refund", "decision", "approve", "temporal", "accepted"),
        ("Refund", "decision", "approve", "temporal", "completed"),
        ("Refund", "write", "refund_payment", "gateway", "completed"),
        ("Refund", "write", "post_refund", "odoo", "completed"),
        ("Refund", "close", "Refund", "temporal", "completed"),
    } <= seen
    (approved,) = [r for r in records if r["action"] == "approve" and r["outcome"] == "accepted"]
    assert approved["actor"] == "lee/store_manager"
    assert approved["workflow_id"] == handle.id
    assert approved["details"]["comment"] == digest("receipt checked by Jane")
    (paid,) = [r for r in records if r["action"] == "refund_payment"]
    assert paid["actor"] == "system"
    text = json.dumps(records)
    assert "receipt checked" not in text and "Jane" not in text
    assert request.refund_id in text

    # Export and verify through the CLI; then tamper with the file.
    day = datetime.now(UTC).date()
    out = tmp_path / "audit.jsonl"
    span = ["--from", str(day - timedelta(days=1)), "--to", str(day + timedelta(days=1))]
    exported = await asyncio.to_thread(run_cli, ["audit", "export", *span, "--out", str(out)], env)
    assert exported.returncode == 0, exported.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == len(records) and json.loads(lines[0])["prev_hash"] == "0" * 64
    ok = await asyncio.to_thread(run_cli, ["audit", "verify", str(out)], env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"ok: {len(lines)} records") and records[-1]["hash"] in ok.stdout

    edited = json.loads(lines[2])
    edited["outcome"] = "failed"
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([*lines[:2], json.dumps(edited), *lines[3:]]) + "\n")
    caught = await asyncio.to_thread(run_cli, ["audit", "verify", str(tampered)], env)
    assert caught.returncode == 1
    assert "line 3" in caught.stderr and "edited" in caught.stderr

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join([*lines[:4], *lines[5:]]) + "\n")
    caught = await asyncio.to_thread(run_cli, ["audit", "verify", str(dropped)], env)
    assert caught.returncode == 1 and "line 5" in caught.stderr

    masked = tmp_path / "masked.jsonl"
    done = await asyncio.to_thread(
        run_cli, ["audit", "export", *span, "--mask", "--out", str(masked)], env
    )
    assert done.returncode == 0, done.stderr
    assert "lee" not in masked.read_text() and "cashier-ann" not in masked.read_text()
    ok = await asyncio.to_thread(run_cli, ["audit", "verify", str(masked)], env)
    assert ok.returncode == 0 and "masked copy" in ok.stdout

    # The table is append-only, whoever opens the file.
    with sqlite3.connect(db) as raw_db:
        for statement in (
            "UPDATE audit_record SET outcome = 'failed' WHERE seq = 1",
            "DELETE FROM audit_record WHERE seq = 1",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw_db.execute(statement)


async def test_a_full_batch_continues_from_its_cursor_without_repeats(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    """Batches of one workflow, two batches a run: the collector continues as new with its
    cursor and still records each event once."""
    settings = refund_settings(odoo_emulator, temporal_address, gateway).model_copy(
        update={"audit_db": str(tmp_path / "audit.db")}
    )
    async with running_worker(client, settings):
        for _ in range(3):
            await posted_sale(client, settings, gateway, f"{store_id}{_}")
        result = await collect(client, settings.task_queue, batch_size=1, max_batches=2)
        again = await collect(client, settings.task_queue, batch_size=1, max_batches=2)
    assert result.workflows >= 3 and result.events > 0
    assert again.events == 0
    store = AuditStore(tmp_path / "audit.db")
    try:
        assert store.head()[0] == result.events
    finally:
        store.close()


def test_export_and_verify_refuse_clearly(tmp_path: Path) -> None:
    env = {"RETAILFLOW_AUDIT_DB": str(tmp_path / "none.db")}
    missing = run_cli(["audit", "export", "--from", "2026-11-20", "--to", "2026-11-20"], env)
    assert missing.returncode == 2 and "no audit log at" in missing.stderr
    backwards = run_cli(["audit", "export", "--from", "2026-11-21", "--to", "2026-11-20"], env)
    assert backwards.returncode == 2 and "before --from" in backwards.stderr
    bad_day = run_cli(["audit", "export", "--from", "11/20", "--to", "2026-11-20"], env)
    assert bad_day.returncode == 2 and "is not a day" in bad_day.stderr
    assert not (tmp_path / "none.db").exists()
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"\xff\xfe")
    unreadable = run_cli(["audit", "verify", str(junk)], env)
    assert unreadable.returncode == 2 and "not UTF-8" in unreadable.stderr
    nothing = run_cli(["audit", "verify", str(tmp_path / "nope.jsonl")], env)
    assert nothing.returncode == 2 and "no such file" in nothing.stderr
