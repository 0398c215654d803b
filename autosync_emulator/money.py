"""Money in integer cents: line totals, tax rounded once, work-order totals and balances.

Amounts become dollars (a float rounded to cents) only when a public field is written.
"""
from __future__ import annotations

def half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding half away from zero (ROUND_HALF_UP on the magnitude)."""
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((2 * -numerator + denominator) // (2 * denominator))


def dollars(cents: int) -> float:
    # cents/100 is the nearest double to the decimal value, and orjson prints the
    # shortest repr, so 1234 -> 12.34 exactly on the wire.
    return cents / 100


def cents(amount: float | int) -> int:
    return int(round(amount * 100))


def labor_total_cents(hours_hundredths: int, rate_cents: int) -> int:
    return half_up_div(hours_hundredths * rate_cents, 100)


def quantity_total_cents(quantity_hundredths: int, unit_price_cents: int) -> int:
    return half_up_div(quantity_hundredths * unit_price_cents, 100)


def tax_rate_thousandths(tax_rate: float) -> int:
    """tax_rate is a percent with up to 3 decimals (8.875 -> 8875)."""
    return int(round(tax_rate * 1000))


def tax_cents(taxable_cents: int, tax_rate_thousandths: int) -> int:
    """round(taxable x rate / 100) with the rate in thousandths of a percent, ROUND_HALF_UP."""
    return half_up_div(taxable_cents * tax_rate_thousandths, 100_000)


def _totals_by_type(lines: list[dict]) -> tuple[int, int, int, int]:
    """Cents of (labor, parts, fees, taxable) over line items."""
    labor = parts = fees = taxable = 0
    for line in lines:
        c = cents(line["total"])
        kind = line["type"]
        if kind == "labor":
            labor += c
        elif kind == "part":
            parts += c
        else:
            fees += c
        if line.get("taxable"):
            taxable += c
    return labor, parts, fees, taxable


def compute_job_totals(job: dict) -> None:
    """Set a job's labor/parts/total from its line items (in place: the job is new)."""
    labor, parts, fees, _ = _totals_by_type(job["line_items"])
    job["labor_total"] = dollars(labor)
    job["parts_total"] = dollars(parts)
    job["total"] = dollars(labor + parts + fees)


def compute_work_order_totals(wo: dict, tax_rate_thousandths: int, payments: list[dict]) -> None:
    """Set every money field of a work order (in place: the caller owns a fresh copy).

    Totals count non-declined jobs only; tax is rounded once over the taxable lines;
    amount_paid = succeeded payments minus their refunds."""
    lines = [line for job in wo["jobs"] if job["status"] != "declined" for line in job["line_items"]]
    labor, parts, fees, taxable = _totals_by_type(lines)
    subtotal = labor + parts + fees
    tax = tax_cents(taxable, tax_rate_thousandths)
    total = subtotal + tax
    paid = 0
    for p in payments:
        if p["status"] == "succeeded":
            paid += cents(p["amount"]) - cents(p["refunded_amount"])
    wo["labor_total"] = dollars(labor)
    wo["parts_total"] = dollars(parts)
    wo["fees_total"] = dollars(fees)
    wo["subtotal"] = dollars(subtotal)
    wo["tax_total"] = dollars(tax)
    wo["total"] = dollars(total)
    wo["amount_paid"] = dollars(paid)
    wo["balance_due"] = dollars(total - paid)

