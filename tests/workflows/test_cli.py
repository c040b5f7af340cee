"""The `retailflow` CLI, run as a user runs it: a process, against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import odoorpc
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.pricing import StoreTarget
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from tests.activities.helpers import ScriptedClient, answering, worker_with
from tests.activities.test_stock_activities import BACKORDER_WIZARD
from tests.conftest import RETAILFLOW, rollout_settings, running_worker, settings_for
from tests.identities import ISSUER, user
from tests.workflows.helpers import eventually, sales_for
from tests.workflows.test_refund import (
    awaiting_approval,
    posted_sale,
    refund,
    refund_settings,
    request_refund,
)
from tests.workflows.test_store_ledger import DAY as LEDGER_DAY
from tests.workflows.test_store_ledger import close_ledger, goods_moved, own_sales
from workers.identity import trust_from
from workers.submit import (
    Mode,
    Submission,
    Submitted,
    submit_many,
    submit_sale,
    wait_until_settled,
)
from workflows.price_rollout import (
    PriceRollout,
    PriceRolloutInput,
    RolloutStatus,
    legacy_rollout_workflow_id,
    rollout_workflow_id,
)
from workflows.refund import (
    Refund,
    RefundInput,
    RefundResult,
    RefundStatus,
    legacy_refund_workflow_id,
    refund_workflow_id,
    report_gateway_refund_failed,
)
from workflows.sale_posting import SaleStatus, posting_workflow_id
from workflows.store_ledger import LedgerProgress, StoreLedger, ledger_workflow_id


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


async def test_sale_post_in_summary_mode_and_the_status_names_its_summary(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sales = sales_for(store_id, 3)
    file = tmp_path / "sales.jsonl"
    file.write_text("\n".join(json.dumps(s) for s in [*sales, sales[1]]))
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}

    async with running_worker(client, settings):
        posted = await asyncio.to_thread(
            run_cli, ["sale", "post", str(file), "--mode", "summary", "--wait"], env
        )
        status = await asyncio.to_thread(run_cli, ["sale", "status", store_id, "X0002"], env)

    assert posted.returncode == 0, posted.stderr
    assert "4 lines: 3 queued, 1 duplicate" in posted.stdout or "4 lines: 4 queued" in posted.stdout
    assert "settled: 3 posted" in posted.stdout
    shown = json.loads(status.stdout)
    assert shown["status"] == "Posted"
    assert shown["summary_ref"].startswith(f"SUM:{store_id}:2026-11-20:")
    assert shown["move_name"] and shown["picking_name"]


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


USERS = [
    user("ann", "Ann Cashier", "cashier", "store_manager"),
    user("lee", "Lee Park", "finance"),
    user("kim", "Kim Lo", "finance"),
]


def identity_env(tmp: Path, **env: str) -> dict[str, str]:
    """Who the CLI acts for comes from its identity source: the test issuer's key, these users."""
    return {**ISSUER.identity_env(tmp, USERS), **env}


def acting(env: dict[str, str], subject: str) -> dict[str, str]:
    return {**env, "RETAILFLOW_IDENTITY_SUBJECT": subject}


