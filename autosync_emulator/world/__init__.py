"""The seeded world: the history of every shop up to the emulator clock.

`generate_world` feeds plain dicts, in the exact shape `GET {id}` returns, into a sink (the
store's bulk loader). Arithmetic and data live apart: money.py, vin.py, vocabulary.py,
seeding.py, timefmt.py and the record builders in records.py; this package only decides what
happened: shop.py (a shop and its people, parts, customers, vehicles; bursts of bulk edits),
work_orders.py (work orders with their inspections and payments), appointments.py.
"""
from __future__ import annotations

from ..timefmt import DEFAULT_START, iso, parse_iso  # noqa: F401  (re-exported: tests build timestamps with it)
from .shop import generate_world

__all__ = ["generate_world", "DEFAULT_START", "iso", "parse_iso"]
