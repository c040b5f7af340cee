"""A POS sale: the public JSON contract, its validation and its amounts.

The JSON form (one object per line in a .jsonl file, or the body of `POST /v1/sales`) is the
contract with POS platforms; field names here are that contract. Validation never raises
pydantic's raw error at a caller: `parse_sale` turns every problem into a `FieldError` that names
the field (`lines[0].qty`) and the problem, so a rejected sale can be kept with its reasons.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.customer import Customer
from domain.limits import (
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    MAX_JSON_DEPTH,
    MAX_QTY,
    LimitExceeded,
    MalformedJson,
    load_json,
    nesting_depth,
    oversized_ids,
)
from domain.money import KNOWN_CURRENCIES, ZERO, cents, has_cent_precision
from domain.validation import FieldError, InvalidInput, field_errors

Identifier = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^:\s]+$"
    ),
]


_AWARE: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    GIFT_CARD = "gift_card"


class SaleLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    qty: Decimal = Field(gt=0, lt=MAX_QTY, decimal_places=3)
    unit_price: Decimal = Field(ge=0, lt=MAX_AMOUNT, description="per unit, tax excluded")
    discount_pct: Decimal = Field(default=Decimal("0"), ge=0, le=100)
    tax_rate: Decimal = Field(ge=0, lt=1, description='a fraction, e.g. "0.15" for 15%')

    @field_validator("unit_price")
    @classmethod
    def _unit_price_in_cents(cls, v: Decimal) -> Decimal:
        if not has_cent_precision(v):
            raise ValueError("must have at most 2 decimal places")
        return v

    @property
    def net(self) -> Decimal:
        """Line amount tax excluded, after discount, rounded to the cent."""
        return cents(self.qty * self.unit_price * (1 - self.discount_pct / 100))

    @property
    def tax(self) -> Decimal:
        """Tax of this line, computed on the rounded net and rounded per line (Odoo's default)."""
        return cents(self.net * self.tax_rate)


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: PaymentMethod
    amount: Decimal = Field(gt=0, lt=MAX_AMOUNT)
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] | None = (
        None
    )

    @field_validator("amount")
    @classmethod
    def _amount_in_cents(cls, v: Decimal) -> Decimal:
        if not has_cent_precision(v):
            raise ValueError("must have at most 2 decimal places")
        return v


