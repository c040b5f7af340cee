"""Customers through the real worker, dev server and Odoo emulator: sales that name a customer
(per sale and batched, concurrently, with lost Odoo responses) make one partner per POS
customer id and earn points once; an older consent arriving later does not win; a refund takes
points back; erasure anonymises Odoo and leaves no personal data in clear in any history."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import odoorpc
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from activities.customers import sale_points
from activities.odoo.client import OdooClient
from activities.odoo.customers import binder_name
from domain.customer import ERASED_NAME, load_loyalty_policy, read_block
from domain.sale import parse_sale
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from tests.activities.helpers import ScriptedClient, raising, worker_with
from tests.conftest import running_worker, serving, settings_for
from tests.identities import ISSUER
from tests.workflows.test_cli import run_cli
from tests.workflows.test_encryption import decoded
from workers.auth import token_sha256
from workers.cli_customers import customer_status
from workers.customers import erase_customer
from workers.refunds import request_refund
from workers.settings import Settings
from workers.submit import Mode, submit_sale, wait_until_settled
from workflows.customer_sync import CustomerStatus, customer_workflow_id
from workflows.refund import RefundStatus
from workflows.sale_posting import SaleStatus, sale_workflow_id

SETTLE = timedelta(seconds=60)
NAME, EMAIL, PHONE = "Wilhelmina Quarrington", "w.quarrington@example.com", "+1 555 0199"


def a_sale(store: str, txn: str, customer: dict[str, Any] | None) -> dict[str, Any]:
    sale: dict[str, Any] = {
        "store_id": store,
        "txn_id": txn,
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "currency": "USD",
        "lines": [{"sku": "MUG-WHITE", "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"}],
        "payments": [{"method": "cash", "amount": "23.00"}],
    }
    if customer is not None:
        sale["customer"] = customer
    return sale


def consent(marketing: bool, at: str, source: str = "till") -> dict[str, Any]:
    return {"marketing": marketing, "at": at, "source": source}


async def synced(client: Client, pos_id: str, events: int) -> CustomerStatus:
    """The customer's status once it has handled `events` events and has none waiting."""
    wf_id = customer_workflow_id("pos", pos_id)
    for _ in range(240):
        try:
            status = await customer_status(client, wf_id)
            if status.events >= events and status.pending == 0:
                return status
        except Exception:
            pass  # not started yet
        await asyncio.sleep(0.25)
    raise TimeoutError(f"{wf_id} did not handle {events} events")


def partners_of(odoo: odoorpc.ODOO, pos_id: str) -> list[dict[str, Any]]:
    key = binder_name("pos", pos_id)
    bound = odoo.execute_kw(
        "ir.model.data", "search_read", [[("name", "=", key)]], {"fields": ["res_id"]}
    )
    drafts = odoo.execute_kw(
        "res.partner", "search", [[("active", "=", False), ("comment", "ilike", key)]]
    )
    ids = sorted({r["res_id"] for r in bound} | set(drafts))
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "res.partner", "read", [ids], {"fields": ["name", "email", "phone", "comment", "active"]}
    )
    return rows


def answers_lost(
    emu: OdooEmulator, settings: Settings, *calls: tuple[str, str]
) -> tuple[ScriptedClient, list[str]]:
    """A client for the worker whose `calls` Odoo carries out but whose answers never arrive
    (the activity is retried); `lost` names each call whose answer was lost."""
    scripted = ScriptedClient(emu)
    plain = OdooClient(settings.odoo())
    lost: list[str] = []

    def done_then_lost(model: str, method: str, args: tuple[Any, ...]) -> Any:
        plain.call(model, method, *args)
        lost.append(f"{model}.{method}")
        raise ConnectionResetError("connection reset by peer")

    for model, method in calls:
        scripted.on(model, method, done_then_lost)
    return scripted, lost