async def test_refund_request_list_approve_show(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    env = identity_env(
        tmp_path,
        TEMPORAL_ADDRESS=temporal_address,
        RETAILFLOW_TASK_QUEUE=settings.task_queue,
        RETAILFLOW_GATEWAY_API_BASE=gateway.url,
    )
    rid = f"CLI{uuid.uuid4().hex[:6]}"
    async with running_worker(client, settings):
        await posted_sale(client, settings, gateway, store_id)
        ask = ["refund", "request", "--store", store_id, "--txn", "T1", "--amount", "40.00"]
        requested = await asyncio.to_thread(run_cli, [*ask, "--id", rid], acting(env, "ann"))
        for _ in range(50):
            pending = await asyncio.to_thread(run_cli, ["refund", "list", "--pending"], env)
            if rid in pending.stdout:
                break
        own = await asyncio.to_thread(run_cli, ["refund", "approve", rid], acting(env, "ann"))
        old_flags = await asyncio.to_thread(
            run_cli, ["refund", "approve", rid, "--by", "lee", "--role", "finance"], env
        )
        nobody = await asyncio.to_thread(run_cli, ["refund", "approve", rid], env)
        # A token from elsewhere (here: `identity assert`, as for the Web UI's signal dialog).
        token = await asyncio.to_thread(
            run_cli,
            ["identity", "assert", "--refund", rid, "--action", "approve"],
            acting(env, "lee"),
        )
        token_file = tmp_path / "token"
        token_file.write_text(token.stdout)
        approved = await asyncio.to_thread(
            run_cli,
            ["refund", "approve", rid, "--assertion-file", str(token_file), "--comment", "ok"],
            {k: v for k, v in env.items() if k != "RETAILFLOW_IDENTITY_KEY_FILE"},
        )
        await client.get_workflow_handle(refund_workflow_id(rid)).result()
        shown = await asyncio.to_thread(run_cli, ["refund", "show", rid], env)
        late = await asyncio.to_thread(run_cli, ["refund", "reject", rid], acting(env, "kim"))
        bad = await asyncio.to_thread(
            run_cli, ["refund", "request", "--store", store_id, "--txn", "T1"], acting(env, "ann")
        )
        too_much = await asyncio.to_thread(
            run_cli, [*ask, "--amount", "5000.00", "--id", f"{rid}-big"], acting(env, "ann")
        )

    assert requested.returncode == 0, requested.stderr
    assert f"refund {rid} requested" in requested.stdout
    assert "checked: AwaitingApproval" in requested.stdout
    # More than was paid: rejected by its checks, said at once, exit code 1.
    assert too_much.returncode == 1, (too_much.stdout, too_much.stderr)
    assert f"refund {rid}-big rejected" in too_much.stderr
    assert rid in pending.stdout and "AwaitingApproval" in pending.stdout
    assert own.returncode == 2 and "four eyes: ann requested" in own.stderr
    assert old_flags.returncode == 2 and "--by is gone" in old_flags.stderr
    assert nobody.returncode == 2 and "RETAILFLOW_IDENTITY_SUBJECT" in nobody.stderr
    assert token.returncode == 0 and token.stdout.count(".") == 2
    assert 'approve_from_ui input: {"assertion": "' in token.stderr
    assert approved.returncode == 0, approved.stderr
    assert f"refund {rid} approved by Lee Park" in approved.stdout
    body = json.loads(shown.stdout)
    assert body["status"] == "Refunded" and body["decided_by"] == "Lee Park"
    assert (body["requested_by_sub"], body["decided_by_sub"]) == ("ann", "lee")
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


# -- refunds: legacy ids, and ops on a refund that needs attention ---------------------------


async def test_refund_commands_find_a_refund_requested_under_the_legacy_id(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = refund_settings(odoo_emulator, temporal_address, gateway)
    env = identity_env(
        tmp_path,
        TEMPORAL_ADDRESS=temporal_address,
        RETAILFLOW_TASK_QUEUE=settings.task_queue,
        RETAILFLOW_GATEWAY_API_BASE=gateway.url,
    )
    rid = f"OLD{uuid.uuid4().hex[:6]}"
    ask = ["refund", "request", "--store", store_id, "--txn", "T1", "--amount", "40.00"]
    async with running_worker(client, settings):
        await posted_sale(client, settings, gateway, store_id)
        # Requested by an older release, before ids were joined by `:`.
        raw = refund(store_id, refund_id=rid, amount="40.00")
        old = await client.start_workflow(
            Refund.run,
            RefundInput(
                request=raw, trust=trust_from(settings), request_assertion=ISSUER.request(raw)
            ),
            id=legacy_refund_workflow_id(rid),
            task_queue=settings.task_queue,
        )
        await eventually(lambda: old.query(Refund.show), awaiting_approval)
        shown = await asyncio.to_thread(run_cli, ["refund", "show", rid], env)
        again = await asyncio.to_thread(run_cli, [*ask, "--id", rid], acting(env, "kim"))
        approved = await asyncio.to_thread(run_cli, ["refund", "approve", rid], acting(env, "lee"))
        result = await old.result()
        missing = await asyncio.to_thread(run_cli, ["refund", "show", "NO:SUCH"], env)

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "AwaitingApproval"
    assert again.returncode == 0, again.stderr
    assert f"refund {rid} was already requested (refund-{rid}): nothing new" in again.stdout
    assert approved.returncode == 0, approved.stderr
    assert f"refund {rid} approved by Lee Park" in approved.stdout
    assert result.status is RefundStatus.REFUNDED
    # The duplicate request started nothing under the new id.
    try:
        await client.get_workflow_handle(refund_workflow_id(rid)).describe()
        raise AssertionError("a second refund workflow was started")
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND
    assert one_line_error(missing) == "retailflow: no refund NO:SUCH"


async def needs_attention(client: Client, workflow_id: str) -> RefundResult:
    handle = client.get_workflow_handle_for(Refund.run, workflow_id)
    return await eventually(
        lambda: handle.query(Refund.show), lambda r: r.status is RefundStatus.NEEDS_ATTENTION
    )


async def test_refund_retry_and_resolved_by_hand_for_a_refund_the_gateway_failed(
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
    async with running_worker(client, settings):
        pi = await posted_sale(client, settings, gateway, store_id)
        handles, ids = {}, {}
        for name, amount in (("retried", "10.00"), ("by_hand", "5.00")):
            request, handles[name], _ = await request_refund(
                client, settings, refund(store_id, amount=amount)
            )
            ids[name] = request.refund_id
            await handles[name].result()
        too_early = await asyncio.to_thread(
            run_cli, ["refund", "retry", ids["retried"], "--by", "kim"], env
        )
        for h in handles.values():
            (gateway_refund,) = (await h.result()).gateway_refunds
            for event in gateway.fail_refund(gateway_refund, "expired_or_canceled_card"):
                await report_gateway_refund_failed(client, settings.task_queue, event)
        for h in handles.values():
            await needs_attention(client, h.id)
        pending = await asyncio.to_thread(run_cli, ["refund", "list", "--pending"], env)
        no_comment = await asyncio.to_thread(
            run_cli, ["refund", "resolved", ids["by_hand"], "--by", "kim"], env
        )
        retried = await asyncio.to_thread(
            run_cli,
            ["refund", "retry", ids["retried"], "--by", "kim", "--comment", "new card"],
            env,
        )
        by_hand = await asyncio.to_thread(
            run_cli,
            ["refund", "resolved", ids["by_hand"], "--by", "kim", "--comment", "cash at the till"],
            env,
        )
        results = {
            name: await client.get_workflow_handle_for(Refund.run, h.id).result()
            for name, h in handles.items()
        }

    assert "is Refunded: only a refund that needs attention" in one_line_error(too_early)
    assert pending.returncode == 0, pending.stderr
    for refund_id in ids.values():
        (row,) = [line for line in pending.stdout.splitlines() if line.startswith(refund_id)]
        assert "NeedsAttention" in row and "the customer does not have this money" in row
    assert "the following arguments are required: --comment" in one_line_error(no_comment)
    assert retried.returncode == 0 and "retry sent" in retried.stdout, retried.stderr
    assert by_hand.returncode == 0 and "resolved by hand sent" in by_hand.stdout, by_hand.stderr
    assert results["retried"].status is RefundStatus.REFUNDED
    assert len(results["retried"].gateway_refunds) == 2
    assert results["by_hand"].status is RefundStatus.REFUNDED
    assert len(results["by_hand"].gateway_refunds) == 1
    audit = [(e.who, e.what, e.comment) for e in results["by_hand"].audit]
    assert ("kim", "resolved by hand", "cash at the till") in audit
    statuses = sorted(r["status"] for r in gateway.refunds(payment_intent=pi))
    assert statuses == ["failed", "failed", "succeeded"]


# -- price rollouts started by an older release --------------------------------------------


async def test_price_rollout_status_and_cancel_find_a_rollout_under_its_legacy_id(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, pos_url=pos.url)
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    rid = f"OLD{uuid.uuid4().hex[:6]}"
    rollout = {
        "rollout_id": rid,
        "changes": [{"sku": "EGGS-12", "price": "3.79"}],
        "target": StoreTarget.parse("S001").model_dump(mode="json"),
        "effective_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "confirm_within": 60,
        "requested_by": "ann",
    }
    async with running_worker(client, settings):
        handle = await client.start_workflow(
            PriceRollout.run,
            PriceRolloutInput(rollout=rollout),
            id=legacy_rollout_workflow_id(rid),
            task_queue=settings.task_queue,
        )
        await eventually(
            lambda: handle.query(PriceRollout.progress),
            lambda p: p.status is RolloutStatus.SCHEDULED,
            timeout=30,
        )
        status = await asyncio.to_thread(run_cli, ["price-rollout", "status", rid, "--once"], env)
        cancel = await asyncio.to_thread(
            run_cli, ["price-rollout", "cancel", rid, "--by", "sam", "--reason", "wrong"], env
        )
        report = await handle.result()
        unknown = await asyncio.to_thread(run_cli, ["price-rollout", "status", "NOPE:1"], env)

    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("Scheduled")
    assert cancel.returncode == 0, cancel.stderr
    assert f"cancel sent to price-rollout-{rid} by sam" in cancel.stdout
    assert report.status is RolloutStatus.COMPENSATED
    assert one_line_error(unknown) == "retailflow: no rollout NOPE:1"


def test_a_json_rollout_file_is_read_exactly_and_within_the_limits(tmp_path: Path) -> None:
    nowhere = {"TEMPORAL_ADDRESS": "127.0.0.1:1"}
    start = ["--stores", "all", "--effective-at", "now"]
    inexact = tmp_path / "inexact.json"
    # As a float this is 3.89: read exactly it has more than cents, and is refused.
    inexact.write_text('[{"sku": "EGGS-12", "price": 3.8900000000000001}]')
    deep = tmp_path / "deep.json"
    deep.write_text(
        '{"changes": [{"sku": "EGGS-12", "price": 3.89}], "x": ' + "[" * 20 + "]" * 20 + "}"
    )
    not_a_list = tmp_path / "one.json"
    not_a_list.write_text('"EGGS-12"')
    exact = tmp_path / "exact.json"
    exact.write_text('{"changes": [{"sku": "EGGS-12", "price": 3.89}]}')

    def rollout(file: Path) -> subprocess.CompletedProcess[str]:
        return run_cli(["price-rollout", "start", str(file), *start], nowhere)

    assert "changes[0].price: must have at most 2 decimal places" in one_line_error(
        rollout(inexact)
    )
    assert "nested more than 16 levels deep" in one_line_error(rollout(deep))
    assert "must hold a JSON list of changes" in one_line_error(rollout(not_a_list))
    # Valid: checked whole, then only Temporal is missing.
    assert "cannot reach Temporal" in one_line_error(rollout(exact))


# -- sales: the exception inbox, a rejected sale, a ledger's parked stock ----------------------


async def test_wait_until_settled_skips_sales_that_were_not_submitted(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    (sale,) = sales_for(store_id, 1)
    failed = Submitted(workflow_id="", submission=Submission.FAILED, store_id=store_id)
    async with running_worker(client, settings):
        accepted = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        results = await wait_until_settled(client, [failed, accepted], timedelta(seconds=60))
    assert list(results) == [accepted.workflow_id]
    assert results[accepted.workflow_id].status is SaleStatus.POSTED


async def test_a_corrected_sale_leaves_the_inbox_and_a_rejected_one_is_not_retried(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    fixed, still_bad = sales_for(store_id, 2)
    wrong = json.loads(json.dumps(fixed))
    wrong["payments"][0]["amount"] = "0.01"
    still_bad["payments"][0]["amount"] = "0.01"
    async with running_worker(client, settings):
        first = await submit_many(client, settings, [wrong, still_bad], Mode.PER_SALE, "test")
        await wait_until_settled(client, first, timedelta(seconds=60))
        corrected = await submit_sale(client, settings, fixed, Mode.PER_SALE, source="test")
        await wait_until_settled(client, [corrected], timedelta(seconds=60))
        inbox = await asyncio.to_thread(run_cli, ["sale", "exceptions", "--store", store_id], env)
        retry = await asyncio.to_thread(
            run_cli, ["sale", "retry", store_id, still_bad["txn_id"], "--by", "kim"], env
        )

    assert corrected.submission is Submission.ACCEPTED
    assert inbox.returncode == 0, inbox.stderr
    assert posting_workflow_id(store_id, still_bad["txn_id"]) in inbox.stdout
    assert posting_workflow_id(store_id, fixed["txn_id"]) not in inbox.stdout
    assert "1 sales in the exception inbox" in inbox.stdout
    err = one_line_error(retry)
    assert "was rejected" in err
    assert "post the corrected sale (`retailflow sale post`); it replaces the rejected one" in err


async def test_a_ledgers_parked_stock_is_listed_dismissed_and_retried_from_the_cli(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=2)
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    sales = own_sales(odoo, store_id, 4)
    day = LEDGER_DAY.isoformat()
    scripted = ScriptedClient(odoo_emulator)
    scripted.on("stock.picking", "button_validate", answering(BACKORDER_WIZARD), keep=True)
    ledger = client.get_workflow_handle_for(
        StoreLedger.run, ledger_workflow_id(store_id, LEDGER_DAY)
    )

    async def parked() -> LedgerProgress:
        return await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: bool(p.stock_problems), timeout=30
        )

    async def cleared() -> LedgerProgress:
        return await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: not p.stock_problems, timeout=30
        )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), env)

    async with worker_with(client, settings, scripted):
        first = await submit_many(client, settings, sales[:2], Mode.BATCHED, source="test")
        await wait_until_settled(client, first, timedelta(seconds=90))
        await parked()
        # Visibility (the inbox's source) catches up with the ledger's status.
        inbox = await eventually(
            lambda: asyncio.to_thread(cli, "sale", "exceptions", "--store", store_id),
            lambda r: "1 ledgers with parked stock" in r.stdout,
            timeout=30,
        )
        no_comment = await asyncio.to_thread(
            cli, "ledger", "dismiss-stock", store_id, day, "--by", "ops"
        )
        dismissed = await asyncio.to_thread(
            cli, "ledger", "dismiss-stock", store_id, day, "--by", "ops", "--comment", "by hand"
        )
        await cleared()
        nothing = await asyncio.to_thread(
            cli, "ledger", "retry-stock", store_id, day, "--by", "ops"
        )
        later = await submit_many(client, settings, sales[2:], Mode.BATCHED, source="test")
        await wait_until_settled(client, later, timedelta(seconds=90))
        await parked()
        scripted.clear()  # ops fixed Odoo
        retried = await asyncio.to_thread(
            cli, "ledger", "retry-stock", store_id, day, "--by", "ops"
        )
        await cleared()
        bad_day = await asyncio.to_thread(
            cli, "ledger", "retry-stock", store_id, "2026-13-01", "--by", "ops"
        )
        no_ledger = await asyncio.to_thread(
            cli, "ledger", "retry-stock", "NOSTORE", day, "--by", "ops"
        )
        await close_ledger(client, store_id)

    row = next(line for line in inbox.stdout.splitlines() if line.startswith(ledger.id))
    assert "NeedsAttention" in row and "stock of 2 sales (T0, T1) parked" in row
    assert "StockNotValidated" in row
    assert "the following arguments are required: --comment" in one_line_error(no_comment)
    assert dismissed.returncode == 0, dismissed.stderr
    assert (
        "dismiss-stock sent to" in dismissed.stdout
        and "1 parked batches, 2 sales" in dismissed.stdout
    )
    assert "has no parked stock: nothing to retry or dismiss" in one_line_error(nothing)
    assert retried.returncode == 0 and "retry-stock sent to" in retried.stdout, retried.stderr
    assert "'2026-13-01' is not a date" in one_line_error(bad_day)
    assert one_line_error(no_ledger) == f"retailflow: no ledger for store NOSTORE on {day}"
    # Dismissed goods are left to the person who moves them; retried goods left once.
    assert goods_moved(odoo, sales) == [0.0, 0.0, 2.0, 2.0]
