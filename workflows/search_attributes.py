"""Custom search attributes: what ops filter on in the Web UI and `retailflow` lists."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STORE_ID = SearchAttributeKey.for_keyword("StoreId")
BUSINESS_DAY = SearchAttributeKey.for_keyword("BusinessDay")
RETAIL_STATUS = SearchAttributeKey.for_keyword("RetailStatus")

ALL = (STORE_ID, BUSINESS_DAY, RETAIL_STATUS)
