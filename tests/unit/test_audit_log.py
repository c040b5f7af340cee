"""The audit log's hash chain: built, verified, and every kind of tampering caught."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

from temporalio import activity

from domain.audit_log import (
    GENESIS,
    READ_ACTIVITIES,
    WRITE_ACTIVITIES,
    AuditEvent,
    Kind,
    Target,
    actor_of,
    canonical,
    chain,
    digest,
    mask_records,
    record_hash,
    summarize,
    verify,
)
from domain.masking import Masker
from domain.posting import PostingProfile
from workers.settings import Settings
from workers.worker import worker_activities

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def events(n: int, start: int = 0) -> list[AuditEvent]:
    return [
        AuditEvent(
            event_key=f"sale:S001:X{i:04d}/run-{i}/5",
            at=T0 + timedelta(minutes=i),
            workflow_type="SalePosting",
            workflow_id=f"sale:S001:X{i:04d}",
            kind=Kind.WRITE,
            action="post_sale",
            target=Target.ODOO,
            outcome="completed",
            details={"store_id": "S001", "txn_id": f"X{i:04d}", "amount": "12.50"},
        )
        for i in range(start, start + n)
    ]


def lines(records: list[dict[str, Any]]) -> list[str]:
    return [canonical(r) for r in records]


def test_chain_links_each_record_to_the_one_before() -> None:
    records = chain(events(3), 0, GENESIS)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev_hash"] == GENESIS
    assert records[1]["prev_hash"] == records[0]["hash"]
    assert records[2]["prev_hash"] == records[1]["hash"]
    # The hash is sha256 over the canonical JSON (sorted keys, no spaces) without `hash`.
    body = {k: v for k, v in records[0].items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert records[0]["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert records[0]["at"] == "2026-11-20T12:00:00.000000Z"


def test_an_intact_export_verifies_with_its_count_and_last_hash() -> None:
    records = chain(events(5), 0, GENESIS)
    verdict = verify(lines(records))
    assert verdict.ok and verdict.count == 5
    assert verdict.last_hash == records[-1]["hash"]
    assert verdict.message().startswith("ok: 5 records, seq 1..5, chain intact")


def test_an_edited_record_is_named_with_its_line() -> None:
    records = chain(events(5), 0, GENESIS)
    records[2]["details"]["amount"] = "1.00"
    verdict = verify(lines(records))
    assert not verdict.ok and verdict.bad_line == 3
    assert "edited" in verdict.reason


def test_an_edited_and_rehashed_record_breaks_the_next_link() -> None:
    records = chain(events(5), 0, GENESIS)
    records[2]["outcome"] = "failed"
    records[2]["hash"] = record_hash(records[2])
    verdict = verify(lines(records))
    assert not verdict.ok and verdict.bad_line == 4
    assert "prev_hash" in verdict.reason


def test_a_deleted_record_is_caught() -> None:
    records = chain(events(5), 0, GENESIS)
    del records[1]
    verdict = verify(lines(records))
    assert not verdict.ok and verdict.bad_line == 2
    assert "seq 3 after 1" in verdict.reason


def test_reordered_records_are_caught() -> None:
    records = chain(events(5), 0, GENESIS)
    records[1], records[2] = records[2], records[1]
    verdict = verify(lines(records))
    assert not verdict.ok and verdict.bad_line == 2
    assert "reordered" in verdict.reason


def test_an_inserted_record_is_caught_even_when_well_formed() -> None:
    records = chain(events(4), 0, GENESIS)
    # A forger chains a record after the second and renumbers the rest consistently: the
    # record after the insertion still names the old predecessor's hash.
    forged = chain(events(1, start=90), 2, records[1]["hash"])[0]
    later = [dict(r, seq=r["seq"] + 1) for r in records[2:]]
    for r in later:
        r["hash"] = record_hash(r)
    verdict = verify(lines([*records[:2], forged, *later]))
    assert not verdict.ok and verdict.bad_line == 4
    assert "prev_hash" in verdict.reason


def test_a_partial_export_verifies_from_its_anchor() -> None:
    records = chain(events(6), 0, GENESIS)
    part = records[3:]
    verdict = verify(lines(part))
    assert verdict.ok and verdict.count == 3
    assert verdict.anchor == records[2]["hash"] and verdict.first_seq == 4
    assert f"anchored at {records[2]['hash']}" in verdict.message()
    # A chain continued from the log's last record verifies together with what came before.
    more = chain(events(2, start=6), records[-1]["seq"], records[-1]["hash"])
    assert verify(lines(records + more)).count == 8


def test_the_first_record_must_start_from_zeros() -> None:
    records = chain(events(2), 0, "1" * 64)
    verdict = verify(lines(records))
    assert not verdict.ok and verdict.bad_line == 1 and "64 zeros" in verdict.reason


def test_garbage_lines_are_named_not_raised() -> None:
    good = lines(chain(events(2), 0, GENESIS))
    for junk, why in [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"seq": 3}', "missing field"),
    ]:
        verdict = verify([*good, junk])
        assert not verdict.ok and verdict.bad_line == 3 and why in verdict.reason
    bad_seq = dict(json.loads(good[1]), seq="two")
    assert "seq" in verify([good[0], json.dumps(bad_seq)]).reason
    assert verify([]).message() == "ok: 0 records"


def test_a_line_of_unicode_separators_is_checked_not_skipped_as_blank() -> None:
    good = lines(chain(events(2), 0, GENESIS))
    verdict = verify([good[0], "\x1c\u2028", good[1]])
    assert not verdict.ok and verdict.bad_line == 2 and "not valid JSON" in verdict.reason
    assert verify([good[0], " \t\r", good[1]]).ok  # JSON's own whitespace is a blank line


def test_details_keep_ids_and_amounts_and_digest_personal_fields() -> None:
    payload = {
        "refund_id": "R-1",
        "amount": "30.00",
        "by": "lee",
        "comment": "customer Jane Roe, jane@example.com, was upset",
        "email": "jane@example.com",
        "free_text": "anything else",
        "sale": {"store_id": "S001", "txn_id": "T9", "lines": [{"sku": "A"}], "note": "x"},
        "reasons": ["a", "b"],
        "ratio": 0.5,
        "move_name": "RINV/2026/00007",
    }
    details = summarize(payload)
    assert details["refund_id"] == "R-1" and details["amount"] == "30.00"
    assert details["sale.store_id"] == "S001" and details["sale.txn_id"] == "T9"
    assert details["comment"] == digest(payload["comment"])
    assert details["email"] == digest("jane@example.com")
    assert details["by"] == digest("lee")
    assert details["reasons.count"] == 2
    assert details["move_name"] == "RINV/2026/00007"  # an entry's name, not a person's
    assert "free_text" not in details and "ratio" not in details
    text = json.dumps(details)
    assert "jane" not in text.lower() and "upset" not in text


def test_the_actor_is_the_subject_the_arguments_name() -> None:
    assert actor_of([{"by": "lee", "role": "store_manager", "comment": "ok"}]) == (
        "lee/store_manager"
    )
    assert actor_of([{"diff_id": "d1", "by": "ops-ann"}]) == "ops-ann"
    assert actor_of([{"assertion": {"sub": "kim", "role": "finance"}}]) == "kim/finance"
    assert actor_of([]) == "system" and actor_of([None, 3]) == "system"
    # A JWT's claims (read, not verified here: the workflow's validator verified it).
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"sub": "pat", "role": "rm"}).encode())
    token = f"e30.{claims.decode().rstrip('=')}.sig"
    assert actor_of([{"token": token}]) == "pat/rm"


def test_a_masked_copy_hides_actors_and_verifies_as_its_own_chain() -> None:
    evs = [
        AuditEvent(
            event_key="refund:R-1/r/7",
            at=T0,
            workflow_type="Refund",
            workflow_id="refund:R-1",
            kind=Kind.DECISION,
            action="approve",
            target=Target.TEMPORAL,
            outcome="accepted",
            actor="lee/store_manager",
            details=summarize({"refund_id": "R-1", "comment": "fine"}),
        ),
        *events(2),
    ]
    records = chain(evs, 0, GENESIS)
    masker = Masker(b"k" * 32)
    copy = mask_records(records, masker)
    assert copy[0]["actor"] != "lee/store_manager" and copy[0]["actor"].endswith("/store_manager")
    assert copy[0]["details"]["comment"].startswith("hmac:")
    assert copy[0]["details"]["refund_id"] == "R-1"
    assert all(r["masked"] for r in copy)
    verdict = verify(lines(copy))
    assert verdict.ok and verdict.masked and "masked copy" in verdict.message()
    # Stable under one key, so two exports of the same data join.
    assert mask_records(records, Masker(b"k" * 32)) == copy


def test_every_activity_of_the_worker_is_classified_write_or_read() -> None:
    """A new activity must be named a write (audited, by the system it changes) or a read:
    an unclassified write would leave the audit log silently."""
    fns = worker_activities(
        MagicMock(), Settings(), MagicMock(), PostingProfile(), MagicMock(), MagicMock()
    )
    names = {activity._Definition.must_from_callable(fn).name for fn in fns}
    assert len(names) == len(fns) > 40
    assert names - set(WRITE_ACTIVITIES) - READ_ACTIVITIES == set()
    assert set(WRITE_ACTIVITIES) & READ_ACTIVITIES == set()
    # Nothing classified that the worker does not run (a renamed activity).
    assert (set(WRITE_ACTIVITIES) | READ_ACTIVITIES) - names == set()
