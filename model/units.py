"""Quantities with explicit units, as written in scenario files ("200 mg", "10 um", "3 years").

Every quantity is parsed into a value in the canonical unit of its dimension:

| dimension      | canonical unit | accepted spellings                                  |
|----------------|----------------|-----------------------------------------------------|
| mass           | mg             | g, mg, ug, mcg, ng                                  |
| volume         | mL             | L, mL, uL                                           |
| length         | um             | mm, um                                              |
| time           | day            | min, h, d, day(s), week(s), month(s), year(s)       |
| mass_rate      | mg/day         | mg/day, ug/day (also /d)                            |
| concentration  | mg/mL          | mg/mL                                               |
| activity_units | IU             | IU                                                  |
| activity_rate  | IU/day         | IU/day (also /d)                                    |
| serum_mass     | ng/mL          | ng/mL, ng/dL, pg/mL                                 |
| serum_molar    | pmol/L         | pmol/L, nmol/L                                      |
"""

import re

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

_TIME = {"min": 1 / 1440, "h": 1 / 24, "d": 1.0, "day": 1.0, "days": 1.0, "week": 7.0,
         "weeks": 7.0, "month": DAYS_PER_MONTH, "months": DAYS_PER_MONTH,
         "year": DAYS_PER_YEAR, "years": DAYS_PER_YEAR, "y": DAYS_PER_YEAR, "yr": DAYS_PER_YEAR}
_MASS = {"g": 1e3, "mg": 1.0, "ug": 1e-3, "mcg": 1e-3, "µg": 1e-3, "ng": 1e-6}

UNITS: dict[str, tuple[str, float]] = {
    **{u: ("mass", f) for u, f in _MASS.items()},
    "L": ("volume", 1e3), "mL": ("volume", 1.0), "ml": ("volume", 1.0), "uL": ("volume", 1e-3),
    "mm": ("length", 1e3), "um": ("length", 1.0), "µm": ("length", 1.0),
    **{u: ("time", f) for u, f in _TIME.items()},
    **{f"{m}/{t}": ("mass_rate", f) for m, f in (("mg", 1.0), ("ug", 1e-3), ("mcg", 1e-3))
       for t in ("day", "d")},
    "mg/mL": ("concentration", 1.0),
    "IU": ("activity_units", 1.0),
    "IU/day": ("activity_rate", 1.0), "IU/d": ("activity_rate", 1.0),
    "ng/mL": ("serum_mass", 1.0), "ng/dL": ("serum_mass", 0.01), "pg/mL": ("serum_mass", 1e-3),
    "pmol/L": ("serum_molar", 1.0), "nmol/L": ("serum_molar", 1e3),
}
CANONICAL = {"mass": "mg", "volume": "mL", "length": "um", "time": "day",
             "mass_rate": "mg/day", "concentration": "mg/mL", "activity_units": "IU",
             "activity_rate": "IU/day", "serum_mass": "ng/mL", "serum_molar": "pmol/L"}

_PATTERN = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-zµ]\S*)\s*$")


def parse_quantity(text: str, dimensions: tuple[str, ...]) -> float:
    """Value of `text` in the canonical unit of its dimension, which must be one of `dimensions`.

    Raises ValueError with a message naming what is allowed.
    """
    allowed = ", ".join(u for u, (d, _) in UNITS.items() if d in dimensions)
    if not isinstance(text, str):
        raise ValueError(f"expected a quantity with a unit as a string, e.g. '1 {allowed.split(',')[0]}'"
                         f" (units allowed: {allowed})")
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"expected '<number> <unit>' with one of the units {allowed}")
    number, unit = float(match.group(1)), match.group(2)
    if unit not in UNITS or UNITS[unit][0] not in dimensions:
        raise ValueError(f"unit '{unit}' is not allowed here (units allowed: {allowed})")
    return number * UNITS[unit][1]


def dimension_of(text: str) -> str:
    """The dimension name of a quantity string ('200 mg' -> 'mass')."""
    match = _PATTERN.match(text)
    if match is None or match.group(2) not in UNITS:
        raise ValueError(f"'{text}' is not '<number> <unit>' with a known unit")
    return UNITS[match.group(2)][0]
