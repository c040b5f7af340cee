"""What the edge accepts at all: sizes, nesting, magnitudes and id lengths, and a JSON reader
that keeps every number exact.

Everything a POS, a file or a person sends is read here before it can reach a workflow. Input
beyond these limits is refused where it arrives (HTTP 4xx, a CLI error naming the line), so no
workflow ever holds data it cannot decode or compute with. Numbers are read as `Decimal`, so
no float ever carries money (`123456789012345678.91` stays exact, and is then refused as too
large rather than booked as `1.2345678901234568e+17`).

The limits (documented in the README):

- a request body or a file line: at most 1 MiB (`MAX_BODY_BYTES`);
- JSON nesting: at most 16 levels (`MAX_JSON_DEPTH`; a sale needs 3);
- store, txn, refund and rollout ids: at most 64 characters (`MAX_ID_LENGTH`);
- money (unit prices, payments, refund amounts, rollout prices): below 10^9 (`MAX_AMOUNT`);
- quantities: below 10^6 (`MAX_QTY`);
- a sale: at most 500 lines and 20 payments (`MAX_SALE_LINES`, `MAX_SALE_PAYMENTS`);
- an id put in a visibility query: no quote, backslash or control character
  (`visibility_literal`).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 16
MAX_ID_LENGTH = 64
MAX_AMOUNT = Decimal(10) ** 9
MAX_QTY = Decimal(10) ** 6
MAX_SALE_LINES = 500
MAX_SALE_PAYMENTS = 20
# An integer with more digits than this is read as a Decimal (Python refuses to parse ints of
# more than 4300 digits, and a number that long is refused by the magnitude limits anyway).
_INT_DIGITS = 18

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class LimitExceeded(ValueError):
    """Input beyond what the edge accepts at all: refused where it arrives, never kept."""


class MalformedJson(ValueError):
    """Text that is not one JSON document."""


def json_depth(text: str, stop_above: int = MAX_JSON_DEPTH) -> int:
    """How deeply the JSON text nests arrays and objects, without recursion (brackets inside
    strings do not count). Stops counting once past `stop_above`."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        else:
            depth = max(depth - 1, 0)
    return deepest


def _no_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number")


def _int(text: str) -> int | Decimal:
    return int(text) if len(text.lstrip("-")) <= _INT_DIGITS else Decimal(text)


def load_json(
    text: str | bytes, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """One JSON document, numbers as Decimal (integers stay ints). Raises LimitExceeded when it
    is too large or too deep, MalformedJson when it is not JSON; never anything else."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise LimitExceeded(f"{size} bytes is more than the {max_bytes} accepted")
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as e:
            raise MalformedJson(f"not UTF-8 text: {e}") from e
    depth = json_depth(text, max_depth)
    if depth > max_depth:
        raise LimitExceeded(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_float=Decimal, parse_int=_int, parse_constant=_no_constant)
    except MalformedJson:
        raise
    except RecursionError as e:  # only if the depth scan disagreed with the parser
        raise LimitExceeded(f"nested more than {max_depth} levels deep") from e
    except (ValueError, ArithmeticError) as e:
        raise MalformedJson(str(e)) from e


def nesting_depth(value: Any, stop_above: int = MAX_JSON_DEPTH) -> int:
    """How deeply a decoded value nests lists and dicts, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list | tuple):
            deepest = max(deepest, d)
            if deepest > stop_above:
                break
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def oversized_ids(
    raw: Any, fields: tuple[str, ...] = ("store_id", "txn_id")
) -> list[tuple[str, str]]:
    """The id fields of a raw object too long to name a workflow: (field, message) pairs."""
    if not isinstance(raw, dict):
        return []
    return [
        (f, f"at most {MAX_ID_LENGTH} characters, got {len(v.strip())}")
        for f in fields
        if isinstance(v := raw.get(f), str) and len(v.strip()) > MAX_ID_LENGTH
    ]


def oversized_lists(raw: Any) -> list[tuple[str, str]]:
    """The lists of a raw sale longer than a sale may have: (field, message) pairs."""
    if not isinstance(raw, dict):
        return []
    return [
        (f, f"at most {limit} {f}, got {len(v)}")
        for f, limit in (("lines", MAX_SALE_LINES), ("payments", MAX_SALE_PAYMENTS))
        if isinstance(v := raw.get(f), list) and len(v) > limit
    ]


_UNSAFE_IN_QUERY = re.compile(r"[\"'\\\x00-\x1f\x7f]")


def visibility_literal(value: str, what: str = "id") -> str:
    """`value` as a quoted string of a Temporal visibility query. Raises ValueError, naming
    `what`, for a value that could change the query's meaning: a quote, a backslash, a control
    character, empty, or longer than an id may be."""
    if not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what}: must be 1 to {MAX_ID_LENGTH} characters, got {len(value)}")
    if _UNSAFE_IN_QUERY.search(value):
        raise ValueError(f"{what}: {value[:70]!r} holds a quote, backslash or control character")
    return f'"{value}"'
