"""Base models: ir.model, ir.model.data, ir.sequence, res.currency/partner/company/users, uom."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import func, select, tuple_, update

from .. import fields as F
from .. import tables as T
from ..exceptions import SQL_CONSTRAINT, ValidationError
from ..orm import BaseModel, api_model, api_records, normalize_ids


class IrModel(BaseModel):
    _name = "ir.model"
    _description = "Models"
    _table = T.IrModel
    _rec_name = "name"
    _order = "model"

    model = F.Char("Model", required=True)
    name = F.Char("Model Description")
    state = F.Selection(
        [("manual", "Custom Object"), ("base", "Base Object")], "Type", default="base"
    )
    transient = F.Boolean("Transient Model")


class IrModelData(BaseModel):
    _name = "ir.model.data"
    _description = "Model Data"
    _table = T.IrModelData
    _rec_name = "name"
    _order = "module, model, name"

    module = F.Char("Module", required=True)
    name = F.Char("External Identifier", required=True)
    model = F.Char("Model Name", required=True)
    res_id = F.Integer("Record ID")
    noupdate = F.Boolean("Non Updatable", default=False)

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        # Odoo 17 creates the unique index ir_model_data_module_name_uniq_index on (module,
        # name); it is no _sql_constraint, so the service layer reports PostgreSQL's own text.
        if not names & {"module", "name"}:
            return
        t = self._t
        mine = select(t.c.module, t.c.name).where(t.c.id.in_(ids))
        dup = self._conn.execute(
            select(t.c.module, t.c.name)
            .where(tuple_(t.c.module, t.c.name).in_(mine))
            .group_by(t.c.module, t.c.name)
            .having(func.count() > 1)
        ).first()
        if dup is not None:
            raise ValidationError(
                SQL_CONSTRAINT.format(
                    message='duplicate key value violates unique constraint "'
                    'ir_model_data_module_name_uniq_index"\n'
                    f"DETAIL:  Key (module, name)=({dup.module}, {dup.name}) already exists.\n"
                )
            )

    @api_model
    def check_object_reference(
        self, module: str, xml_id: str, raise_on_access_error: bool = False
    ) -> list[Any]:
        t = self._t
        row = self._conn.execute(
            select(t.c.model, t.c.res_id).where(t.c.module == module, t.c.name == xml_id)
        ).first()
        if row is None:
            raise ValueError(f"External ID not found in the system: {module}.{xml_id}")
        return [row.model, row.res_id]


class IrSequence(BaseModel):
    _name = "ir.sequence"
    _description = "Sequence"
    _table = T.IrSequence
    _order = "name"

    name = F.Char("Name", required=True)
    code = F.Char("Sequence Code")
    prefix = F.Char("Prefix")
    padding = F.Integer("Sequence Size", default=0)
    number_next = F.Integer("Next Number", default=1)
    number_increment = F.Integer("Step", default=1)
    implementation = F.Selection(
        [("standard", "Standard"), ("no_gap", "No gap")], "Implementation", default="standard"
    )
    active = F.Boolean("Active", default=True)
    company_id = F.Many2one("res.company", "Company")

    def _next(self, sequence_id: int) -> str:
        row = self._get(sequence_id, "prefix", "padding", "number_next", "number_increment")
        number = row.number_next or 1
        self._conn.execute(
            update(self._t)
            .where(self._t.c.id == sequence_id)
            .values(number_next=number + (row.number_increment or 1))
        )
        today = self.env.today
        prefix = (row.prefix or "") % {
            "year": f"{today.year:04d}",
            "y": f"{today.year % 100:02d}",
            "month": f"{today.month:02d}",
            "day": f"{today.day:02d}",
        }
        return f"{prefix}{number:0{row.padding or 0}d}"

    @api_records
    def next_by_id(self, ids: Any) -> str | bool:
        ids = normalize_ids(ids)
        return self._next(ids[0]) if ids else False

    @api_model
    def next_by_code(self, sequence_code: str) -> str | bool:
        found = self._search([("code", "=", sequence_code)], limit=1)
        return self._next(found[0]) if found else False


class ResCurrency(BaseModel):
    _name = "res.currency"
    _description = "Currency"
    _table = T.ResCurrency
    _order = "active desc, name"

    name = F.Char("Currency", required=True)
    full_name = F.Char("Name")
    symbol = F.Char("Symbol", required=True)
    position = F.Selection(
        [("after", "After Amount"), ("before", "Before Amount")], "Symbol Position", default="after"
    )
    rounding = F.Float("Rounding Factor", default=0.01)
    decimal_places = F.Integer("Decimal Places", default=2)
    active = F.Boolean("Active", default=True)


class ResPartner(BaseModel):
    _name = "res.partner"
    _description = "Contact"
    _table = T.ResPartner
    _order = "name, id"

    name = F.Char("Name")
    ref = F.Char("Reference")
    email = F.Char("Email")
    phone = F.Char("Phone")
    mobile = F.Char("Mobile")
    street = F.Char("Street")
    street2 = F.Char("Street2")
    city = F.Char("City")
    zip = F.Char("Zip")
    website = F.Char("Website Link")
    function = F.Char("Job Position")
    vat = F.Char("Tax ID")
    comment = F.Html("Notes")
    lang = F.Selection([("en_US", "English (US)")], "Language", default="en_US")
    tz = F.Char("Timezone")
    type = F.Selection(
        [
            ("contact", "Contact"),
            ("invoice", "Invoice Address"),
            ("delivery", "Delivery Address"),
            ("other", "Other Address"),
        ],
        "Address Type",
        default="contact",
    )
    is_company = F.Boolean("Is a Company", default=False)
    active = F.Boolean("Active", default=True)
    parent_id = F.Many2one("res.partner", "Related Company")
    child_ids = F.One2many("res.partner", "parent_id", "Contact")
    company_id = F.Many2one("res.company", "Company")
    customer_rank = F.Integer("Customer Rank", default=0)
    supplier_rank = F.Integer("Supplier Rank", default=0)
    user_ids = F.One2many("res.users", "partner_id", "Users")
    property_account_receivable_id = F.Many2one(
        "account.account", "Account Receivable", compute="_compute_properties"
    )
    property_account_payable_id = F.Many2one(
        "account.account", "Account Payable", compute="_compute_properties"
    )

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        # Odoo 17's _sql_constraints check_name: CHECK((type='contact' AND name IS NOT NULL)
        # OR type!='contact'), reported by the service layer like any SQL constraint.
        if not names & {"name", "type"}:
            return
        raw = self._read_raw(ids, ["name", "type"])
        if any(v["type"] == "contact" and v["name"] in (None, False) for v in raw.values()):
            raise ValidationError(SQL_CONSTRAINT.format(message="Contacts require a name"))

    def _compute_properties(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        # Company-dependent ir.property defaults of the generic chart: 121000 and 211000.
        return {
            i: {"property_account_receivable_id": 6, "property_account_payable_id": 14} for i in ids
        }

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["name", "parent_id", "is_company"])
        parents = {v["parent_id"] for v in raw.values() if v["parent_id"]}
        parent_names = self._column_values(sorted(parents), "name") if parents else {}
        out = {}
        for rid, v in raw.items():
            name = v["name"] or ""
            if v["parent_id"] and not v["is_company"]:
                name = f"{parent_names.get(v['parent_id']) or ''}, {name}"
            out[rid] = name
        return out

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        return [
            "|",
            "|",
            ("name", operator, name),
            ("email", operator, name),
            ("ref", operator, name),
        ]


class ResCompany(BaseModel):
    _name = "res.company"
    _description = "Companies"
    _table = T.ResCompany
    _order = "id"

    name = F.Char("Company Name", required=True)
    partner_id = F.Many2one("res.partner", "Partner", required=True)
    currency_id = F.Many2one("res.currency", "Currency", required=True)
    email = F.Char("Email")
    phone = F.Char("Phone")
    vat = F.Char("Tax ID")
    chart_template = F.Selection([("generic_coa", "Generic Chart Template")], "Chart Template")
    account_sale_tax_id = F.Many2one("account.tax", "Default Sale Tax")
    account_purchase_tax_id = F.Many2one("account.tax", "Default Purchase Tax")
    account_journal_payment_debit_account_id = F.Many2one(
        "account.account", "Journal Outstanding Receipts"
    )
    account_journal_payment_credit_account_id = F.Many2one(
        "account.account", "Journal Outstanding Payments"
    )
    account_journal_suspense_account_id = F.Many2one("account.account", "Journal Suspense Account")
    transfer_account_id = F.Many2one("account.account", "Inter-Banks Transfer Account")
    income_currency_exchange_account_id = F.Many2one(
        "account.account", "Gain Exchange Rate Account"
    )
    expense_currency_exchange_account_id = F.Many2one(
        "account.account", "Loss Exchange Rate Account"
    )
    point_of_sale_update_stock_quantities = F.Selection(
        [("closing", "At the session closing"), ("real", "In real time")],
        "Update quantities in stock",
        default="closing",
    )


class ResUsers(BaseModel):
    _name = "res.users"
    _description = "User"
    _table = T.ResUsers
    _inherits: ClassVar[dict[str, str]] = {"res.partner": "partner_id"}
    _order = "login"

    login = F.Char("Login", required=True)
    partner_id = F.Many2one("res.partner", "Related Partner", required=True, ondelete="restrict")
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    active = F.Boolean("Active", default=True)
    share = F.Boolean("Share User", default=False)

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["name"])
        return {i: v["name"] or "" for i, v in raw.items()}

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        return ["|", ("login", operator, name), ("name", operator, name)]

    @api_model
    def context_get(self) -> dict[str, Any]:
        raw = self._read_raw([self.env.uid], ["lang", "tz"]).get(self.env.uid, {})
        return {
            "lang": raw.get("lang") or "en_US",
            "tz": raw.get("tz") or False,
            "uid": self.env.uid,
        }


class UomUom(BaseModel):
    _name = "uom.uom"
    _description = "Product Unit of Measure"
    _table = T.UomUom
    _order = "factor desc, id"

    name = F.Char("Unit of Measure", required=True)
    uom_type = F.Selection(
        [
            ("bigger", "Bigger than the reference Unit of Measure"),
            ("reference", "Reference Unit of Measure for this category"),
            ("smaller", "Smaller than the reference Unit of Measure"),
        ],
        "Type",
        default="reference",
    )
    factor = F.Float("Ratio", default=1.0)
    rounding = F.Float("Rounding Precision", default=0.01)
    active = F.Boolean("Active", default=True)
