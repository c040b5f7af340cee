"""The claim protocol, written once: exactly one finished Odoo record per business key.

Odoo has no unique constraint we can use for our keys (`account.move.ref` and
`stock.picking.origin` are not unique), an activity attempt that timed out may still be running
beside its retry, and PostgreSQL makes commits visible out of id order. Every record retailflow
must write exactly once (a sale's entry, its picking, a refund's entry) is therefore claimed by
draft, as docs/architecture.md ("Exactly-once writes") explains:

1. read the records carrying the key; one already finished (posted / done) wins: other drafts
   of that key are removed and the finished one is returned;
2. with no live draft, create one carrying the key, and read again;
3. the lowest-id live draft is the survivor: every other live draft of the key is removed
   *before* the survivor is finished, so a racing attempt that finished another draft first makes
   that removal fail, and this attempt re-converges instead of finishing a second record;
4. finish the survivor (post, validate); an error from a racing attempt's work ("must be in
   draft", a record gone) is not a verdict: read again and converge. A survivor this attempt
   finished without such an error is the key's record: no other live draft was visible, every
   racing attempt must remove it before finishing its own, and it can no longer be removed.

Each step costs Odoo server time (docs/odoo17-behaviour.md §h), so a caller that expects no
record yet (a first posting) may say `fresh`: step 1 is skipped and the draft created at once;
step 3's read still finds any other record of the key, finished or not, so nothing is lost.

Business refusals (Odoo's UserError/ValidationError on the finishing call) come back per key, so
a batch goes on without the refused ones; transport faults are raised as retryable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from odoorpc.error import RPCError

from activities.odoo.client import OdooClient, OdooUnavailable, error_name, raise_classified

# Each round re-reads Odoo; a race costs one more round. Past this, something keeps changing
# the records under us: retry the whole activity later.
MAX_ROUNDS = 6


@dataclass(frozen=True)
class Refusal:
    """Odoo refused to finish this key's record: a business problem for ops, not a retry."""

    error_type: str
    reason: str


@dataclass(frozen=True)
class Recheck:
    """What a finisher answers for a key when its call did not show that this attempt finished
    the record (a racing attempt's work, a renamed record): the claim reads it again."""


RECHECK = Recheck()


@dataclass(frozen=True)
class Claimed:
    key: str
    id: int
    name: str
    # True when another attempt (or an earlier activity) had already finished it: this call
    # changed nothing in Odoo for this key.
    already: bool
    # The extra fields the claim was asked to read, as last read (before finishing).
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimKind:
    """How one kind of record carries its key and says that it is finished."""

    model: str
    key_field: str
    done_states: frozenset[str]
    # States of records that no longer count (cancelled pickings); everything else is live.
    dead_states: frozenset[str] = frozenset()
    # True when the live draft itself is the goal (a reservation): no finishing step.
    draft_is_goal: bool = False
    # False for models without a `state` field (pricelists, external ids): every record found
    # counts and is the goal (use with draft_is_goal=True).
    has_state: bool = True
    # Narrows the search for keys (e.g. an external id's module and model).
    domain: tuple[tuple[str, str, Any], ...] = ()


MOVE = ClaimKind("account.move", "ref", frozenset({"posted"}), frozenset({"cancel"}))
PICKING = ClaimKind("stock.picking", "origin", frozenset({"done"}), frozenset({"cancel"}))

# Finish the survivors (key -> record id). Returns the keys Odoo refused, with why, and the keys
# to read again (RECHECK); every other survivor was finished by this call. May raise
# OdooUnavailable (retry the activity) or RPCError (classified by the caller).
Finisher = Callable[[dict[str, int]], dict[str, Refusal | Recheck]]
# Create one draft for each of these keys (they have none that is live).
Creator = Callable[[list[str]], dict[str, Refusal]]


