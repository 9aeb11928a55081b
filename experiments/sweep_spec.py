"""Sweep files: what a parameter sweep, sensitivity screen or virtual cohort runs.

A sweep file is TOML:

    [sweep]
    scenario = "v2_menopause"   # a scenario file (relative to this file) or a built-in name
    design = "morris"           # grid, lhs, sobol, morris or cohort
    samples = 4                 # lhs: points; sobol: N (a power of 2); morris: trajectories;
                                # cohort: virtual patients
    levels = 4                  # morris: levels of its grid (default 4)
    replicates = 1              # replicate seeds per point or patient (default 1)
    seed = 0                    # root of every seed of the sweep (default 0)
    outputs = ["bmd_pct_spine", "ctx_rel", "p1np_rel", "bone_lost_pct"]  # time series
                                # columns, read at the end of each run (these are the default)
    allow_outside_range = false # true: bounds may leave a parameter's documented range

    [set]                       # scenario keys and model parameters set for every run
    "simulation.duration" = "3 years"
    "tissue.size" = [64, 64]
    "tissue.spinup.days" = 200  # a model parameter, within its documented range

    [vary."cells.osteoblast.lifespan"]   # a model parameter ("file.section.name") ...
    bounds = [60.0, 120.0]      # default: its documented plausible range
    [vary."protocol[0].dose"]   # ... or a scenario key, by dotted path
    values = [100, 200, 300]    # grid: these values (else `levels` evenly spaced in bounds)
    units = "mg"                # written after each value ("100 mg") for keys with units

    [arms.placebo]              # optional: every point or patient runs every arm, on the same
    [arms.cee]                  # seeds (common random numbers); each arm is a [set] of its own
    protocol = [{ drug = "cee", route = "oral", dose = "0.625 mg", schedule = "daily" }]

    [cohort."patient.age"]      # design = "cohort": covariates of each virtual patient
    distribution = "uniform"    # uniform (low, high), normal (mean, sd; optional low, high:
    low = 50                    # truncated), lognormal (median, sd_log), integers (low, high,
    high = 55                   # inclusive) or choice (values, optional weights)
    units = "years"

`load_sweep` refuses a bad file with SweepError, whose message names the file, the key, the
value and what is allowed: unknown keys, an unknown parameter path, bounds outside the
documented range (unless `allow_outside_range`), a Sobol N that is not a power of 2, an empty
design, a covariate distribution without its numbers.
"""

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from bonesim.model.parameters import all_parameters
from bonesim.model.scenario import Scenario, ScenarioError, parse_scenario, read_toml, set_key

SCENARIO_DIR = Path(__file__).parent / "scenarios"
DESIGNS = ("grid", "lhs", "sobol", "morris", "cohort")
DEFAULT_OUTPUTS = ("bmd_pct_spine", "ctx_rel", "p1np_rel", "bone_lost_pct")
DISTRIBUTIONS = {"uniform": ("low", "high"), "normal": ("mean", "sd"),
                 "lognormal": ("median", "sd_log"), "integers": ("low", "high"),
                 "choice": ("values",)}
SWEEP_KEYS = ("name", "scenario", "design", "samples", "levels", "replicates", "seed", "outputs",
              "allow_outside_range")
VARY_KEYS = ("bounds", "values", "levels", "units")
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class SweepError(ScenarioError):
    """A sweep file that cannot be run; `str()` names the file, key, value and what is allowed."""


@dataclass(frozen=True)
class Factor:
    """One varied input: a model parameter (`parameter` True) or a scenario key, by `path`;
    `bounds` in the parameter's documented units (or the unit `units` of a scenario key)."""

    path: str
    parameter: bool
    bounds: tuple[float, float]
    values: tuple | None = None     # grid: explicit values
    levels: int = 3                 # grid: evenly spaced values between the bounds
    units: str | None = None


