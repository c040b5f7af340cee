"""The audit log's records and their hash chain: pure, no I/O.

A record says who did what to which system, when, and how it ended: a workflow started or
closed, a decision taken (an Update accepted, with its actor), a signal received, a write to
Odoo, the POS platform or the gateway completed or failed. Records are chained: each carries
the hash of the record before it (`prev_hash`) and its own `hash`, the sha256 of its canonical
JSON (sorted keys, no spaces) without `hash`. The first record's `prev_hash` is 64 zeros; an
export that starts mid-chain starts with the hash of the record before it, its anchor, so a
partial export verifies too.

Details are small and impersonal: ids, amounts, statuses. A person's or customer's name,
email, phone, address or comment text is replaced by its sha256 digest, so a record can prove
"this comment" without holding it (docs/security.md, "Audit trail").
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.masking import Masker, is_customer_key

GENESIS = "0" * 64
_HASH = re.compile(r"^[0-9a-f]{64}$")

Scalar = str | int | bool | None


class Kind(StrEnum):
    START = "start"
    CLOSE = "close"
    DECISION = "decision"
    UPDATE = "update"
    SIGNAL = "signal"
    WRITE = "write"


class Target(StrEnum):
    ODOO = "odoo"
    POS = "pos"
    GATEWAY = "gateway"
    TEMPORAL = "temporal"


# Activities that change something outside the workflow, by the system they write to. Reads
# (payment_status, list_payouts, pos_sale...) change nothing and are not audited.
WRITE_ACTIVITIES: dict[str, Target] = {
    "post_sale": Target.ODOO,
    "post_sales_batch": Target.ODOO,
    "post_summary": Target.ODOO,
    "decrement_stock": Target.ODOO,
    "write_pricelist_items": Target.ODOO,
    "remove_pricelist_items": Target.ODOO,
    "reserve_refund": Target.ODOO,
    "redraft_refund": Target.ODOO,
    "release_refund": Target.ODOO,
    "post_refund": Target.ODOO,
    "book_payout": Target.ODOO,
    "reverse_payout": Target.ODOO,
    "sync_customer": Target.ODOO,
    "erase_customer": Target.ODOO,
    "apply_adjustment": Target.ODOO,
    "ensure_store_locations": Target.ODOO,
    "send_price_command": Target.POS,
    "send_price_commands": Target.POS,
    "publish_catalog": Target.POS,
    "publish_availability": Target.POS,
    "refund_payment": Target.GATEWAY,
    "close_ledgers": Target.TEMPORAL,
    "request_reservation": Target.TEMPORAL,
    "request_customer_sync": Target.TEMPORAL,
    "request_loyalty_reversal": Target.TEMPORAL,
    "inventory_changed": Target.TEMPORAL,
}

# The worker's other activities: they read, or write only the worker's own audit log. Every
# activity is in one of the two (tests/unit/test_audit_log.py), so a new one is classified.
READ_ACTIVITIES = frozenset(
    {
        "catalog_command_statuses",
        "catalog_versions",
        "close_result",
        "collect_audit_events",
        "last_reconciliation",
        "list_payouts",
        "list_stores",
        "load_sale_for_refund",
        "odoo_day_totals",
        "on_hand",
        "open_work",
        "payment_status",
        "payout_totals",
        "pos_sale",
        "prepare_price_rollout",
        "price_command_status",
        "price_command_statuses",
        "product_states",
        "read_changed_products",
        "reconcile_store_day",
        "refund_state",
        "store_catalog_page",
        "store_counts",
        "summarised_sales",
    }
)

# Updates and signals that are a person's decision (the rest are system traffic).
DECISIONS = frozenset(
    {
        "approve",
        "reject",
        "accept",
        "repost",
        "retry",
        "dismiss",
        "resolved_by_hand",
        "retry_stock",
        "dismiss_stock",
        "cancel",
        "erase",  # a customer's erasure request
    }
)


@dataclass(frozen=True)
class AuditEvent:
    """What one history event says, before it is chained."""

    event_key: str  # workflow_id/run_id/event_id: unique, so recorded once
    at: datetime
    workflow_type: str
    workflow_id: str
    kind: Kind
    action: str
    target: Target
    outcome: str
    actor: str = "system"
    details: Mapping[str, Scalar] | None = None


def timestamp(at: datetime) -> str:
    """UTC, fixed width (sorts as text): 2026-11-20T12:00:00.000000Z."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its `hash` (prev_hash included)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def chain(events: Iterable[AuditEvent], last_seq: int, last_hash: str) -> list[dict[str, Any]]:
    """The events as records following the record `last_seq` whose hash is `last_hash`
    (0 and GENESIS for an empty log)."""
    out: list[dict[str, Any]] = []
    seq, prev = last_seq, last_hash
    for e in events:
        seq += 1
        record: dict[str, Any] = {
            "seq": seq,
            "event_key": e.event_key,
            "at": timestamp(e.at),
            "workflow_type": e.workflow_type,
            "workflow_id": e.workflow_id,
            "kind": e.kind.value,
            "actor": e.actor,
            "action": e.action,
            "target": e.target.value,
            "outcome": e.outcome,
            "details": dict(e.details or {}),
            "prev_hash": prev,
        }
        record["hash"] = prev = record_hash(record)
        out.append(record)
    return out


