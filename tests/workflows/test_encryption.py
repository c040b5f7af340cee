"""Histories hold no personal data in clear: a sale (a customer's email in it) and a refund
(a staff name, a comment) run through a real worker, then their raw histories, read by a client
with no codec, contain none of it, while the same histories decode with the codec. Memos, user
metadata, signals, updates, activity results and failure messages are all encrypted; keys
rotate (new payloads under the new key, old histories still readable)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio import activity, workflow
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.identities import ISSUER
from workers.client import connect
from workers.codec import (
    KEY_ID,
    KeyRing,
    PayloadDecryptionError,
    decode_message,
    generate_key_line,
)
from workers.refunds import request_refund
from workers.settings import TemporalSettings
from workers.submit import Mode, submit_sale, wait_until_settled
from workflows.refund import RefundStatus, refund_workflow_id
from workflows.sale_posting import SaleStatus, sale_workflow_id
from workflows.sale_refunds import sale_refunds_workflow_id

EMAIL = "jane.doe@example.com"
STAFF = "Marguerite Oakhurst"
COMMENT = "mug leaked at the handle"
LINE_SKU = "MUG-WHITE"


async def raw_history(address: str, workflow_id: str) -> History:
    """The history as the server holds it, fetched by a client that has no codec."""
    plain = await Client.connect(address, data_converter=pydantic_data_converter)
    fetched = await plain.get_workflow_handle(workflow_id).fetch_history()
    return History(events=fetched.events)


async def decoded(history: History, client: Client) -> bytes:
    codec = client.data_converter.payload_codec
    assert codec is not None
    opened = History()
    opened.CopyFrom(history)
    await decode_message(opened, codec)
    return opened.SerializeToString()


async def test_sale_and_refund_histories_hold_no_personal_data_in_clear(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
) -> None:
    settings = settings_for(
        odoo_emulator, temporal_address, gateway_api_base=gateway.url, **ISSUER.trusted()
    )
    sale = {
        "store_id": store_id,
        "txn_id": "T1",
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "currency": "USD",
        "lines": [{"sku": LINE_SKU, "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"}],
        "payments": [{"method": "cash", "amount": "23.00", "reference": f"receipt {EMAIL}"}],
    }
    # Kept, rejected, with everything it carried (an unknown customer field included).
    refused = {**sale, "txn_id": "T2", "customer": {"email": EMAIL}}
    async with running_worker(client, settings):
        subs = [
            await submit_sale(client, settings, s, Mode.PER_SALE, "test") for s in (sale, refused)
        ]
        settled = await wait_until_settled(client, subs, timedelta(seconds=30))
        raw = {
            "refund_id": f"RF{uuid.uuid4().hex[:8]}",
            "store_id": store_id,
            "txn_id": "T1",
            "amount": "5.00",
            "reason": COMMENT,
            "requested_by": STAFF,
        }
        # The requester's name travels in the signed request assertion.
        assertion = ISSUER.request(raw, "cashier-7", name=STAFF)
        request, handle, _ = await request_refund(client, settings, raw, assertion)
        refund = await handle.result()
    assert [settled[s.workflow_id].status for s in subs] == [SaleStatus.POSTED, SaleStatus.REJECTED]
    assert refund.status is RefundStatus.REFUNDED and refund.amount == Decimal("5.00")

    secrets = [EMAIL, STAFF, COMMENT, LINE_SKU]
    found: set[str] = set()
    for workflow_id in (
        sale_workflow_id(sale),
        sale_workflow_id(refused),
        refund_workflow_id(request.refund_id),
        sale_refunds_workflow_id(store_id, "T1"),
    ):
        history = await raw_history(temporal_address, workflow_id)
        clear = history.SerializeToString()
        assert [s for s in secrets if s.encode() in clear] == [], workflow_id
        opened = await decoded(history, client)
        found |= {s for s in secrets if s.encode() in opened}
    assert found == set(secrets)  # each is really in those histories, under encryption


@activity.defn
async def shout(note: str) -> str:
    return note.upper()


@workflow.defn
class Notes:
    """Collects two notes (a signal, an update), then fails saying what it holds."""

    def __init__(self) -> None:
        self._notes: list[str] = []

    @workflow.run
    async def run(self, first: str) -> str:
        loud = await workflow.execute_activity(
            shout, first, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: len(self._notes) >= 2)
        if self._notes[0].startswith("fail"):
            raise ApplicationError(f"refused: {loud} {self._notes}", self._notes[1])
        return f"{loud} {self._notes}"

    @workflow.signal
    def note(self, text: str) -> None:
        self._notes.append(text)

    @workflow.update
    def note_now(self, text: str) -> int:
        self._notes.append(text)
        return len(self._notes)

    @workflow.query
    def notes(self) -> list[str]:
        return list(self._notes)


@asynccontextmanager
async def notes_worker(client: Client) -> AsyncIterator[str]:
    task_queue = f"notes-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Notes],
        activities=[shout],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield task_queue


async def test_memo_metadata_signals_updates_results_and_failures_are_encrypted(
    client: Client, temporal_address: str
) -> None:
    secret = f"customer {EMAIL}"
    async with notes_worker(client) as task_queue:
        handle = await client.start_workflow(
            Notes.run,
            f"input {secret}",
            id=f"notes:{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            memo={"customer": f"memo {secret}"},
            static_summary=f"summary {secret}",
            static_details=f"details {secret}",
        )
        await handle.signal(Notes.note, f"fail: signal {secret}")
        assert await handle.execute_update(Notes.note_now, f"update {secret}") == 2
        assert await handle.query(Notes.notes) == [f"fail: signal {secret}", f"update {secret}"]
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and EMAIL.upper() in str(cause)
    assert cause.details == (f"update {secret}",)
    described = await handle.describe()  # the codec client reads them back in clear
    assert await described.static_summary() == f"summary {secret}"
    assert await described.memo_value("customer") == f"memo {secret}"

    history = await raw_history(temporal_address, handle.id)
    clear = history.SerializeToString()
    assert EMAIL.encode() not in clear and EMAIL.upper().encode() not in clear
    assert b"refused:" not in clear  # the failure message itself
    opened = await decoded(history, client)
    for what in ("input", "memo", "summary", "details", "fail: signal", "update"):
        assert f"{what} {secret}".encode() in opened, what
    assert f"refused: INPUT {secret.upper()}".encode() in opened


async def test_a_rotated_key_still_reads_old_histories_and_encrypts_new_ones(
    temporal_address: str,
) -> None:
    address = TemporalSettings(address=temporal_address)
    a = KeyRing.parse(generate_key_line("key-a"))
    b = KeyRing.parse(generate_key_line("key-b"))
    old_client = await connect(address, keys=a)
    async with notes_worker(old_client) as task_queue:
        old = await old_client.start_workflow(
            Notes.run, "before rotation", id=f"notes:{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await old.signal(Notes.note, "one")
        await old.signal(Notes.note, "two")
        assert await old.result() == "BEFORE ROTATION ['one', 'two']"

    rotated = await connect(address, keys=KeyRing(b.keys + a.keys))
    assert await rotated.get_workflow_handle_for(Notes.run, old.id).result() == (
        "BEFORE ROTATION ['one', 'two']"
    )
    async with notes_worker(rotated) as task_queue:
        new = await rotated.start_workflow(
            Notes.run, "after rotation", id=f"notes:{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await new.signal(Notes.note, "three")
        await new.signal(Notes.note, "four")
        assert await new.result() == "AFTER ROTATION ['three', 'four']"
    kids = {
        p.metadata[KEY_ID]
        for e in (await raw_history(temporal_address, new.id)).events
        if e.HasField("workflow_execution_started_event_attributes")
        for p in e.workflow_execution_started_event_attributes.input.payloads
    }
    assert kids == {b"key-b"}

    only_b = await connect(address, keys=b)
    with pytest.raises(PayloadDecryptionError) as e:
        await only_b.get_workflow_handle_for(Notes.run, old.id).result()
    assert "key id 'key-a', which is not configured (keys: key-b)" in str(e.value)
