"""`GET /v1/vehicles/decode/{vin}`: decode from the world's vehicles, else from the WMI."""
from __future__ import annotations

import zlib

from .errors import ApiError
from .world import MAKES, WMI_TO_MAKE, vin_is_valid, year_from_code


def decode(core, vin: str) -> dict:
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
    known = None
    with core.store.lock:
        for vehicle in core.store.tables["vehicles"].visible.values():
            if vehicle["vin"] == vin:
                known = vehicle
                break
    pick = models[zlib.crc32(vin.encode()) % len(models)]
    if known is not None:
        pick = next((m for m in models if m[0] == known["model"]), pick)
    model, trims, body_style, drive, engine = pick
    return {"vin": vin, "year": known["year"] if known else year, "make": make, "model": model,
            "trim": known["trim"] if known else trims[zlib.crc32(vin[::-1].encode()) % len(trims)],
            "engine": engine, "drive_type": drive, "body_style": body_style}
