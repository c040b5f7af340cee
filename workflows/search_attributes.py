"""Custom search attributes and current details: what ops filter on and read in the Web UI."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import SearchAttributeKey

STORE_ID = SearchAttributeKey.for_keyword("StoreId")
BUSINESS_DAY = SearchAttributeKey.for_keyword("BusinessDay")
RETAIL_STATUS = SearchAttributeKey.for_keyword("RetailStatus")

ALL = (STORE_ID, BUSINESS_DAY, RETAIL_STATUS)


def status_details(
    status: str, detail: str = "", facts: Sequence[str] = (), reasons: Sequence[str] = ()
) -> str:
    """The workflow's current details in the Web UI: status first, then facts, then why."""
    head = f"**{status}**" + (f": {detail}" if detail else "")
    return "\n\n".join([head, *facts, *(["\n".join(f"- {r}" for r in reasons)] if reasons else [])])


def show_status(
    status: str, detail: str = "", facts: Sequence[str] = (), reasons: Sequence[str] = ()
) -> None:
    """What ops see: `RetailStatus` to filter on, current details to read. In a workflow only."""
    workflow.upsert_search_attributes([RETAIL_STATUS.value_set(status)])
    workflow.set_current_details(status_details(status, detail, facts, reasons))
