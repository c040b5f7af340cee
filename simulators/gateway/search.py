"""Stripe's search for payment intents (``GET /v1/payment_intents/search``), in SQL.

The query language subset: clauses joined by `` AND ``, each one of

* ``metadata['key']:'value'`` (double quotes too), an exact match;
* ``created>=N``, ``created>N``, ``created<N``, ``created<=N``, ``created:N`` (Unix seconds);
* ``amount`` with the same operators (minor units);
* ``status:'succeeded'``, ``currency:'usd'``.

Anything else (``OR``, negation ``-``, substring ``~``, other fields) is Stripe's 400
``invalid_request_error`` naming the clause. Results are newest first (``created``, then id);
``next_page`` is an opaque cursor on the last result, so each page is one indexed range scan:
``metadata['store_id']`` uses the denormalised ``store_id`` column, ``created`` its index.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select

from .errors import invalid
from .tables import PaymentIntentRow

SEARCH_PARAMS = frozenset({"query", "limit", "page", "expand"})
# Every payment intent the simulator holds is a succeeded card payment.
INTENT_STATUS = "succeeded"
_VALUE = r"""'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<num>-?\d+)"""
_CLAUSE = re.compile(
    r"""^(?:metadata\[(?:'(?P<k1>[^'"\]]+)'|"(?P<k2>[^'"\]]+)")\]|(?P<field>[a-z_]+))"""
    rf"""(?P<op>>=|<=|:|>|<)(?:{_VALUE})$"""
)
_NUMERIC = {"created": PaymentIntentRow.created, "amount": PaymentIntentRow.amount}


def _query_error(message: str) -> Exception:
    return invalid(message, "parameter_invalid_string", "query")


def _limit(params: dict[str, Any]) -> int:
    raw = params.get("limit", 10)
    try:
        limit = int(str(raw))
    except ValueError:
        raise invalid(f"Invalid integer: {raw}", "parameter_invalid_integer", "limit") from None
    if not 1 <= limit <= 100:
        raise invalid(
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            "parameter_invalid_integer",
            "limit",
        )
    return limit


def _clause(text: str) -> ColumnElement[bool] | None:
    """One clause as a SQL condition (None: matches every payment intent)."""
    m = _CLAUSE.match(text)
    if m is None:
        raise _query_error(
            f"Invalid search query clause: `{text}`. Use field:'value' or created>=N, "
            "joined by AND."
        )
    key = m["k1"] or m["k2"]
    field, op = m["field"], m["op"]
    string = m["sq"] if m["sq"] is not None else m["dq"]
    number = m["num"]
    if key is not None:
        if op != ":" or string is None:
            raise _query_error(
                f"Metadata can only be matched exactly, as a quoted string: `{text}`"
            )
        if key == "store_id":
            return col(PaymentIntentRow.store_id) == string
        return func.json_extract(PaymentIntentRow.metadata_json, f'$."{key}"') == string
    if field in _NUMERIC:
        if number is None:
            raise _query_error(f"`{field}` takes an integer, unquoted: `{text}`")
        column, value = col(_NUMERIC[field]), int(number)
        return {
            ":": column == value,
            ">": column > value,
            ">=": column >= value,
            "<": column < value,
            "<=": column <= value,
        }[op]
    if field in ("status", "currency"):
        if op != ":" or string is None:
            raise _query_error(
                f"`{field}` can only be matched exactly, as a quoted string: `{text}`"
            )
        if field == "currency":
            return col(PaymentIntentRow.currency) == string.lower()
        return None if string == INTENT_STATUS else col(PaymentIntentRow.id).is_(None)
    raise _query_error(f"Field `{field}` is an unsupported field for payment intent search.")


def _conditions(query: Any) -> list[ColumnElement[bool]]:
    if not isinstance(query, str) or not query.strip():
        raise invalid("Missing required param: query.", "parameter_missing", "query")
    if re.search(r"\sOR\s", query):
        raise _query_error("Queries combining clauses with OR are not supported here: use AND.")
    conditions: list[ColumnElement[bool]] = []
    for text in re.split(r"\s+AND\s+", query.strip()):
        condition = _clause(text.strip())
        if condition is not None:
            conditions.append(condition)
    return conditions


def _cursor(page: Any) -> tuple[int, str] | None:
    if page in (None, ""):
        return None
    try:
        created, intent_id = json.loads(base64.urlsafe_b64decode(str(page).encode()))
        return int(created), str(intent_id)
    except (ValueError, TypeError, binascii.Error):
        raise invalid(f"Invalid page: {page}", "parameter_invalid_string", "page") from None


def _token(row: PaymentIntentRow) -> str:
    return base64.urlsafe_b64encode(json.dumps([row.created, row.id]).encode()).decode()


def search_payment_intents(
    s: Session, params: dict[str, Any]
) -> tuple[list[PaymentIntentRow], str | None, tuple[str, ...]]:
    """One page of matches (newest first), the next page's token (None on the last page) and
    what to expand on each result (``expand[]=data.latest_charge``)."""
    unknown = sorted(set(params) - SEARCH_PARAMS)
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", "parameter_unknown", unknown[0])
    conditions = _conditions(params.get("query"))
    limit = _limit(params)
    cursor = _cursor(params.get("page"))
    if cursor is not None:
        created, intent_id = cursor
        conditions.append(
            or_(
                col(PaymentIntentRow.created) < created,
                and_(
                    col(PaymentIntentRow.created) == created, col(PaymentIntentRow.id) < intent_id
                ),
            )
        )
    expand_param = params.get("expand") or ()
    if isinstance(expand_param, str):
        expand_param = (expand_param,)
    expand = tuple(str(e).removeprefix("data.") for e in expand_param)
    query = (
        select(PaymentIntentRow)
        .where(*conditions)
        .order_by(col(PaymentIntentRow.created).desc(), col(PaymentIntentRow.id).desc())
        .limit(limit + 1)
    )
    rows = list(s.exec(query))
    if len(rows) > limit:
        return rows[:limit], _token(rows[limit - 1]), expand
    return rows, None, expand
