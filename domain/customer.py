"""Customers as the stores give them: the `customer` block of a sale, and the rules for what
retailflow may write about them into Odoo (docs/customers.md).

Ownership: the store owns the customer's marketing consent as given at the till; Odoo owns the
partner (its name, addresses, company and accounting fields, once set). So a sale's customer
only fills empty contact fields, never overwrites them; consent is last-writer-wins by the time
it was given, never by the time it arrived; loyalty points are earned per sale under a policy
and reversed in proportion to what is refunded.

retailflow's own record about a partner (consent with who/when/source, loyalty balance, the
last loyalty event applied, erasure) is one paragraph of the partner's Notes (`comment`),
`retailflow customer: {json}`; the rest of the Notes is Odoo's and kept as it is.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from domain.limits import MAX_ID_LENGTH
from domain.validation import load_settings_file

# The POS platform whose customer ids these are: one binder namespace per platform.
DEFAULT_PLATFORM = "pos"
# The name a partner gets when the store gave none (Odoo requires a contact's name).
PLACEHOLDER_NAME = "POS customer"
ERASED_NAME = "Erased customer"
BLOCK_PREFIX = "retailflow customer: "

CustomerId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^:\s@]+$"
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class Consent(BaseModel):
    """Marketing consent as the customer gave it: yes or no, when, and through what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    marketing: bool
    at: AwareDatetime
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

    @field_validator("marketing", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v


class Customer(BaseModel):
    """The optional `customer` of a sale. `pos_customer_id` is the POS platform's opaque id
    (it names a workflow and an Odoo external id, so it must not be an email or a phone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pos_customer_id: CustomerId
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = None
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[+0-9 ().\-/]{3,32}$")]
        | None
    ) = None
    name: Text | None = None
    consent: Consent | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise ValueError("is not an email address")
        return v

    def without_personal_data(self) -> Customer:
        """The id and consent only: what may stay once the customer asked to be erased."""
        return Customer(pos_customer_id=self.pos_customer_id, consent=self.consent)


# -- merge ----------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is False or value is None or (isinstance(value, str) and not value.strip())


def partner_create_values(customer: Customer) -> dict[str, Any]:
    """A new partner for a customer the store has just introduced."""
    vals: dict[str, Any] = {
        "name": customer.name or PLACEHOLDER_NAME,
        "customer_rank": 1,
    }
    if customer.email:
        vals["email"] = customer.email
    if customer.phone:
        vals["phone"] = customer.phone
    return vals


def partner_fill_values(current: dict[str, Any], customer: Customer) -> dict[str, Any]:
    """What to write on an existing partner: only contact fields Odoo has empty (a placeholder
    name counts as empty); nothing else, ever (company, addresses, accounting are Odoo's)."""
    out: dict[str, Any] = {}
    name = current.get("name")
    if customer.name and (_empty(name) or name == PLACEHOLDER_NAME):
        out["name"] = customer.name
    if customer.email and _empty(current.get("email")):
        out["email"] = customer.email
    if customer.phone and _empty(current.get("phone")):
        out["phone"] = customer.phone
    return out


# -- consent --------------------------------------------------------------------------------


class ConsentRecord(BaseModel):
    """Consent as recorded in Odoo: what, when given, through what, and who (the store)."""

    marketing: bool
    at: AwareDatetime
    source: str
    recorded_by: str


def newer_consent(
    current: ConsentRecord | None, incoming: ConsentRecord | None
) -> ConsentRecord | None:
    """Last writer by the time consent was given: an older consent arriving later never wins
    (on a tie the one recorded first stays)."""
    if incoming is None:
        return current
    if current is None or incoming.at > current.at:
        return incoming
    return current


# -- Odoo's email blacklist ------------------------------------------------------------------
# Odoo's mass mailing and mail templates skip an address on `mail.blacklist`; retailflow puts
# the customer's address there on a marketing opt-out and takes it off on a newer opt-in, but
# only an entry older than that opt-in: one made later (the customer unsubscribed from a
# mailing, an Odoo user listed them) says something newer than the till and stays.

# Odoo reads datetimes to the second, naive UTC.
ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"


class BlacklistEntry(BaseModel):
    """A `mail.blacklist` row as read (archived = not blacklisted)."""

    id: int
    active: bool
    write_date: str


class BlacklistMark(BaseModel):
    """What retailflow last did about the partner's address on the blacklist, kept in its
    block: the consent it acted on, whether the address was left listed, and the entry as it
    was right after, so that an entry nobody touched since is known to be retailflow's."""

    consent_at: AwareDatetime
    listed: bool
    ours: bool = False
    entry_id: int | None = None
    entry_write_date: str | None = None


class BlacklistStep(StrEnum):
    ADD = "add"  # list the address (create, or unarchive), with a note saying why
    LIFT = "lift"  # archive the entry, with a note saying why
    KEEP = "keep"  # leave the blacklist as it is


def blacklist_note_key(consent: ConsentRecord) -> str:
    """The start of the note retailflow posts on the entry for this consent: found again, it
    tells a retry that the step was taken."""
    what = "opt-in" if consent.marketing else "opt-out"
    return f"retailflow: marketing {what} given {consent.at.astimezone(UTC).isoformat()}"


def blacklist_note(consent: ConsentRecord) -> str:
    does = (
        "the address is taken off the blacklist"
        if consent.marketing
        else "mass mailings must not reach this address"
    )
    return (
        f"{blacklist_note_key(consent)} (source {consent.source}, "
        f"recorded by store {consent.recorded_by}); {does}."
    )


def _entry_upper_bound(entry: BlacklistEntry) -> datetime:
    written = datetime.strptime(entry.write_date, ODOO_DATETIME).replace(tzinfo=UTC)
    return written + timedelta(seconds=1)  # read to the second: at the latest this


def _is_ours(mark: BlacklistMark | None, entry: BlacklistEntry) -> bool:
    """The entry is as retailflow left it when it listed the address for an opt-out."""
    return (
        mark is not None
        and mark.ours
        and mark.entry_id == entry.id
        and mark.entry_write_date == entry.write_date
    )


def blacklist_step(
    consent: ConsentRecord | None,
    mark: BlacklistMark | None,
    entry: BlacklistEntry | None,
    noted: bool,
) -> BlacklistStep | None:
    """What to do on the blacklist for the consent recorded (None: it was already done).
    `noted`: the entry carries retailflow's note for this consent (an earlier attempt whose
    answer was lost got that far)."""
    if consent is None or (mark is not None and mark.consent_at == consent.at):
        return None
    if not consent.marketing:
        if entry is None or not entry.active or noted:
            return BlacklistStep.ADD
        return BlacklistStep.KEEP  # listed already, by someone else
    if entry is None or not entry.active:
        return BlacklistStep.KEEP
    if _is_ours(mark, entry):
        # retailflow listed it for an opt-out, older than this consent (consent only advances),
        # and nobody touched it since: its write time is when it was processed, not given.
        assert mark is not None
        older = mark.consent_at < consent.at
    else:
        older = _entry_upper_bound(entry) <= consent.at
    return BlacklistStep.LIFT if older else BlacklistStep.KEEP


def next_blacklist_mark(
    consent: ConsentRecord,
    mark: BlacklistMark | None,
    step: BlacklistStep,
    before: BlacklistEntry | None,
    after: BlacklistEntry | None,
) -> BlacklistMark:
    """The mark once `step` was taken for `consent` (`before`/`after`: the entry around it)."""
    ours = step is BlacklistStep.ADD or (
        not consent.marketing and before is not None and _is_ours(mark, before)
    )
    return BlacklistMark(
        consent_at=consent.at,
        listed=bool(after and after.active),
        ours=ours and after is not None,
        entry_id=after.id if after else None,
        entry_write_date=after.write_date if after else None,
    )


# -- loyalty --------------------------------------------------------------------------------


class LoyaltyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Lines whose SKU starts with this earn `points_per_unit` instead of the default.
    sku_prefix: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    points_per_unit: Decimal = Field(ge=0, le=1000)


class LoyaltyPolicy(BaseModel):
    """Points per currency unit of a line's net amount (tax excluded), rounded down per sale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points_per_unit: Decimal = Field(default=Decimal(1), ge=0, le=1000)
    rules: list[LoyaltyRule] = []

    def rate_for(self, sku: str) -> Decimal:
        for rule in self.rules:
            if sku.startswith(rule.sku_prefix):
                return rule.points_per_unit
        return self.points_per_unit


def load_loyalty_policy(path: str | Path | None) -> LoyaltyPolicy:
    """The default (1 point per currency unit), or a policy read from a TOML or JSON file."""
    if path is None:
        return LoyaltyPolicy()
    return load_settings_file(LoyaltyPolicy, path, "loyalty policy")


def points_for(lines: list[tuple[str, Decimal]], policy: LoyaltyPolicy) -> int:
    """Points a sale earns: (sku, net amount) per line, each at its rate, summed, rounded down."""
    total = sum((net * policy.rate_for(sku) for sku, net in lines), Decimal(0))
    return max(0, int(total.to_integral_value(rounding=ROUND_FLOOR)))


def points_to_reverse(
    earned: int,
    sale_total: Decimal,
    refunded_before: Decimal,
    refund: Decimal,
    reversed_before: int,
) -> int:
    """Points a refund takes back: after it, the sale has lost the share of its points that
    the refunded share of its total is (rounded down; a full refund takes them all back)."""
    if earned <= 0 or sale_total <= 0 or refund <= 0:
        return 0
    refunded = min(refunded_before + refund, sale_total)
    due = int((Decimal(earned) * refunded / sale_total).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, min(earned, due) - reversed_before)


# -- retailflow's block in the partner's Notes -------------------------------------------------


class CustomerBlock(BaseModel):
    """What retailflow keeps on a partner, in one paragraph of its Notes."""

    consent: ConsentRecord | None = None
    loyalty_points: int = 0
    # The key of the last loyalty event applied (`sale:...` / `refund:...`): a retry of the
    # same event finds it here and applies nothing.
    last_loyalty_event: str | None = None
    erased: bool = False
    # What retailflow last did about the address on Odoo's blacklist (no address kept here).
    blacklist: BlacklistMark | None = None


_PARAGRAPH = re.compile(r"<p>\s*" + re.escape(BLOCK_PREFIX) + r".*?</p>", re.DOTALL)


def _plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def read_block(comment: str | bool | None) -> CustomerBlock:
    """retailflow's block of a partner's Notes (an empty block when there is none or it is
    unreadable: Notes are edited by people)."""
    if not isinstance(comment, str):
        return CustomerBlock()
    for paragraph in _PARAGRAPH.findall(comment) or [comment]:
        plain = _plain(paragraph)
        if BLOCK_PREFIX not in plain:
            continue
        body = plain.split(BLOCK_PREFIX, 1)[1]
        try:
            return CustomerBlock.model_validate(json.loads(body[: body.rindex("}") + 1]))
        except (ValueError, ValidationError):
            return CustomerBlock()
    return CustomerBlock()


def write_block(comment: str | bool | None, block: CustomerBlock) -> str:
    """The Notes with retailflow's paragraph replaced (or added); Odoo's other notes kept."""
    body = json.dumps(block.model_dump(mode="json"), sort_keys=True)
    paragraph = f"<p>{BLOCK_PREFIX}{html.escape(body, quote=False)}</p>"
    others = _PARAGRAPH.sub("", comment) if isinstance(comment, str) else ""
    return f"{others}{paragraph}" if others.strip() else paragraph
