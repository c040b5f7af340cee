"""Business ids cannot collide, whatever `-` the parts contain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.ids import BadIdPart, business_id

part = st.text(
    st.characters(blacklist_characters=":", blacklist_categories=("Z", "C")),
    min_size=1,
    max_size=12,
)


def test_parts_with_dashes_give_different_ids() -> None:
    assert business_id("sale", "A-1", "2") != business_id("sale", "A", "1-2")


@given(st.lists(part, min_size=2, max_size=2), st.lists(part, min_size=2, max_size=2))
def test_ids_are_equal_only_for_equal_parts(a: list[str], b: list[str]) -> None:
    assert (business_id("sale", *a) == business_id("sale", *b)) == (a == b)


@pytest.mark.parametrize("bad", ["", "A:1", " A", "A "])
def test_a_part_that_could_collide_is_refused(bad: str) -> None:
    with pytest.raises(BadIdPart, match="cannot be part of a sale id"):
        business_id("sale", bad, "T1")
