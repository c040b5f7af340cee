"""Posting rules: how a sale becomes one balanced set of Odoo journal items.

A sale debits one tender account per payment method, credits revenue with the net amount and
credits tax. Accounts and the journal are named by their **codes** in a posting profile, never
by database ids, so the same profile works on any Odoo with the chart it names; the adapter
resolves codes to ids. Every item's label carries the sale key, so an auditor finds a sale's
items in Odoo by `name ilike 'POS:S001:TX-42'` whichever mode posted it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from domain.money import ZERO
from domain.sale import PaymentMethod, Sale
from domain.validation import load_settings_file


class PostingProfile(BaseModel):
    """Where sales are booked. Defaults match Odoo 17's generic chart of accounts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    journal_code: str = "MISC"
    tender_accounts: dict[PaymentMethod, str] = Field(
        default_factory=lambda: {
            PaymentMethod.CASH: "101501",  # Cash
            PaymentMethod.CARD: "101403",  # Outstanding Receipts
            # The generic chart has no gift-card liability account: set one in your profile.
            PaymentMethod.GIFT_CARD: "101403",
        }
    )
    revenue_account: str = "400000"  # Product Sales
    tax_account: str = "251000"  # Tax Received (account of the generic chart's 15% sale tax)
    # Tax rates booked to another account than tax_account, e.g. {"0.05": "251100"}.
    tax_accounts_by_rate: dict[Decimal, str] = Field(default_factory=dict)
    # Currencies the company books; a sale in another one is refused at posting.
    currencies: tuple[str, ...] = ("USD",)
    warehouse_code: str = "WH"
    # Each store's own stock location (its complete name, e.g. "WH/Stock/S001", or an xml id
    # such as "stock.stock_location_stock"): its sales leave that shelf, its audits count it.
    # A store not listed uses the warehouse's stock location.
    store_locations: dict[str, str] = Field(default_factory=dict)
    # Gateway payouts (domain/settlement.py): booked in the bank journal, money arriving on the
    # bank account, the gateway's fees to an expense account; what the cards paid is cleared
    # from the card tender account (Outstanding Receipts), where the sales put it.
    bank_journal_code: str = "BNK1"
    bank_account: str = "101401"  # Bank
    gateway_fees_account: str = "620000"  # Bank Fees

    def store_location(self, store_id: str | None) -> str | None:
        """The store's stock location as configured, None for the warehouse's own."""
        return self.store_locations.get(store_id) if store_id else None

    def tender_account(self, method: PaymentMethod) -> str:
        return self.tender_accounts[method]

    def tax_account_for(self, rate: Decimal) -> str:
        return self.tax_accounts_by_rate.get(rate, self.tax_account)

    def account_codes(self) -> set[str]:
        return {
            *self.tender_accounts.values(),
            self.revenue_account,
            self.tax_account,
            *self.tax_accounts_by_rate.values(),
            self.bank_account,
            self.gateway_fees_account,
        }


class ProfileError(ValueError):
    pass


def load_profile(path: str | Path | None) -> PostingProfile:
    """The default profile, or one read from a TOML or JSON file (unknown keys are errors)."""
    if path is None:
        return PostingProfile()
    try:
        return load_settings_file(PostingProfile, path, "posting profile")
    except ValueError as e:
        raise ProfileError(str(e)) from e


class JournalLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_code: str
    name: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO


class JournalEntry(BaseModel):
    """A journal entry still named by codes: what the adapter turns into an account.move."""

    model_config = ConfigDict(frozen=True)

    ref: str
    date: date
    journal_code: str
    lines: list[JournalLine]

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)


class CurrencyNotBooked(ValueError):
    pass


class AmountNotBookable(ValueError):
    """An amount too large to travel to Odoo exactly to the cent."""


# Odoo's JSON-RPC carries amounts as floats: a float keeps every cent of an amount below this
# (a double has 15-17 significant digits), so `float(Decimal)` of a cent amount is exact.
MAX_BOOKABLE = Decimal(10) ** 9


