"""Test data masking: stable pseudonyms that keep the customer fields' formats."""

from __future__ import annotations

import re

import pytest

from domain.masking import Masker

KEY = b"masking-key-for-tests-0123456789"


def test_an_email_stays_an_email_and_is_stable_per_key() -> None:
    m = Masker(KEY)
    masked = m.email("Jane.Roe@Example.com")
    assert re.fullmatch(r"user-[0-9a-f]{10}@mask-[0-9a-f]{6}\.example", masked)
    assert m.email("jane.roe@example.com") == masked  # case and spaces do not split a person
    assert m.email("john@example.com") != masked
    assert Masker(b"another-key-0123456789abcdef").email("jane.roe@example.com") != masked


def test_a_phone_keeps_its_shape() -> None:
    m = Masker(KEY)
    phone = "+1 (555) 010-2299"
    masked = m.phone(phone)
    assert masked != phone
    assert re.sub(r"\d", "9", masked) == re.sub(r"\d", "9", phone)
    assert m.phone(phone) == masked


def test_names_and_addresses_keep_words_case_and_digits() -> None:
    m = Masker(KEY)
    name = m.words("Jane O'Roe")
    assert name != "Jane O'Roe"
    assert re.fullmatch(r"[A-Z][a-z]{3} [A-Z]'[A-Z][a-z]{2}", name)
    address = m.words("12 Elm Street, Springfield", "address")
    assert re.fullmatch(r"\d\d [A-Z][a-z]{2} [A-Z][a-z]{5}, [A-Z][a-z]{10}", address)
    assert "Elm" not in address


def test_mask_walks_json_and_changes_only_customer_fields() -> None:
    m = Masker(KEY)
    data = {
        "store_id": "S001",
        "txn_id": "T9",
        "amount": "57.50",
        "customer": {"name": "Jane Roe", "email": "jane@example.com", "phone": "555-0100"},
        "lines": [{"sku": "TEE", "customer_email": "jane@example.com"}],
        "move_name": "INV/2026/0001",
    }
    masked = m.mask(data)
    assert {k: masked[k] for k in ("store_id", "txn_id", "amount", "move_name")} == {
        k: data[k] for k in ("store_id", "txn_id", "amount", "move_name")
    }
    assert masked["customer"]["email"] == m.email("jane@example.com")
    assert masked["lines"][0]["customer_email"] == masked["customer"]["email"]
    assert masked["customer"]["name"] != "Jane Roe"
    assert "jane" not in str(masked).lower()
    assert data["customer"]["name"] == "Jane Roe"  # a copy: the input is untouched


def test_a_random_key_per_export_and_a_short_key_refused() -> None:
    assert Masker().email("a@b.c") != Masker().email("a@b.c")
    with pytest.raises(ValueError, match="16 bytes"):
        Masker(b"short")
