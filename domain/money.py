"""Money at cent precision, rounded the way Odoo rounds by default (half-up, per line)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# ISO 4217 codes of currencies with two minor digits that the sale contract accepts. A code
# outside this list is "unknown"; whether Odoo's company can book it is the posting profile's call.
KNOWN_CURRENCIES: frozenset[str] = frozenset(
    {
        "AED",
        "AUD",
        "BRL",
        "CAD",
        "CHF",
        "CNY",
        "CZK",
        "DKK",
        "EUR",
        "GBP",
        "HKD",
        "HUF",
        "ILS",
        "INR",
        "MXN",
        "MYR",
        "NOK",
        "NZD",
        "PHP",
        "PLN",
        "RON",
        "SAR",
        "SEK",
        "SGD",
        "THB",
        "TRY",
        "TWD",
        "USD",
        "ZAR",
    }
)


def cents(amount: Decimal) -> Decimal:
    """Round to the cent, half away from zero (Odoo's float_round default)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def has_cent_precision(amount: Decimal) -> bool:
    """At most two decimal places; False (never an error) for a value too large to quantize
    or not finite, which callers refuse anyway."""
    try:
        return amount.is_finite() and amount == amount.quantize(CENT)
    except InvalidOperation:
        return False