def _rate_label(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _tax_credits(
    label: str, taxes: dict[Decimal, Decimal], profile: PostingProfile
) -> list[JournalLine]:
    """One tax credit per rate (none for a zero amount), labelled `{label} tax 15%`."""
    return [
        JournalLine(
            account_code=profile.tax_account_for(rate),
            name=f"{label} tax {_rate_label(rate)}",
            credit=amount,
        )
        for rate, amount in sorted(taxes.items())
        if amount
    ]


def _check_bookable(lines: list[JournalLine], hint: str = "") -> None:
    for item in lines:
        if max(item.debit, item.credit) >= MAX_BOOKABLE:
            raise AmountNotBookable(
                f"{item.name}: {max(item.debit, item.credit)} is too large to book exactly "
                f"(amounts must stay under {MAX_BOOKABLE:,}){hint}"
            )


def journal_entry_for(sale: Sale, profile: PostingProfile) -> JournalEntry:
    """The balanced entry of one sale. Amounts are merged per account and label."""
    if sale.currency not in profile.currencies:
        raise CurrencyNotBooked(
            f"currency: {sale.currency} is not booked by this company "
            f"(posting profile currencies: {', '.join(profile.currencies)})"
        )
    key = sale.key
    tenders: dict[PaymentMethod, Decimal] = defaultdict(lambda: ZERO)
    for payment in sale.payments:
        tenders[payment.method] += payment.amount
    taxes: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for line in sale.lines:
        taxes[line.tax_rate] += line.tax

    lines = [
        JournalLine(
            account_code=profile.tender_account(method), name=f"{key} {method.value}", debit=amount
        )
        for method, amount in tenders.items()
    ]
    if sale.net_total:
        lines.append(
            JournalLine(
                account_code=profile.revenue_account, name=f"{key} sales", credit=sale.net_total
            )
        )
    lines.extend(_tax_credits(key, taxes, profile))
    _check_bookable(lines)
    entry = JournalEntry(
        ref=key, date=sale.business_day, journal_code=profile.journal_code, lines=lines
    )
    # A sale is validated as paid == net + tax, so this cannot fail; it guards the rules above.
    assert entry.total_debit == entry.total_credit, (
        f"{key}: posting rules produced an unbalanced entry"
    )
    return entry


def summary_ref(store_id: str, business_day: date, batch: str) -> str:
    """The `ref` of a summary entry, and the origin of its picking: `SUM:{store}:{day}:{batch}`.
    Store ids refuse `:` (domain/ids.py), so the parts read back unambiguously."""
    return f"SUM:{store_id}:{business_day.isoformat()}:{batch}"


# Stock origins that name their store second: a sale (`POS:{store}:{txn}`), a summary
# (`SUM:{store}:...`) and a ledger batch (`batch:{store}:...`).
_STORE_ORIGINS = ("POS", "SUM", "batch")


def store_of_origin(origin: str) -> str | None:
    """The store whose goods a picking of this origin moves, when the origin names one."""
    parts = origin.split(":")
    if len(parts) >= 3 and parts[0] in _STORE_ORIGINS and parts[1]:
        return parts[1]
    return None


def summary_entry_for(
    sales: list[Sale], profile: PostingProfile, ref: str, on: date
) -> JournalEntry:
    """One balanced entry for many sales of one store and day (summary mode), as Odoo's own POS
    books a session: debit per tender, credit revenue and tax per tax rate. Each item's label
    starts with the summary's ref, so an auditor goes from any item to the entry listing its
    sales (the narration). Raises what journal_entry_for raises for any sale."""
    if not sales:
        raise ValueError("a summary needs at least one sale")
    tenders: dict[PaymentMethod, Decimal] = defaultdict(lambda: ZERO)
    net_by_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    tax_by_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for sale in sales:
        # The same checks (currency, bookable amounts) as a sale's own entry.
        journal_entry_for(sale, profile)
        for payment in sale.payments:
            tenders[payment.method] += payment.amount
        for line in sale.lines:
            net_by_rate[line.tax_rate] += line.net
            tax_by_rate[line.tax_rate] += line.tax
    count = f"{len(sales)} sales"
    lines = [
        JournalLine(
            account_code=profile.tender_account(method),
            name=f"{ref} {method.value} ({count})",
            debit=amount,
        )
        for method, amount in sorted(tenders.items())
        if amount
    ]
    for rate in sorted(net_by_rate):
        if net_by_rate[rate]:
            lines.append(
                JournalLine(
                    account_code=profile.revenue_account,
                    name=f"{ref} sales at {_rate_label(rate)} tax",
                    credit=net_by_rate[rate],
                )
            )
    lines.extend(_tax_credits(ref, tax_by_rate, profile))
    _check_bookable(lines, ": use smaller batches")
    entry = JournalEntry(ref=ref, date=on, journal_code=profile.journal_code, lines=lines)
    assert entry.total_debit == entry.total_credit, f"{ref}: unbalanced summary entry"
    return entry


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    qty: Decimal


def stock_lines_for(sales: list[Sale]) -> list[StockLine]:
    """Quantities leaving the store's stock, merged per SKU, in first-seen order."""
    totals: dict[str, Decimal] = {}
    for sale in sales:
        for line in sale.lines:
            totals[line.sku] = totals.get(line.sku, Decimal(0)) + line.qty
    return [StockLine(sku=sku, qty=qty) for sku, qty in totals.items()]


def refund_entry_for(
    refund_key: str,
    sale_key: str,
    on: date,
    net: Decimal,
    tax_by_rate: dict[Decimal, Decimal],
    tenders: list[tuple[PaymentMethod, Decimal]],
    profile: PostingProfile,
) -> JournalEntry:
    """The mirror of a sale's entry for what a refund gives back: debit revenue and tax, credit
    the tenders paid out. Every label carries both keys, `REFUND:{id} POS:{store}:{txn}`."""
    label = f"{refund_key} {sale_key}"
    lines = []
    if net:
        lines.append(
            JournalLine(account_code=profile.revenue_account, name=f"{label} sales", debit=net)
        )
    lines.extend(
        JournalLine(
            account_code=profile.tax_account_for(rate),
            name=f"{label} tax {_rate_label(rate)}",
            debit=amount,
        )
        for rate, amount in sorted(tax_by_rate.items())
        if amount
    )
    lines.extend(
        JournalLine(
            account_code=profile.tender_account(method),
            name=f"{label} {method.value}",
            credit=amount,
        )
        for method, amount in tenders
        if amount
    )
    entry = JournalEntry(ref=refund_key, date=on, journal_code=profile.journal_code, lines=lines)
    assert entry.total_debit == entry.total_credit, f"{refund_key}: unbalanced refund entry"
    return entry
