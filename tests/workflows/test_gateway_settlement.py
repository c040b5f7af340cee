"""GatewaySettlement against the dev server, the Odoo emulator and the Stripe-compatible
gateway: every payout of a window booked once, a pending one left for the next run, a failed
one reversed once, a refused one reported without failing the run; and its CLI."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import odoorpc
from temporalio.client import Client

from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from workers.cli import build_parser
from workers.cli_settlement import render, start_settlement
from workflows.gateway_settlement import GatewaySettlement, settlement_workflow_id
from workflows.search_attributes import RETAIL_STATUS

DAY = 86400


async def test_payouts_booked_once_pending_left_failed_reversed_once(
    client: Client,
    temporal_address: str,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, gateway_api_base=gateway.url)
    today = datetime.now(UTC).date()
    # Today's payout is created when the day closes, at midnight: tomorrow's date.
    tomorrow = today + timedelta(days=1)
    # Days of this test's own, long past (payout ids are per day; Odoo is shared by tests).
    first = date(2002, 1, 1) + timedelta(days=uuid.uuid4().int % 6000)
    second = first + timedelta(days=3)

    def at(day: date, n: int) -> int:
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) + 60 * n

    for n in range(3):
        gateway.create_payment_intent(f"pi_a{n}_{first}", 2000 + n, created=at(first, n))
        gateway.create_payment_intent(f"pi_b{n}_{second}", 3000 + n, created=at(second, n))
    gateway.create_payment_intent(f"pi_eur_{first}", 999, currency="eur", created=at(first, 9))
    gateway.create_payment_intent(f"pi_now_{uuid.uuid4().hex[:6]}", 500)  # today: pending
    failing = f"po_sim{second:%Y%m%d}usd"

    async with running_worker(client, settings):
        handle = await start_settlement(client, settings.task_queue, first, tomorrow)
        assert handle.id == settlement_workflow_id(first, tomorrow)
        result = await handle.result()
        outcomes = {p.payout_id: p.outcome for p in result.payouts}
        assert outcomes == {
            f"po_sim{first:%Y%m%d}usd": "booked",
            f"po_sim{first:%Y%m%d}eur": "refused",
            failing: "booked",
            f"po_sim{today:%Y%m%d}usd": "pending",
        }
        assert result.status == "NeedsAttention"  # the EUR payout; the others still booked
        refused = next(p for p in result.payouts if p.outcome == "refused")
        assert refused.reason and refused.reason.startswith("CurrencyNotBooked")
        line = next(p for p in result.payouts if p.payout_id == failing)
        assert (line.transactions, line.net, line.amount) == (3, line.amount, line.amount)
        assert line.move_name and line.move_name.startswith("BNK1/")
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(RETAIL_STATUS) == "NeedsAttention"

        gateway.fail_payout(failing, "account_closed")
        for expected in ("reversed", "already reversed"):
            again = await (
                await start_settlement(client, settings.task_queue, first, tomorrow)
            ).result()
            by_id = {p.payout_id: p for p in again.payouts}
            assert by_id[f"po_sim{first:%Y%m%d}usd"].outcome == "already booked"
            assert by_id[failing].outcome == expected and by_id[failing].reversed
            assert by_id[failing].move_id == line.move_id
        progress = await client.get_workflow_handle(handle.id).query(GatewaySettlement.progress)
        assert progress is not None and progress.payouts == again.payouts

    moves = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=", f"PAYOUT:{failing}")]],
        {"fields": ["state"]},
    )
    assert [m["state"] for m in moves] == ["posted"]  # reversed, never deleted
    reversals = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("reversed_entry_id", "=", line.move_id)]],
        {"fields": ["state"]},
    )
    assert [r["state"] for r in reversals] == ["posted"]
    table = render(again)
    assert failing in table and "already reversed" in table and "CurrencyNotBooked" in table


def test_the_cli_parses_its_window() -> None:
    args = build_parser().parse_args(
        ["settlement", "payouts", "--from", "2026-11-20", "--to", "2026-11-26", "--wait"]
    )
    assert (args.date_from, args.date_to, args.wait) == (
        date(2026, 11, 20),
        date(2026, 11, 26),
        True,
    )
