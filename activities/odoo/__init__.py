"""The Odoo adapter, one activity class per business area over one shared client.

- `client`: odoorpc behind a thread-safe client that classifies failures and caches lookups;
- `claim`: the claim-by-draft protocol that makes every write exactly once;
- `sales`, `summary`, `stock`, `pricing`, `refunds`, `payouts`, `catalog`, `customers`: the
  activities workflows call.

Every activity is a plain `def`: odoorpc blocks, so the worker runs them on a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.odoo.catalog import OdooCatalogActivities
from activities.odoo.client import OdooClient
from activities.odoo.customers import OdooCustomerActivities
from activities.odoo.inventory import OdooInventoryActivities
from activities.odoo.payouts import OdooPayoutActivities
from activities.odoo.pricing import OdooPricingActivities
from activities.odoo.refunds import OdooRefundActivities
from activities.odoo.sales import OdooSalesActivities
from activities.odoo.stock import OdooStockActivities
from activities.odoo.summary import OdooSummaryActivities
from domain.posting import PostingProfile


def odoo_activities(odoo: OdooClient, profile: PostingProfile) -> list[Callable[..., Any]]:
    """Every Odoo activity, bound to one client: what a worker registers."""
    sales = OdooSalesActivities(odoo, profile)
    summary = OdooSummaryActivities(odoo, profile)
    stock = OdooStockActivities(odoo, profile)
    pricing = OdooPricingActivities(odoo, profile)
    refunds = OdooRefundActivities(odoo, profile)
    payouts = OdooPayoutActivities(odoo, profile)
    catalog = OdooCatalogActivities(odoo, profile)
    customers = OdooCustomerActivities(odoo, profile)
    inventory = OdooInventoryActivities(odoo, profile)
    return [
        sales.post_sale,
        sales.post_sales_batch,
        summary.post_summary,
        summary.summarised_sales,
        stock.decrement_stock,
        stock.ensure_store_locations,
        inventory.on_hand,
        inventory.apply_adjustment,
        pricing.prepare_price_rollout,
        pricing.write_pricelist_items,
        pricing.remove_pricelist_items,
        refunds.load_sale_for_refund,
        refunds.reserve_refund,
        refunds.release_refund,
        refunds.post_refund,
        refunds.redraft_refund,
        payouts.book_payout,
        payouts.reverse_payout,
        catalog.read_changed_products,
        catalog.product_states,
        customers.sync_customer,
        customers.erase_customer,
    ]