async def test_concurrent_sales_of_one_customer_make_one_partner_and_earn_points_once(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    settings = settings_for(odoo_emulator, temporal_address)
    scripted, lost = answers_lost(
        odoo_emulator, settings, ("res.partner", "write"), ("ir.model.data", "create")
    )
    customer = {"pos_customer_id": pos_id, "name": NAME}
    sales = [a_sale(store_id, f"T{i}", customer) for i in range(6)]
    sales[1]["customer"] = {**customer, "email": EMAIL, "phone": PHONE}
    async with worker_with(client, settings, scripted):
        subs = await asyncio.gather(
            *(
                submit_sale(client, settings, s, Mode.PER_SALE if i % 2 else Mode.BATCHED, "t")
                for i, s in enumerate(sales)
            )
        )
        await wait_until_settled(client, list(subs), SETTLE)
        # A cashier's resend of a sale: its points are not earned twice.
        await submit_sale(client, settings, sales[1], Mode.PER_SALE, "t")
        status = await synced(client, pos_id, len(sales))
    assert sorted(lost) == ["ir.model.data.create", "res.partner.write"]
    per_sale = sale_points(parse_sale(sales[0]), load_loyalty_policy(None))
    assert per_sale == 20
    assert status.loyalty_points == 6 * per_sale
    [partner] = partners_of(odoo, pos_id)
    assert partner["id"] == status.partner_id and partner["active"]
    assert (partner["name"], partner["email"], partner["phone"]) == (NAME, EMAIL, PHONE)
    assert read_block(partner["comment"]).loyalty_points == 6 * per_sale


async def test_an_older_consent_arriving_later_does_not_win(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    settings = settings_for(odoo_emulator, temporal_address)
    newer = {"pos_customer_id": pos_id, "consent": consent(False, "2026-11-20T12:00:00+00:00")}
    older = {
        "pos_customer_id": pos_id,
        "consent": consent(True, "2026-11-20T11:00:00+02:00", "kiosk"),  # 09:00 UTC
    }
    async with running_worker(client, settings):
        first = await submit_sale(client, settings, a_sale(store_id, "T1", newer), None, "t")
        await wait_until_settled(client, [first], SETTLE)
        await synced(client, pos_id, 1)
        late = await submit_sale(client, settings, a_sale(store_id, "T2", older), None, "t")
        await wait_until_settled(client, [late], SETTLE)
        status = await synced(client, pos_id, 2)
    assert status.consent is not None and status.consent.marketing is False
    assert status.consent.recorded_by == store_id and status.consent.source == "till"
    [partner] = partners_of(odoo, pos_id)
    assert read_block(partner["comment"]).consent == status.consent


async def test_a_refund_takes_back_the_points_of_its_sale(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        odoo_emulator, temporal_address, gateway_api_base=gateway.url, **ISSUER.trusted()
    )
    sale = a_sale(store_id, "T1", {"pos_customer_id": pos_id})
    async with running_worker(client, settings):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, "t")
        await wait_until_settled(client, [sub], SETTLE)
        assert (await synced(client, pos_id, 1)).loyalty_points == 20
        raw = {
            "refund_id": f"RF{uuid.uuid4().hex[:8]}",
            "store_id": store_id,
            "txn_id": "T1",
            "amount": "5.75",
            "reason": "chipped",
            "requested_by": "Ann",
        }
        _, handle, _ = await request_refund(client, settings, raw, ISSUER.request(raw))
        refund = await handle.result()
        status = await synced(client, pos_id, 2)
    assert refund.status is RefundStatus.REFUNDED
    assert status.loyalty_points == 15  # a quarter of the sale refunded: 5 of its 20 points


async def raw_histories(address: str, workflow_id: str) -> list[History]:
    """Every run's history, as the server holds it, read by a client with no codec."""
    plain = await Client.connect(address, data_converter=pydantic_data_converter)
    out = []
    async for wf in plain.list_workflows(f"WorkflowId = '{workflow_id}'"):
        fetched = await plain.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        out.append(History(events=fetched.events))
    return out


async def test_erasure_anonymises_odoo_and_no_history_holds_personal_data_in_clear(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    settings = settings_for(odoo_emulator, temporal_address)
    customer = {
        "pos_customer_id": pos_id,
        "name": NAME,
        "email": EMAIL,
        "phone": PHONE,
        "consent": consent(True, "2026-11-20T09:00:00+00:00"),
    }
    sale = a_sale(store_id, "T1", customer)
    async with running_worker(client, settings):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, "t")
        settled = await wait_until_settled(client, [sub], SETTLE)
        await synced(client, pos_id, 1)
        [before] = partners_of(odoo, pos_id)
        assert (before["name"], before["email"]) == (NAME, EMAIL)
        wf_id = await erase_customer(client, settings, pos_id)
        status = await synced(client, pos_id, 2)
        # The run the erasure continued into holds nothing personal, even under encryption.
        plain = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
        newest = await client.get_workflow_handle(wf_id).describe()
        fetched = await plain.get_workflow_handle(wf_id, run_id=newest.run_id).fetch_history()
        opened_newest = await decoded(History(events=fetched.events), client)
        assert [s for s in (NAME, EMAIL, PHONE) if s.encode() in opened_newest] == []
        # A later sale still names the customer with their data: none of it reaches Odoo.
        later = await submit_sale(client, settings, a_sale(store_id, "T2", customer), None, "t")
        await wait_until_settled(client, [later], SETTLE)
        status = await synced(client, pos_id, 3)
    assert settled[sub.workflow_id].status is SaleStatus.POSTED
    assert status.erased and status.loyalty_points == 40 and status.runs >= 2
    [after] = partners_of(odoo, pos_id)
    assert after["id"] == before["id"]
    assert (after["name"], after["email"], after["phone"]) == (ERASED_NAME, False, False)
    assert read_block(after["comment"]).consent == status.consent  # consent names nobody
    # The sale's entry never held the customer's data.
    moves = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=", f"POS:{store_id}:T1")]],
        {"fields": ["narration"]},
    )
    assert moves and all(EMAIL not in (m["narration"] or "") for m in moves)

    secrets = [NAME, EMAIL, PHONE]
    histories = await raw_histories(temporal_address, wf_id)
    assert len(histories) >= 2
    for workflow_id, runs in (
        (wf_id, histories),
        (sale_workflow_id(sale), await raw_histories(temporal_address, sale_workflow_id(sale))),
    ):
        for history in runs:
            clear = history.SerializeToString()
            assert [s for s in secrets if s.encode() in clear] == [], workflow_id
    # Each is really in those histories, under encryption (the runs before the erasure).
    opened = b"".join([await decoded(h, client) for h in histories])
    assert [s for s in secrets if s.encode() not in opened] == []


