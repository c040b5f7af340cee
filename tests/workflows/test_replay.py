"""Saved histories of real runs replay against today's workflow code: a change that breaks
determinism for workflows already running in production fails here, in CI.

Re-record after an intentional, versioned change: `python -m tests.workflows.record_histories`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.codec import data_converter, load_key_ring
from workers.worker import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
SAVED = sorted(HISTORIES.glob("*.json"))


def test_histories_cover_every_workflow() -> None:
    types = {
        json.loads(p.read_text())["events"][0]["workflowExecutionStartedEventAttributes"][
            "workflowType"
        ]["name"]
        for p in SAVED
    }
    assert types == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The production converter: recorded histories are in clear, and pass through its codec.
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(load_key_ring()))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_a_refund_decided_by_signed_assertions_is_among_them() -> None:
    """Its replay runs the verification again (the handler re-verifies, at the recorded time):
    a change to how assertions are checked that alters a decision fails here."""
    events = json.loads((HISTORIES / "refund:REC-S.json").read_text())["events"]
    accepted = [
        e["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"
    ]
    (update,) = [u for u in accepted if u["name"] == "approve"]
    approval = json.loads(base64.b64decode(update["args"]["payloads"][0]["data"]))
    assert approval["assertion"].count(".") == 2 and approval["by"] is None
    patches = [
        json.loads(base64.b64decode(p["data"]))["id"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
        for p in e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"]
    ]
    assert "signed-approvals" in patches
