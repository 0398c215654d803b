"""VINs: the check digit, model-year codes, making valid VINs for the world, and decoding one
(`GET /v1/vehicles/decode/{vin}`: from the world's vehicles when known, else from the WMI)."""
from __future__ import annotations

import random
import zlib
from typing import Callable

from .errors import ApiError
from .vocabulary import MAKES, WMI_TO_MAKE

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
_TRANSLIT = {**{str(d): d for d in range(10)},
             **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))),
             "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# model-year code at position 10; the cycle repeats every 30 years
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"


def vin_check_digit(vin: str) -> str:
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin, _WEIGHTS))
    r = total % 11
    return "X" if r == 10 else str(r)


def vin_is_valid(vin: str) -> bool:
    if len(vin) != 17 or any(c not in _TRANSLIT for c in vin):
        return False
    return vin[8] == vin_check_digit(vin)


def year_code(year: int) -> str:
    return _YEAR_CODES[(year - 1980) % 30]


def year_from_code(code: str) -> int | None:
    """The most recent model year (<= 2026) that the code denotes."""
    if code not in _YEAR_CODES:
        return None
    year = 1980 + _YEAR_CODES.index(code)
    while year + 30 <= 2026:
        year += 30
    return year


def make_vin(rng: random.Random, wmi: str, year: int) -> str:
    vds = "".join(rng.choice(VIN_CHARS) for _ in range(5))
    plant = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
    serial = "".join(rng.choice("0123456789") for _ in range(6))
    draft = wmi + vds + "0" + year_code(year) + plant + serial
    return draft[:8] + vin_check_digit(draft) + draft[9:]


# what a path segment may hold to be decoded: 17 characters of the VIN alphabet, any case (the
# check digit is verified after that). The OpenAPI document states the same pattern.
VIN_PATTERN = "^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$"


def decode(vin: str, find_vehicle: Callable[[str], dict | None]) -> dict:
    """The decode of a VIN; `find_vehicle(vin)` is the world's vehicle with that VIN, if any."""
    vin = vin.strip().upper()
    if len(vin) != 17:
        raise ApiError(422, "validation_error", "A VIN has exactly 17 characters.", "vin")
    if not vin_is_valid(vin):
        raise ApiError(422, "validation_error", "Invalid VIN (bad characters or check digit).", "vin")
    make = WMI_TO_MAKE.get(vin[:3])
    year = year_from_code(vin[9])
    if make is None:
        raise ApiError(404, "not_found", f"No decode data for manufacturer code {vin[:3]}.")
    models = MAKES[make][1]
    known = find_vehicle(vin)
    pick = models[zlib.crc32(vin.encode()) % len(models)]
    if known is not None:
        pick = next((m for m in models if m[0] == known["model"]), pick)
    model, trims, body_style, drive, engine = pick
    return {"vin": vin, "year": known["year"] if known else year, "make": make, "model": model,
            "trim": known["trim"] if known else trims[zlib.crc32(vin[::-1].encode()) % len(trims)],
            "engine": engine, "drive_type": drive, "body_style": body_style}