@dataclass(frozen=True)
class Covariate:
    """One covariate of a virtual patient: a scenario key and its distribution's numbers."""

    path: str
    distribution: str
    numbers: dict
    units: str | None = None


@dataclass(frozen=True)
class Sweep:
    """A parsed, checked sweep file."""

    source: Path
    name: str
    scenario: dict                  # the base scenario as parsed TOML, [set] applied
    scenario_source: str
    design: str
    factors: tuple[Factor, ...]
    samples: int
    levels: int
    replicates: int
    seed: int
    outputs: tuple[str, ...]
    parameters: dict[str, float] = field(default_factory=dict)   # [set] model parameters
    arms: dict[str, dict] = field(default_factory=dict)
    cohort: tuple[Covariate, ...] = ()


def _fail(source: Path, key: str, value, message: str):
    shown = "" if value is None else f" = {value!r}"
    raise SweepError(f"{source}: {key}{shown}: {message}")


def _lookup(data, path: str):
    """The value at dotted `path` (with [i] items) of a scenario dump; KeyError if none."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            if not isinstance(data, list) or int(part[1:-1]) >= len(data):
                raise KeyError(path)
            data = data[int(part[1:-1])]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise KeyError(path)
    return data


def _has(data, path: str) -> bool:
    try:
        _lookup(data, path)
    except KeyError:
        return False
    return True


def _unknown(source: Path, table: str, keys, allowed) -> None:
    for key in keys:
        if key not in allowed:
            _fail(source, f"{table}.{key}", None, f"unknown key (allowed: {', '.join(allowed)})")


def _number(source: Path, key: str, value, low: float = 1, integer: bool = True):
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < low:
        _fail(source, key, value, f"must be {'an integer' if integer else 'a number'} >= {low:g}")
    return value


def scenario_file(name: str, relative_to: Path) -> Path:
    """A scenario named in a sweep file: a path (relative to that file) or a built-in name."""
    for path in (relative_to.parent / name, Path(name), SCENARIO_DIR / f"{name}.toml"):
        if path.is_file():
            return path
    return relative_to.parent / name


def base_scenario(sweep: Sweep, overrides: dict) -> Scenario:
    """The sweep's scenario with `overrides` ({dotted key: value}) applied, validated; a
    SweepError names the sweep file and the keys when it is refused."""
    data = copy.deepcopy(sweep.scenario)
    for key, value in overrides.items():
        set_key(data, key, value)
    try:
        return parse_scenario(data, sweep.scenario_source)
    except ScenarioError as err:
        given = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
        raise SweepError(f"{sweep.source}: the scenario refuses {given or 'its [set]'}: "
                         f"{err}") from None


def reduced(sweep: Sweep, size: int = 32, duration: str = "30 d") -> Sweep:
    """The same sweep at a CI setting: a `size` x `size` section for `duration`, a 200-day
    spin-up (the low end of tissue.spinup.days), one replicate, and the fewest samples of its
    design (2: lhs points, Sobol N, Morris trajectories, cohort patients); a grid keeps its
    values."""
    scenario = copy.deepcopy(sweep.scenario)
    set_key(scenario, "tissue.size", [size, size])
    set_key(scenario, "simulation.duration", duration)
    return dataclasses.replace(sweep, scenario=scenario, replicates=1,
                               samples=sweep.samples if sweep.design == "grid" else 2,
                               parameters=sweep.parameters | {"tissue.spinup.days": 200.0})


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; SweepError naming what is wrong."""
    source = Path(path)
    data = read_toml(source)
    _unknown(source, "(top level)", data, ("sweep", "set", "vary", "arms", "cohort"))
    head = data.get("sweep")
    if not isinstance(head, dict):
        _fail(source, "[sweep]", None, "missing table: it names at least the scenario and design")
    _unknown(source, "sweep", head, SWEEP_KEYS)
    for key in ("scenario", "design"):
        if key not in head:
            _fail(source, f"sweep.{key}", None, "missing")
    design = head["design"]
    if design not in DESIGNS:
        _fail(source, "sweep.design", design, f"unknown design (allowed: {', '.join(DESIGNS)})")
    name = head.get("name", source.stem)
    if not isinstance(name, str) or not NAME.match(name):
        _fail(source, "sweep.name", name, "letters, digits, '_', '-' and '.' only")
    scenario_path = scenario_file(str(head["scenario"]), source)
    try:
        scenario = read_toml(scenario_path)
    except ScenarioError as err:
        raise SweepError(f"{source}: sweep.scenario = {head['scenario']!r}: {err}") from None
    allow_outside = head.get("allow_outside_range", False)
    fixed = data.get("set", {})
    parameters = {key: _parameter_value(source, f"set.{key}", key, value, allow_outside)
                  for key, value in fixed.items() if key in all_parameters()}
    for key, value in fixed.items():
        if key not in parameters:
            set_key(scenario, key, value)
    levels = _number(source, "sweep.levels", head.get("levels", 4), low=2)
    sweep = Sweep(source=source, name=name, scenario=scenario, scenario_source=str(scenario_path),
                  design=design, factors=(), samples=0, levels=levels,
                  replicates=_number(source, "sweep.replicates", head.get("replicates", 1)),
                  seed=_number(source, "sweep.seed", head.get("seed", 0), low=0),
                  outputs=tuple(head.get("outputs", DEFAULT_OUTPUTS)))
    arms = data.get("arms", {})
    for arm, overrides in arms.items():
        if not NAME.match(arm) or not isinstance(overrides, dict):
            _fail(source, f"arms.{arm}", None, "an arm is a table of scenario keys, named with "
                  "letters, digits, '_', '-' and '.'")
    # every arm's scenario as validated (defaults in): a varied key must exist in each
    bases = [base_scenario(sweep, overrides).model_dump(mode="json")
             for overrides in (arms or {"": {}}).values()]
    factors = tuple(_factor(source, path, spec, bases, allow_outside)
                    for path, spec in data.get("vary", {}).items())
    cohort = tuple(_covariate(source, path, spec, bases)
                   for path, spec in data.get("cohort", {}).items())
    samples = head.get("samples")
    if design == "grid":
        if not factors:
            _fail(source, "vary", None, "empty design: a grid needs at least one [vary.KEY]")
        samples = 1
    elif design == "cohort":
        if not cohort:
            _fail(source, "cohort", None, "empty design: a cohort needs at least one "
                  "[cohort.KEY] covariate")
        if factors:
            _fail(source, "vary", list(data["vary"]), "a cohort draws [cohort.KEY] covariates; "
                  "it varies no [vary.KEY]")
    elif not factors:
        _fail(source, "vary", None, f"empty design: {design} needs at least one [vary.KEY]")
    if design != "grid":
        if samples is None:
            _fail(source, "sweep.samples", None, f"missing: {design} needs a number of samples")
        _number(source, "sweep.samples", samples, low=2 if design == "lhs" else 1)
    if design == "sobol" and samples & (samples - 1):
        _fail(source, "sweep.samples", samples, "Sobol N must be a power of 2 (e.g. 8, 16, 64, "
              "1024): Saltelli's sequence loses its balance otherwise")
    if design == "morris" and any(f.bounds[0] == f.bounds[1] for f in factors):
        _fail(source, "vary", None, "a Morris factor needs bounds of nonzero width")
    return Sweep(source=source, name=name, scenario=scenario,
                 scenario_source=str(scenario_path), design=design, factors=factors,
                 samples=samples, levels=levels, replicates=sweep.replicates, seed=sweep.seed,
                 outputs=sweep.outputs, parameters=parameters, arms=arms, cohort=cohort)


