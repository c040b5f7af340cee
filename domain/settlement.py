"""Gateway settlement rules: a payout's totals become one balanced journal entry.

A payout moves money from the gateway to the bank. What the card sales put in the card tender
account (Outstanding Receipts) leaves it; the gateway's fees are an expense; refunds went the
other way (the sales account was debited when the refund was booked, the gateway paid it out of
the payout). So, for one payout:

    debit  bank                  net (the payout amount; credit it when negative)
    debit  fees expense          fees
    credit Outstanding Receipts  charges (gross)
    debit  Outstanding Receipts  refunds (gross)
    credit Outstanding Receipts  refund failures and any other money back

and net = charges - refunds + refund failures + other - fees, which is what the gateway says
the payout is: a payout whose transactions do not add up to its amount is refused, not booked.
A failed payout's entry is reversed; its money, paid out again later, is summed into that later
payout as the transactions it was made of (activities/gateway_client.py), so the charges are
cleared and the fees booked once in the end. Amounts travel in the gateway's minor units
(integers) and become Decimal exactly, by the currency's exponent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from domain.posting import (
    MAX_BOOKABLE,
    AmountNotBookable,
    CurrencyNotBooked,
    JournalEntry,
    JournalLine,
    PostingProfile,
)
from domain.sale import PaymentMethod

# ISO 4217 minor-unit exponents that are not 2, as the gateway counts them (Stripe's list).
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV"}
    | {"XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# Statuses of a payout whose money left the gateway: it is booked. A pending one waits.
BOOKABLE_STATUSES = frozenset({"in_transit", "paid"})


def exponent(currency: str) -> int:
    code = currency.upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def from_minor(amount: int, currency: str) -> Decimal:
    """Minor units to an exact Decimal: 1591 usd -> 15.91, 500 jpy -> 500, 1234 kwd -> 1.234."""
    places = exponent(currency)
    return Decimal(int(amount)).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def payout_ref(payout_id: str) -> str:
    """The `ref` of a payout's entry, the key it is claimed by: `PAYOUT:{payout_id}`."""
    return f"PAYOUT:{payout_id}"


class PayoutTotals(BaseModel):
    """A payout and the sums of the balance transactions it settles, in minor units."""

    model_config = ConfigDict(frozen=True)

    payout_id: str
    currency: str  # as the gateway writes it (`usd`)
    status: str
    amount: int
    created: int  # Unix seconds
    arrival_date: int
    failure_code: str | None = None
    transactions: int = 0
    charges: int = 0  # gross amount of the charges
    refunds: int = 0  # gross amount of the refunds, positive
    refund_failures: int = 0  # refunds given back, positive
    other: int = 0  # any other money in (+) or out (-), net
    fees: int = 0

    @property
    def net(self) -> int:
        return self.charges - self.refunds + self.refund_failures + self.other - self.fees

    @property
    def booking_date(self) -> date:
        """The day the money reaches the bank (the arrival date, else the creation), UTC."""
        return datetime.fromtimestamp(self.arrival_date or self.created, UTC).date()


class PayoutMismatch(ValueError):
    """The payout's transactions do not add up to its amount: nothing is booked."""


def add_transaction(totals: dict[str, int], kind: str, amount: int, fee: int, net: int) -> None:
    """Count one balance transaction into running sums (keys as PayoutTotals' fields). The
    payout's own transaction (type `payout`) is the payout itself, not something it settles."""
    if kind == "payout":
        return
    totals["transactions"] = totals.get("transactions", 0) + 1
    totals["fees"] = totals.get("fees", 0) + fee
    if kind == "charge" or kind == "payment":
        totals["charges"] = totals.get("charges", 0) + amount
    elif kind in ("refund", "payment_refund"):
        totals["refunds"] = totals.get("refunds", 0) - amount
    elif kind == "refund_failure":
        totals["refund_failures"] = totals.get("refund_failures", 0) + amount
    else:
        totals["other"] = totals.get("other", 0) + amount


def payout_entry_for(totals: PayoutTotals, profile: PostingProfile) -> JournalEntry:
    """The balanced entry of one payout, in the profile's bank journal."""
    currency = totals.currency.upper()
    if currency not in profile.currencies:
        raise CurrencyNotBooked(
            f"currency: payout {totals.payout_id} is in {currency}, not booked by this company "
            f"(posting profile currencies: {', '.join(profile.currencies)})"
        )
    if totals.net != totals.amount:
        raise PayoutMismatch(
            f"payout {totals.payout_id}: its {totals.transactions} transactions add up to "
            f"{from_minor(totals.net, currency)}, the payout is "
            f"{from_minor(totals.amount, currency)}"
        )
    ref = payout_ref(totals.payout_id)
    clearing = profile.tender_account(PaymentMethod.CARD)
    signed = [
        (profile.bank_account, f"{ref} bank", totals.net),
        (profile.gateway_fees_account, f"{ref} gateway fees", totals.fees),
        (clearing, f"{ref} card charges", -totals.charges),
        (clearing, f"{ref} card refunds", totals.refunds),
        (clearing, f"{ref} refund failures", -totals.refund_failures),
        (clearing, f"{ref} other balance changes", -totals.other),
    ]
    lines = []
    for account, name, minor in signed:
        if not minor:
            continue
        amount = from_minor(abs(minor), currency)
        if amount >= MAX_BOOKABLE:
            raise AmountNotBookable(
                f"{name}: {amount} is too large to book exactly (under {MAX_BOOKABLE:,})"
            )
        lines.append(
            JournalLine(account_code=account, name=name, debit=amount)
            if minor > 0
            else JournalLine(account_code=account, name=name, credit=amount)
        )
    entry = JournalEntry(
        ref=ref, date=totals.booking_date, journal_code=profile.bank_journal_code, lines=lines
    )
    assert entry.total_debit == entry.total_credit, f"{ref}: unbalanced payout entry"
    return entry
