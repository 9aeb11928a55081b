"""Scenario files: a virtual patient, a therapy protocol, tissue and simulation settings.

Scenarios are TOML files validated here before anything runs. Every quantity carries its unit
as a string ("200 mg", "10 um", "3 years"); fields are stored in the canonical unit named in
their description (ages in years, times in days, lengths in um). `load_scenario` raises
`ScenarioError`, whose message names the file, the key path, the value and what is allowed.
"""

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from bonesim.model.parameters import table
from bonesim.model.units import DAYS_PER_YEAR, UNITS, dimension_of, parse_quantity


def _quantity(dimension: str, scale: float, description: str, example: str):
    """A float field given in the file as '<number> <unit>' of `dimension`, stored x `scale`."""
    units = [u for u, (d, _) in UNITS.items() if d == dimension]
    return Annotated[
        float,
        BeforeValidator(lambda text: parse_quantity(text, (dimension,)) * scale),
        WithJsonSchema({"type": "string", "description": f"{description}; units: {', '.join(units)}",
                        "examples": [example]}),
    ]


Years = _quantity("time", 1 / DAYS_PER_YEAR, "a duration, stored in years", "52 years")
Days = _quantity("time", 1.0, "a duration, stored in days", "28 d")
Micrometres = _quantity("length", 1.0, "a length, stored in um", "10 um")
NgPerDl = _quantity("serum_mass", 100.0, "a serum concentration, stored in ng/dL", "550 ng/dL")
NgPerMl = _quantity("serum_mass", 1.0, "a serum concentration, stored in ng/mL", "30 ng/mL")
MgPerDay = _quantity("mass_rate", 1.0, "an intake, stored in mg/day", "1000 mg/day")
MgPerMl = _quantity("concentration", 1.0, "a concentration, stored in mg/mL", "200 mg/mL")



class Problem(ValueError):
    """A validation problem with one key of the section that raised it."""

    def __init__(self, key: str, value, message: str):
        super().__init__(message)
        self.key, self.value = key, value


