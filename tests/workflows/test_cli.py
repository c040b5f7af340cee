"""The `retailflow` CLI, run as a user runs it: a process, against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from tests.conftest import RETAILFLOW, rollout_settings, running_worker, settings_for
from tests.workflows.helpers import sales_for
from tests.workflows.test_refund import posted_sale, refund_settings
from workflows.price_rollout import rollout_workflow_id
from workflows.refund import refund_workflow_id
from workflows.sale_posting import posting_workflow_id


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RETAILFLOW), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sale_post_wait_and_status(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    good, bad = sales_for(store_id, 2)
    bad["payments"][0]["amount"] = "0.01"
    file = tmp_path / "sales.jsonl"
    file.write_text("\n".join([json.dumps(good), json.dumps(good), json.dumps(bad), "{oops", ""]))
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}

    async with running_worker(client, settings):
        posted = await asyncio.to_thread(run_cli, ["sale", "post", str(file), "--wait"], env)
        status = await asyncio.to_thread(run_cli, ["sale", "status", store_id, "X0000"], env)
        missing = await asyncio.to_thread(run_cli, ["sale", "status", store_id, "NOPE"], env)
        inbox = await asyncio.to_thread(run_cli, ["sale", "exceptions", "--store", store_id], env)

    # Done, but some sales ended in an exception state: exit code 1.
    assert posted.returncode == 1, posted.stderr
    out = posted.stdout
    assert f"{store_id}/X0000" in out and "accepted" in out and "duplicate" in out
    assert "payments total 0.01 does not equal" in out
    assert "4 lines: 1 accepted, 1 duplicate, 2 rejected" in out
    assert "settled: 1 posted, 2 in exception state" in out
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "Posted"
    assert missing.returncode == 2 and f"no sale {store_id}/NOPE" in missing.stderr
    assert inbox.returncode == 0
    assert posting_workflow_id(store_id, "X0001") in inbox.stdout and "Rejected" in inbox.stdout


def test_unreachable_temporal_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "s.jsonl"
    file.write_text("{}\n")
    result = run_cli(["sale", "post", str(file)], {"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.returncode == 2
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr


def test_missing_file_is_a_clear_error() -> None:
    result = run_cli(["sale", "post", "/nonexistent.jsonl"], {})
    assert result.returncode == 2
    assert result.stderr.strip() == "retailflow: /nonexistent.jsonl: no such file"


async def test_price_rollout_start_status_cancel(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
    tmp_path: Path,
) -> None:
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    env = {
        "TEMPORAL_ADDRESS": temporal_address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_CONFIRMATION_URL": settings.confirmation_url or "",
    }
    good = tmp_path / "prices.csv"
    good.write_text("sku,price\nEGGS-12,3.89\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,price\nEGGS-12,0\nEGGS-12,1.00\n")
    rid = f"CLI{uuid.uuid4().hex[:6]}"

    async with running_worker(client, settings):
        args = [
            "price-rollout",
            "start",
            str(good),
            "--stores",
            "S001,S002",
            "--effective-at",
            "now",
        ]
        started = await asyncio.to_thread(run_cli, [*args, "--id", rid], env)
        again = await asyncio.to_thread(run_cli, [*args, "--id", rid], env)
        await client.get_workflow_handle(rollout_workflow_id(rid)).result()
        status = await asyncio.to_thread(run_cli, ["price-rollout", "status", rid, "--once"], env)
        cancel = await asyncio.to_thread(
            run_cli, ["price-rollout", "cancel", rid, "--by", "sam"], env
        )
        refused = await asyncio.to_thread(
            run_cli,
            ["price-rollout", "start", str(bad), "--stores", "all", "--effective-at", "now"],
            env,
        )
        no_offset = await asyncio.to_thread(
            run_cli,
            [
                "price-rollout",
                "start",
                str(good),
                "--stores",
                "all",
                "--effective-at",
                "2026-12-01T06:00",
            ],
            env,
        )
        empty = await asyncio.to_thread(
            run_cli,
            ["price-rollout", "start", str(good), "--stores", " , ", "--effective-at", "now"],
            env,
        )
        unknown_sku = tmp_path / "unknown.csv"
        unknown_sku.write_text("sku,price\nNO-SUCH-SKU,1.00\n")
        unknown = await asyncio.to_thread(
            run_cli,
            [
                "price-rollout",
                "start",
                str(unknown_sku),
                "--stores",
                "all",
                "--effective-at",
                "now",
            ],
            env,
        )

    assert started.returncode == 0, started.stderr
    assert f"rollout {rid} started" in started.stdout
    assert again.returncode == 2 and "already exists" in again.stderr
    assert status.returncode == 0, status.stderr
    assert "Completed" in status.stdout and "2 of 2 stores confirmed" in status.stdout
    assert cancel.returncode == 2 and "already closed" in cancel.stderr
    assert refused.returncode == 2
    assert "rollout refused, nothing was changed" in refused.stderr
    assert "changes[0].price: input should be greater than 0" in refused.stderr
    assert no_offset.returncode == 2 and "needs an offset" in no_offset.stderr
    assert empty.returncode == 2 and "the store list is empty" in empty.stderr
    # Rejected by its own checks (an SKU Odoo does not know): said at once, exit code 1.
    assert unknown.returncode == 1, (unknown.stdout, unknown.stderr)
    assert "rejected, nothing was changed" in unknown.stderr and "NO-SUCH-SKU" in unknown.stderr
    assert pos.prices("S001")["EGGS-12"] == Decimal("3.89")


async def test_refund_request_list_approve_show(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    env = {
        "TEMPORAL_ADDRESS": temporal_address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_GATEWAY_API_BASE": gateway.url,
    }
    rid = f"CLI{uuid.uuid4().hex[:6]}"
    async with running_worker(client, settings):
        await posted_sale(client, settings, gateway, store_id)
        ask = ["refund", "request", "--store", store_id, "--txn", "T1", "--amount", "40.00"]
        requested = await asyncio.to_thread(
            run_cli, [*ask, "--requested-by", "ann", "--id", rid], env
        )
        for _ in range(50):
            pending = await asyncio.to_thread(run_cli, ["refund", "list", "--pending"], env)
            if rid in pending.stdout:
                break
        own = await asyncio.to_thread(
            run_cli, ["refund", "approve", rid, "--by", "ann", "--role", "store_manager"], env
        )
        approved = await asyncio.to_thread(
            run_cli, ["refund", "approve", rid, "--by", "lee", "--role", "finance"], env
        )
        await client.get_workflow_handle(refund_workflow_id(rid)).result()
        shown = await asyncio.to_thread(run_cli, ["refund", "show", rid], env)
        late = await asyncio.to_thread(
            run_cli, ["refund", "reject", rid, "--by", "kim", "--role", "finance"], env
        )
        bad = await asyncio.to_thread(
            run_cli, ["refund", "request", "--store", store_id, "--txn", "T1"], env
        )
        too_much = await asyncio.to_thread(
            run_cli, [*ask, "--amount", "5000.00", "--id", f"{rid}-big"], env
        )

    assert requested.returncode == 0, requested.stderr
    assert f"refund {rid} requested" in requested.stdout
    assert "checked: AwaitingApproval" in requested.stdout
    # More than was paid: rejected by its checks, said at once, exit code 1.
    assert too_much.returncode == 1, (too_much.stdout, too_much.stderr)
    assert f"refund {rid}-big rejected" in too_much.stderr
    assert rid in pending.stdout and "AwaitingApproval" in pending.stdout
    assert own.returncode == 2 and "four eyes: ann requested" in own.stderr
    assert approved.returncode == 0 and f"refund {rid} approved by lee" in approved.stdout
    body = json.loads(shown.stdout)
    assert body["status"] == "Refunded" and body["decided_by"] == "lee"
    assert late.returncode == 2 and "takes no decision" in late.stderr
    assert bad.returncode == 2 and "give either lines (sku, qty) or an amount" in bad.stderr


# -- hostile files and arguments: one clear line, a known exit code, never a traceback ------


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


async def test_a_file_line_with_1e308_is_rejected_and_every_other_line_still_goes(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    first, second, third = sales_for(store_id, 3)
    second["lines"][0]["unit_price"] = "__HUGE__"
    file = tmp_path / "sales.jsonl"
    lines = [
        json.dumps(first),
        json.dumps(second).replace('"__HUGE__"', "1e308"),
        json.dumps(third),
    ]
    file.write_text("\n".join(lines) + "\n")
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    async with running_worker(client, settings):
        posted = await asyncio.to_thread(run_cli, ["sale", "post", str(file), "--wait"], env)
    assert posted.returncode == 1, posted.stderr
    assert "Traceback" not in posted.stderr
    assert "3 lines: 2 accepted, 1 rejected" in posted.stdout
    assert "lines[0].unit_price: input should be less than 1000000000" in posted.stdout
    assert "settled: 2 posted, 1 in exception state" in posted.stdout


async def test_a_file_with_a_line_beyond_the_limits_is_refused_whole(
    client: Client, temporal_address: str, store_id: str, tmp_path: Path
) -> None:
    good, deep = sales_for(store_id, 2)
    file = tmp_path / "sales.jsonl"
    nested = json.dumps(dict(deep, lines="__L__")).replace('"__L__"', "[" * 500 + "]" * 500)
    file.write_text(json.dumps(good) + "\n" + nested + "\n")
    result = await asyncio.to_thread(
        run_cli, ["sale", "post", str(file)], {"TEMPORAL_ADDRESS": temporal_address}
    )
    err = one_line_error(result)
    assert "1 lines refused, nothing submitted: line 2: sale: nested more than 16" in err
    status = await asyncio.to_thread(
        run_cli, ["sale", "status", store_id, "T" * 2000], {"TEMPORAL_ADDRESS": temporal_address}
    )
    assert f"no sale {store_id}/TTT" in one_line_error(status)
    try:
        await client.get_workflow_handle(posting_workflow_id(store_id, good["txn_id"])).describe()
        raise AssertionError("line 1 was submitted")
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND


def test_bad_input_and_settings_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"{}\n\x89PNG\r\n\x1a\n\x00\xff\xfe")
    huge_csv = tmp_path / "prices.csv"
    huge_csv.write_text("sku,price\nEGGS-12,1e308\n")
    good_csv = tmp_path / "ok.csv"
    good_csv.write_text("sku,price\nEGGS-12,3.89\n")
    refund = tmp_path / "refund.json"
    refund.write_text('{"refund_id": "R1", "store_id": "S1", "txn_id": "T1", "amount": 1e308}')
    nowhere = {"TEMPORAL_ADDRESS": "127.0.0.1:1"}
    start = ["price-rollout", "start", str(good_csv), "--stores", "all"]
    cases = {
        "line 2 is not UTF-8 text": ["sale", "post", str(binary)],
        "RETAILFLOW_POS_SECRETS: not valid JSON": ["sale", "exceptions"],
        "argument --by: must not be empty": ["sale", "retry", "S1", "T1", "--by", " "],
        "changes[0].price: must be less than 1000000000": [
            "price-rollout",
            "start",
            str(huge_csv),
            "--stores",
            "all",
            "--effective-at",
            "now",
        ],
        "--confirm-within: '99999999999999d' is not a duration": [
            *start,
            "--effective-at",
            "now",
            "--confirm-within",
            "99999999999999d",
        ],
        "--confirm-within: '30d' is longer than 7 days": [
            *start,
            "--effective-at",
            "now",
            "--confirm-within",
            "30d",
        ],
        "--effective-at: '99999999999d' is not a duration": [
            *start,
            "--effective-at",
            "+99999999999d",
        ],
        "is more than 366 days ahead": [*start, "--effective-at", "9999-12-31T00:00:00+00:00"],
        "amount: must be less than 1000000000": ["refund", "request", str(refund)],
        "argument --timeout": ["sale", "post", str(binary), "--timeout", "1e400"],
        "cancel: argument --by: must not be empty": ["price-rollout", "cancel", "R", "--by", ""],
    }
    for expected, args in cases.items():
        env = dict(nowhere)
        if "RETAILFLOW_POS_SECRETS" in expected:
            env["RETAILFLOW_POS_SECRETS"] = "{not json"
        assert expected in one_line_error(run_cli(args, env)), args


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    file = tmp_path / "s.jsonl"
    file.write_text("{}\n")
    env = {
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "TEMPORAL_TLS_CERT": str(tmp_path / "missing.pem"),
        "TEMPORAL_TLS_KEY": str(tmp_path / "missing.key"),
    }
    plain = run_cli(["sale", "post", str(file)], env)
    assert "unexpected error: FileNotFoundError" in one_line_error(plain, code=3)
    assert "--debug" in plain.stderr
    debug = run_cli(["--debug", "sale", "post", str(file)], env)
    assert debug.returncode == 3 and "Traceback" in debug.stderr