class Sale(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: Identifier
    txn_id: Identifier
    occurred_at: AwareDatetime
    currency: str
    lines: list[SaleLine] = Field(min_length=1, max_length=500)
    payments: list[Payment] = Field(min_length=1, max_length=20)
    # Who bought, when the store knows (docs/customers.md): synced to Odoo after posting.
    customer: Customer | None = None

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, v: str) -> str:
        if v not in KNOWN_CURRENCIES:
            raise ValueError(f"unknown currency {v!r} (expected an ISO 4217 code such as 'USD')")
        return v

    @model_validator(mode="after")
    def _payments_cover_total(self) -> Sale:
        paid = self.paid_total
        if paid != self.total:
            raise ValueError(
                f"payments total {paid} does not equal net {self.net_total} + tax "
                f"{self.tax_total} = {self.total}"
            )
        return self

    @property
    def key(self) -> str:
        """The external key carried into Odoo (`ref` and every item's label)."""
        return sale_key(self.store_id, self.txn_id)

    def ledger_record(self) -> dict[str, Any]:
        """The sale as its Odoo entry keeps it: the customer by POS id only, since a posted
        entry cannot be changed when the customer asks to be erased."""
        record = self.model_dump(mode="json", exclude={"customer"})
        if self.customer is not None:
            record["customer"] = {"pos_customer_id": self.customer.pos_customer_id}
        return record

    @property
    def business_day(self) -> date:
        """The store's calendar day of the sale, in the offset the POS reported."""
        return self.occurred_at.date()

    @property
    def net_total(self) -> Decimal:
        return sum((line.net for line in self.lines), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return sum((line.tax for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.net_total + self.tax_total

    @property
    def paid_total(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)


def sale_key(store_id: str, txn_id: str) -> str:
    return f"POS:{store_id}:{txn_id}"


class SaleRejected(InvalidInput):
    """A sale that cannot be accepted, with every reason found."""


class SaleRefused(InvalidInput):
    """Input beyond what the edge accepts at all (too large, too deep, an id too long to name
    a workflow): refused where it arrives, nothing started, nothing kept."""


def rejection_from(exc: ValidationError) -> SaleRejected:
    return SaleRejected(field_errors(exc, "sale"))


def decode_sale_json(text: str | bytes) -> dict[str, Any]:
    """JSON text to a raw sale object, numbers exact (Decimal); a malformed, too large or too
    deeply nested document is a rejection, not a crash."""
    try:
        raw = load_json(text)
    except (MalformedJson, LimitExceeded) as e:
        what = "malformed JSON" if isinstance(e, MalformedJson) else "refused"
        raise SaleRejected([FieldError(field="sale", message=f"{what}: {e}")]) from e
    if not isinstance(raw, dict):
        raise SaleRejected(
            [FieldError(field="sale", message=f"must be a JSON object, got {type(raw).__name__}")]
        )
    return raw


def parse_sale(raw: dict[str, Any] | str | bytes) -> Sale:
    """Validate a raw sale (a JSON object or its text). Raises SaleRejected naming each field,
    and nothing else whatever the input: a workflow that parses a sale never fails on data."""
    if isinstance(raw, str | bytes):
        raw = decode_sale_json(raw)
    if nesting_depth(raw) > MAX_JSON_DEPTH:
        raise SaleRejected(
            [FieldError(field="sale", message=f"nested more than {MAX_JSON_DEPTH} levels deep")]
        )
    try:
        return Sale.model_validate(raw)
    except ValidationError as e:
        raise rejection_from(e) from e
    except Exception as e:  # a bug must not wedge a workflow: the sale is kept, rejected
        message = f"cannot be read ({type(e).__name__}: {e})"
        raise SaleRejected([FieldError(field="sale", message=message)]) from e


def read_raw_sale(text: str | bytes) -> dict[str, Any] | str:
    """What the edge (ingress, CLI files) makes of one sale's text: the JSON object, numbers
    exact, or the text itself when it is not one (it is kept, rejected, with its reasons).

    Raises SaleRefused, naming the problem, for input no workflow should hold: larger than
    1 MiB, nested more than 16 levels, or a store/txn id longer than 64 characters."""
    try:
        raw = load_json(text)
    except LimitExceeded as e:
        raise SaleRefused([FieldError(field="sale", message=str(e))]) from e
    except MalformedJson:
        return text if isinstance(text, str) else text.decode(errors="replace")
    if not isinstance(raw, dict):
        return text if isinstance(text, str) else text.decode(errors="replace")
    problems = oversized_ids(raw)
    if problems:
        raise SaleRefused([FieldError(field=field, message=message) for field, message in problems])
    return raw


def raw_sale_identity(raw: dict[str, Any] | str) -> tuple[str, str] | None:
    """(store_id, txn_id) of a raw sale when both are present and usable, else None.

    Used to key the workflow of a sale even when the rest of it is invalid, so a rejected sale
    is still absorbed as a duplicate when the POS resends it.
    """
    if not isinstance(raw, dict):
        return None
    store, txn = raw.get("store_id"), raw.get("txn_id")
    if not isinstance(store, str) or not isinstance(txn, str):
        return None
    store, txn = store.strip(), txn.strip()
    if not store or not txn or any(c in s for s in (store, txn) for c in ": \t\n"):
        return None
    return store, txn


def raw_business_day(raw: dict[str, Any] | str) -> date | None:
    """The business day a raw sale says it belongs to, even when the rest of it is invalid
    (so a rejected sale is found in its day's exception inbox); None when it does not say."""
    if not isinstance(raw, dict):
        return None
    try:
        occurred: datetime = _AWARE.validate_python(raw.get("occurred_at"))
    except Exception:
        return None
    return occurred.date()


def unidentified_key(raw: dict[str, Any] | str) -> str:
    """A stable key for input that does not even say which sale it is (hash of its content)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
