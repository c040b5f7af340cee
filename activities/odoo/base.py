"""What every Odoo activity class shares: the client and posting profile, journal-entry values,
posting a claimed entry, and the JSON record retailflow keeps in an entry's narration."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any, NoReturn

from odoorpc.error import RPCError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.claim import RECHECK, Recheck, Refusal
from activities.odoo.client import (
    OdooClient,
    OdooUnavailable,
    error_name,
    is_sequence_collision,
    raise_classified,
)
from domain.posting import JournalEntry, PostingProfile

NARRATION_PREFIX = "retailflow "


def narration(kind: str, record: dict[str, Any], stock_origin: str | None = None) -> str:
    """What retailflow keeps in a move's narration: a JSON record, readable by people too.

    `stock_origin` (a sale's entry only) names the picking origin responsible for the sale's
    goods; it sits before the record, so the record stays exactly the sale."""
    tag = f" [stock_origin {stock_origin}]" if stock_origin else ""
    return f"{NARRATION_PREFIX}{kind}{tag}: {json.dumps(record, sort_keys=True)}"


_STOCK_ORIGIN = re.compile(r"\[stock_origin ([^\]\s]+)\]")


def stock_origin_of(text: str | bool | None) -> str | None:
    """The stock origin a sale's entry names (None: posted before entries named one)."""
    if not isinstance(text, str):
        return None
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    head = plain.split("{", 1)[0]
    found = _STOCK_ORIGIN.search(head)
    return found.group(1) if found else None


def record_from_narration(text: str | bool | None) -> dict[str, Any] | None:
    """The JSON record of a narration (Odoo stores it as HTML: tags and escapes undone)."""
    if not isinstance(text, str) or "{" not in text:
        return None
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    try:
        record = json.loads(plain[plain.index("{") : plain.rindex("}") + 1])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def first_attempt() -> bool:
    """True in an activity's first attempt (and outside any activity, e.g. a unit test): no
    earlier attempt of this call can have left records behind."""
    return not activity.in_activity() or activity.info().attempt == 1


def odoo_datetime(at: datetime) -> str:
    """Odoo's Datetime wire format: naive UTC 'YYYY-MM-DD HH:MM:SS'."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def refusal_of(e: RPCError, what: str) -> Refusal:
    """Odoo's answer as a business refusal, or raised again when it is worth a retry."""
    try:
        raise_classified(e, what)
    except ApplicationError as app:
        return Refusal(app.type or "OdooError", str(e))


def raise_refusal(refusal: Refusal) -> NoReturn:
    raise ApplicationError(refusal.reason, type=refusal.error_type, non_retryable=True)


class OdooActivityBase:
    def __init__(self, odoo: OdooClient, profile: PostingProfile) -> None:
        self.odoo = odoo
        self.profile = profile

    def _move_vals(self, entry: JournalEntry) -> dict[str, Any]:
        accounts = self.odoo.account_ids(line.account_code for line in entry.lines)
        return {
            "move_type": "entry",
            "journal_id": self.odoo.journal_id(entry.journal_code),
            "date": entry.date.isoformat(),
            "ref": entry.ref,
            "line_ids": [
                (
                    0,
                    0,
                    {
                        "account_id": accounts[line.account_code],
                        "name": line.name,
                        # Cent amounts bounded by domain/posting.py MAX_BOOKABLE: exact.
                        "debit": float(line.debit),
                        "credit": float(line.credit),
                    },
                )
                for line in entry.lines
            ],
        }

    def _post_entries(self, survivors: dict[str, int]) -> dict[str, Refusal | Recheck]:
        """Finish claimed entries: post them all in one RPC, or one by one to find the refused.
        A draft's name is `/` until it is posted (docs/odoo17-behaviour.md §e): callers read
        the posted names back."""
        try:
            self.odoo.call_raw("account.move", "action_post", list(survivors.values()))
            return {}
        except RPCError:
            pass  # find out which one, below
        answers: dict[str, Refusal | Recheck] = {}
        for key, move_id in survivors.items():
            answer = self._post_entry(key, move_id)
            if answer is not None:
                answers[key] = answer
        return answers

    def _post_entry(self, key: str, move_id: int) -> Refusal | Recheck | None:
        """Post one entry: None when this call posted it, RECHECK when a racing attempt's work
        (or a renumbering) means the claim must read it again, or Odoo's refusal."""
        for attempt in range(3):
            try:
                self.odoo.call_raw("account.move", "action_post", [move_id])
                return None if attempt == 0 else RECHECK
            except RPCError as e:
                if is_sequence_collision(e):
                    # Two drafts got the same sequence name (first move of a period, created
                    # concurrently): reset the name and let Odoo number it again.
                    self.odoo.call("account.move", "write", [move_id], {"name": "/"})
                    continue
                if "must be in draft" in str(e) or error_name(e) == "odoo.exceptions.MissingError":
                    return RECHECK  # a racing attempt posted or removed it
                return refusal_of(e, f"account.move.action_post {key}")
        raise OdooUnavailable(f"entry {move_id} for {key}: sequence name kept colliding")