class Strict(BaseModel):
    """Base of every scenario section: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Cycle(Strict):
    """Menstrual cycle pattern of a premenopausal woman."""

    length: Days = Field(28.0, ge=21, le=40, description="mean cycle length, days")
    length_sd: Days = Field(2.0, ge=0, le=7, description="cycle-to-cycle SD of the length, days")
    anovulatory_fraction: float = Field(0.0, ge=0, le=1, description="fraction of cycles without ovulation (no luteal P4)")
    short_luteal_fraction: float = Field(0.0, ge=0, le=1, description="fraction of ovulatory-looking cycles with a luteal phase < 10 days")

    @model_validator(mode="after")
    def _fractions(self):
        if self.anovulatory_fraction + self.short_luteal_fraction > 1:
            raise ValueError("anovulatory_fraction + short_luteal_fraction must not exceed 1")
        return self


class Patient(Strict):
    """The virtual patient at the start of the simulation."""

    sex: Literal["female", "male"]
    age: Years = Field(ge=18, le=100, description="age at the start, years")
    menopause: Literal["premenopausal", "perimenopausal", "postmenopausal"] | None = Field(
        None, description="women only; must agree with age and fmp_age")
    fmp_age: Years | None = Field(None, ge=30, le=65, description="women: age at the final menstrual period, years (default 51)")
    cycle: Cycle = Cycle()
    testosterone: NgPerDl | None = Field(None, ge=1, le=3000, description="baseline serum total testosterone, ng/dL (default: by sex and age)")
    gh: Literal["normal", "deficient"] = "normal"
    vitamin_d: NgPerMl = Field(30.0, ge=4, le=150, description="serum 25(OH)D, ng/mL")
    calcium_intake: MgPerDay = Field(1000.0, ge=0, le=4000, description="dietary calcium, mg/day")
    activity: Literal["bedrest", "sedentary", "moderate", "active"] = "moderate"

    @model_validator(mode="after")
    def _menopause_consistent(self):
        if self.sex == "male":
            if self.menopause is not None or self.fmp_age is not None:
                raise Problem("menopause" if self.menopause else "fmp_age", None, "applies to women only")
            return self
        status = self.status
        if self.menopause is not None and self.menopause != status:
            raise Problem("menopause", self.menopause, f"contradicts age {self.age:g} and fmp_age "
                          f"{self.final_period_age:g} years (which make her {status})")
        return self

    @property
    def final_period_age(self) -> float:
        """Age at the final menstrual period, years (51 when not given)."""
        return 51.0 if self.fmp_age is None else self.fmp_age

    @property
    def status(self) -> str:
        """'premenopausal', 'perimenopausal' (within 2 years before FMP) or 'postmenopausal'."""
        years_to_fmp = self.final_period_age - self.age
        if years_to_fmp <= 0:
            return "postmenopausal"
        return "perimenopausal" if years_to_fmp <= 2 else "premenopausal"


class ProtocolEntry(Strict):
    """One drug given by one route on one schedule between `start` and `stop`."""

    drug: str = Field(description="a drug of model/parameters/drugs.toml")
    route: str
    dose: str = Field(description="amount per administration with its unit, e.g. '200 mg', '0.1 mL', '50 ug/day', '2000 IU', '45 min'")
    concentration: MgPerMl | None = Field(None, gt=0, description="for doses given as a volume, mg/mL")
    schedule: Literal["daily", "nightly", "weekly", "twice_weekly", "per_week", "cyclic", "every"]
    days: tuple[int, int] | None = Field(None, description="cyclic: first and last day (1-based) of each month or cycle")
    of: Literal["month", "cycle"] = Field("month", description="cyclic: count days within the calendar month or the menstrual cycle")
    per_week: int | None = Field(None, ge=1, le=14, description="per_week: administrations per week")
    every: Days | None = Field(None, gt=0, description="every: interval between administrations, days")
    start: Days = Field(0.0, ge=0, description="first day of the protocol, days from the start of the simulation")
    stop: Days | None = Field(None, description="day the protocol ends (exclusive); default: end of the simulation")

    @model_validator(mode="after")
    def _check(self):
        drugs = table("drugs")
        if self.drug not in drugs:
            raise Problem("drug", self.drug, f"unknown drug (allowed: {', '.join(drugs)})")
        routes = drugs[self.drug]["routes"]
        if self.route not in routes:
            raise Problem("route", self.route, f"{self.drug} has no such route (allowed: {', '.join(routes)})")
        allowed = routes[self.route]["dose"]
        try:
            parse_quantity(self.dose, tuple(allowed))
        except ValueError as err:
            raise Problem("dose", self.dose, f"{err} for {self.drug} {self.route}") from None
        if self.dose_amount <= 0:
            raise Problem("dose", self.dose, "must be positive")
        if self.dose_dimension == "volume" and self.concentration is None:
            raise Problem("concentration", None, "a dose given as a volume needs a concentration, e.g. '200 mg/mL'")
        self._plausible(routes[self.route])
        needs = {"cyclic": "days", "per_week": "per_week", "every": "every"}
        for schedule, key in needs.items():
            given = getattr(self, key) is not None
            if given and self.schedule != schedule:
                raise Problem(key, getattr(self, key), f"belongs to schedule '{schedule}', not '{self.schedule}'")
            if not given and self.schedule == schedule:
                raise Problem(key, None, f"schedule '{schedule}' needs '{key}'")
        if self.days is not None:
            first, last = self.days
            if not 1 <= first <= last <= 31:
                raise Problem("days", list(self.days), "empty or out of range: need 1 <= first <= last <= 31")
        if self.stop is not None and self.stop <= self.start:
            raise Problem("stop", f"{self.stop:g} d", f"must come after start ({self.start:g} d)")
        return self

    def _plausible(self, route: dict) -> None:
        """Refuse a dose outside the route's plausible range (drugs.toml `dose_range`, or
        `rate_range` for doses given as a rate), per administration in canonical units."""
        rate = self.dose_dimension == "mass_rate"
        key = "rate_range" if rate else "dose_range"
        dimension = "mass" if self.dose_dimension == "volume" else self.dose_dimension
        bounds = route[key]
        low, high = (parse_quantity(bounds[end], (dimension,)) for end in ("low", "high"))
        if not low <= self.dose_amount <= high:
            given = f"{self.dose_amount:g} mg is " if self.dose_dimension == "volume" else ""
            raise Problem("dose", self.dose, f"{given}outside the plausible "
                          f"range of {self.drug} {self.route}: {bounds['low']} to {bounds['high']} per "
                          f"{'patch' if rate else 'administration'} (drugs.toml {key}: {bounds['source']})")

    @property
    def dose_dimension(self) -> str:
        """Dimension of the dose as written: mass, volume, mass_rate, activity_units or time."""
        return dimension_of(self.dose)

    @property
    def dose_amount(self) -> float:
        """Dose per administration in canonical units: mg (mass and volume x concentration),
        mg/day (mass_rate), IU (activity_units) or days (time)."""
        amount = parse_quantity(self.dose, (self.dose_dimension,))
        if self.dose_dimension == "volume":
            return amount * self.concentration
        return amount


class Tissue(Strict):
    """The simulated 2D bone section."""

    size: tuple[int, int] = Field((256, 256), description="grid cells (rows, columns), each 16..1024")
    spacing: Micrometres = Field(10.0, ge=2, le=50, description=(
        "grid spacing, um: the place of one cell, a biological size (results depend on it; "
        "the cell parameters are calibrated at 10 um)"))
    site: Literal["spine", "hip"] = Field("spine", description="spine: trabecular; hip: trabecular with a cortical shell")
    geometry_seed: int = Field(1, ge=0, description="seed of the procedural trabecular pattern")

    @model_validator(mode="after")
    def _size(self):
        if not all(16 <= n <= 1024 for n in self.size):
            raise Problem("size", list(self.size), "out of range: each side 16..1024 grid cells")
        return self


class Simulation(Strict):
    """How long, how finely and how often results are written."""

    duration: Years = Field(5.0, gt=0, le=60, description="simulated time, years")
    dt: Days = Field(1.0, ge=1 / 24, le=7, description="tissue time step, days")
    seed: int = Field(0, ge=0, description="seed of the model's random generator")
    replicates: int = Field(1, ge=1, le=1000, description="replicate seeds for virtual trials")
    output_every: Days = Field(7.0, gt=0, description="output interval, days")
    field_refinement: int = Field(1, ge=1, le=4, description=(
        "fields are solved on a mesh this many times finer than the grid (1: on the grid "
        "itself; more: to check the convergence of the field numerics)"))

    @model_validator(mode="after")
    def _cadence(self):
        if self.output_every < self.dt:
            raise Problem("output_every", f"{self.output_every:g} d", f"shorter than dt ({self.dt:g} d)")
        return self


class Scenario(Strict):
    """A complete scenario file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="identifier used in output names")
    description: str = ""
    patient: Patient
    protocol: list[ProtocolEntry] = []
    tissue: Tissue = Tissue()
    simulation: Simulation = Simulation()

    @model_validator(mode="after")
    def _protocol_fits(self):
        end = self.simulation.duration * DAYS_PER_YEAR
        spans: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for i, entry in enumerate(self.protocol):
            if entry.start >= end:
                raise Problem(f"protocol[{i}].start", f"{entry.start:g} d",
                              f"after the simulation ends (day {end:g}): the schedule is empty")
            stop = end if entry.stop is None else entry.stop
            for other_start, other_stop, j in spans.get((entry.drug, entry.route), []):
                if entry.start < other_stop and other_start < stop:
                    raise Problem(f"protocol[{i}]", None, f"gives {entry.drug} {entry.route} on days that overlap "
                                  f"protocol[{j}]; merge them or make their start/stop disjoint")
            spans.setdefault((entry.drug, entry.route), []).append((entry.start, stop, i))
        return self

    @property
    def days(self) -> float:
        """Simulated time in days."""
        return self.simulation.duration * DAYS_PER_YEAR