async def test_the_cli_erases_a_customer_and_shows_it(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    settings = settings_for(odoo_emulator, temporal_address)
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    customer = {"pos_customer_id": pos_id, "name": NAME, "email": EMAIL}
    async with running_worker(client, settings):
        sub = await submit_sale(
            client, settings, a_sale(store_id, "T1", customer), Mode.PER_SALE, "t"
        )
        await wait_until_settled(client, [sub], SETTLE)
        await synced(client, pos_id, 1)
        erased = await asyncio.to_thread(
            run_cli, ["customer", "erase", pos_id, "--wait", "60"], env
        )
        shown = await asyncio.to_thread(run_cli, ["customer", "show", pos_id], env)
    bad = await asyncio.to_thread(run_cli, ["customer", "erase", EMAIL], env)
    assert erased.returncode == 0, erased.stderr
    assert "anonymised in Odoo" in erased.stdout
    assert shown.returncode == 0 and json.loads(shown.stdout)["erased"] is True
    [partner] = partners_of(odoo, pos_id)
    assert (partner["name"], partner["email"]) == (ERASED_NAME, False)
    assert bad.returncode == 2 and "is not a POS customer id" in bad.stderr


async def test_an_event_odoo_refuses_is_kept_with_why_and_the_customer_goes_on(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    settings = settings_for(odoo_emulator, temporal_address)
    scripted = ScriptedClient(odoo_emulator)
    refusal = ApplicationError(
        "Contacts require a name", type="OdooValidationError", non_retryable=True
    )
    scripted.on("res.partner", "create", raising(refusal))
    customer = {"pos_customer_id": pos_id}
    async with worker_with(client, settings, scripted):
        first = await submit_sale(client, settings, a_sale(store_id, "T1", customer), None, "t")
        await wait_until_settled(client, [first], SETTLE)
        await synced(client, pos_id, 1)
        second = await submit_sale(client, settings, a_sale(store_id, "T2", customer), None, "t")
        await wait_until_settled(client, [second], SETTLE)
        status = await synced(client, pos_id, 2)
    assert list(status.refused) == [f"sale:POS:{store_id}:T1"]
    why = status.refused[f"sale:POS:{store_id}:T1"]
    assert why.startswith("OdooValidationError: ") and "Contacts require a name" in why
    assert status.loyalty_points == 20  # the second sale's; the first waits for ops
    assert [p["id"] for p in partners_of(odoo, pos_id)] == [status.partner_id]


async def test_the_ingress_takes_an_erasure_request_from_a_caller_with_the_scope(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
    tmp_path: Path,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    callers = tmp_path / "callers.toml"
    callers.write_text(
        "[[callers]]\n"
        'id = "privacy-desk"\n'
        'scopes = ["customers:erase"]\n'
        "[[callers.credentials]]\n"
        f'token_sha256 = "{token_sha256("privacy-token")}"\n'
        "[[callers]]\n"
        'id = "a-till"\n'
        'scopes = ["sales:write"]\n'
        "[[callers.credentials]]\n"
        f'token_sha256 = "{token_sha256("till-token")}"\n'
    )
    settings = settings_for(odoo_emulator, temporal_address, callers_file=callers)
    customer = {"pos_customer_id": pos_id, "name": NAME, "email": EMAIL}
    privacy = {"Authorization": "Bearer privacy-token"}
    async with running_worker(client, settings), serving(settings, client) as url:
        sub = await submit_sale(client, settings, a_sale(store_id, "T1", customer), None, "t")
        await wait_until_settled(client, [sub], SETTLE)
        await synced(client, pos_id, 1)
        async with httpx.AsyncClient(base_url=url) as http:
            till = await http.post(
                f"/v1/customers/{pos_id}/erasure", headers={"Authorization": "Bearer till-token"}
            )
            bad = await http.post("/v1/customers/jane@example.com/erasure", headers=privacy)
            ok = await http.post(f"/v1/customers/{pos_id}/erasure", headers=privacy)
        status = await synced(client, pos_id, 2)
    assert till.status_code == 403
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "pos_customer_id"
    assert ok.status_code == 202
    assert ok.json() == {"status": "requested", "workflow_id": f"customer:pos:{pos_id}"}
    assert status.erased
    [partner] = partners_of(odoo, pos_id)
    assert (partner["name"], partner["email"]) == (ERASED_NAME, False)


def blacklist_of(odoo: odoorpc.ODOO, email: str) -> list[dict[str, Any]]:
    """The address's mail.blacklist entries, archived or not, with retailflow's notes."""
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "mail.blacklist",
        "search_read",
        [[("email", "=", email)]],
        {"fields": ["email", "active"], "context": {"active_test": False}},
    )
    for row in rows:
        row["notes"] = [
            m["body"]
            for m in odoo.execute_kw(
                "mail.message",
                "search_read",
                [[("model", "=", "mail.blacklist"), ("res_id", "=", row["id"])]],
                {"fields": ["body"], "order": "id asc"},
            )
        ]
    return rows


async def test_an_opt_out_blacklists_the_address_and_only_a_newer_opt_in_lifts_it(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    email = f"{pos_id.lower()}@example.com"
    settings = settings_for(odoo_emulator, temporal_address)
    # Every blacklist write of the opt-out is done by Odoo and its answer lost once.
    scripted, lost = answers_lost(
        odoo_emulator,
        settings,
        ("mail.blacklist", "create"),
        ("mail.blacklist", "action_unarchive"),
        ("res.partner", "write"),
    )

    def customer(marketing: bool, at: str) -> dict[str, Any]:
        return {"pos_customer_id": pos_id, "email": email, "consent": consent(marketing, at)}

    async def sale(txn: str, marketing: bool, at: str, events: int) -> None:
        sub = await submit_sale(
            client, settings, a_sale(store_id, txn, customer(marketing, at)), None, "t"
        )
        await wait_until_settled(client, [sub], SETTLE)
        await synced(client, pos_id, events)

    listed = [("email", "=", email), ("is_blacklisted", "=", True)]
    async with worker_with(client, settings, scripted):
        await sale("T1", False, "2026-11-20T09:00:00+00:00", 1)
        assert sorted(lost) == [
            "mail.blacklist.action_unarchive",
            "mail.blacklist.create",
            "res.partner.write",
        ]
        [entry] = blacklist_of(odoo, email)
        assert entry["active"] and len(entry["notes"]) == 1
        assert "marketing opt-out given 2026-11-20T09:00:00+00:00" in entry["notes"][0]
        [partner] = partners_of(odoo, pos_id)
        assert odoo.execute_kw("res.partner", "search", [listed]) == [partner["id"]]
        # An opt-in given before the opt-out, arriving late (an offline till): still listed.
        await sale("T2", True, "2026-11-20T08:00:00+00:00", 2)
        assert [(e["active"], len(e["notes"])) for e in blacklist_of(odoo, email)] == [(True, 1)]
        # A newer opt-in lifts it: the entry was written when the opt-out was processed, days
        # after the opt-in was given, but it is retailflow's own, untouched since.
        await sale("T3", True, "2026-11-20T10:00:00+00:00", 3)
        [lifted] = blacklist_of(odoo, email)
        assert lifted["id"] == entry["id"] and not lifted["active"]
        assert "marketing opt-in given 2026-11-20T10:00:00+00:00" in lifted["notes"][1]
        assert odoo.execute_kw("res.partner", "search", [listed]) == []
        # Opted out again, then erased: the address stays on the blacklist (the opt-out is
        # still honoured) while the partner no longer holds it.
        await sale("T4", False, "2026-11-20T11:00:00+00:00", 4)
        await erase_customer(client, settings, pos_id)
        status = await synced(client, pos_id, 5)
    [kept] = blacklist_of(odoo, email)
    assert kept["id"] == entry["id"] and kept["active"] and len(kept["notes"]) == 3
    [erased] = partners_of(odoo, pos_id)
    assert erased["email"] is False and erased["name"] == ERASED_NAME
    assert read_block(erased["comment"]).consent == status.consent
    # Nothing on the erased partner leads to the entry (and so to the address) any more.
    assert read_block(erased["comment"]).blacklist is None


async def test_a_blacklist_entry_newer_than_the_opt_in_stays(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    pos_id = f"C{uuid.uuid4().hex[:8]}"
    email = f"{pos_id.lower()}@example.com"
    settings = settings_for(odoo_emulator, temporal_address)
    # The customer unsubscribed from a mailing (Odoo listed the address) after the opt-in
    # the till recorded on Nov 20, which arrives now.
    entry = odoo.execute_kw("mail.blacklist", "create", [{"email": email.upper()}])
    opt_in = {"pos_customer_id": pos_id, "email": email}
    async with running_worker(client, settings):
        for n, (txn, at) in enumerate(
            [("T1", "2026-11-20T10:00:00+00:00"), ("T2", "2099-01-01T00:00:00+00:00")], 1
        ):
            sale = a_sale(store_id, txn, {**opt_in, "consent": consent(True, at)})
            sub = await submit_sale(client, settings, sale, None, "t")
            await wait_until_settled(client, [sub], SETTLE)
            await synced(client, pos_id, n)
            if n == 1:
                [kept] = blacklist_of(odoo, email)
                assert (kept["id"], kept["active"], kept["notes"]) == (entry, True, [])
    # An opt-in given after the entry was made lifts it.
    [lifted] = blacklist_of(odoo, email)
    assert lifted["id"] == entry and not lifted["active"] and len(lifted["notes"]) == 1