def find(
    odoo: OdooClient, kind: ClaimKind, keys: Iterable[str], fields: Sequence[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """The records of each key that still count, lowest id first."""
    keys = list(keys)
    if not keys:
        return {}
    rows = odoo.call(
        kind.model,
        "search_read",
        [*kind.domain, (kind.key_field, "in", keys)],
        fields=[kind.key_field, "name", *(["state"] if kind.has_state else []), *fields],
        order="id asc",
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        row.setdefault("state", "")
        if row["state"] not in kind.dead_states:
            found[row[kind.key_field]].append(row)
    return found


def claim(
    odoo: OdooClient,
    kind: ClaimKind,
    keys: Iterable[str],
    create: Creator,
    finish: Finisher | None = None,
    fresh: bool = False,
    fields: Sequence[str] = (),
) -> dict[str, Claimed | Refusal]:
    """Converge every key on one finished record (see the module docstring). `fields`: more
    fields to read with each record, returned in `Claimed.values`."""
    result: dict[str, Claimed | Refusal] = {}
    pending = list(dict.fromkeys(keys))
    created: set[str] = set()
    finished_here: set[str] = set()
    if fresh and pending:
        for key, refusal in create(pending).items():
            result[key] = refusal
        created.update(pending)
        pending = [k for k in pending if k not in result]
    for _ in range(MAX_ROUNDS):
        if not pending:
            return result
        rows = find(odoo, kind, pending, fields)
        by_id = {r["id"]: r for live in rows.values() for r in live}
        survivors: dict[str, int] = {}
        losers: list[int] = []
        missing: list[str] = []
        for key in pending:
            live = rows.get(key, [])
            done = [r for r in live if r["state"] in kind.done_states]
            drafts = [r for r in live if r["state"] not in kind.done_states]
            if done:
                result[key] = Claimed(
                    key, done[0]["id"], done[0]["name"], key not in finished_here, done[0]
                )
                losers.extend(r["id"] for r in drafts)
            elif not drafts:
                missing.append(key)
            elif kind.draft_is_goal:
                result[key] = Claimed(
                    key, drafts[0]["id"], drafts[0]["name"], key not in created, drafts[0]
                )
                losers.extend(r["id"] for r in drafts[1:])
            else:
                survivors[key] = drafts[0]["id"]
                losers.extend(r["id"] for r in drafts[1:])
        pending = [k for k in pending if k not in result]
        if not remove(odoo, kind.model, losers):
            continue  # a record we meant to remove was finished meanwhile: read again
        if missing:
            refused = create(missing)
            created.update(missing)
            for key, refusal in refused.items():
                result[key] = refusal
            pending = [k for k in pending if k not in result]
            continue  # read our drafts back: another attempt's may be lower
        if survivors and finish is not None:
            answers = finish(survivors)
            for key, record_id in survivors.items():
                answer = answers.get(key)
                if isinstance(answer, Refusal):
                    result[key] = answer
                elif answer is None:
                    # Finished by this call: the key's record (module docstring, step 4).
                    row = by_id[record_id]
                    result[key] = Claimed(key, record_id, row["name"], False, row)
                else:
                    finished_here.add(key)  # read again: ours if it is finished now
            pending = [k for k in pending if k not in result]
    if pending:
        raise OdooUnavailable(
            f"{kind.model}: {len(pending)} key(s) did not settle after {MAX_ROUNDS} rounds "
            f"(e.g. {pending[0]}): records keep changing under this attempt"
        )
    return result


def remove(odoo: OdooClient, model: str, ids: list[int]) -> bool:
    """Delete leftovers of other attempts. A record already gone is fine. Returns False when a
    record could not be deleted because it is no longer a draft (another attempt finished it):
    the caller must read again rather than finish a second record."""
    if not ids:
        return True
    try:
        odoo.call_raw(model, "unlink", ids)
        return True
    except RPCError:
        pass  # find out which one, below
    settled = True
    for one in ids:
        try:
            odoo.call_raw(model, "unlink", [one])
        except RPCError as e:
            name = error_name(e)
            if name == "odoo.exceptions.MissingError":
                continue
            if name == "odoo.exceptions.UserError" and _is_finished(odoo, model, one):
                # "You can't delete a posted journal item" / "cannot cancel a stock move that has
                # been set to 'Done'": a racing attempt finished it. Converge on it.
                settled = False
                continue
            raise_classified(e, f"{model}.unlink {one}")
    return settled


def _is_finished(odoo: OdooClient, model: str, record_id: int) -> bool:
    rows = odoo.call(model, "read", [record_id], ["state"])
    return bool(rows) and rows[0]["state"] in ("posted", "done")
