"""The seeded database: a fresh Odoo 17 ``retail`` db with the generic chart, USD, no demo.

Ids, codes and names are those of docs/odoo17-behaviour.md §b, §d, §e (company 1 in USD,
admin uid 2, journals 1-9, accounts with their observed ids, taxes 1 and 2, warehouse WH with
WH/Stock = 8, customers = 5, inventory adjustment = 14); the ids it does not pin follow Odoo's
data files in load order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert

from . import tables as T
from .orm import Registry

ACCOUNTS: list[tuple[int, str, str, str, bool]] = [
    (1, "101000", "Current Assets", "asset_current", False),
    (2, "110100", "Stock Valuation", "asset_current", False),
    (3, "110200", "Stock Interim (Received)", "asset_current", True),
    (4, "110300", "Stock Interim (Delivered)", "asset_current", True),
    (5, "110400", "Cost of Production", "asset_current", True),
    (6, "121000", "Account Receivable", "asset_receivable", True),
    (7, "128000", "Prepaid Expenses", "asset_current", False),
    (8, "131000", "Tax Paid", "asset_current", False),
    (9, "132000", "Tax Receivable", "asset_current", False),
    (10, "141000", "Prepayments", "asset_prepayments", False),
    (11, "151000", "Fixed Asset", "asset_fixed", False),
    (12, "191000", "Non-current assets", "asset_non_current", False),
    (13, "201000", "Current Liabilities", "liability_current", False),
    (14, "211000", "Account Payable", "liability_payable", True),
    (15, "212000", "Deferred Revenue", "liability_current", False),
    (16, "230000", "Salary Payable", "liability_current", True),
    (17, "230100", "Employee Payroll Taxes", "liability_current", True),
    (18, "230200", "Employer Payroll Taxes", "liability_current", True),
    (19, "251000", "Tax Received", "liability_current", False),
    (20, "252000", "Tax Payable", "liability_current", False),
    (21, "291000", "Non-current Liabilities", "liability_non_current", False),
    (22, "301000", "Capital", "equity", False),
    (23, "302000", "Dividends", "equity", False),
    (24, "400000", "Product Sales", "income", False),
    (25, "441000", "Foreign Exchange Gain", "income", False),
    (26, "442000", "Cash Difference Gain", "income", False),
    (27, "443000", "Cash Discount Loss", "expense", False),
    (28, "450000", "Other Income", "income_other", False),
    (29, "500000", "Cost of Goods Sold", "expense_direct_cost", False),
    (30, "600000", "Expenses", "expense", False),
    (31, "611000", "Purchase of Equipments", "expense", False),
    (32, "612000", "Rent", "expense", False),
    (33, "620000", "Bank Fees", "expense", False),
    (34, "630000", "Salary Expenses", "expense", False),
    (35, "641000", "Foreign Exchange Loss", "expense", False),
    (36, "642000", "Cash Difference Loss", "expense", False),
    (37, "643000", "Cash Discount Gain", "income", False),
    (38, "961000", "RD Expenses", "expense", False),
    (39, "962000", "Sales Expenses", "expense", False),
    (40, "101300", "Account Receivable (PoS)", "asset_receivable", True),
    (41, "101401", "Bank", "asset_cash", False),
    (42, "101501", "Cash", "asset_cash", False),
    (43, "101402", "Bank Suspense Account", "asset_current", False),
    (44, "101403", "Outstanding Receipts", "asset_current", True),
    (45, "101404", "Outstanding Payments", "asset_current", True),
    (46, "101701", "Liquidity Transfer", "asset_current", True),
    (47, "999999", "Undistributed Profits/Losses", "equity_unaffected", False),
]

# (id, code, name, type, default account, sequence, refund sequence)
JOURNALS: list[tuple[int, str, str, str, int | None, int, bool]] = [
    (1, "INV", "Customer Invoices", "sale", 24, 5, True),
    (2, "BILL", "Vendor Bills", "purchase", 30, 6, True),
    (3, "MISC", "Miscellaneous Operations", "general", None, 7, False),
    (4, "EXCH", "Exchange Difference", "general", None, 9, False),
    (5, "CABA", "Cash Basis Taxes", "general", None, 10, False),
    (6, "BNK1", "Bank", "bank", 41, 10, False),
    (7, "CSH1", "Cash", "cash", 42, 10, False),
    (8, "STJ", "Inventory Valuation", "general", None, 8, False),
    (9, "POSS", "Point of Sale", "general", None, 20, False),
]

# (id, name, complete name, parent, usage, active)
LOCATIONS: list[tuple[int, str, str, int | None, str, bool]] = [
    (1, "Physical Locations", "Physical Locations", None, "view", True),
    (2, "Partners", "Partners", None, "view", True),
    (3, "Virtual Locations", "Virtual Locations", None, "view", True),
    (4, "Vendors", "Partners/Vendors", 2, "supplier", True),
    (5, "Customers", "Partners/Customers", 2, "customer", True),
    (6, "Inter-company transit", "Physical Locations/Inter-company transit", 1, "transit", True),
    (7, "WH", "WH", 1, "view", True),
    (8, "Stock", "WH/Stock", 7, "internal", True),
    (9, "Input", "WH/Input", 7, "internal", False),
    (10, "Quality Control", "WH/Quality Control", 7, "internal", False),
    (11, "Output", "WH/Output", 7, "internal", False),
    (12, "Packing Zone", "WH/Packing Zone", 7, "internal", False),
    (13, "Production", "Virtual Locations/Production", 3, "production", True),
    (14, "Inventory adjustment", "Virtual Locations/Inventory adjustment", 3, "inventory", True),
    (15, "Scrap", "Virtual Locations/Scrap", 3, "inventory", True),
]

# (id, name, code, sequence prefix, src, dest, active)
PICKING_TYPES: list[tuple[int, str, str, str, int | None, int | None, bool]] = [
    (1, "Receipts", "incoming", "IN", 4, 8, True),
    (2, "Delivery Orders", "outgoing", "OUT", 8, 5, True),
    (3, "Pack", "internal", "PACK", 12, 11, False),
    (4, "Pick", "internal", "PICK", 8, 12, False),
    (5, "Internal Transfers", "internal", "INT", 8, 8, True),
    (6, "PoS Orders", "outgoing", "POS", 8, 5, True),
]

XMLIDS: list[tuple[str, str, str, int]] = [
    ("base", "main_company", "res.company", 1),
    ("base", "main_partner", "res.partner", 1),
    ("base", "partner_root", "res.partner", 2),
    ("base", "partner_admin", "res.partner", 3),
    ("base", "user_root", "res.users", 1),
    ("base", "user_admin", "res.users", 2),
    ("base", "USD", "res.currency", 1),
    ("base", "EUR", "res.currency", 2),
    ("base", "GBP", "res.currency", 3),
    ("base", "CAD", "res.currency", 4),
    ("uom", "product_uom_unit", "uom.uom", 1),
    ("uom", "product_uom_dozen", "uom.uom", 2),
    ("product", "product_category_all", "product.category", 1),
    ("product", "product_category_1", "product.category", 2),
    ("product", "cat_expense", "product.category", 3),
    ("point_of_sale", "product_category_pos", "product.category", 4),
    ("stock", "stock_location_locations", "stock.location", 1),
    ("stock", "stock_location_locations_partner", "stock.location", 2),
    ("stock", "stock_location_locations_virtual", "stock.location", 3),
    ("stock", "stock_location_suppliers", "stock.location", 4),
    ("stock", "stock_location_customers", "stock.location", 5),
    ("stock", "stock_location_inter_company", "stock.location", 6),
    ("stock", "stock_location_stock", "stock.location", 8),
    ("stock", "location_production", "stock.location", 13),
    ("stock", "location_inventory", "stock.location", 14),
    ("stock", "stock_location_scrapped", "stock.location", 15),
    ("stock", "warehouse0", "stock.warehouse", 1),
    ("stock", "picking_type_in", "stock.picking.type", 1),
    ("stock", "picking_type_out", "stock.picking.type", 2),
    ("stock", "picking_type_internal", "stock.picking.type", 5),
    ("point_of_sale", "pos_picking_type", "stock.picking.type", 6),
    ("account", "1_sale_tax_template", "account.tax", 1),
    ("account", "1_purchase_tax_template", "account.tax", 2),
]


def seed(conn: Connection, registry: Registry) -> None:
    """Insert the seeded records into empty tables."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    stamp = {"create_uid": 1, "create_date": now, "write_uid": 1, "write_date": now}

    def add(table: type[T.Record], rows: list[dict[str, Any]]) -> None:
        keys = {key for row in rows for key in row}
        params = [{**stamp, **dict.fromkeys(keys), **row} for row in rows]
        conn.execute(insert(table.__table__), params)  # type: ignore[attr-defined]

    add(
        T.IrModel,
        [
            {"id": i, "model": name, "name": cls._description, "state": "base", "transient": False}
            for i, (name, cls) in enumerate(sorted(registry.models.items()), start=1)
        ],
    )
    add(
        T.ResCurrency,
        [
            {
                "id": 1,
                "name": "USD",
                "full_name": "United States dollar",
                "symbol": "$",
                "position": "before",
                "rounding": 0.01,
                "decimal_places": 2,
                "active": True,
            },
            {
                "id": 2,
                "name": "EUR",
                "full_name": "Euro",
                "symbol": "€",
                "position": "after",
                "rounding": 0.01,
                "decimal_places": 2,
                "active": False,
            },
            {
                "id": 3,
                "name": "GBP",
                "full_name": "Pound sterling",
                "symbol": "£",
                "position": "before",
                "rounding": 0.01,
                "decimal_places": 2,
                "active": False,
            },
            {
                "id": 4,
                "name": "CAD",
                "full_name": "Canadian dollar",
                "symbol": "$",
                "position": "before",
                "rounding": 0.01,
                "decimal_places": 2,
                "active": False,
            },
        ],
    )
    partner = {
        "type": "contact",
        "lang": "en_US",
        "customer_rank": 0,
        "supplier_rank": 0,
        "is_company": False,
    }
    add(
        T.ResPartner,
        [
            {
                **partner,
                "id": 1,
                "name": "My Company",
                "is_company": True,
                "active": True,
                "company_id": 1,
            },
            {**partner, "id": 2, "name": "OdooBot", "active": False},
            {
                **partner,
                "id": 3,
                "name": "Administrator",
                "active": True,
                "company_id": 1,
                "email": "admin@example.com",
            },
        ],
    )
    add(
        T.ResCompany,
        [
            {
                "id": 1,
                "name": "My Company",
                "partner_id": 1,
                "currency_id": 1,
                "chart_template": "generic_coa",
                "account_sale_tax_id": 1,
                "account_purchase_tax_id": 2,
                "account_journal_payment_debit_account_id": 44,
                "account_journal_payment_credit_account_id": 45,
                "account_journal_suspense_account_id": 43,
                "transfer_account_id": 46,
                "income_currency_exchange_account_id": 25,
                "expense_currency_exchange_account_id": 35,
                "point_of_sale_update_stock_quantities": "closing",
            }
        ],
    )
    add(
        T.ResUsers,
        [
            {
                "id": 1,
                "login": "__system__",
                "partner_id": 2,
                "company_id": 1,
                "active": False,
                "share": False,
            },
            {
                "id": 2,
                "login": "admin",
                "partner_id": 3,
                "company_id": 1,
                "active": True,
                "share": False,
            },
        ],
    )
    add(
        T.UomUom,
        [
            {
                "id": 1,
                "name": "Units",
                "uom_type": "reference",
                "factor": 1.0,
                "rounding": 0.01,
                "active": True,
            },
            {
                "id": 2,
                "name": "Dozens",
                "uom_type": "bigger",
                "factor": 1 / 12,
                "rounding": 0.01,
                "active": True,
            },
        ],
    )
    add(
        T.ProductCategory,
        [
            {
                "id": 1,
                "name": "All",
                "complete_name": "All",
                "parent_id": None,
                "parent_path": "1/",
            },
            {
                "id": 2,
                "name": "Saleable",
                "complete_name": "All / Saleable",
                "parent_id": 1,
                "parent_path": "1/2/",
            },
            {
                "id": 3,
                "name": "Expenses",
                "complete_name": "All / Expenses",
                "parent_id": 1,
                "parent_path": "1/3/",
            },
            {
                "id": 4,
                "name": "PoS",
                "complete_name": "All / Saleable / PoS",
                "parent_id": 2,
                "parent_path": "1/2/4/",
            },
        ],
    )
    add(
        T.AccountAccount,
        [
            {
                "id": i,
                "code": code,
                "name": name,
                "account_type": kind,
                "reconcile": reconcile,
                "internal_group": "off_balance" if kind.startswith("off") else kind.split("_")[0],
                "deprecated": False,
                "non_trade": False,
                "company_id": 1,
            }
            for i, code, name, kind, reconcile in ACCOUNTS
        ],
    )
    add(
        T.AccountJournal,
        [
            {
                "id": i,
                "code": code,
                "name": name,
                "type": kind,
                "default_account_id": account,
                "suspense_account_id": 43 if kind in ("bank", "cash") else None,
                "company_id": 1,
                "active": True,
                "sequence": sequence,
                "refund_sequence": refund,
                "payment_sequence": kind in ("bank", "cash"),
            }
            for i, code, name, kind, account, sequence, refund in JOURNALS
        ],
    )
    add(
        T.AccountTax,
        [
            {
                "id": 1,
                "name": "15%",
                "description": "15%",
                "type_tax_use": "sale",
                "amount_type": "percent",
                "amount": 15.0,
                "price_include": False,
                "include_base_amount": False,
                "active": True,
                "company_id": 1,
                "sequence": 1,
            },
            {
                "id": 2,
                "name": "15%",
                "description": "15%",
                "type_tax_use": "purchase",
                "amount_type": "percent",
                "amount": 15.0,
                "price_include": False,
                "include_base_amount": False,
                "active": True,
                "company_id": 1,
                "sequence": 1,
            },
        ],
    )
    repartition = []
    next_id = 1
    for tax_id, account in ((1, 19), (2, 8)):
        for document in ("invoice", "refund"):
            for kind, target in (("base", None), ("tax", account)):
                repartition.append(
                    {
                        "id": next_id,
                        "tax_id": tax_id,
                        "document_type": document,
                        "repartition_type": kind,
                        "factor_percent": 100.0,
                        "account_id": target,
                        "sequence": 1,
                        "company_id": 1,
                    }
                )
                next_id += 1
    add(T.AccountTaxRepartitionLine, repartition)
    parent_paths: dict[int, str] = {}
    locations = []
    for i, name, complete, parent, usage, active in LOCATIONS:
        parent_paths[i] = (parent_paths[parent] if parent else "") + f"{i}/"
        locations.append(
            {
                "id": i,
                "name": name,
                "complete_name": complete,
                "location_id": parent,
                "parent_path": parent_paths[i],
                "usage": usage,
                "active": active,
                "company_id": 1 if usage in ("internal", "view", "transit") and i >= 7 else None,
                "warehouse_id": 1 if i in range(7, 13) else None,
                "scrap_location": i == 15,
            }
        )
    add(T.StockLocation, locations)
    add(
        T.IrSequence,
        [
            {
                "id": i,
                "name": f"My Company Sequence {prefix.lower()}",
                "code": None,
                "prefix": f"WH/{prefix}/",
                "padding": 5,
                "number_next": 1,
                "number_increment": 1,
                "implementation": "standard",
                "active": True,
                "company_id": 1,
            }
            for i, _name, _code, prefix, _src, _dest, _active in PICKING_TYPES
        ],
    )
    add(
        T.StockPickingType,
        [
            {
                "id": i,
                "name": name,
                "code": code,
                "sequence_code": prefix,
                "sequence_id": i,
                "default_location_src_id": src,
                "default_location_dest_id": dest,
                "warehouse_id": 1,
                "company_id": 1,
                "active": active,
                "sequence": i,
            }
            for i, name, code, prefix, src, dest, active in PICKING_TYPES
        ],
    )
    add(
        T.StockWarehouse,
        [
            {
                "id": 1,
                "name": "My Company",
                "code": "WH",
                "company_id": 1,
                "partner_id": 1,
                "view_location_id": 7,
                "lot_stock_id": 8,
                "in_type_id": 1,
                "out_type_id": 2,
                "pack_type_id": 3,
                "pick_type_id": 4,
                "int_type_id": 5,
                "pos_type_id": 6,
                "reception_steps": "one_step",
                "delivery_steps": "ship_only",
                "active": True,
            }
        ],
    )
    add(
        T.IrModelData,
        [
            {"module": module, "name": name, "model": model, "res_id": res_id, "noupdate": True}
            for module, name, model, res_id in XMLIDS
        ],
    )