def rechain(records: Iterable[Mapping[str, Any]], anchor: str) -> list[dict[str, Any]]:
    """Records whose content changed (a masked copy) chained again from `anchor`."""
    out: list[dict[str, Any]] = []
    prev = anchor
    for r in records:
        record = {k: v for k, v in r.items() if k != "hash"}
        record["prev_hash"] = prev
        record["hash"] = prev = record_hash(record)
        out.append(record)
    return out


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    last_hash: str
    anchor: str = GENESIS
    first_seq: int = 0
    masked: bool = False
    bad_line: int | None = None
    reason: str = ""

    def message(self) -> str:
        if not self.ok:
            return f"line {self.bad_line}: {self.reason}"
        if self.count == 0:
            return "ok: 0 records"
        start = "" if self.anchor == GENESIS else f", anchored at {self.anchor}"
        copy = " (a masked copy)" if self.masked else ""
        return (
            f"ok: {self.count} records{copy}, seq {self.first_seq}.."
            f"{self.first_seq + self.count - 1}, chain intact{start}, last hash {self.last_hash}"
        )


_FIELDS = (
    "seq",
    "event_key",
    "at",
    "workflow_type",
    "workflow_id",
    "kind",
    "actor",
    "action",
    "target",
    "outcome",
    "details",
    "prev_hash",
    "hash",
)


def _shape_problem(r: Any) -> str | None:
    if not isinstance(r, dict):
        return "not a JSON object"
    missing = [f for f in _FIELDS if f not in r]
    if missing:
        return f"missing field {missing[0]!r}"
    if not isinstance(r["seq"], int) or isinstance(r["seq"], bool) or r["seq"] < 1:
        return "seq is not a positive whole number"
    for f in ("prev_hash", "hash"):
        if not isinstance(r[f], str) or not _HASH.match(r[f]):
            return f"{f} is not a sha256 hex digest"
    return None


def _link_problem(r: dict[str, Any], prev_seq: int, prev_hash: str) -> str | None:
    if r["seq"] != prev_seq + 1:
        why = "deleted or reordered" if r["seq"] > prev_seq else "reordered or repeated"
        return f"seq {r['seq']} after {prev_seq}: a record was {why}"
    if r["prev_hash"] != prev_hash:
        return (
            "prev_hash is not the hash of the record before: a record was deleted, inserted "
            "or reordered, or the one before was edited and re-hashed"
        )
    return None


def verify(lines: Iterable[str]) -> Verdict:
    """Check an export line by line: each record's hash, and that each follows the one before
    (its prev_hash is that record's hash, its seq the next number). The first line's prev_hash
    is the anchor (64 zeros when the export starts at the first record). Returns the first
    broken line and why, or ok with the count and the last hash."""
    count, first_seq, anchor, prev_hash, prev_seq = 0, 0, GENESIS, GENESIS, 0
    masked = False
    for n, line in enumerate(lines, start=1):
        if not line.strip(" \t\r"):  # JSON whitespace only: any other line is checked
            continue
        why: str | None = None
        try:
            r = json.loads(line)
        except ValueError:
            r, why = None, "not valid JSON"
        why = why or _shape_problem(r)
        if why is None and count == 0:
            first_seq, anchor, prev_hash, prev_seq = r["seq"], r["prev_hash"], r["prev_hash"], 0
            masked = bool(r.get("masked"))
            if r["seq"] == 1 and anchor != GENESIS:
                why = "the first record (seq 1) does not start from 64 zeros"
        elif why is None:
            why = _link_problem(r, prev_seq, prev_hash)
        if why is None and record_hash(r) != r["hash"]:
            why = f"record seq {r['seq']} was edited (its hash does not match its content)"
        if why is not None:
            return Verdict(False, count, prev_hash, anchor, first_seq, masked, n, why)
        count += 1
        prev_hash, prev_seq = r["hash"], r["seq"]
    return Verdict(True, count, prev_hash, anchor, first_seq, masked)