def _factor(source: Path, path: str, spec: dict, bases: list[dict],
            allow_outside: bool) -> Factor:
    """A [vary.KEY] table; `bases`: each arm's scenario as validated."""
    key = f"vary.{path}"
    if not isinstance(spec, dict):
        _fail(source, key, spec, "must be a table (bounds, values, levels, units)")
    _unknown(source, key, spec, VARY_KEYS)
    parameters = all_parameters()
    units = spec.get("units")
    values = spec.get("values")
    if values is not None and (not isinstance(values, list) or not values):
        _fail(source, f"{key}.values", values, "must be a non-empty list")
    if path in parameters:
        bounds = tuple(spec.get("bounds", parameters[path].range))
        for x in [*bounds, *(values or [])]:
            _parameter_value(source, f"{key}.{'bounds' if 'bounds' in spec else 'values'}", path,
                             x, allow_outside)
        parameter = True
    else:
        if not all(_has(base, path) for base in bases):
            _fail(source, key, None, "unknown parameter path: neither a model parameter "
                  "('file.section.name' of model/parameters/*.toml, e.g. "
                  "cells.osteoblast.lifespan) nor a key of the scenario (e.g. patient.age, "
                  "protocol[0].dose)")
        if isinstance(_lookup(bases[0], path), str) and units is None and values is None:
            _fail(source, f"{key}.units", None, "the scenario writes this key with a unit "
                  f"({_lookup(bases[0], path)!r}): give units = \"...\"")
        if "bounds" not in spec and values is None:
            _fail(source, f"{key}.bounds", None, "a scenario key has no documented range: "
                  "give bounds = [low, high] (or values for a grid)")
        bounds = tuple(spec.get("bounds", (min(values), max(values)) if values and all(
            isinstance(v, (int, float)) for v in values) else (0.0, 0.0)))
        parameter = False
    if len(bounds) != 2 or not all(isinstance(b, (int, float)) for b in bounds) \
            or bounds[0] > bounds[1]:
        _fail(source, f"{key}.bounds", list(bounds), "must be [low, high] numbers, low <= high")
    levels = _number(source, f"{key}.levels", spec.get("levels", 3), low=1)
    return Factor(path, parameter, (float(bounds[0]), float(bounds[1])),
                  None if values is None else tuple(values), levels, units)


