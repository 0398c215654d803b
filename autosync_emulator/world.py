"""The seeded world: money math, VINs, catalogs and the generator of a shop's history.

Everything here is pure data building: plain dicts in the exact shape `GET {id}` returns
(no pydantic: 2 million rows must build in well under two minutes). Money is computed in
integer cents and only converted to dollars (a float rounded to cents) when a public
field is written. One `random.Random` per purpose, derived from the seed, so the same
seed gives the same world byte for byte and changing one generator does not reshuffle
the others.
"""
from __future__ import annotations

import bisect
import calendar
import itertools
import random
import time
from typing import Any, Callable

# --------------------------------------------------------------------------- time

DEFAULT_START = "2025-06-01T12:00:00Z"
HISTORY_DAYS = 540
DAY = 86400
HOUR = 3600


def iso(ts: int) -> str:
    """Epoch seconds -> `2024-01-15T10:30:00Z` (second precision, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


_DAY_STARTS: dict[str, int] = {}


def parse_iso(value: str) -> int:
    """`2024-01-15T10:30:00Z` (our own output) -> epoch seconds; fast path, no validation.

    The epoch of each date is cached (a world spans a few thousand dates), which makes this
    several times cheaper than `calendar.timegm` on every call: indexing 1 M rows needs it."""
    day = _DAY_STARTS.get(value[:10])
    if day is None:
        day = calendar.timegm((int(value[0:4]), int(value[5:7]), int(value[8:10]), 0, 0, 0, 0, 0, 0))
        if len(_DAY_STARTS) < 100_000:
            _DAY_STARTS[value[:10]] = day
    return day + int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])


class Weighted:
    """A weighted choice with cumulative weights computed once (random.choices recomputes them
    on every call, which dominated generation time)."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, values: tuple, weights: tuple):
        self.values = values
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total)]


class FastRandom(random.Random):
    """`random.Random` whose integer draws scale one float instead of rejection-sampling
    bits: choice/randint/sample were half of the generation time. The bias (< n / 2**53)
    does not matter for test data, and the sequence is still fully determined by the seed."""

    def _randbelow(self, n: int) -> int:  # type: ignore[override]
        return int(self.random() * n)


def rng_for(seed: int | str, *purpose: Any) -> random.Random:
    """A generator private to one purpose: string seeds are hashed with SHA-512 by
    `random`, so this is stable across processes (unlike `hash()`)."""
    return FastRandom(":".join([str(seed), *map(str, purpose)]))


# --------------------------------------------------------------------------- money

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


def compute_job_totals(job: dict) -> None:
    """Set a job's labor/parts/total from its line items (in place: the job is new)."""
    labor = parts = fees = 0
    for line in job["line_items"]:
        c = cents(line["total"])
        kind = line["type"]
        if kind == "labor":
            labor += c
        elif kind == "part":
            parts += c
        else:
            fees += c
    job["labor_total"] = dollars(labor)
    job["parts_total"] = dollars(parts)
    job["total"] = dollars(labor + parts + fees)


def compute_work_order_totals(wo: dict, tax_rate_thousandths: int, payments: list[dict]) -> None:
    """Set every money field of a work order (in place: the caller owns a fresh copy).

    Totals count non-declined jobs only; tax is rounded once over the taxable lines;
    amount_paid = succeeded payments minus their refunds."""
    labor = parts = fees = taxable = 0
    for job in wo["jobs"]:
        if job["status"] == "declined":
            continue
        for line in job["line_items"]:
            c = cents(line["total"])
            kind = line["type"]
            if kind == "labor":
                labor += c
            elif kind == "part":
                parts += c
            else:
                fees += c
            if line["taxable"]:
                taxable += c
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


# --------------------------------------------------------------------------- VIN

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


# --------------------------------------------------------------------------- catalogs

FIRST_NAMES = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
               "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
               "Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Paul Emily "
               "Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah "
               "Luis Maria Carlos Ana Jose Sofia Wei Mei Raj Priya Ahmed Fatima Olga Ivan").split()
LAST_NAMES = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
              "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
              "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
              "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
              "Roberts O'Brien Kowalski Chen Patel Kim").split()
COMPANY_WORDS = ("Acme Summit Riverside Keystone Lakeview Pioneer Evergreen Ironwood Redline Bluewater "
                 "Granite Frontier Maple Harbor Northstar Sterling").split()
COMPANY_KINDS = ("Plumbing", "Landscaping", "Logistics", "Electric", "Construction", "Delivery",
                 "Roofing", "Couriers", "Property Management", "HVAC")
STREETS = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Blvd", "Elm St", "Washington Ave",
           "Lake Rd", "Hill St", "Pine Ct", "Market St", "Broadway", "Sunset Blvd", "River Rd")
CITIES = (("North Canton", "OH", "447"), ("Akron", "OH", "443"), ("Columbus", "OH", "432"),
          ("Austin", "TX", "787"), ("Denver", "CO", "802"), ("Tampa", "FL", "336"),
          ("Portland", "OR", "972"), ("Raleigh", "NC", "276"), ("Phoenix", "AZ", "850"),
          ("Madison", "WI", "537"), ("Boise", "ID", "837"), ("Richmond", "VA", "232"))
# Where shop number i (in creation order) stands, and its IANA zone: the first shops of a world span
# several US zones, one of them without daylight saving time (Phoenix), so local-date logic is exercised.
SHOP_LOCATIONS = (("Phoenix", "AZ", "850", "America/Phoenix"), ("Columbus", "OH", "432", "America/New_York"),
                  ("Austin", "TX", "787", "America/Chicago"), ("Denver", "CO", "802", "America/Denver"),
                  ("Portland", "OR", "972", "America/Los_Angeles"), ("Tampa", "FL", "336", "America/New_York"),
                  ("Madison", "WI", "537", "America/Chicago"), ("Boise", "ID", "837", "America/Boise"))
SHOP_NAMES = ("Johnson's Auto Care", "Precision Auto Repair", "Main Street Garage", "Eastside Motors",
              "Quality Car Clinic", "Pit Stop Service Center", "Green Light Automotive",
              "Northside Tire & Auto", "Reliable Auto Works", "Summit Car Care", "Hometown Auto",
              "Valley Transmission & Repair")

