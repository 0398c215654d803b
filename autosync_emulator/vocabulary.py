"""The vocabulary of a world: names, places, vehicles, parts, jobs, inspection items, notes.

Plain constants: the generator and live activity draw from them; changing one changes seeded worlds.
"""
from __future__ import annotations

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
# jobs a shop may sell at a menu (flat) labor price whatever the rate card says: job -> price range in cents
MENU_JOBS: dict[str, tuple[int, int]] = {
    "Oil & filter change": (2900, 4900),
    "Tire rotation": (1900, 3500),
    "Diagnostic - check engine light": (8900, 17900),
    "Four-wheel alignment": (8900, 13900),
    "A/C recharge": (7900, 12900),
    "Wiper blades": (900, 1900),
    "Engine air filter": (1500, 2900),
}
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

