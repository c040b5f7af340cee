"""Stripe's wire format: form-encoded bracketed parameters in, JSON objects out."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2026-10-28.endive"
_PART = re.compile(r"\[([^\]]*)\]")


def decode_form(text: str) -> dict[str, Any]:
    """``metadata[k]=v&expand[0]=x&created[gte]=1`` → ``{"metadata": {"k": "v"},
    "expand": ["x"], "created": {"gte": "1"}}``; ``a[]=x`` appends."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head, _, tail = key.partition("[")
        parts = [head, *_PART.findall("[" + tail)] if tail else [head]
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = str(len(node))  # a[] appends
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValueError(f"parameter {key!r} mixes a value and a hash")
                node = child
    decoded: dict[str, Any] = _lists(root)
    return decoded


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def canonical(params: dict[str, Any]) -> str:
    """A stable text of the parameters, to compare an idempotent retry with its first use."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)


def money(amount: int, currency: str) -> str:
    """How Stripe's messages show an amount: ``$15.91`` (``¥500`` for zero-decimal)."""
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount}" if currency.lower() != "jpy" else f"¥{amount}"
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower(), "$")
    return f"{symbol}{amount / 100:.2f}"