# make -> (WMI, [(model, trims, body_style, drive_type, engine)])
MAKES: dict[str, tuple[str, list[tuple[str, tuple[str, ...], str, str, str]]]] = {
    "Honda": ("1HG", [("Accord", ("LX", "EX", "Sport"), "Sedan", "FWD", "2.4L 4-Cyl"),
                      ("Civic", ("LX", "EX", "Si"), "Sedan", "FWD", "2.0L 4-Cyl"),
                      ("CR-V", ("LX", "EX-L", "Touring"), "SUV", "AWD", "1.5L Turbo 4-Cyl")]),
    "Toyota": ("4T1", [("Camry", ("LE", "SE", "XLE"), "Sedan", "FWD", "2.5L 4-Cyl"),
                       ("Corolla", ("L", "LE", "SE"), "Sedan", "FWD", "1.8L 4-Cyl"),
                       ("RAV4", ("LE", "XLE", "Limited"), "SUV", "AWD", "2.5L 4-Cyl")]),
    "Ford": ("1FT", [("F-150", ("XL", "XLT", "Lariat"), "Pickup", "4WD", "3.5L V6 EcoBoost"),
                     ("Escape", ("S", "SE", "Titanium"), "SUV", "FWD", "1.5L Turbo 3-Cyl"),
                     ("Transit", ("Cargo", "Passenger"), "Van", "RWD", "3.5L V6")]),
    "Chevrolet": ("1G1", [("Malibu", ("LS", "LT"), "Sedan", "FWD", "1.5L Turbo 4-Cyl"),
                          ("Silverado 1500", ("WT", "LT", "RST"), "Pickup", "4WD", "5.3L V8"),
                          ("Equinox", ("LS", "LT", "Premier"), "SUV", "AWD", "1.5L Turbo 4-Cyl")]),
    "Nissan": ("1N4", [("Altima", ("S", "SV", "SL"), "Sedan", "FWD", "2.5L 4-Cyl"),
                       ("Rogue", ("S", "SV", "SL"), "SUV", "AWD", "2.5L 4-Cyl")]),
    "Subaru": ("4S3", [("Outback", ("Base", "Premium", "Limited"), "Wagon", "AWD", "2.5L H4"),
                       ("Forester", ("Base", "Premium", "Sport"), "SUV", "AWD", "2.5L H4")]),
    "Jeep": ("1C4", [("Wrangler", ("Sport", "Sahara", "Rubicon"), "SUV", "4WD", "3.6L V6"),
                     ("Grand Cherokee", ("Laredo", "Limited"), "SUV", "4WD", "3.6L V6")]),
    "Hyundai": ("5NP", [("Elantra", ("SE", "SEL"), "Sedan", "FWD", "2.0L 4-Cyl"),
                        ("Tucson", ("SE", "SEL", "Limited"), "SUV", "AWD", "2.5L 4-Cyl")]),
    "BMW": ("WBA", [("330i", ("Base", "xDrive"), "Sedan", "RWD", "2.0L Turbo 4-Cyl")]),
    "Volkswagen": ("3VW", [("Jetta", ("S", "SE", "SEL"), "Sedan", "FWD", "1.5L Turbo 4-Cyl")]),
}
WMI_TO_MAKE = {wmi: make for make, (wmi, _models) in MAKES.items()}
MAKE_NAMES = tuple(MAKES)

# part key -> (name, category, cost range in cents, typical markup)
PARTS: dict[str, tuple[str, int, int]] = {
    "oil_filter": ("Oil filter", 450, 1200),
    "oil_qt": ("Synthetic oil 5W-30 (qt)", 550, 900),
    "pads_front": ("Brake pad set - front", 3500, 7500),
    "pads_rear": ("Brake pad set - rear", 3000, 6500),
    "hardware": ("Brake hardware kit", 900, 2200),
    "rotor": ("Brake rotor", 4500, 11000),
    "battery": ("Battery", 11000, 19000),
    "coolant_gal": ("Coolant (gal)", 1400, 2400),
    "atf_qt": ("ATF (qt)", 700, 1200),
    "wiper": ("Wiper blade", 900, 2400),
    "air_filter": ("Engine air filter", 1200, 2800),
    "cabin_filter": ("Cabin air filter", 1300, 3000),
    "spark_plug": ("Spark plug", 600, 1800),
    "belt": ("Serpentine belt", 2500, 6000),
    "strut": ("Strut assembly", 9000, 21000),
    "water_pump": ("Water pump", 6000, 18000),
    "alternator": ("Alternator", 15000, 32000),
    "starter": ("Starter motor", 12000, 26000),
    "refrigerant_lb": ("Refrigerant R-1234yf (lb)", 3000, 6000),
    "bulb": ("Headlight bulb", 1200, 4500),
    "tire": ("All-season tire", 9000, 18000),
    "tpms": ("TPMS sensor", 3000, 6500),
    "wheel_bearing": ("Wheel bearing hub assembly", 8000, 19000),
    "thermostat": ("Thermostat", 1800, 4500),
}
PART_BRANDS = ("Bosch", "ACDelco", "Motorcraft", "Denso", "NGK", "Wagner", "Monroe", "Gates",
               "Interstate", "Valvoline", "Mobil 1", "Michelin", "Dorman", "Moog")
