"""The emulated Odoo models, grouped by the Odoo module that defines them."""

from __future__ import annotations

from ..orm import BaseModel
from . import account, attribute, base, mail, pricing, product, stock

MODEL_CLASSES: list[type[BaseModel]] = [
    base.IrModel,
    base.IrModelData,
    base.IrSequence,
    base.ResCurrency,
    base.ResPartner,
    base.ResCompany,
    base.ResUsers,
    base.UomUom,
    product.ProductCategory,
    attribute.ProductAttribute,
    attribute.ProductAttributeValue,
    attribute.ProductTemplateAttributeLine,
    attribute.ProductTemplateAttributeValue,
    product.ProductTemplate,
    product.ProductProduct,
    pricing.ProductPricelist,
    pricing.ProductPricelistItem,
    account.AccountAccount,
    account.AccountJournal,
    account.AccountTax,
    account.AccountTaxRepartitionLine,
    account.AccountMove,
    account.AccountMoveLine,
    account.AccountMoveReversal,
    stock.StockLocation,
    stock.StockWarehouse,
    stock.StockPickingType,
    stock.StockQuant,
    stock.StockMove,
    stock.StockPicking,
    stock.StockChangeProductQty,
    *mail.MODELS,  # after base: its res.partner adds mail's blacklist fields
]

__all__ = ["MODEL_CLASSES"]