# -- details: what a payload may put in a record ------------------------------------------

# A person's or customer's data: recorded as a digest.
PERSONAL = re.compile(
    r"(^|_)(email|phone|name|names|address|comment|comments|note|notes|customer|by|subject|"
    r"sub|approver|requester|staff|cashier|who)$"
)
# Impersonal facts worth keeping: ids, amounts, statuses, days, roles, reason codes.
SAFE = re.compile(
    r"(^|_)(id|ids|key|ref|reference|status|state|outcome|amount|total|totals|net|fees|charges|"
    r"refunds|currency|day|role|reason|mode|count|kind|tender|sku|txn|store|region|method|"
    r"at|attempt|attempts|approve|action|version|number|move|payout|matched|passed|reasons|lines|"
    r"payments|diffs|payouts|problems|changes|stores|items)$"
)
# Names of things, not people: Odoo's entry and picking names.
NOT_PERSONAL = frozenset({"move_name", "reversal_name", "picking_name", "journal_name"})
MAX_DETAILS = 24
MAX_TEXT = 120


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _scalar(value: Any) -> Scalar | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | Decimal):
        return str(value)
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


def summarize(value: Any, prefix: str = "", depth: int = 2) -> dict[str, Scalar]:
    """A payload's impersonal facts, flattened (`sale.store_id`): ids, amounts, statuses; a
    personal field as its digest; free text and anything else left out."""
    out: dict[str, Scalar] = {}
    if not isinstance(value, Mapping):
        return out
    for key, v in value.items():
        if not isinstance(key, str) or len(out) >= MAX_DETAILS:
            continue
        name = f"{prefix}{key}"
        lowered = key.lower()
        if isinstance(v, Mapping):
            if depth > 0:
                for k, inner in summarize(v, f"{name}.", depth - 1).items():
                    if len(out) < MAX_DETAILS:
                        out[k] = inner
            continue
        if isinstance(v, list):
            if SAFE.search(lowered) or PERSONAL.search(lowered):
                out[f"{name}.count"] = len(v)
            continue
        if PERSONAL.search(lowered) and lowered not in NOT_PERSONAL:
            if isinstance(v, str) and v:
                out[name] = digest(v)
            continue
        if SAFE.search(lowered) or lowered in NOT_PERSONAL:
            scalar = _scalar(v)
            if scalar is not None:
                out[name] = scalar
    return out


_ACTOR_KEYS = ("sub", "subject", "by", "approver", "decided_by", "requested_by", "user")


def _jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def actor_of(args: Iterable[Any]) -> str:
    """Who an Update's or signal's arguments name (`subject/role` when a role is given, the
    claims of a signed assertion included), else "system"."""
    for arg in args:
        found = _actor_in(arg, depth=2)
        if found:
            return found
    return "system"


def _actor_in(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        claims = _jwt_claims(value)
        return _actor_in(claims, depth - 1) if claims and depth > 0 else None
    if not isinstance(value, Mapping):
        return None
    for key in _ACTOR_KEYS:
        who = value.get(key)
        if isinstance(who, str) and who.strip():
            role = value.get("role")
            who = who.strip()[:MAX_TEXT]
            return f"{who}/{role.strip()[:MAX_TEXT]}" if isinstance(role, str) and role else who
    if depth > 0:
        for inner in value.values():
            found = _actor_in(inner, depth - 1)
            if found:
                return found
    return None


def mask_records(records: Iterable[Mapping[str, Any]], masker: Masker) -> list[dict[str, Any]]:
    """A copy for test: actors and customer fields pseudonymised, digests re-keyed (a digest
    of an email can be guessed, a keyed one cannot), each record marked `masked` and the copy
    chained again from the same anchor, so it verifies as a chain of its own. It no longer
    matches the production chain's hashes, by design."""
    masked: list[dict[str, Any]] = []
    anchor = GENESIS
    for n, r in enumerate(records):
        if n == 0:
            anchor = str(r.get("prev_hash", GENESIS))
        record = dict(r)
        actor = str(record.get("actor", "system"))
        if actor != "system":
            who, slash, role = actor.partition("/")
            record["actor"] = masker.words(who) + (slash + role if slash else "")
        details: dict[str, Any] = {}
        for key, value in dict(record.get("details") or {}).items():
            if isinstance(value, str) and value.startswith("sha256:"):
                value = "hmac:" + masker.token("digest", value, 64)
            elif isinstance(value, str) and is_customer_key(key.rsplit(".", 1)[-1]):
                value = masker.value(key, value)
            details[key] = value
        record["details"] = details
        record["masked"] = True
        masked.append(record)
    return rechain(masked, anchor)