# job name -> (labor hours in hundredths, [(part key, quantity hundredths)], inspection item that recommends it)
JOBS: dict[str, tuple[int, list[tuple[str, int]]]] = {
    "Oil & filter change": (50, [("oil_filter", 100), ("oil_qt", 500)]),
    "Brake pads - front": (150, [("pads_front", 100), ("hardware", 100)]),
    "Brake pads - rear": (150, [("pads_rear", 100), ("hardware", 100)]),
    "Rotors - front": (100, [("rotor", 200)]),
    "Tire rotation": (50, []),
    "Battery replacement": (50, [("battery", 100)]),
    "Coolant flush": (100, [("coolant_gal", 200)]),
    "Transmission fluid service": (120, [("atf_qt", 600)]),
    "Wiper blades": (25, [("wiper", 200)]),
    "Engine air filter": (25, [("air_filter", 100)]),
    "Cabin air filter": (30, [("cabin_filter", 100)]),
    "Spark plugs": (150, [("spark_plug", 400)]),
    "Serpentine belt": (80, [("belt", 100)]),
    "Diagnostic - check engine light": (100, []),
    "Four-wheel alignment": (100, []),
    "Struts - front": (250, [("strut", 200)]),
    "Water pump": (300, [("water_pump", 100), ("coolant_gal", 200)]),
    "Alternator": (200, [("alternator", 100)]),
    "Starter": (180, [("starter", 100)]),
    "A/C recharge": (100, [("refrigerant_lb", 200)]),
    "Headlight bulbs": (30, [("bulb", 200)]),
    "Tires (set of 4)": (100, [("tire", 400), ("tpms", 0)]),
    "Wheel bearing - front": (180, [("wheel_bearing", 100)]),
    "Thermostat": (150, [("thermostat", 100), ("coolant_gal", 100)]),
}
BASE_JOBS = ("Oil & filter change", "Diagnostic - check engine light", "Tire rotation",
             "Brake pads - front", "Battery replacement", "Four-wheel alignment", "Starter",
             "Alternator", "A/C recharge", "Tires (set of 4)", "Spark plugs")
# inspection item -> (category, recommended job)
INSPECTION_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("Front brake pads", "Brakes", "Brake pads - front"),
    ("Rear brake pads", "Brakes", "Brake pads - rear"),
    ("Front rotors", "Brakes", "Rotors - front"),
    ("Tire tread depth", "Tires", "Tires (set of 4)"),
    ("Alignment", "Tires", "Four-wheel alignment"),
    ("Battery health", "Electrical", "Battery replacement"),
    ("Wiper blades", "Visibility", "Wiper blades"),
    ("Headlights", "Lighting", "Headlight bulbs"),
    ("Engine air filter", "Filters", "Engine air filter"),
    ("Cabin air filter", "Filters", "Cabin air filter"),
    ("Coolant condition", "Fluids", "Coolant flush"),
    ("Transmission fluid", "Fluids", "Transmission fluid service"),
    ("Serpentine belt", "Engine", "Serpentine belt"),
    ("Front struts", "Suspension", "Struts - front"),
    ("Wheel bearings", "Suspension", "Wheel bearing - front"),
    ("A/C performance", "HVAC", "A/C recharge"),
)
ITEM_NOTES = {"green": ("Looks good", "Within spec", ""),
              "yellow": ("Wearing, recommend soon", "Monitor at next visit", "Approaching limit"),
              "red": ("Needs immediate attention", "Below minimum spec", "Failed test")}
FEES = (("Shop supplies", 1, True), ("Hazardous waste disposal", 0, True), ("Tire disposal fee", 0, False))
REFUND_REASONS = ("customer_request", "duplicate", "goodwill", "overcharge", "warranty")
CARD_BRANDS = ("visa", "mastercard", "amex", "discover")
APPOINTMENT_TITLES = ("Oil change", "Brake noise", "Check engine light", "State inspection",
                      "Tire rotation", "A/C not cold", "Scheduled maintenance", "Diagnostic")
WO_NOTES = ("", "", "Customer waiting", "Drop-off, will call", "Fleet vehicle", "Return visit",
            "Loaner requested", "Check for recall")


def resource_names() -> tuple[str, ...]:
    return ("shops", "employees", "customers", "vehicles", "work_orders", "payments",
            "inspections", "appointments", "inventory")


class Ids:
    """Id counters per resource and child type: unique across shops, in generation order."""

    KINDS = ("shops", "employees", "customers", "vehicles", "work_orders", "jobs", "line_items",
             "payments", "refunds", "inspections", "inspection_items", "photos", "appointments",
             "inventory", "webhooks")

    def __init__(self) -> None:
        self.last = {kind: 0 for kind in self.KINDS}

    def next(self, kind: str) -> int:
        self.last[kind] += 1
        return self.last[kind]


# --------------------------------------------------------------------------- builders
# Builders are shared by the history generator and by live activity / API writes.

def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def phone(rng: random.Random) -> str:
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"


def address(rng: random.Random) -> dict:
    city, state, zip3 = rng.choice(CITIES)
    return {"street": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}", "city": city,
            "state": state, "zip": f"{zip3}{rng.randint(0, 99):02d}"}


def email_for(first: str, last: str, n: int, domain: str = "example.com") -> str:
    local = f"{first}.{last}".lower().replace("'", "")
    return f"{local}{n}@{domain}"


def build_customer(rng: random.Random, cid: int, shop_id: int, ts: int) -> dict:
    first, last = person(rng)
    is_business = rng.random() < 0.12
    company = (f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}" if is_business else None)
    stamp = iso(ts)
    return {"id": cid, "shop_id": shop_id, "first_name": first, "last_name": last,
            "email": email_for(first, last, cid) if rng.random() < 0.9 else None,
            "phone": phone(rng), "is_business": is_business, "company_name": company,
            "address": address(rng),
            "notes": rng.choice(("", "", "", "Prefers text", "Fleet account", "Net 30 terms", "VIP")) or None,
            "created_at": stamp, "updated_at": stamp}


def build_vehicle(rng: random.Random, vid: int, shop_id: int, customer_id: int, ts: int,
                  clock_year: int) -> dict:
    make = rng.choice(MAKE_NAMES)
    wmi, models = MAKES[make]
    model, trims, _body, _drive, _engine = rng.choice(models)
    year = rng.randint(max(2004, clock_year - 18), clock_year)
    age = clock_year - year
    stamp = iso(ts)
    return {"id": vid, "shop_id": shop_id, "customer_id": customer_id, "year": year,
            "make": make, "model": model, "trim": rng.choice(trims),
            "vin": make_vin(rng, wmi, year),
            "mileage": max(5, age * rng.randint(8000, 15000) + rng.randint(0, 9000)),
            "license_plate": "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3))
                             + "-" + f"{rng.randint(0, 9999):04d}",
            "created_at": stamp, "updated_at": stamp}


