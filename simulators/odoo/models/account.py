"""Accounting: accounts, journals, taxes, journal entries and items, the reversal wizard.

The journal entry behaviour follows Odoo 17 as observed (docs/odoo17-behaviour.md §e, §h)
and, where that page is silent, ``account.move`` and ``sequence.mixin`` of the 17.0 source:

* balance is checked at create and at every write that touches lines, with Odoo's text;
* naming: the first draft of a journal and period gets its sequence name at create, later
  drafts are ``/`` until posted; general and purchase journals number per month
  (``MISC/2025/01/0001``), sale/bank/cash journals per year (``INV/2025/00001``), refunds in a
  refund-sequence journal get an ``R`` prefix;
* ``(name, journal_id)`` is unique among posted entries (``account_move_unique_name``), which
  reproduces the duplicate-draft-name hazard and its ``write({'name': '/'})`` repair;
* posted entries cannot be deleted; ``button_draft`` reopens them.

Invoices (``invoice_line_ids``, tax and payment-term lines) are not emulated.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from textwrap import shorten
from typing import Any

from sqlalchemy import Date, func, literal_column, select

from .. import fields as F
from .. import tables as T
from ..exceptions import SQL_CONSTRAINT, UserError, ValidationError
from ..orm import BaseModel, api_model, api_records, normalize_ids

ACCOUNT_TYPES = [
    ("asset_receivable", "Receivable"),
    ("asset_cash", "Bank and Cash"),
    ("asset_current", "Current Assets"),
    ("asset_non_current", "Non-current Assets"),
    ("asset_prepayments", "Prepayments"),
    ("asset_fixed", "Fixed Assets"),
    ("liability_payable", "Payable"),
    ("liability_credit_card", "Credit Card"),
    ("liability_current", "Current Liabilities"),
    ("liability_non_current", "Non-current Liabilities"),
    ("equity", "Equity"),
    ("equity_unaffected", "Current Year Earnings"),
    ("income", "Income"),
    ("income_other", "Other Income"),
    ("expense", "Expenses"),
    ("expense_depreciation", "Depreciation"),
    ("expense_direct_cost", "Cost of Revenue"),
    ("off_balance", "Off-Balance Sheet"),
]
MOVE_TYPES = [
    ("entry", "Journal Entry"),
    ("out_invoice", "Customer Invoice"),
    ("out_refund", "Customer Credit Note"),
    ("in_invoice", "Vendor Bill"),
    ("in_refund", "Vendor Credit Note"),
    ("out_receipt", "Sales Receipt"),
    ("in_receipt", "Purchase Receipt"),
]
DRAFT_LABELS = {
    "out_invoice": "Draft Invoice",
    "out_refund": "Draft Credit Note",
    "in_invoice": "Draft Bill",
    "in_refund": "Draft Vendor Credit Note",
    "out_receipt": "Draft Sales Receipt",
    "in_receipt": "Draft Purchase Receipt",
    "entry": "Draft Entry",
}
REFUND_TYPES = ("out_refund", "in_refund")
JOURNAL_TYPES_BY_MOVE_TYPE = {
    "entry": "general",
    "out_invoice": "sale",
    "out_refund": "sale",
    "out_receipt": "sale",
    "in_invoice": "purchase",
    "in_refund": "purchase",
    "in_receipt": "purchase",
}
# Fields whose change makes Odoo recompute the entry's name (``_compute_name`` depends).
NAME_TRIGGERS = {"state", "date", "journal_id", "move_type", "posted_before"}

UNBALANCED = (
    "\n\nThe move ({move}) is not balanced.\n"
    "The total of debits equals {debit} and the total of credits equals {credit}.\n"
    'You might want to specify a default account on journal "{journal}" to automatically '
    "balance each move."
)
POSTED_UNLINK = (
    "You can't delete a posted journal item. Don’t play games with your accounting records; "
    "reset the journal entry to draft before deleting it."
)

# sequence.mixin's regexes (17.0); the year-range flavour is not used by these journals.
MONTHLY_REGEX = (
    r"^(?P<prefix1>.*?)(?P<year>((?<=\D)|(?<=^))((19|20|21)\d{2}|(\d{2}(?=\D))))"
    r"(?P<prefix2>\D*?)(?P<month>(0[1-9]|1[0-2]))(?P<prefix3>\D+?)(?P<seq>\d*)(?P<suffix>\D*?)$"
)
YEARLY_REGEX = (
    r"^(?P<prefix1>.*?)(?P<year>((?<=\D)|(?<=^))((19|20|21)?\d{2}))(?P<prefix2>\D+?)"
    r"(?P<seq>\d*)(?P<suffix>\D*?)$"
)
FIXED_REGEX = r"^(?P<prefix1>.*?)(?P<seq>\d{0,9})(?P<suffix>\D*?)$"
RESET_REGEXES = [
    (MONTHLY_REGEX, "month", ("seq", "month", "year")),
    (YEARLY_REGEX, "year", ("seq", "year")),
    (FIXED_REGEX, "never", ("seq",)),
]
SPLIT_REGEX = re.compile(r"^(?:.*?)(\d{0,9})(?:\D*?)$")


def format_amount(amount: float, symbol: str = "$", position: str = "before") -> str:
    # Real Odoo joins symbol and amount with U+00A0; docs/odoo17-behaviour.md records a plain space.
    text = f"{round(amount, 2):,.2f}".replace("-", "-\ufeff")
    return f"{symbol} {text}" if position == "before" else f"{text} {symbol}"


def deduce_sequence_reset(name: str | None) -> str:
    for regex, reset, required in RESET_REGEXES:
        match = re.match(regex, name or "")
        if match and all(match.groupdict().get(key) is not None for key in required):
            return reset
    raise ValidationError(
        "The sequence regex should at least contain the seq grouping keys. For instance:\n"
        "^(?P<prefix1>.*?)(?P<seq>\\d*)(?P<suffix>\\D*?)$"
    )


def sequence_format(previous: str) -> tuple[str, dict[str, Any]]:
    """``_get_sequence_format_param``: a format string and the values parsed from a name."""
    reset = deduce_sequence_reset(previous)
    regex = {"month": MONTHLY_REGEX, "year": YEARLY_REGEX}.get(reset, FIXED_REGEX)
    match = re.match(regex, previous)
    assert match is not None
    values: dict[str, Any] = match.groupdict()
    values["seq_length"] = len(values["seq"])
    values["year_length"] = len(values.get("year") or "")
    if not values.get("seq") and "prefix1" in values and "suffix" in values:
        values["prefix1"], values["suffix"] = values["suffix"], ""
    for key in ("seq", "year", "month"):
        values[key] = int(values.get(key) or 0)
    placeholders = re.findall(r"\b(prefix\d|seq|suffix\d?|year|month)\b", regex)
    fmt = "".join(
        "{seq:0{seq_length}d}"
        if s == "seq"
        else "{month:02d}"
        if s == "month"
        else "{year:0{year_length}d}"
        if s == "year"
        else "{" + s + "}"
        for s in placeholders
    )
    return fmt, values


def sequence_date_range(reset: str, date: dt.date) -> tuple[dt.date, dt.date]:
    if reset == "month":
        last = calendar.monthrange(date.year, date.month)[1]
        return date.replace(day=1), date.replace(day=last)
    if reset == "year":
        return dt.date(date.year, 1, 1), dt.date(date.year, 12, 31)
    return dt.date.min, dt.date.max


def split_sequence(name: str | None) -> tuple[str, int]:
    """``_compute_split_sequence``: (prefix, number) of a name."""
    text = name or ""
    match = SPLIT_REGEX.match(text)
    assert match is not None
    return text[: match.start(1)], int(match.group(1) or 0)


def sequence_matches_date(name: str | None, date: dt.date | None) -> bool:
    if not name or not date:
        return True
    _fmt, values = sequence_format(name)
    year_ok = not values["year"] or values["year"] == date.year % (10 ** values["year_length"])
    month_ok = not values["month"] or values["month"] == date.month
    return year_ok and month_ok


class AccountAccount(BaseModel):
    _name = "account.account"
    _description = "Account"
    _table = T.AccountAccount
    _order = "code, company_id"

    code = F.Char("Code", required=True)
    name = F.Char("Account Name", required=True)
    account_type = F.Selection(ACCOUNT_TYPES, "Type", required=True)
    internal_group = F.Selection(
        [
            ("equity", "Equity"),
            ("asset", "Asset"),
            ("liability", "Liability"),
            ("income", "Income"),
            ("expense", "Expense"),
            ("off_balance", "Off Balance"),
        ],
        "Internal Group",
        readonly=True,
    )
    reconcile = F.Boolean("Allow Reconciliation", default=False)
    deprecated = F.Boolean("Deprecated", default=False)
    non_trade = F.Boolean("Non Trade", default=False)
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    currency_id = F.Many2one("res.currency", "Account Currency")
    note = F.Text("Internal Notes")

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["code", "name"])
        return {i: f"{v['code']} {v['name']}" for i, v in raw.items()}

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        return ["|", ("code", "=like", f"{name}%"), ("name", operator, name)]

    def _with_group(self, vals: dict[str, Any]) -> dict[str, Any]:
        if vals.get("account_type"):
            kind = str(vals["account_type"]).split("_")[0]
            vals = {**vals, "internal_group": "off_balance" if kind == "off" else kind}
        return vals

    def _create(self, vals_list: Any) -> list[int]:
        return super()._create([self._with_group(dict(v)) for v in vals_list])

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        super()._write(ids, self._with_group(dict(vals)))

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        if "code" in names or "company_id" in names:
            self._check_unique(
                ids, ("code", "company_id"), "The code of the account must be unique per company!"
            )


class AccountJournal(BaseModel):
    _name = "account.journal"
    _description = "Journal"
    _table = T.AccountJournal
    _order = "sequence, type, code"

    name = F.Char("Journal Name", required=True)
    code = F.Char("Short Code", required=True)
    type = F.Selection(
        [
            ("sale", "Sales"),
            ("purchase", "Purchase"),
            ("cash", "Cash"),
            ("bank", "Bank"),
            ("general", "Miscellaneous"),
        ],
        "Type",
        required=True,
    )
    default_account_id = F.Many2one("account.account", "Default Account")
    suspense_account_id = F.Many2one("account.account", "Suspense Account")
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    currency_id = F.Many2one("res.currency", "Currency")
    active = F.Boolean("Active", default=True)
    sequence = F.Integer("Sequence", default=10)
    refund_sequence = F.Boolean("Dedicated Credit Note Sequence", default=False)
    payment_sequence = F.Boolean("Dedicated Payment Sequence", default=False)


class AccountTax(BaseModel):
    _name = "account.tax"
    _description = "Tax"
    _table = T.AccountTax
    _order = "sequence,id"

    name = F.Char("Tax Name", required=True)
    description = F.Char("Label on Invoices")
    type_tax_use = F.Selection(
        [("sale", "Sales"), ("purchase", "Purchases"), ("none", "None")],
        "Tax Type",
        required=True,
        default="sale",
    )
    amount_type = F.Selection(
        [
            ("group", "Group of Taxes"),
            ("fixed", "Fixed"),
            ("percent", "Percentage of Price"),
            ("division", "Percentage of Price Tax Included"),
        ],
        "Tax Computation",
        required=True,
        default="percent",
    )
    amount = F.Float("Amount", digits=4, required=True, default=0.0)
    price_include = F.Boolean("Included in Price", default=False)
    include_base_amount = F.Boolean("Affect Base of Subsequent Taxes", default=False)
    active = F.Boolean("Active", default=True)
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    sequence = F.Integer("Sequence", default=1)
    invoice_repartition_line_ids = F.One2many(
        "account.tax.repartition.line",
        "tax_id",
        "Distribution for Invoices",
        domain=[("document_type", "=", "invoice")],
    )
    refund_repartition_line_ids = F.One2many(
        "account.tax.repartition.line",
        "tax_id",
        "Distribution for Refund Invoices",
        domain=[("document_type", "=", "refund")],
    )


class AccountTaxRepartitionLine(BaseModel):
    _name = "account.tax.repartition.line"
    _description = "Tax Repartition Line"
    _table = T.AccountTaxRepartitionLine
    _order = "document_type, repartition_type, sequence, id"
    _rec_name = None

    tax_id = F.Many2one("account.tax", "Tax", ondelete="cascade")
    document_type = F.Selection(
        [("invoice", "Invoice"), ("refund", "Refund")], "Document Type", required=True
    )
    repartition_type = F.Selection(
        [("base", "Base"), ("tax", "of tax")], "Based On", required=True, default="tax"
    )
    factor_percent = F.Float("%", default=100.0)
    account_id = F.Many2one("account.account", "Account")
    sequence = F.Integer("Sequence", default=1)
    company_id = F.Many2one("res.company", "Company", default=1)


class AccountMove(BaseModel):
    _name = "account.move"
    _description = "Journal Entry"
    _table = T.AccountMove
    _order = "date desc, name desc, invoice_date desc, id desc"

    name = F.Char("Number", index=True)
    ref = F.Char("Reference", index=True)
    date = F.Date("Date", required=True, default=lambda env: env.today)
    state = F.Selection(
        [("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")],
        "Status",
        required=True,
        readonly=True,
        default="draft",
    )
    move_type = F.Selection(MOVE_TYPES, "Type", required=True, readonly=True, default="entry")
    journal_id = F.Many2one("account.journal", "Journal", required=True)
    company_id = F.Many2one("res.company", "Company", default=1)
    currency_id = F.Many2one("res.currency", "Currency", required=True, default=1)
    partner_id = F.Many2one("res.partner", "Partner", ondelete="restrict")
    narration = F.Html("Terms and Conditions")
    line_ids = F.One2many("account.move.line", "move_id", "Journal Items")
    posted_before = F.Boolean("Posted Before", default=False)
    sequence_prefix = F.Char("Sequence Prefix", readonly=True)
    sequence_number = F.Integer("Sequence Number", readonly=True)
    invoice_date = F.Date("Invoice/Bill Date")
    invoice_date_due = F.Date("Due Date")
    invoice_origin = F.Char("Origin")
    payment_reference = F.Char("Payment Reference")
    payment_state = F.Selection(
        [
            ("not_paid", "Not Paid"),
            ("in_payment", "In Payment"),
            ("paid", "Paid"),
            ("partial", "Partially Paid"),
            ("reversed", "Reversed"),
            ("invoicing_legacy", "Invoicing App Legacy"),
        ],
        "Payment Status",
        readonly=True,
        default="not_paid",
    )
    auto_post = F.Selection(
        [
            ("no", "No"),
            ("at_date", "At Date"),
            ("monthly", "Monthly"),
            ("quarterly", "Quarterly"),
            ("yearly", "Yearly"),
        ],
        "Auto-post",
        required=True,
        default="no",
    )
    to_check = F.Boolean("To Check", default=False)
    reversed_entry_id = F.Many2one("account.move", "Reversal of", readonly=True)
    reversal_move_id = F.One2many("account.move", "reversed_entry_id", "Reversal Move")
    amount_untaxed = F.Monetary("Untaxed Amount", compute="_compute_amounts")
    amount_tax = F.Monetary("Tax", compute="_compute_amounts")
    amount_total = F.Monetary("Total", compute="_compute_amounts")
    amount_residual = F.Monetary("Amount Due", compute="_compute_amounts")
    amount_total_signed = F.Monetary("Total Signed", compute="_compute_amounts")

    # -- display ---------------------------------------------------------------------------

    def _display_names(self, ids: Any) -> dict[int, str]:
        """``_get_move_display_name(show_ref=True)``."""
        raw = self._read_raw(ids, ["name", "state", "move_type", "ref"])
        out = {}
        for rid, v in raw.items():
            label = f"{DRAFT_LABELS[v['move_type'] or 'entry']} " if v["state"] == "draft" else ""
            label += f"(* {rid})" if not v["name"] or v["name"] == "/" else v["name"]
            if v["ref"]:
                label += f" ({shorten(v['ref'], width=50)})"
            out[rid] = label
        return out

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        return [
            "|",
            "|",
            ("name", operator, name),
            ("partner_id.name", operator, name),
            ("ref", operator, name),
        ]

    def _compute_amounts(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        line = self.env["account.move.line"]._t
        sums = {
            mid: (debit or 0.0, tax or 0.0)
            for mid, debit, tax in self._conn.execute(
                select(
                    line.c.move_id,
                    func.sum(line.c.debit),
                    func.sum(func.abs(line.c.balance)).filter(line.c.tax_line_id.is_not(None)),
                )
                .where(line.c.move_id.in_(ids))
                .group_by(line.c.move_id)
            )
        }
        out = {}
        for mid in ids:
            total, tax = sums.get(mid, (0.0, 0.0))
            total = round(total, 2)
            out[mid] = {
                "amount_total": total,
                "amount_tax": round(tax, 2),
                "amount_untaxed": round(total - tax, 2),
                "amount_residual": 0.0,
                "amount_total_signed": total,
            }
        return out

    # -- journal entry life cycle ----------------------------------------------------------

    def _journal(self, journal_id: int) -> Any:
        key = ("account.journal", journal_id)
        if key not in self.env.memo:
            journal = self.env["account.journal"]
            self.env.memo[key] = journal._get(
                journal_id, "id", "name", "code", "type", "refund_sequence"
            )
        return self.env.memo[key]

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        vals = dict(vals)
        if not vals.get("journal_id") and not self.env.context.get("default_journal_id"):
            move_type = (
                vals.get("move_type") or self.env.context.get("default_move_type") or "entry"
            )
            journal_type = JOURNAL_TYPES_BY_MOVE_TYPE.get(move_type, "general")
            found = self.env["account.journal"]._search([("type", "=", journal_type)], limit=1)
            if found:
                vals["journal_id"] = found[0]
        if vals.get("name") in (False, None, ""):
            vals.pop("name", None)
        if "name" in vals:
            vals["sequence_prefix"], vals["sequence_number"] = split_sequence(vals["name"])
        return vals

    def _create(self, vals_list: Any) -> list[int]:
        check = self.env.context.get("check_move_validity", True)
        inner = self.with_context(check_move_validity=False)
        ids = super(AccountMove, inner)._create([self._prepare_create(v) for v in vals_list])
        self._compute_names(ids)
        if check:
            self._check_balanced(ids)
        if any(v.get("state") == "posted" for v in vals_list):
            self._check_unique_name(ids)
        return ids

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        vals = dict(vals)
        if "name" in vals:
            vals["name"] = vals["name"] or "/"
            vals["sequence_prefix"], vals["sequence_number"] = split_sequence(vals["name"])
        check = self.env.context.get("check_move_validity", True)
        inner = self.with_context(check_move_validity=False)
        super(AccountMove, inner)._write(ids, vals)
        if NAME_TRIGGERS & set(vals) and "name" not in vals:
            self._compute_names(list(ids))
        if check and "line_ids" in vals:
            self._check_balanced(list(ids))
        if {"name", "state", "journal_id"} & set(vals):
            self._check_unique_name(list(ids))

    def _unlink_check(self, ids: list[int]) -> None:
        posted = self._search([("id", "in", ids), ("state", "=", "posted")], limit=1)
        if posted:
            raise UserError(POSTED_UNLINK)

    def _unlink(self, ids: Any) -> None:
        super(AccountMove, self.with_context(check_move_validity=False))._unlink(ids)

    def _check_balanced(self, ids: list[int]) -> None:
        line = self.env["account.move.line"]._t
        rows = self._conn.execute(
            select(
                line.c.move_id,
                func.round(func.sum(line.c.debit), 2),
                func.round(func.sum(line.c.credit), 2),
            )
            .where(line.c.move_id.in_(ids))
            .group_by(line.c.move_id)
            .having(func.round(func.sum(line.c.balance), 2) != 0)
        ).all()
        if not rows:
            return
        names = self._display_names([r[0] for r in rows])
        journals = self._column_values([r[0] for r in rows], "journal_id")
        message = "An error has occurred."
        for move_id, debit, credit in rows:
            message += UNBALANCED.format(
                move=names[move_id],
                debit=format_amount(debit or 0.0),
                credit=format_amount(credit or 0.0),
                journal=self._journal(journals[move_id]).name,
            )
        raise UserError(message)

    def _check_unique_name(self, ids: list[int]) -> None:
        """The ``account_move_unique_name`` index: (name, journal_id) among posted entries."""
        t = self._t
        posted = self._conn.execute(
            select(t.c.name, t.c.journal_id).where(
                t.c.id.in_(ids), t.c.state == "posted", t.c.name != "/"
            )
        ).all()
        for name, journal_id in posted:
            prefix, number = split_sequence(name)
            count = self._conn.execute(
                select(func.count())
                .select_from(t)
                .where(
                    t.c.journal_id == journal_id,
                    t.c.sequence_prefix == prefix,
                    t.c.sequence_number == number,
                    t.c.name == name,
                    t.c.state == "posted",
                )
            ).scalar_one()
            if count > 1:
                raise ValidationError(
                    SQL_CONSTRAINT.format(
                        message="Another entry with the same name already exists."
                    )
                )

    def _set_name(self, move_id: int, name: str) -> None:
        prefix, number = split_sequence(name)
        columns = {"name": name, "sequence_prefix": prefix, "sequence_number": number}
        self._conn.execute(self._t.update().where(self._t.c.id == move_id).values(columns))
        self._propagate_stored_related([move_id], columns)

    def _last_sequence(self, move: Any, relaxed: bool = False) -> str | None:
        """``_get_last_sequence``: highest name of the journal (and period), latest prefix."""
        t = self._t
        journal = self._journal(move.journal_id)
        where = [
            t.c.journal_id == move.journal_id,
            t.c.name.is_not(None),
            t.c.name.not_in(["/", ""]),
            t.c.id != move.id,
        ]
        if journal.refund_sequence:
            refund = t.c.move_type.in_(REFUND_TYPES)
            where.append(refund if move.move_type in REFUND_TYPES else ~refund)
        if not relaxed:
            reference = self._conn.execute(
                select(t.c.name)
                .where(*where, t.c.date <= move.date)
                .order_by(t.c.date.desc())
                .limit(1)
            ).scalar()
            if reference is None:
                reference = self._conn.execute(
                    select(t.c.name).where(*where).order_by(t.c.date.asc()).limit(1)
                ).scalar()
            start, end = sequence_date_range(deduce_sequence_reset(reference), move.date)
            # Unary + keeps SQLite off the (journal_id, date) index: walking the journal's
            # entries newest first, or by sequence number, stops at the first match.
            where.append(literal_column(f"+{t.name}.date", Date).between(start, end))
        # Odoo does this in one statement with a scalar subquery; two keep SQLite on its indexes.
        latest_prefix = self._conn.execute(
            select(t.c.sequence_prefix).where(*where).order_by(t.c.id.desc()).limit(1)
        ).scalar()
        if latest_prefix is None:
            return None
        name: str | None = self._conn.execute(
            select(t.c.name)
            .where(*where, t.c.sequence_prefix == latest_prefix)
            .order_by(t.c.sequence_number.desc())
            .limit(1)
        ).scalar()
        return name

    def _starting_sequence(self, move: Any) -> str:
        journal = self._journal(move.journal_id)
        if journal.type in ("sale", "bank", "cash"):
            start = f"{journal.code}/{move.date.year:04d}/00000"
        else:
            start = f"{journal.code}/{move.date.year:04d}/{move.date.month:02d}/0000"
        if journal.refund_sequence and move.move_type in REFUND_TYPES:
            start = "R" + start
        return start

    def _set_next_sequence(self, move: Any, last: str | None = None) -> None:
        """Give ``move`` the next name of its sequence (``last``: a known last name)."""
        if last is None:
            last = self._last_sequence(move)
        new = not last
        if new:
            last = self._last_sequence(move, relaxed=True) or self._starting_sequence(move)
        assert last is not None
        fmt, values = sequence_format(last)
        if new:
            start, _end = sequence_date_range(deduce_sequence_reset(last), move.date)
            values["seq"] = 0
            values["year"] = (
                start.year % (10 ** values["year_length"]) if values["year_length"] else 0
            )
            values["month"] = start.month
        values["seq"] += 1
        self._set_name(move.id, fmt.format(**values))

    def _compute_names(self, ids: list[int]) -> None:
        """``_compute_name`` of Odoo 17, record by record in (date, ref, id) order."""
        t = self._t
        rows = self._conn.execute(
            select(
                t.c.id,
                t.c.name,
                t.c.state,
                t.c.date,
                t.c.journal_id,
                t.c.move_type,
                t.c.posted_before,
                t.c.ref,
            ).where(t.c.id.in_(ids))
        ).all()
        rows = sorted(rows, key=lambda r: (r.date or dt.date.min, r.ref or "", r.id))
        for move in rows:
            has_name = bool(move.name) and move.name != "/"
            last: str | None = None
            if has_name or move.state != "posted":
                if not move.posted_before and not sequence_matches_date(move.name, move.date):
                    last = self._last_sequence(move)
                    if last:
                        self._set_name(move.id, "/")
                        continue
                elif has_name and move.posted_before:
                    continue
                elif not has_name:
                    last = self._last_sequence(move)
                    if last:
                        if not move.name:
                            self._set_name(move.id, "/")
                        continue
            if move.date and (not has_name or not sequence_matches_date(move.name, move.date)):
                self._set_next_sequence(move, last)
            elif not move.name:
                self._set_name(move.id, "/")

    def _post(self, ids: list[int]) -> None:
        self._ensure_exist(ids)
        t = self._t
        line = self.env["account.move.line"]._t
        rows = {
            r.id: r
            for r in self._conn.execute(select(t.c.id, t.c.name, t.c.state).where(t.c.id.in_(ids)))
        }
        counts: dict[int, int] = {
            move_id: count
            for move_id, count in self._conn.execute(
                select(line.c.move_id, func.count())
                .where(
                    line.c.move_id.in_(ids),
                    line.c.display_type.not_in(["line_section", "line_note"]),
                )
                .group_by(line.c.move_id)
            )
        }
        for mid in ids:
            move = rows[mid]
            if move.state != "draft":
                raise UserError(f"The entry {move.name} (id {mid}) must be in draft.")
            if not counts.get(mid):
                raise UserError("You need to add a line before posting.")
        self._check_balanced(ids)
        self._write(ids, {"state": "posted", "posted_before": True})
        self.env.work["post", "account.move"] += len(ids)
        self.env.work["post", "account.move.line"] += sum(counts.values())

    @api_records
    def action_post(self, ids: Any) -> bool:
        self._post(list(dict.fromkeys(normalize_ids(ids))))
        return False

    @api_records
    def button_draft(self, ids: Any) -> None:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        states = self._column_values(ids, "state")
        if any(states[i] not in ("cancel", "posted") for i in ids):
            raise UserError("Only posted/cancelled journal entries can be reset to draft.")
        self._write(ids, {"state": "draft"})

    @api_records
    def button_cancel(self, ids: Any) -> None:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        states = self._column_values(ids, "state")
        posted = [i for i in ids if states[i] == "posted"]
        if posted:
            self._write(posted, {"state": "draft"})
            states.update(dict.fromkeys(posted, "draft"))
        if any(states[i] != "draft" for i in ids):
            raise UserError("Only draft journal entries can be cancelled.")
        self._write(ids, {"auto_post": "no", "state": "cancel"})

    def _reverse(
        self, ids: list[int], date: dt.date | None, reason: str | None, journal_id: int | None
    ) -> list[int]:
        line_model = self.env["account.move.line"]
        new_ids = []
        for mid in ids:
            move = self._get(mid, "name", "move_type", "journal_id", "partner_id", "date")
            lines = line_model.read(
                line_model._search([("move_id", "=", mid)], order="id"),
                ["name", "account_id", "partner_id", "product_id", "debit", "credit", "quantity"],
                load="_classic_write",
            )
            reverse_type = {
                "entry": "entry",
                "out_invoice": "out_refund",
                "out_refund": "out_invoice",
                "in_invoice": "in_refund",
                "in_refund": "in_invoice",
                "out_receipt": "out_refund",
                "in_receipt": "in_refund",
            }[move.move_type]
            ref = f"Reversal of: {move.name}, {reason}" if reason else f"Reversal of: {move.name}"
            when = date or move.date
            new_id = self._create(
                [
                    {
                        "move_type": reverse_type,
                        "journal_id": journal_id or move.journal_id,
                        "partner_id": move.partner_id or False,
                        "date": when,
                        "ref": ref,
                        "reversed_entry_id": mid,
                        "auto_post": "at_date" if when > self.env.today else "no",
                        "line_ids": [
                            (
                                0,
                                0,
                                {
                                    "name": ln["name"],
                                    "account_id": ln["account_id"],
                                    "partner_id": ln["partner_id"],
                                    "product_id": ln["product_id"],
                                    "quantity": ln["quantity"],
                                    "debit": ln["credit"],
                                    "credit": ln["debit"],
                                },
                            )
                            for ln in lines
                        ],
                    }
                ]
            )[0]
            if move.move_type == "entry" and when <= self.env.today:
                self._post([new_id])
            new_ids.append(new_id)
        return new_ids


class AccountMoveLine(BaseModel):
    _name = "account.move.line"
    _description = "Journal Item"
    _table = T.AccountMoveLine
    _order = "date desc, move_name desc, id"

    move_id = F.Many2one("account.move", "Journal Entry", required=True, ondelete="cascade")
    move_name = F.Char("Number", related="move_id.name", store=True)
    name = F.Char("Label")
    ref = F.Char("Reference", related="move_id.ref", store=True)
    date = F.Date("Date", related="move_id.date", store=True)
    parent_state = F.Selection(
        [("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")],
        "Status",
        related="move_id.state",
        store=True,
    )
    journal_id = F.Many2one("account.journal", "Journal", related="move_id.journal_id", store=True)
    company_id = F.Many2one("res.company", "Company", related="move_id.company_id", store=True)
    move_type = F.Selection(MOVE_TYPES, "Type", related="move_id.move_type")
    account_id = F.Many2one("account.account", "Account", required=True, ondelete="restrict")
    account_type = F.Selection(ACCOUNT_TYPES, "Internal Type", related="account_id.account_type")
    partner_id = F.Many2one("res.partner", "Partner", ondelete="restrict")
    product_id = F.Many2one("product.product", "Product", ondelete="restrict")
    currency_id = F.Many2one("res.currency", "Currency", required=True, default=1)
    debit = F.Monetary("Debit", currency_field="company_currency_id")
    credit = F.Monetary("Credit", currency_field="company_currency_id")
    balance = F.Monetary("Balance", currency_field="company_currency_id")
    amount_currency = F.Monetary("Amount in Currency")
    quantity = F.Float("Quantity", digits=2, default=1.0)
    price_unit = F.Float("Unit Price", digits=2, default=0.0)
    tax_ids = F.Many2many("account.tax", "account_move_line_account_tax_rel", "Taxes")
    tax_line_id = F.Many2one("account.tax", "Originator Tax", ondelete="restrict")
    display_type = F.Selection(
        [
            ("product", "Product"),
            ("cogs", "Cost of Goods Sold"),
            ("tax", "Tax"),
            ("discount", "Discount"),
            ("rounding", "Rounding"),
            ("payment_term", "Payment Term"),
            ("line_section", "Section"),
            ("line_note", "Note"),
            ("epd", "Early Payment Discount"),
        ],
        "Display Type",
        required=True,
        default="product",
    )
    sequence = F.Integer("Sequence", default=10)
    date_maturity = F.Date("Due Date")
    reconciled = F.Boolean("Reconciled", default=False)

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["move_name", "ref", "name", "product_id"])
        products = self.env["product.product"]._display_names(
            sorted({v["product_id"] for v in raw.values() if v["product_id"]})
        )
        return {
            i: " ".join(
                part
                for part in (
                    v["move_name"],
                    v["ref"] and f"({v['ref']})",
                    v["name"] or products.get(v["product_id"]),
                )
                if part
            )
            for i, v in raw.items()
        }

    @staticmethod
    def _amounts(vals: dict[str, Any], current: tuple[float, float] = (0.0, 0.0)) -> dict[str, Any]:
        """Odoo 17 stores ``balance``; debit and credit are derived from it."""
        if not {"debit", "credit", "balance"} & set(vals):
            return vals
        if "debit" in vals or "credit" in vals:
            debit = float(vals.get("debit", current[0]) or 0.0)
            credit = float(vals.get("credit", current[1]) or 0.0)
            balance = debit - credit
        else:
            balance = float(vals["balance"] or 0.0)
        balance = round(balance, 2)
        out = {**vals, "balance": balance, "debit": max(balance, 0.0), "credit": max(-balance, 0.0)}
        out.setdefault("amount_currency", balance)
        return out

    def _create(self, vals_list: Any) -> list[int]:
        prepared = []
        defaults: dict[int, Any] = {}
        moves = self.env["account.move"]
        for vals in vals_list:
            vals = self._amounts(dict(vals))
            vals.setdefault("balance", 0.0)
            vals.setdefault("debit", 0.0)
            vals.setdefault("credit", 0.0)
            vals.setdefault("amount_currency", vals["balance"])
            if not vals.get("account_id") and vals.get("move_id"):
                # Odoo falls back on the journal's default account for a product line.
                move_id = int(vals["move_id"])
                if move_id not in defaults:
                    journal_id = moves._column_values([move_id], "journal_id").get(move_id)
                    journal = self.env["account.journal"]
                    defaults[move_id] = (
                        journal._column_values([journal_id], "default_account_id").get(journal_id)
                        if journal_id
                        else None
                    )
                if defaults[move_id]:
                    vals["account_id"] = defaults[move_id]
            prepared.append(vals)
        ids = super()._create(prepared)
        if self.env.context.get("check_move_validity", True):
            move_ids = sorted({int(v["move_id"]) for v in prepared if v.get("move_id")})
            moves._check_balanced(move_ids)
        return ids

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        ids = list(dict.fromkeys(ids))
        self._ensure_exist(ids)
        before = set(self._column_values(ids, "move_id").values())
        if {"debit", "credit", "balance"} & set(vals):
            current = {
                r.id: (r.debit or 0.0, r.credit or 0.0)
                for r in self._conn.execute(
                    select(self._t.c.id, self._t.c.debit, self._t.c.credit).where(
                        self._t.c.id.in_(ids)
                    )
                )
            }
            for rid in ids:
                super()._write([rid], self._amounts(dict(vals), current[rid]))
        else:
            super()._write(ids, vals)
        if self.env.context.get("check_move_validity", True):
            after = set(self._column_values(ids, "move_id").values())
            self.env["account.move"]._check_balanced(sorted(before | after))

    def _unlink_check(self, ids: list[int]) -> None:
        if self._search([("id", "in", ids), ("parent_state", "=", "posted")], limit=1):
            raise UserError(POSTED_UNLINK)

    def _unlink(self, ids: Any) -> None:
        ids = list(ids)
        moves = sorted(set(self._column_values(ids, "move_id").values()))
        super()._unlink(ids)
        if self.env.context.get("check_move_validity", True):
            self.env["account.move"]._check_balanced(moves)


class AccountMoveReversal(BaseModel):
    _name = "account.move.reversal"
    _description = "Account Move Reversal"
    _table = T.AccountMoveReversal
    _rec_name = None

    move_ids = F.Many2many("account.move", "account_move_reversal_move", "Moves")
    new_move_ids = F.Many2many("account.move", "account_move_reversal_new_move", "New Moves")
    date = F.Date("Reversal date", required=True, default=lambda env: env.today)
    reason = F.Char("Reason displayed on Credit Note")
    journal_id = F.Many2one("account.journal", "Journal", required=True)
    company_id = F.Many2one("res.company", "Company", required=True, default=1)

    def _create(self, vals_list: Any) -> list[int]:
        ctx = self.env.context
        prepared = []
        for vals in vals_list:
            vals = dict(vals)
            if (
                "move_ids" not in vals
                and ctx.get("active_model") == "account.move"
                and ctx.get("active_ids")
            ):
                vals["move_ids"] = [(6, 0, list(ctx["active_ids"]))]
            prepared.append(vals)
        return super()._create(prepared)

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        if not names & {"journal_id", "move_ids"}:
            return
        moves = self.env["account.move"]
        journals = self.env["account.journal"]
        for wid in ids:
            raw = self._read_raw([wid], ["journal_id", "move_ids"])[wid]
            if not raw["journal_id"] or not raw["move_ids"]:
                continue
            move_journals = set(moves._column_values(raw["move_ids"], "journal_id").values())
            types = set(journals._column_values(sorted(move_journals), "type").values())
            if journals._column_values([raw["journal_id"]], "type")[raw["journal_id"]] not in types:
                raise UserError("Journal should be the same type as the reversed entry.")

    def _reverse_moves(self, wizard_id: int, is_modify: bool) -> dict[str, Any]:
        raw = self._read_raw([wizard_id], ["move_ids", "date", "reason", "journal_id"])[wizard_id]
        moves = self.env["account.move"]
        new_ids = moves._reverse(raw["move_ids"], raw["date"], raw["reason"], raw["journal_id"])
        if is_modify:
            for original in raw["move_ids"]:
                source = moves._get(original, "move_type", "journal_id", "partner_id", "ref")
                lines = self.env["account.move.line"].read(
                    self.env["account.move.line"]._search([("move_id", "=", original)], order="id"),
                    [
                        "name",
                        "account_id",
                        "partner_id",
                        "product_id",
                        "debit",
                        "credit",
                        "quantity",
                    ],
                    load="_classic_write",
                )
                new_ids += moves._create(
                    [
                        {
                            "move_type": source.move_type,
                            "journal_id": source.journal_id,
                            "partner_id": source.partner_id or False,
                            "date": raw["date"],
                            "ref": source.ref,
                            "line_ids": [
                                (0, 0, {k: v for k, v in ln.items() if k != "id"}) for ln in lines
                            ],
                        }
                    ]
                )
        self._write([wizard_id], {"new_move_ids": [(6, 0, new_ids)]})
        action: dict[str, Any] = {
            "name": "Reverse Moves",
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "context": {"default_move_type": "entry"},
        }
        if len(new_ids) == 1:
            action.update(view_mode="form", res_id=new_ids[0])
        else:
            action.update(view_mode="tree,form", domain=[["id", "in", new_ids]])
        return action

    @api_records
    def refund_moves(self, ids: Any) -> dict[str, Any]:
        return self._reverse_moves(normalize_ids(ids)[0], is_modify=False)

    @api_records
    def modify_moves(self, ids: Any) -> dict[str, Any]:
        return self._reverse_moves(normalize_ids(ids)[0], is_modify=True)

    @api_records
    def reverse_moves(self, ids: Any, is_modify: bool = False) -> dict[str, Any]:
        return self._reverse_moves(normalize_ids(ids)[0], is_modify=is_modify)

    @api_model
    def default_get(self, fields_list: list[str]) -> dict[str, Any]:
        values = super().default_get(fields_list)
        ctx = self.env.context
        if "move_ids" in fields_list and ctx.get("active_model") == "account.move":
            values["move_ids"] = [(6, 0, list(ctx.get("active_ids") or []))]
        return values
