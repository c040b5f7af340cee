"""The emulator's database schema: one SQLModel table per emulated Odoo model.

Table and column names follow Odoo's (``account_move.ref``, ``account_move_line.move_id``), so
a domain leaf compiles to a WHERE clause on the column of the same name. Many2many fields share
one link table keyed by Odoo's relation name. Behaviour lives in ``models/``; this module is
only the storage layout and its indexes.
"""

from __future__ import annotations

import datetime as dt

from pydantic import NaiveDatetime
from sqlalchemy import Index, MetaData
from sqlmodel import Field, SQLModel


class EmulatorTable(SQLModel):
    """Base of the emulator's tables: their own MetaData, so that they never clash with
    tables other parts of the process declare on ``SQLModel.metadata``."""

    metadata = MetaData()


class Record(EmulatorTable):
    """Columns every Odoo table has (``_log_access``)."""

    id: int | None = Field(default=None, primary_key=True)
    create_uid: int | None = None
    create_date: NaiveDatetime | None = None
    write_uid: int | None = None
    write_date: NaiveDatetime | None = None


class Many2manyLink(EmulatorTable, table=True):
    __tablename__ = "m2m_link"
    __table_args__ = (
        Index("m2m_link_left", "relation", "left_id"),
        Index("m2m_link_right", "relation", "right_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    relation: str
    left_id: int
    right_id: int


# --- base ---------------------------------------------------------------------------------


class IrModel(Record, table=True):
    __tablename__ = "ir_model"
    model: str = Field(index=True)
    name: str | None = None
    state: str | None = None
    transient: bool | None = None


class IrModelData(Record, table=True):
    __tablename__ = "ir_model_data"
    __table_args__ = (Index("ir_model_data_module_name", "module", "name"),)
    module: str
    name: str
    model: str
    res_id: int | None = None
    noupdate: bool | None = None


class IrSequence(Record, table=True):
    __tablename__ = "ir_sequence"
    name: str | None = None
    code: str | None = None
    prefix: str | None = None
    padding: int | None = None
    number_next: int | None = None
    number_increment: int | None = None
    implementation: str | None = None
    active: bool | None = None
    company_id: int | None = None


class ResCurrency(Record, table=True):
    __tablename__ = "res_currency"
    name: str | None = None
    full_name: str | None = None
    symbol: str | None = None
    position: str | None = None
    rounding: float | None = None
    decimal_places: int | None = None
    active: bool | None = None


class ResPartner(Record, table=True):
    __tablename__ = "res_partner"
    name: str | None = Field(default=None, index=True)
    ref: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    street: str | None = None
    street2: str | None = None
    city: str | None = None
    zip: str | None = None
    website: str | None = None
    function: str | None = None
    vat: str | None = None
    comment: str | None = None
    lang: str | None = None
    tz: str | None = None
    type: str | None = None
    is_company: bool | None = None
    active: bool | None = None
    parent_id: int | None = None
    company_id: int | None = None
    customer_rank: int | None = None
    supplier_rank: int | None = None


class ResCompany(Record, table=True):
    __tablename__ = "res_company"
    name: str | None = None
    partner_id: int | None = None
    currency_id: int | None = None
    email: str | None = None
    phone: str | None = None
    vat: str | None = None
    chart_template: str | None = None
    account_sale_tax_id: int | None = None
    account_purchase_tax_id: int | None = None
    account_journal_payment_debit_account_id: int | None = None
    account_journal_payment_credit_account_id: int | None = None
    account_journal_suspense_account_id: int | None = None
    transfer_account_id: int | None = None
    income_currency_exchange_account_id: int | None = None
    expense_currency_exchange_account_id: int | None = None
    point_of_sale_update_stock_quantities: str | None = None


class ResUsers(Record, table=True):
    __tablename__ = "res_users"
    login: str = Field(index=True)
    partner_id: int | None = None
    company_id: int | None = None
    active: bool | None = None
    share: bool | None = None


class UomUom(Record, table=True):
    __tablename__ = "uom_uom"
    name: str | None = None
    uom_type: str | None = None
    factor: float | None = None
    rounding: float | None = None
    active: bool | None = None


# --- product ------------------------------------------------------------------------------


class ProductCategory(Record, table=True):
    __tablename__ = "product_category"
    name: str | None = None
    complete_name: str | None = None
    parent_id: int | None = None
    parent_path: str | None = None


class ProductTemplate(Record, table=True):
    __tablename__ = "product_template"
    name: str | None = Field(default=None, index=True)
    default_code: str | None = Field(default=None, index=True)
    description: str | None = None
    description_sale: str | None = None
    type: str | None = None
    detailed_type: str | None = None
    categ_id: int | None = None
    list_price: float | None = None
    uom_id: int | None = None
    uom_po_id: int | None = None
    sale_ok: bool | None = None
    purchase_ok: bool | None = None
    available_in_pos: bool | None = None
    active: bool | None = None
    company_id: int | None = None
    tracking: str | None = None
    invoice_policy: str | None = None
    priority: str | None = None
    sequence: int | None = None
    weight: float | None = None
    volume: float | None = None


class ProductProduct(Record, table=True):
    __tablename__ = "product_product"
    product_tmpl_id: int = Field(index=True)
    default_code: str | None = Field(default=None, index=True)
    barcode: str | None = Field(default=None, index=True)
    standard_price: float | None = None
    active: bool | None = None
    combination_indices: str | None = Field(default=None, index=True)


class ProductAttribute(Record, table=True):
    __tablename__ = "product_attribute"
    name: str | None = None
    create_variant: str | None = None
    display_type: str | None = None
    sequence: int | None = None


class ProductAttributeValue(Record, table=True):
    __tablename__ = "product_attribute_value"
    name: str | None = None
    attribute_id: int | None = Field(default=None, index=True)
    sequence: int | None = None
    default_extra_price: float | None = None


class ProductTemplateAttributeLine(Record, table=True):
    __tablename__ = "product_template_attribute_line"
    active: bool | None = None
    product_tmpl_id: int | None = Field(default=None, index=True)
    attribute_id: int | None = Field(default=None, index=True)


class ProductTemplateAttributeValue(Record, table=True):
    __tablename__ = "product_template_attribute_value"
    ptav_active: bool | None = None
    product_attribute_value_id: int | None = Field(default=None, index=True)
    attribute_line_id: int | None = Field(default=None, index=True)
    product_tmpl_id: int | None = Field(default=None, index=True)
    attribute_id: int | None = Field(default=None, index=True)
    price_extra: float | None = None


# --- accounting ---------------------------------------------------------------------------


class AccountAccount(Record, table=True):
    __tablename__ = "account_account"
    code: str = Field(index=True)
    name: str | None = None
    account_type: str | None = None
    internal_group: str | None = None
    reconcile: bool | None = None
    deprecated: bool | None = None
    non_trade: bool | None = None
    company_id: int | None = None
    currency_id: int | None = None
    note: str | None = None


class AccountJournal(Record, table=True):
    __tablename__ = "account_journal"
    name: str | None = None
    code: str | None = None
    type: str | None = None
    default_account_id: int | None = None
    suspense_account_id: int | None = None
    company_id: int | None = None
    currency_id: int | None = None
    active: bool | None = None
    sequence: int | None = None
    refund_sequence: bool | None = None
    payment_sequence: bool | None = None


class AccountTax(Record, table=True):
    __tablename__ = "account_tax"
    name: str | None = None
    description: str | None = None
    type_tax_use: str | None = None
    amount_type: str | None = None
    amount: float | None = None
    price_include: bool | None = None
    include_base_amount: bool | None = None
    active: bool | None = None
    company_id: int | None = None
    sequence: int | None = None


class AccountTaxRepartitionLine(Record, table=True):
    __tablename__ = "account_tax_repartition_line"
    tax_id: int | None = Field(default=None, index=True)
    document_type: str | None = None
    repartition_type: str | None = None
    factor_percent: float | None = None
    account_id: int | None = None
    sequence: int | None = None
    company_id: int | None = None


class AccountMove(Record, table=True):
    __tablename__ = "account_move"
    __table_args__ = (
        Index("account_move_journal_date", "journal_id", "date"),
        # (journal_id, rowid): the latest entry of a journal without sorting.
        Index("account_move_journal", "journal_id"),
        Index("account_move_sequence_index", "journal_id", "sequence_prefix", "sequence_number"),
    )
    name: str | None = Field(default=None, index=True)
    ref: str | None = Field(default=None, index=True)
    date: dt.date | None = None
    state: str | None = None
    move_type: str | None = None
    journal_id: int | None = None
    company_id: int | None = None
    currency_id: int | None = None
    partner_id: int | None = None
    narration: str | None = None
    posted_before: bool | None = None
    sequence_prefix: str | None = None
    sequence_number: int | None = None
    invoice_date: dt.date | None = None
    invoice_date_due: dt.date | None = None
    invoice_origin: str | None = None
    payment_reference: str | None = None
    payment_state: str | None = None
    auto_post: str | None = None
    to_check: bool | None = None
    reversed_entry_id: int | None = None


class AccountMoveLine(Record, table=True):
    __tablename__ = "account_move_line"
    move_id: int = Field(index=True)
    move_name: str | None = None
    name: str | None = None
    ref: str | None = None
    date: dt.date | None = None
    parent_state: str | None = None
    journal_id: int | None = None
    company_id: int | None = None
    account_id: int | None = Field(default=None, index=True)
    partner_id: int | None = None
    product_id: int | None = None
    currency_id: int | None = None
    debit: float | None = None
    credit: float | None = None
    balance: float | None = None
    amount_currency: float | None = None
    quantity: float | None = None
    price_unit: float | None = None
    tax_line_id: int | None = None
    display_type: str | None = None
    sequence: int | None = None
    date_maturity: dt.date | None = None
    reconciled: bool | None = None


# --- stock --------------------------------------------------------------------------------


class StockLocation(Record, table=True):
    __tablename__ = "stock_location"
    name: str | None = None
    complete_name: str | None = None
    location_id: int | None = None
    parent_path: str | None = Field(default=None, index=True)
    usage: str | None = None
    active: bool | None = None
    company_id: int | None = None
    warehouse_id: int | None = None
    scrap_location: bool | None = None
    barcode: str | None = None


class StockWarehouse(Record, table=True):
    __tablename__ = "stock_warehouse"
    name: str | None = None
    code: str | None = None
    company_id: int | None = None
    partner_id: int | None = None
    view_location_id: int | None = None
    lot_stock_id: int | None = None
    in_type_id: int | None = None
    out_type_id: int | None = None
    pick_type_id: int | None = None
    pack_type_id: int | None = None
    int_type_id: int | None = None
    pos_type_id: int | None = None
    reception_steps: str | None = None
    delivery_steps: str | None = None
    active: bool | None = None


class StockPickingType(Record, table=True):
    __tablename__ = "stock_picking_type"
    name: str | None = None
    code: str | None = None
    sequence_code: str | None = None
    sequence_id: int | None = None
    default_location_src_id: int | None = None
    default_location_dest_id: int | None = None
    warehouse_id: int | None = None
    company_id: int | None = None
    active: bool | None = None
    sequence: int | None = None


class StockQuant(Record, table=True):
    __tablename__ = "stock_quant"
    __table_args__ = (Index("stock_quant_product_location", "product_id", "location_id"),)
    product_id: int
    location_id: int
    company_id: int | None = None
    quantity: float | None = None
    reserved_quantity: float | None = None
    inventory_quantity: float | None = None
    inventory_quantity_set: bool | None = None
    inventory_date: dt.date | None = None
    in_date: NaiveDatetime | None = None
    user_id: int | None = None


class StockPicking(Record, table=True):
    __tablename__ = "stock_picking"
    name: str | None = Field(default=None, index=True)
    origin: str | None = Field(default=None, index=True)
    picking_type_id: int | None = None
    location_id: int | None = None
    location_dest_id: int | None = None
    partner_id: int | None = None
    company_id: int | None = None
    state: str | None = None
    move_type: str | None = None
    priority: str | None = None
    scheduled_date: NaiveDatetime | None = None
    date_done: NaiveDatetime | None = None
    note: str | None = None
    user_id: int | None = None
    backorder_id: int | None = None


class StockMove(Record, table=True):
    __tablename__ = "stock_move"
    __table_args__ = (Index("stock_move_product_state", "product_id", "state"),)
    name: str | None = None
    reference: str | None = None
    origin: str | None = None
    picking_id: int | None = Field(default=None, index=True)
    picking_type_id: int | None = None
    product_id: int | None = None
    product_uom_qty: float | None = None
    quantity: float | None = None
    product_uom: int | None = None
    location_id: int | None = None
    location_dest_id: int | None = None
    partner_id: int | None = None
    company_id: int | None = None
    state: str | None = None
    picked: bool | None = None
    is_inventory: bool | None = None
    procure_method: str | None = None
    date: NaiveDatetime | None = None
    sequence: int | None = None
    price_unit: float | None = None


class StockChangeProductQty(Record, table=True):
    __tablename__ = "stock_change_product_qty"
    product_id: int | None = None
    product_tmpl_id: int | None = None
    new_quantity: float | None = None


class AccountMoveReversal(Record, table=True):
    __tablename__ = "account_move_reversal"
    date: dt.date | None = None
    reason: str | None = None
    journal_id: int | None = None
    company_id: int | None = None


class ProductPricelist(Record, table=True):
    __tablename__ = "product_pricelist"
    name: str | None = Field(default=None, index=True)
    active: bool | None = None
    sequence: int | None = None
    currency_id: int | None = None
    company_id: int | None = None
    discount_policy: str | None = None


class ProductPricelistItem(Record, table=True):
    __tablename__ = "product_pricelist_item"
    pricelist_id: int = Field(index=True)
    applied_on: str | None = None
    categ_id: int | None = None
    product_tmpl_id: int | None = None
    product_id: int | None = None
    min_quantity: float | None = None
    date_start: NaiveDatetime | None = None
    date_end: NaiveDatetime | None = None
    base: str | None = None
    base_pricelist_id: int | None = None
    compute_price: str | None = None
    fixed_price: float | None = None
    percent_price: float | None = None
    price_discount: float | None = None
    price_surcharge: float | None = None
    price_round: float | None = None
    company_id: int | None = None