def labor_line(line_id: int, job_id: int, description: str, technician_id: int | None,
               hours_h: int, rate_c: int, taxable: bool) -> dict:
    return {"id": line_id, "job_id": job_id, "type": "labor", "description": description,
            "technician_id": technician_id, "hours": hours_h / 100, "rate": dollars(rate_c),
            "part_id": None, "part_number": None, "quantity": None, "unit_cost": None,
            "unit_price": None, "taxable": taxable,
            "total": dollars(labor_total_cents(hours_h, rate_c))}


def part_line(line_id: int, job_id: int, part: dict, quantity_h: int) -> dict:
    price_c = cents(part["unit_price"])
    return {"id": line_id, "job_id": job_id, "type": "part", "description": part["name"],
            "technician_id": None, "hours": None, "rate": None, "part_id": part["id"],
            "part_number": part["part_number"], "quantity": quantity_h / 100,
            "unit_cost": part["unit_cost"], "unit_price": part["unit_price"], "taxable": True,
            "total": dollars(quantity_total_cents(quantity_h, price_c))}


def fee_line(line_id: int, job_id: int, description: str, price_c: int, taxable: bool) -> dict:
    return {"id": line_id, "job_id": job_id, "type": "fee", "description": description,
            "technician_id": None, "hours": None, "rate": None, "part_id": None,
            "part_number": None, "quantity": 1.0, "unit_cost": None,
            "unit_price": dollars(price_c), "taxable": taxable, "total": dollars(price_c)}


class ShopContext:
    """What builders need to know about one shop: rates, staff, parts by catalog key."""

    def __init__(self, shop: dict, technicians: list[int], advisors: list[int],
                 parts_by_key: dict[str, list[dict]]):
        self.shop = shop
        self.shop_id = shop["id"]
        self.tax_rate_k = tax_rate_thousandths(shop["settings"]["tax_rate"])
        self.labor_rate_c = cents(shop["settings"]["labor_rate"])
        self.tax_labor = False  # set by the generator (some shops tax labor)
        self.open_inspections_made = 0
        self.recent_made = 0
        self.payments_made = 0
        self._firsts: set[str] = set()
        self.technicians = technicians
        self.advisors = advisors
        self.parts_by_key = parts_by_key

    def first(self, key: str) -> bool:
        """True the first time `key` is asked for in this shop: rare cases a small world must
        still contain (a refund, a failed card, a pending text-to-pay ...)."""
        if key in self._firsts:
            return False
        self._firsts.add(key)
        return True


def build_job(rng: random.Random, ids: Ids, ctx: ShopContext, wo_id: int, name: str,
              technician_id: int | None, status: str, approved_ts: int | None,
              tax_labor: bool, with_fee: bool) -> dict:
    job_id = ids.next("jobs")
    hours_h, parts = JOBS.get(name, (100, []))
    hours_h = max(10, hours_h + rng.choice((-25, 0, 0, 0, 25, 50)))
    hours_h -= hours_h % 5
    lines = [labor_line(ids.next("line_items"), job_id, f"Labor: {name}", technician_id,
                        hours_h, ctx.labor_rate_c, tax_labor)]
    for key, qty_h in parts:
        if qty_h == 0:
            if rng.random() < 0.5:
                continue
            qty_h = 400
        options = ctx.parts_by_key.get(key)
        if not options:
            continue
        lines.append(part_line(ids.next("line_items"), job_id, rng.choice(options), qty_h))
    if with_fee:
        desc, proportional, taxable = rng.choice(FEES)
        price_c = (min(4500, max(300, half_up_div(cents(lines[0]["total"]) * 5, 100)))
                   if proportional else rng.choice((495, 500, 795, 1000)))
        lines.append(fee_line(ids.next("line_items"), job_id, desc, price_c, taxable))
    job = {"id": job_id, "work_order_id": wo_id, "name": name, "technician_id": technician_id,
           "status": status, "approved_at": iso(approved_ts) if approved_ts is not None else None,
           "labor_total": 0.0, "parts_total": 0.0, "total": 0.0, "line_items": lines}
    compute_job_totals(job)
    return job


def build_inventory_part(rng: random.Random, pid: int, shop_id: int, key: str, brand: str,
                         ts: int) -> dict:
    name, lo, hi = PARTS[key]
    cost_c = rng.randint(lo, hi)
    price_c = half_up_div(cost_c * rng.choice((140, 150, 160, 175, 185, 200)), 100)
    stamp = iso(ts)
    return {"id": pid, "shop_id": shop_id,
            "part_number": f"{brand[:3].upper()}-{rng.randint(10000, 99999)}",
            "name": name, "brand": brand, "quantity_on_hand": rng.randint(0, 40),
            "reorder_point": rng.choice((2, 4, 5, 6, 10)), "unit_cost": dollars(cost_c),
            "unit_price": dollars(price_c),
            "location": f"Aisle {rng.randint(1, 9)}-{rng.choice('ABCDEF')}{rng.randint(1, 6)}",
            "created_at": stamp, "updated_at": stamp}


# --------------------------------------------------------------------------- generator

def business_time(rng: random.Random, day_start: int) -> int:
    return day_start + 7 * HOUR + rng.randint(0, 11 * HOUR - 1)


def generate_world(sink: Callable[[str, dict], None], ids: Ids, seed: int, shops: int,
                   work_orders: int, clock: int) -> list[ShopContext]:
    """Build the history of every shop up to `clock` into `sink(resource, obj)`."""
    contexts = []
    for index in range(shops):
        contexts.append(_generate_shop(sink, ids, seed, index, work_orders, clock))
    return contexts