def _parameter_value(source: Path, key: str, path: str, value, allow_outside: bool) -> float:
    """`value` (given at `key` of the sweep file) of model parameter `path`, checked against
    its documented plausible range unless `allow_outside`."""
    entry = all_parameters()[path]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(source, key, value, f"must be a number ({entry.units})")
    low, high = entry.range
    if not low <= value <= high and not allow_outside:
        _fail(source, key, value, f"outside the documented plausible range [{low:g}, {high:g}] "
              f"{entry.units} of {path} (model/parameters/{path.split('.')[0]}.toml); set "
              "sweep.allow_outside_range = true to go beyond it")
    return float(value)


def _covariate(source: Path, path: str, spec: dict, bases: list[dict]) -> Covariate:
    key = f"cohort.{path}"
    if not isinstance(spec, dict) or spec.get("distribution") not in DISTRIBUTIONS:
        _fail(source, f"{key}.distribution", spec.get("distribution") if isinstance(spec, dict)
              else spec, f"unknown distribution (allowed: {', '.join(DISTRIBUTIONS)})")
    if not all(_has(base, path) for base in bases):
        _fail(source, key, None, "not a key of the scenario (e.g. patient.age, "
              "patient.vitamin_d, patient.cycle.anovulatory_fraction, tissue.geometry_seed)")
    distribution = spec["distribution"]
    needed = DISTRIBUTIONS[distribution]
    allowed = (*needed, "distribution", "units", "weights", "low", "high")
    _unknown(source, key, spec, allowed)
    for name in needed:
        if name not in spec:
            _fail(source, f"{key}.{name}", None, f"{distribution} needs {', '.join(needed)}")
    numbers = {k: v for k, v in spec.items() if k not in ("distribution", "units")}
    return Covariate(path, distribution, numbers, spec.get("units"))