class ScenarioError(ValueError):
    """A scenario file that cannot be used; `str()` names the file, keys, values and reasons."""


def _where(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _allowed_keys(loc: tuple) -> list[str]:
    model = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _raw_value(data, loc: tuple):
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_errors(source: str, err: ValidationError, data: dict) -> str:
    """One line per problem: file: key.path = value as written: what is wrong (what is allowed)."""
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc))
            lines.append(f"{source}: {_where(loc)}: unknown key (allowed keys here: {allowed})")
            continue
        problem = e.get("ctx", {}).get("error")
        if isinstance(problem, Problem):
            where = ".".join(filter(None, [_where(loc) if loc else "", problem.key]))
            value, message = problem.value, str(problem)
        else:
            where = _where(loc)
            value, message = _raw_value(data, loc), e["msg"].removeprefix("Value error, ")
        shown = "" if value is None or isinstance(value, dict) else f" = {value!r}"
        lines.append(f"{source}: {where}{shown}: {message}")
    return "\n".join(lines)


def parse_scenario(data: dict, source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a dict (already parsed TOML)."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_errors(source, err, data)) from None


def read_toml(path: str | Path) -> dict:
    """The parsed TOML file `path`; ScenarioError (one line) for a missing file, a directory, a
    file this process may not read, an empty file, a binary or non-UTF-8 file, or bad TOML."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a TOML file") from None
    except PermissionError:
        raise ScenarioError(f"{path}: permission denied (cannot read the file)") from None
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from None
    if not raw.strip():
        raise ScenarioError(f"{path}: empty file (expected TOML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{path}: not a text file (byte {err.start} is not UTF-8); "
                            "expected TOML") from None
    if "\0" in text:
        raise ScenarioError(f"{path}: not a text file (it holds NUL bytes); expected TOML")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {err}") from None


def set_key(data: dict, dotted: str, new) -> None:
    """Set `dotted` (e.g. "simulation.seed", "protocol[0].dose") in the parsed scenario `data`,
    creating missing tables; a path through a missing list item or a non-table sets nothing
    (validation then names what is wrong)."""
    *parents, last = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    node = data
    for part in parents:
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return
            node = node[index]
        else:
            if not isinstance(node, dict):
                return
            node = node.setdefault(part, {})
    if last.startswith("[") and isinstance(node, list) and int(last[1:-1]) < len(node):
        node[int(last[1:-1])] = new
    elif isinstance(node, dict) and not last.startswith("["):
        node[last] = new


def load_scenario(path: str | Path, overrides: dict | None = None) -> Scenario:
    """Read and validate a scenario TOML file; raises ScenarioError naming what is wrong.

    `overrides` maps dotted keys to values set before validation (`set_key`), e.g.
    {"simulation.duration": "2 years", "simulation.seed": 3, "protocol[0].dose": "100 mg"}.
    """
    data = read_toml(path)
    for dotted, new in (overrides or {}).items():
        set_key(data, dotted, new)
    return parse_scenario(data, str(path))
