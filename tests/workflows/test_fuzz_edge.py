"""Property tests of the edge: whatever a POS posts or a file holds, never a 5xx, never a
traceback, and every accepted sale is booked in Odoo exactly once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import odoorpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from domain.sale import SaleRejected, parse_sale, sale_key
from simulators.odoo import OdooEmulator
from tests.conftest import AUTH, running_worker, settings_for
from tests.workflows.helpers import moves_for, sales_for
from workers.cli import CliError, _read_jsonl
from workers.ingress import build_app
from workers.submit import Submission, Submitted, wait_until_settled

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
# Raw JSON fragments Python's json module would misread or choke on.
hostile_literals = st.sampled_from(
    [
        "1e308",
        "-1e308",
        "1e-400",
        "123456789012345678.91",
        "1" + "0" * 5000,
        "NaN",
        "Infinity",
        "-0",
        '"' + "T" * 2000 + '"',
    ]
)
nesting = st.integers(min_value=1, max_value=700).map(lambda n: "[" * n + "]" * n)
fragments = st.one_of(json_values.map(json.dumps), hostile_literals, nesting)
FIELDS = [
    ("store_id",),
    ("txn_id",),
    ("occurred_at",),
    ("currency",),
    ("lines",),
    ("lines", 0, "qty"),
    ("lines", 0, "unit_price"),
    ("lines", 0, "tax_rate"),
    ("lines", 0, "discount_pct"),
    ("payments", 0, "amount"),
    ("payments", 0, "method"),
    ("extra",),
]
mutations = st.one_of(
    st.none(),  # a valid sale, amounts as JSON strings
    st.just("numbers"),  # a valid sale, amounts as JSON numbers (read exactly, as Decimal)
    st.tuples(st.sampled_from(FIELDS), fragments),
    st.binary(max_size=64),
)

PLACEHOLDER = "__FUZZ__"


def body_for(base: dict[str, Any], mutation: Any) -> bytes:
    if isinstance(mutation, bytes):
        return mutation
    if mutation is None:
        return json.dumps(base).encode()
    if mutation == "numbers":
        text = json.dumps(base)
        for line in base["lines"]:
            text = text.replace(
                f'"unit_price": "{line["unit_price"]}"', f'"unit_price": {line["unit_price"]}'
            )
        for p in base["payments"]:
            text = text.replace(f'"amount": "{p["amount"]}"', f'"amount": {p["amount"]}')
        return text.encode()
    path, fragment = mutation
    raw: Any = json.loads(json.dumps(base))
    target = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = PLACEHOLDER
    return json.dumps(raw).replace(f'"{PLACEHOLDER}"', fragment).encode()


async def test_ingress_never_fails_and_books_every_accepted_sale_once(
    client: Client,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    temporal_address: str,
    store_id: str,
) -> None:
    settings_ = settings_for(odoo_emulator, temporal_address)
    app = build_app(settings_, client=client)
    base = sales_for(store_id, 1)[0]
    # Generated first (nothing else running, so Hypothesis owns the random state), then posted.
    bodies: list[bytes] = []

    @FUZZ
    @given(mutation=mutations)
    def generate(mutation: Any) -> None:
        bodies.append(body_for(dict(base, txn_id=f"F{len(bodies):04d}"), mutation))

    generate()
    accepted: dict[str, str] = {}  # workflow id -> sale key
    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(client, settings_),
        httpx.AsyncClient(transport=transport, base_url="http://ingress", headers=AUTH) as http,
    ):
        for body in bodies:
            response = await http.post("/v1/sales", content=body)
            assert response.status_code < 500, (body[:300], response.text)
            answer = response.json()
            assert answer["status"] in ("accepted", "duplicate", "rejected", "refused")
            if answer["status"] == "accepted":
                parsed = parse_sale(body.decode())
                accepted[answer["workflow_id"]] = sale_key(parsed.store_id, parsed.txn_id)
        assert accepted, "no valid sale was generated"
        results = await wait_until_settled(
            client,
            [Submitted(workflow_id=w, submission=Submission.ACCEPTED) for w in accepted],
            timedelta(seconds=120),
        )

    assert all(r.status.value == "Posted" for r in results.values())
    for key in accepted.values():
        posted = [m for m in moves_for(odoo, key) if m["state"] == "posted"]
        assert len(posted) == 1, (key, posted)


BASE = sales_for("S1", 1)[0]
lines = st.one_of(
    st.binary(max_size=80),
    fragments.map(str.encode),
    mutations.map(lambda m: body_for(BASE, m)),
)


@FUZZ
@given(content=st.lists(lines, max_size=5).map(lambda xs: b"\n".join(xs)))
# Found by this test: a line of characters str.splitlines() cuts at, which the reader took
# for a blank line and dropped; and a sale whose text holds one of them, which it cut in two.
@example(content=b"\x1c")
@example(content=b"\xe2\x80\xa8\n\x0b")
@example(content=body_for(BASE, None).replace(b'"S1"', '"S\u20281"'.encode()))
def test_file_reader_refuses_clearly_or_reads_every_line(content: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "sales.jsonl"
        path.write_bytes(content)
        try:
            raws = _read_jsonl(str(path))
        except CliError as e:
            assert "\n" not in str(e)
            return
    # Whatever was read, validating it never raises anything but SaleRejected.
    for raw in raws:
        try:
            parse_sale(raw)
        except SaleRejected as e:
            assert e.errors
    # Every line but the blank ones (JSON's whitespace only) is read: none is dropped.
    assert len(raws) == sum(1 for ln in content.split(b"\n") if ln.strip(b" \t\r"))


def test_a_sale_holding_a_unicode_line_separator_is_one_line(tmp_path: Path) -> None:
    """JSON allows U+2028 and U+0085 unescaped in a string: the line stays one sale."""
    sale = json.loads(body_for(BASE, None))
    sale["lines"][0]["description"] = "mug\u2028white\x85"
    path = tmp_path / "sales.jsonl"
    path.write_bytes(json.dumps(sale, ensure_ascii=False).encode() + b"\n\n")
    (raw,) = _read_jsonl(str(path))
    assert isinstance(raw, dict) and raw["lines"][0]["description"] == "mug\u2028white\x85"


@pytest.mark.parametrize("n", [199, 200, 201, 10_000])
def test_parse_sale_never_raises_anything_but_a_rejection_on_depth(n: int) -> None:
    with pytest.raises(SaleRejected):
        parse_sale('{"store_id": "S1", "txn_id": "T1", "lines": ' + "[" * n + "]" * n + "}")