def _generate_shop(sink: Callable[[str, dict], None], ids: Ids, seed: int, index: int,
                   n_work_orders: int, clock: int) -> ShopContext:
    r = rng_for(seed, "shop", index)
    history_start = clock - HISTORY_DAYS * DAY
    shop_id = ids.next("shops")
    shop_created = history_start - r.randint(30, 400) * DAY
    name = SHOP_NAMES[index % len(SHOP_NAMES)] + ("" if index < len(SHOP_NAMES) else f" #{index // len(SHOP_NAMES) + 1}")
    slug = name.lower().replace("'", "").replace("&", "and").replace("#", "").replace(" ", "-").replace("--", "-")
    addr = address(r)
    city, state, zip3, timezone = SHOP_LOCATIONS[index % len(SHOP_LOCATIONS)]
    addr.update(city=city, state=state, zip=f"{zip3}{addr['zip'][3:]}")
    shop = {"id": shop_id, "shop_id": shop_id, "name": name, "slug": slug, "status": "active",
            "phone": phone(r), "email": f"service@{slug.replace('-', '')}.com", "address": addr,
            "timezone": timezone,
            "settings": {"tax_rate": r.choice((5.5, 6.0, 6.25, 6.75, 7.0, 7.25, 7.5, 8.25, 8.875, 9.5)),
                         "labor_rate": float(r.choice((99, 110, 119, 125, 135, 149, 165, 185)))},
            "created_at": iso(shop_created),
            "updated_at": iso(history_start + r.randint(0, HISTORY_DAYS * DAY - 1))}
    tax_labor = r.random() < 0.3
    sink("shops", shop)

    # staff
    re = rng_for(seed, "employees", index)
    technicians, advisors = [], []
    roles = (["manager"] + ["service_advisor"] * re.randint(1, 3) + ["technician"] * re.randint(3, 6))
    for role in roles:
        eid = ids.next("employees")
        first, last = person(re)
        ts = shop_created + re.randint(0, 300) * DAY
        active = re.random() > 0.1 or role == "manager"
        if role == "technician" and active:
            technicians.append(eid)
        if role == "service_advisor" and active:
            advisors.append(eid)
        sink("employees", {"id": eid, "shop_id": shop_id, "first_name": first, "last_name": last,
                           "email": email_for(first, last, eid, shop["email"].split("@")[1]),
                           "role": role, "active": active,
                           "hourly_rate": dollars(re.randint(1800, 4800) if role != "manager" else re.randint(3500, 6000)),
                           "created_at": iso(ts), "updated_at": iso(max(ts, history_start + re.randint(0, HISTORY_DAYS * DAY - 1)))})
    if not advisors:
        advisors.append(technicians[0])

    # inventory: every catalog part in 1-3 brands; a bulk price update touches most rows in one second
    ri = rng_for(seed, "inventory", index)
    parts_by_key: dict[str, list[dict]] = {}
    inventory = []
    inv_created = history_start - 10 * DAY
    for key in PARTS:
        for brand in ri.sample(PART_BRANDS, ri.randint(1, 3)):
            part = build_inventory_part(ri, ids.next("inventory"), shop_id, key, brand, inv_created)
            parts_by_key.setdefault(key, []).append(part)
            inventory.append(part)
    ctx = ShopContext(shop, technicians, advisors, parts_by_key)
    ctx.tax_labor = tax_labor

    # customers and vehicles: an import burst at history start (same created/updated second),
    # then steady sign-ups
    rc = rng_for(seed, "customers", index)
    n_customers = max(5, int(n_work_orders * 0.45))
    imported = max(3, n_customers // 5)
    import_ts = history_start - 5 * DAY + 9 * HOUR
    customer_times = [import_ts] * imported + sorted(
        business_time(rc, history_start + rc.randint(0, HISTORY_DAYS - 1) * DAY)
        for _ in range(n_customers - imported))
    customer_times = [t for t in customer_times if t <= clock]
    customers: list[dict] = []
    vehicles: list[dict] = []
    clock_year = time.gmtime(clock).tm_year
    for ts in customer_times:
        cust = build_customer(rc, ids.next("customers"), shop_id, ts)
        customers.append(cust)
        n_veh = rc.randint(2, 5) if cust["is_business"] else rc.choice((1, 1, 1, 2, 2, 3))
        for _ in range(n_veh):
            vts = ts if rc.random() < 0.7 else min(clock, ts + rc.randint(1, 200) * DAY)
            vehicles.append(build_vehicle(rc, ids.next("vehicles"), shop_id, cust["id"], vts, clock_year))
    if customers and not any(c["is_business"] for c in customers):
        customers[-1]["is_business"] = True
        customers[-1]["company_name"] = f"{rc.choice(COMPANY_WORDS)} {rc.choice(COMPANY_KINDS)}"
    vehicles.sort(key=lambda v: (v["created_at"], v["id"]))
    vehicle_times = [parse_iso(v["created_at"]) for v in vehicles]

    # work orders in created order
    rw = rng_for(seed, "work_orders", index)
    rp = rng_for(seed, "payments", index)
    rx = rng_for(seed, "inspections", index)
    first_vehicle_ts = vehicle_times[0]
    wo_times = sorted(max(first_vehicle_ts, business_time(rw, history_start + rw.randint(0, HISTORY_DAYS - 1) * DAY))
                      for _ in range(n_work_orders))
    # make sure the recent days are busy so every open status exists
    recent = min(n_work_orders, max(10, n_work_orders // 40))
    wo_times = sorted(wo_times[recent:] + [clock - rw.randint(60, 4 * DAY) for _ in range(recent)])
    number = 1000
    vehicle_mileage: dict[int, tuple[int, int]] = {}
    customer_touch: dict[int, int] = {}
    work_orders_out: list[dict] = []
    payments_out: list[dict] = []
    inspections_out: list[dict] = []
    for t0 in wo_times:
        k = bisect.bisect_right(vehicle_times, t0)
        vehicle = vehicles[rw.randrange(k)]
        number += 1
        wo, pays, insp = _generate_work_order(rw, rp, rx, ids, ctx, vehicle, number, t0, clock)
        work_orders_out.append(wo)
        payments_out.extend(pays)
        if insp is not None:
            inspections_out.append(insp)
        prev = vehicle_mileage.get(vehicle["id"])
        if prev is None or wo["mileage_in"] > prev[0]:
            vehicle_mileage[vehicle["id"]] = (wo["mileage_in"], t0)
        customer_touch[vehicle["customer_id"]] = t0

    for v in vehicles:
        seen = vehicle_mileage.get(v["id"])
        if seen and seen[0] > v["mileage"]:
            v["mileage"] = seen[0]
            v["updated_at"] = iso(max(parse_iso(v["updated_at"]), seen[1]))

    # bulk edits: hundreds of rows sharing one updated_at second, crossing page boundaries
    rb = rng_for(seed, "bursts", index)
    inv_burst = clock - rb.randint(20, 200) * DAY
    for part in inventory:
        if rb.random() < 0.9:
            part["updated_at"] = iso(inv_burst)
    _burst(rb, customers, clock, size=min(len(customers), max(150, len(customers) // 4)))
    _burst(rb, work_orders_out, clock, size=min(len(work_orders_out), max(150, len(work_orders_out) // 8)))
    _burst(rb, work_orders_out, clock, size=min(len(work_orders_out), 250))

    # appointments
    ra = rng_for(seed, "appointments", index)
    appointments = _generate_appointments(ra, ids, shop_id, work_orders_out, customers, vehicles, clock)

    for obj in sorted(customers, key=lambda c: c["id"]):
        sink("customers", obj)
    for obj in sorted(vehicles, key=lambda v: v["id"]):
        sink("vehicles", obj)
    for obj in inventory:
        sink("inventory", obj)
    for obj in work_orders_out:
        sink("work_orders", obj)
    for obj in payments_out:
        sink("payments", obj)
    for obj in inspections_out:
        sink("inspections", obj)
    for obj in appointments:
        sink("appointments", obj)
    return ctx


def _burst(rng: random.Random, rows: list[dict], clock: int, size: int) -> None:
    if not rows:
        return
    burst_ts = clock - rng.randint(3, 120) * DAY + rng.randint(0, DAY - 1)
    eligible = [row for row in rows if row["created_at"] <= iso(burst_ts) and row["updated_at"] < iso(burst_ts)]
    if not eligible:
        return
    stamp = iso(burst_ts)
    for row in rng.sample(eligible, min(size, len(eligible))):
        row["updated_at"] = stamp
        if "notes" in row and "status" in row:
            row["notes"] = (row["notes"] + " " if row["notes"] else "") + "[reviewed]"


def _pick_status(rng: random.Random, age_seconds: int, ctx: "ShopContext") -> str:
    if age_seconds < 4 * DAY:
        made = ctx.recent_made
        ctx.recent_made += 1
        if made < 5:
            return ("draft", "in_progress", "waiting_parts", "completed", "invoiced")[made]
        return RECENT_STATUS.pick(rng)
    return OLD_STATUS.pick(rng)


RECENT_STATUS = Weighted(("draft", "in_progress", "waiting_parts", "completed", "invoiced"), (18, 27, 14, 18, 23))
OLD_STATUS = Weighted(("draft", "completed", "invoiced"), (1, 4, 95))
INSPECTION_STATUS = Weighted(("in_progress", "sent", "responded"), (2, 3, 5))
CONDITION = Weighted(("green", "yellow", "red"), (70, 20, 10))
APPROVAL_CLOSED = Weighted(("approved", "declined"), (55, 45))
APPROVAL_OPEN = Weighted(("approved", "declined", "pending"), (50, 35, 15))
METHOD = Weighted(("card", "cash", "check", "text_to_pay"), (55, 15, 10, 20))
PAST_APPOINTMENT = Weighted(("no_show", "cancelled", "completed"), (3, 4, 3))


_ORDER = ("draft", "in_progress", "waiting_parts", "completed", "invoiced")


def _generate_work_order(rw: random.Random, rp: random.Random, rx: random.Random, ids: Ids,
                         ctx: ShopContext, vehicle: dict, number: int, t0: int,
                         clock: int) -> tuple[dict, list[dict], dict | None]:
    wo_id = ids.next("work_orders")
    status = _pick_status(rw, clock - t0, ctx)
    started = t0 + rw.randint(5 * 60, 3 * HOUR) if status != "draft" else None
    completed = invoiced = None
    if status in ("completed", "invoiced"):
        completed = started + rw.randint(HOUR, 3 * DAY if rw.random() < 0.2 else 8 * HOUR)
        if status == "invoiced":
            invoiced = completed + rw.randint(60, 2 * DAY if rw.random() < 0.3 else 2 * HOUR)
    # cap at the clock: a stage that would lie in the future has not happened yet
    if invoiced is not None and invoiced > clock:
        invoiced, status = None, "completed"
    if completed is not None and completed > clock:
        completed, status = None, "in_progress"
    if started is not None and started > clock:
        started, status = None, "draft"
    if status == "in_progress" and rw.random() < 0.3:
        status = "waiting_parts"

    tech = rw.choice(ctx.technicians)
    advisor = rw.choice(ctx.advisors)
    mileage_in = vehicle["mileage"] + max(0, (t0 - parse_iso(vehicle["created_at"])) // DAY * rw.randint(20, 45))
    touched = [t0]
    jobs: list[dict] = []
    closed = status in ("completed", "invoiced")
    for name in rw.sample(BASE_JOBS, rw.choice((1, 1, 1, 2, 2, 3))):
        if status == "draft":
            job_status, appr = "pending", None
        elif closed:
            job_status = "declined" if rw.random() < 0.04 else "completed"
            appr = started if job_status == "completed" else None
        else:
            job_status = rw.choice(("approved", "approved", "completed"))
            appr = started
        jobs.append(build_job(rw, ids, ctx, wo_id, name, tech, job_status, appr, ctx.tax_labor,
                              with_fee=rw.random() < 0.35))

    inspection = None
    if started is not None and rx.random() < (0.45 if status in ("completed", "invoiced") else 0.7):
        inspection = _generate_inspection(rx, ids, ctx, wo_id, vehicle["id"], tech, status,
                                          started, completed, clock, jobs, touched)

    wo = {"id": wo_id, "shop_id": ctx.shop_id, "number": number, "customer_id": vehicle["customer_id"],
          "vehicle_id": vehicle["id"], "technician_id": tech, "service_advisor_id": advisor,
          "status": status, "notes": rw.choice(WO_NOTES) or None, "mileage_in": mileage_in,
          "labor_total": 0.0, "parts_total": 0.0, "fees_total": 0.0, "subtotal": 0.0,
          "tax_total": 0.0, "total": 0.0, "amount_paid": 0.0, "balance_due": 0.0,
          "started_at": iso(started) if started else None,
          "completed_at": iso(completed) if completed else None,
          "invoiced_at": iso(invoiced) if invoiced else None,
          "created_at": iso(t0), "updated_at": iso(t0), "jobs": jobs}
    compute_work_order_totals(wo, ctx.tax_rate_k, [])
    payments = _generate_payments(rp, ids, ctx, wo, status, started, completed, invoiced, clock, touched)
    compute_work_order_totals(wo, ctx.tax_rate_k, payments)
    touched.extend(x for x in (started, completed, invoiced) if x)
    wo["updated_at"] = iso(min(clock, max(touched)))
    return wo, payments, inspection


def _generate_inspection(rx: random.Random, ids: Ids, ctx: ShopContext, wo_id: int, vehicle_id: int,
                         tech: int, wo_status: str, started: int, completed: int | None, clock: int,
                         jobs: list[dict], touched: list[int]) -> dict:
    insp_id = ids.next("inspections")
    created = started + rx.randint(5 * 60, 45 * 60)
    sent = created + rx.randint(10 * 60, 90 * 60)
    responded = sent + rx.randint(5 * 60, 20 * HOUR if rx.random() < 0.2 else 2 * HOUR)
    if wo_status in ("completed", "invoiced"):
        status = "responded"
        # the inspection happened before the work was finished
        latest = completed - 60
        if responded > latest:
            span = max(3, latest - started)
            created = started + span // 4
            sent = started + span // 2
            responded = started + (3 * span) // 4
    else:
        # the first open inspections of a shop take each status in turn, so even a tiny
        # world has all three; then the usual mix
        made = ctx.open_inspections_made
        ctx.open_inspections_made += 1
        status = ("in_progress", "sent", "responded")[made] if made < 3 else INSPECTION_STATUS.pick(rx)
    if created > clock:
        created = clock
    if status != "in_progress" and sent > clock:
        status = "in_progress"
    if status == "responded" and responded > clock:
        status = "sent"
    items = []
    decided_all = wo_status in ("completed", "invoiced")
    for name, category, job_name in rx.sample(INSPECTION_ITEMS, rx.randint(5, 9)):
        item_id = ids.next("inspection_items")
        condition = CONDITION.pick(rx)
        photos = []
        if condition != "green" or rx.random() < 0.05:
            for n in range(rx.randint(1, 2) if condition != "green" else 1):
                pid = ids.next("photos")
                photos.append({"id": pid, "url": f"https://media.autosync.example/inspections/{insp_id}/{item_id}/{pid}.jpg",
                               "caption": rx.choice(("Before", "Close-up", "Measurement", "Overview", None))})
        item = {"id": item_id, "job_id": None, "name": name, "category": category,
                "condition": condition, "notes": rx.choice(ITEM_NOTES[condition]) or None,
                "estimate_amount": None, "approval": "not_applicable", "approved_at": None,
                "photos": photos}
        if condition != "green":
            if status == "responded":
                approval = (APPROVAL_CLOSED if decided_all else APPROVAL_OPEN).pick(rx)
            else:
                approval = "pending"
            if approval == "approved":
                job_status = "completed" if decided_all or rx.random() < 0.3 else "approved"
                appr = responded
            elif approval == "declined":
                job_status, appr = "declined", None
            else:
                job_status, appr = "pending", None
            job = build_job(rx, ids, ctx, wo_id, job_name, tech, job_status, appr, ctx.tax_labor,
                            with_fee=False)
            jobs.append(job)
            item["job_id"] = job["id"]
            item["estimate_amount"] = job["total"]
            item["approval"] = approval
            item["approved_at"] = job["approved_at"]
        items.append(item)
    stamp_sent = iso(sent) if status != "in_progress" else None
    stamp_resp = iso(responded) if status == "responded" else None
    updated = responded if status == "responded" else sent if status == "sent" else created
    if status == "responded":
        touched.append(responded)
    return {"id": insp_id, "shop_id": ctx.shop_id, "work_order_id": wo_id, "vehicle_id": vehicle_id,
            "technician_id": tech, "status": status, "sent_at": stamp_sent, "responded_at": stamp_resp,
            "created_at": iso(created), "updated_at": iso(min(updated, clock)), "items": items}


def build_payment(rng: random.Random, pid: int, shop_id: int, wo_id: int, amount_c: int, method: str,
                  status: str, ts: int) -> dict:
    card = method == "card"
    stamp = iso(ts)
    return {"id": pid, "shop_id": shop_id, "work_order_id": wo_id, "amount": dollars(amount_c),
            "method": method, "status": status,
            "card_brand": rng.choice(CARD_BRANDS) if card else None,
            "last4": f"{rng.randint(0, 9999):04d}" if card else None,
            "refunded_amount": 0.0, "refunds": [], "created_at": stamp, "updated_at": stamp}


def _method(rng: random.Random, ctx: "ShopContext") -> str:
    made = ctx.payments_made
    ctx.payments_made += 1
    if made < 4:  # every method early on, so that even a tiny world has them all
        return ("card", "cash", "check", "text_to_pay")[made]
    return METHOD.pick(rng)


def _generate_payments(rp: random.Random, ids: Ids, ctx: ShopContext, wo: dict, status: str,
                       started: int | None, completed: int | None, invoiced: int | None, clock: int,
                       touched: list[int]) -> list[dict]:
    total_c = cents(wo["total"])
    if total_c <= 0 or started is None:
        return []
    plan: list[tuple[int, int]] = []  # (amount cents, timestamp)
    if status == "invoiced":
        r = rp.random()
        if ctx.first("split_payment"):
            r = 0.7
        elif ctx.first("partial_payment"):
            r = 0.85
        if r < 0.62:
            plan.append((total_c, invoiced + rp.randint(0, 3 * HOUR)))
        elif r < 0.80:
            deposit = half_up_div(total_c * rp.choice((20, 25, 30, 50)), 100)
            plan.append((deposit, started + rp.randint(60, HOUR)))
            plan.append((total_c - deposit, invoiced + rp.randint(0, 2 * DAY)))
        elif r < 0.92:
            plan.append((half_up_div(total_c * rp.choice((40, 50, 60)), 100), invoiced + rp.randint(0, DAY)))
        # else unpaid invoice
    elif status == "completed" and rp.random() < 0.3:
        plan.append((half_up_div(total_c * rp.choice((25, 50)), 100), completed + rp.randint(0, HOUR)))
    elif status in ("in_progress", "waiting_parts") and rp.random() < 0.1:
        plan.append((half_up_div(total_c * 20, 100), started + rp.randint(60, HOUR)))
    payments = []
    for amount_c, ts in plan:
        ts = min(ts, clock)
        method = _method(rp, ctx)
        if method == "card" and rp.random() < 0.06 or ctx.first("failed_payment"):
            failed = build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], amount_c, "card", "failed",
                                   max(started, ts - rp.randint(60, 600)))
            payments.append(failed)
        pay_status = "succeeded"
        if method == "text_to_pay" and clock - ts < DAY and rp.random() < 0.5:
            pay_status = "pending"
        pay = build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], amount_c, method, pay_status, ts)
        wanted = rp.random() < 0.05
        if pay_status == "succeeded" and (wanted or ("refund" not in ctx._firsts and ts + HOUR <= clock)):
            rts = ts + rp.randint(HOUR, 20 * DAY)
            if not wanted:
                rts = min(rts, clock)
            if rts <= clock:
                ctx.first("refund")
                amount = amount_c if rp.random() < 0.3 else max(1, half_up_div(amount_c * rp.randint(5, 60), 100))
                pay["refunds"] = [{"id": ids.next("refunds"), "amount": dollars(amount),
                                   "reason": rp.choice(REFUND_REASONS), "created_at": iso(rts)}]
                pay["refunded_amount"] = dollars(amount)
                pay["updated_at"] = iso(rts)
                touched.append(rts)
        payments.append(pay)
        touched.append(ts)
    # an unpaid invoice sometimes has a text-to-pay link still pending
    if status == "invoiced" and not plan and rp.random() < 0.4:
        ts = min(clock, invoiced + rp.randint(60, HOUR))
        payments.append(build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], total_c,
                                      "text_to_pay", "pending", ts))
        touched.append(ts)
    elif status in ("completed", "invoiced") and "pending_payment" not in ctx._firsts:
        outstanding = total_c - sum(cents(p["amount"]) - cents(p["refunded_amount"]) for p in payments if p["status"] != "failed")
        if outstanding > 0:
            ctx.first("pending_payment")
            ts = min(clock, (invoiced or completed) + rp.randint(60, HOUR))
            payments.append(build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], outstanding,
                                          "text_to_pay", "pending", ts))
            touched.append(ts)
    return payments


def _generate_appointments(ra: random.Random, ids: Ids, shop_id: int, work_orders: list[dict],
                           customers: list[dict], vehicles: list[dict], clock: int) -> list[dict]:
    out = []
    by_customer: dict[int, list[dict]] = {}
    for v in vehicles:
        by_customer.setdefault(v["customer_id"], []).append(v)
    # appointments that became work orders
    for wo in work_orders:
        if ra.random() < 0.25:
            t0 = parse_iso(wo["created_at"])
            starts = t0 - ra.randint(0, 20) * 60
            starts -= starts % 900
            created = starts - ra.randint(HOUR, 10 * DAY)
            out.append(_appointment(ra, ids, shop_id, wo["customer_id"], wo["vehicle_id"], wo["id"],
                                    starts, created, "completed", min(clock, t0)))
    # no-shows, cancellations, and the schedule ahead of the clock
    eligible = [c for c in customers if c["id"] in by_customer]
    n_other = max(8, len(work_orders) // 10)
    for k in range(n_other):
        cust = ra.choice(eligible)
        veh = ra.choice(by_customer[cust["id"]])
        earliest = max(parse_iso(cust["created_at"]), parse_iso(veh["created_at"]))
        created = ra.randint(earliest, max(earliest, clock - 60))
        starts = created + ra.randint(HOUR, 21 * DAY)
        if k < 4 and earliest < clock - 2 * DAY:
            # the first four: one ahead of the clock, then a no-show, a cancellation, a visit
            created = ra.randint(earliest, clock - 2 * DAY)
            starts = clock + ra.randint(HOUR, 7 * DAY) if k == 0 else ra.randint(created + 900, clock - DAY)
        starts -= starts % 900
        if k in (1, 2, 3) and earliest < clock - 2 * DAY and starts <= clock:
            status = ("no_show", "cancelled", "completed")[k - 1]
            updated = min(clock, starts + ra.randint(0, 3 * HOUR)) if status != "cancelled" else ra.randint(created, min(clock, starts))
        elif starts > clock:
            status, updated = "scheduled", created
            if ra.random() < 0.15 and k != 0:
                status, updated = "cancelled", ra.randint(created, clock)
        else:
            status = PAST_APPOINTMENT.pick(ra)
            updated = min(clock, starts + ra.randint(0, 3 * HOUR)) if status != "cancelled" else ra.randint(created, min(clock, starts))
            if status == "completed":
                status = "arrived" if clock - starts < 2 * HOUR else "completed"
        out.append(_appointment(ra, ids, shop_id, cust["id"], veh["id"], None, starts, created, status, updated))
    out.sort(key=lambda a: a["created_at"])
    # ids in creation order
    for appt in out:
        appt["id"] = ids.next("appointments")
    return out


def _appointment(ra: random.Random, ids: Ids, shop_id: int, customer_id: int, vehicle_id: int,
                 wo_id: int | None, starts: int, created: int, status: str, updated: int) -> dict:
    return {"id": 0, "shop_id": shop_id, "customer_id": customer_id, "vehicle_id": vehicle_id,
            "work_order_id": wo_id, "starts_at": iso(starts),
            "ends_at": iso(starts + ra.choice((1800, 3600, 5400, 7200))),
            "status": status, "title": ra.choice(APPOINTMENT_TITLES),
            "created_at": iso(created), "updated_at": iso(max(created, updated))}
