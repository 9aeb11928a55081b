"""Pharmacokinetics and pharmacodynamics of the drugs in `model/parameters/drugs.toml`.

Every protocol entry (drug, route, dose, schedule; see `model/scenario.py`) becomes
- a list of administrations (`administrations`): times [days from the simulation start] and
  amounts [mg, IU or session days], or infusion intervals for doses given as a rate [mg/day];
- a small linear compartment model (`pk_model`): `transit` absorption compartments in series
  (rate `absorption_rate` each; none for IV), a central compartment with first-order
  elimination, and where the table names them a parallel burst compartment (depot microspheres:
  `burst_fraction` of each dose released at `burst_rate`), a peripheral compartment and
  Michaelis-Menten elimination (denosumab) or bone-surface and buried-bone compartments
  (bisphosphonates);
- its course on the fine time grid (`FineGrid`, sub-hour): `integrate` advances the state with
  the exact propagator exp(A h) of the linear part (stable for any rate) and an explicit step
  for the saturable elimination, and returns the substep-mean level of the observed compartment.

Drugs act on a target named by `acts_on` (`TARGET_UNITS`). Level targets carry a serum level:
p4, mpa, e2, t, gh (somatropin), pth (PTH1R agonists as intact-PTH equivalents), lh (hCG as
LH-equivalent drive), vitd, calcium, load, denosumab. Receptor targets (`RECEPTOR_TARGETS`:
aromatase, gnrh, gnrh_agonist, gh_release, serm, bisphosphonate) carry every drug's occupancy
ratio x = level / potency, with the drug's own `potency` from the table; where the class has an
`efficacy` the efficacy-weighted sum is carried too, as '<target>_efficacy'. One conversion per
mechanism then gives the class's effect whatever drugs of it are given together: occupancy
sum(x) / (1 + sum(x)) and response sum(efficacy x) / (1 + sum(x)) (competitive ligands of one
site). `drug_levels` sums every entry's contribution per target. The progestin suppression of
gonadotropins is here too; the feedback axes that take these inputs are in model/axes.py.

Time inside this module is in days, amounts in mg and volumes in L; table entries given per hour
are converted on reading.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from bonesim.model.parameters import table, value
from bonesim.model.scenario import ProtocolEntry
from bonesim.model.units import DAYS_PER_MONTH

HOURS_PER_DAY = 24.0
MG_PER_L_TO = {  # unit conversions of a mass concentration in mg/L
    "ng/mL": 1e3,
    "ng/dL": 1e5,
    "pg/mL": 1e6,
    "pmol/L E2": 1e9 / 272.38,  # estradiol molar mass 272.38 g/mol
}
MG_PER_IU_CHOLECALCIFEROL = 0.025e-3  # 1 IU vitamin D3 = 0.025 ug
RECEPTOR_TARGETS = ("aromatase", "gnrh", "gnrh_agonist", "gh_release", "serm", "bisphosphonate")
EFFICACY_TARGETS = ("aromatase", "gnrh", "gnrh_agonist", "gh_release", "serm")
TARGET_UNITS = {
    "p4": "ng/mL", "mpa": "ng/mL", "e2": "pmol/L (E2 or E2-equivalent)", "t": "ng/dL",
    "lh": "LH-equivalent Leydig drive (1 = normal LH)", "gh": "ng/mL serum GH (exogenous)",
    "pth": "pg/mL intact-PTH equivalent (exogenous PTH1R agonist)",
    "vitd": "ng/mL 25(OH)D added", "calcium": "mg/day supplement calcium delivered",
    "load": "exercise minutes in the day", "denosumab": "ng/mL",
    **{t: "occupancy ratio x = level / potency" for t in RECEPTOR_TARGETS},
    **{f"{t}_efficacy": "efficacy-weighted occupancy ratio" for t in EFFICACY_TARGETS},
}
LEVEL_UNITS = {  # factor from the integrated level (mg/L, mg or IU/L) to the target's level units
    "p4": MG_PER_L_TO["ng/mL"], "mpa": MG_PER_L_TO["ng/mL"], "e2": MG_PER_L_TO["pmol/L E2"],
    "t": MG_PER_L_TO["ng/dL"], "gh": MG_PER_L_TO["ng/mL"], "pth": MG_PER_L_TO["pg/mL"],
    "vitd": MG_PER_L_TO["ng/mL"], "denosumab": MG_PER_L_TO["ng/mL"],
    "aromatase": MG_PER_L_TO["ng/mL"], "gnrh_agonist": MG_PER_L_TO["ng/mL"],
    "serm": MG_PER_L_TO["ng/mL"], "lh": 1.0, "gnrh": 1.0, "gh_release": 1.0, "bisphosphonate": 1.0,
}


def drugs() -> dict:
    """The drug table (model/parameters/drugs.toml)."""
    return table("drugs")


def drug_value(drug: str, key: str, route: str | None = None) -> float:
    """A parameter of a drug (or of one of its routes) from drugs.toml, in its table units."""
    path = f"drugs.{drug}.routes.{route}.{key}" if route else f"drugs.{drug}.{key}"
    return value(path)


# ----------------------------------------------------------------------------------- time grid
@dataclass(frozen=True)
class FineGrid:
    """The sub-hour grid: `n_steps` tissue steps of `n_sub` substeps of `h` days each."""

    n_steps: int
    n_sub: int
    h: float

    @classmethod
    def for_run(cls, days: float, dt: float) -> "FineGrid":
        """Grid covering `days` in tissue steps of `dt` days, substeps <= endocrine.numerics.fine_step."""
        n_steps = max(1, math.ceil(days / dt - 1e-9))
        h_max = value("endocrine.numerics.fine_step") / HOURS_PER_DAY
        n_sub = max(1, math.ceil(dt / h_max - 1e-9))
        return cls(n_steps, n_sub, dt / n_sub)

    @property
    def n(self) -> int:
        """Number of substeps."""
        return self.n_steps * self.n_sub

    @property
    def end(self) -> float:
        """End of the grid, days."""
        return self.n * self.h

    def times(self) -> np.ndarray:
        """Start of every substep, days."""
        return np.arange(self.n) * self.h

    def index(self, t: np.ndarray) -> np.ndarray:
        """Substep index containing each time t [days]."""
        return np.clip(np.floor(np.asarray(t) / self.h + 1e-9).astype(np.int64), 0, self.n - 1)

    def step_mean(self, fine: np.ndarray) -> np.ndarray:
        """Mean over the substeps of each tissue step."""
        return fine.reshape(self.n_steps, self.n_sub).mean(axis=1)


# ----------------------------------------------------------------------------------- schedules
INTERVAL_DAYS = {"daily": 1.0, "nightly": 1.0, "cyclic": 1.0, "weekly": 7.0, "twice_weekly": 3.5}


def dose_interval(entry: ProtocolEntry) -> float:
    """Days between administrations (for cyclic: between the daily doses inside the window)."""
    if entry.schedule == "per_week":
        return 7.0 / entry.per_week
    if entry.schedule == "every":
        return entry.every
    return INTERVAL_DAYS[entry.schedule]


def dose_hour(entry: ProtocolEntry) -> float:
    """Clock hour of the administrations: 22:00 for 'nightly', otherwise the morning hour."""
    key = "dose_hour_night" if entry.schedule == "nightly" else "dose_hour_morning"
    return value(f"endocrine.numerics.{key}")


def administration_times(entry: ProtocolEntry, end: float, cycle_starts: np.ndarray) -> np.ndarray:
    """Times of every administration of `entry` [days from the simulation start], sorted.

    daily / nightly: every day at the morning hour / 22:00. weekly, twice_weekly (every 3.5 d),
    per_week (7/n d apart) and every (N d apart): from the first dosing hour at or after `start`.
    cyclic: daily on days a..b (1-based) of each month (months of 365.25/12 days counted from the
    simulation start) or of each menstrual cycle (`cycle_starts`, days of menses). Only times in
    [start, stop) are kept, stop defaulting to `end`.
    """
    stop = end if entry.stop is None else min(entry.stop, end)
    first_day = math.floor(entry.start)
    hour = dose_hour(entry) / HOURS_PER_DAY
    if entry.schedule == "cyclic":
        days = np.arange(first_day, math.ceil(stop) + 1, dtype=float)
        times = days + hour
        if entry.of == "month":
            day_of = np.floor(days - np.floor(days / DAYS_PER_MONTH) * DAYS_PER_MONTH) + 1
        else:
            which = np.searchsorted(cycle_starts, times, side="right") - 1
            day_of = np.floor(times - cycle_starts[np.clip(which, 0, None)]) + 1
        first, last = entry.days
        times = times[(day_of >= first) & (day_of <= last)]
    else:
        anchor = first_day + hour
        if anchor < entry.start:
            anchor += 1.0
        times = anchor + dose_interval(entry) * np.arange(max(0, math.ceil((stop - anchor) / dose_interval(entry))))
    return times[(times >= entry.start) & (times < stop)]


@dataclass(frozen=True)
class Inputs:
    """What enters a drug's first compartment on the fine grid: `bolus` [amount per substep,
    added at its start] and `rate` [amount/day during the substep]."""

    bolus: np.ndarray
    rate: np.ndarray


def administrations(entry: ProtocolEntry, grid: FineGrid, cycle_starts: np.ndarray) -> Inputs:
    """The doses of `entry` on `grid`, in mg (IU for vitamin D, session days for exercise).

    A dose given as a rate (mg/day, e.g. an estradiol patch) is delivered at that rate from each
    administration until the next one of the schedule (one day for daily and cyclic schedules),
    never past `stop`.
    """
    times = administration_times(entry, grid.end, cycle_starts)
    bolus = np.zeros(grid.n)
    rate = np.zeros(grid.n)
    if entry.dose_dimension == "mass_rate":
        stop = grid.end if entry.stop is None else min(entry.stop, grid.end)
        ends = np.minimum(times + dose_interval(entry), stop)
        for t0, t1 in zip(times, ends):
            i0, i1 = grid.index(t0), grid.index(t1) + 1
            starts = np.arange(i0, i1) * grid.h
            overlap = np.clip(np.minimum(starts + grid.h, t1) - np.maximum(starts, t0), 0.0, None)
            rate[i0:i1] += entry.dose_amount * overlap / grid.h
    else:
        np.add.at(bolus, grid.index(times), entry.dose_amount)
    return Inputs(bolus, rate)


# ----------------------------------------------------------------------------------- PK models
@dataclass(frozen=True)
class PKModel:
    """A linear compartment model dx/dt = A x (+ input split over compartments), per day.

    Each dose (and each input rate) enters the compartments in the fractions `split` (the first
    transit compartment, or the burst compartment, or the central one for IV). `observe` is the
    compartment reported, divided by `volume` [L] (1 for amount-based targets); `vmax` [mg/day]
    and `km` [mg/L] add saturable elimination from `central` (0 = none). `input_scale` multiplies
    every dose (bioavailability, ester fraction, IU -> mg).
    """

    A: np.ndarray
    split: np.ndarray
    central: int
    observe: int
    volume: float
    input_scale: float
    vmax: float = 0.0
    km: float = 1.0


def _rate(half_life_h: float) -> float:
    """First-order rate [1/day] of a half-life given in hours."""
    return math.log(2.0) / (half_life_h / HOURS_PER_DAY)


def disposition(drug: str, sex: str) -> tuple[float, float]:
    """(clearance [L/day], elimination rate [1/day]) of what `drug` puts in the blood; targets
    without a clearance in the table are followed as amounts (clearance = rate, volume 1 L)."""
    spec = drugs()[drug]
    target = spec["acts_on"]
    if target in ("p4", "e2"):
        return (value(f"endocrine.disposition.{target}_clearance"),
                _rate(value(f"endocrine.disposition.{target}_half_life")))
    if target == "t":
        key = "clearance_men" if sex == "male" else "clearance_women"
        return value(f"endocrine.testosterone.{key}"), _rate(value("endocrine.testosterone.half_life"))
    if "volume" in spec:
        clearance = drug_value(drug, "clearance") * HOURS_PER_DAY
        return clearance, clearance / drug_value(drug, "volume")
    ke = _rate(drug_value(drug, "elimination_half_life"))
    clearance = drug_value(drug, "clearance") * HOURS_PER_DAY if "clearance" in spec else ke
    return clearance, ke


def pk_model(drug: str, route: str, sex: str, rate_dose: bool = False) -> PKModel:
    """The compartment model of `drug` given by `route` to a patient of `sex`; `rate_dose` for
    doses given as a delivery rate (patches), whose fraction delivered is `patch_delivery`.

    Compartments, in order: the transit chain, the burst compartment (routes with
    `burst_fraction`), the central compartment, then a peripheral compartment (drugs with
    `peripheral_volume`) or the bone surface and buried bone (drugs with `bone_fraction`)."""
    spec = drugs()[drug]
    route_spec = spec["routes"][route]
    n_transit = int(drug_value(drug, "transit", route))
    burst = "burst_fraction" in route_spec
    clearance, ke = disposition(drug, sex)
    volume = clearance / ke
    scale = drug_value(drug, "patch_delivery" if rate_dose else "bioavailability", route)
    if "ester_fraction" in spec:
        scale *= drug_value(drug, "ester_fraction")
    if spec["acts_on"] == "vitd":
        scale *= MG_PER_IU_CHOLECALCIFEROL
    extra = []
    if "peripheral_volume" in spec:
        extra = ["peripheral"]
    elif "bone_fraction" in spec:
        extra = ["surface", "buried"]
    central = n_transit + int(burst)
    n = central + 1 + len(extra)
    A = np.zeros((n, n))
    split = np.zeros(n)
    entry = 0 if n_transit else central
    split[entry] = 1.0
    if n_transit:
        ka = drug_value(drug, "absorption_rate", route) * HOURS_PER_DAY
        for i in range(n_transit):
            A[i, i] -= ka
            A[i + 1 if i + 1 < n_transit else central, i] += ka
    if burst:
        fraction = drug_value(drug, "burst_fraction", route)
        kb = drug_value(drug, "burst_rate", route) * HOURS_PER_DAY
        split[entry] -= fraction
        split[n_transit] += fraction
        A[n_transit, n_transit] -= kb
        A[central, n_transit] += kb
    A[central, central] -= ke
    vmax, km, observe = 0.0, 1.0, central
    if "peripheral_volume" in spec:
        q = drug_value(drug, "intercompartmental_clearance") * HOURS_PER_DAY
        vp = drug_value(drug, "peripheral_volume")
        p = central + 1
        A[central, central] -= q / volume
        A[p, central] += q / volume
        A[central, p] += q / vp
        A[p, p] -= q / vp
        vmax = drug_value(drug, "vmax") * HOURS_PER_DAY
        km = drug_value(drug, "km")
    elif "bone_fraction" in spec:
        surface, buried = central + 1, central + 2
        k_bury = _rate(drug_value(drug, "surface_half_life"))
        k_release = _rate(drug_value(drug, "skeletal_half_life"))
        A[surface, central] += ke * drug_value(drug, "bone_fraction")
        A[surface, surface] -= k_bury
        A[buried, surface] += k_bury
        A[buried, buried] -= k_release
        A[central, buried] += k_release
        observe, volume = surface, 1.0
    return PKModel(A, split, central, observe, volume, scale, vmax, km)


def _expm(M: np.ndarray) -> np.ndarray:
    """Matrix exponential by scaling and squaring of a Taylor series (small dense matrices)."""
    norm = np.abs(M).sum(axis=1).max()
    squarings = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0.25 else 0
    X = M / 2.0**squarings
    result = np.eye(M.shape[0])
    term = np.eye(M.shape[0])
    for k in range(1, 20):
        term = term @ X / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


def propagator(model: PKModel, h: float) -> tuple[np.ndarray, np.ndarray]:
    """(P, q): exact one-substep update x(t+h) = P x(t) + q u for a constant input rate u split
    over the compartments as `model.split` (from the exponential of [[A, split], [0, 0]] h)."""
    n = model.A.shape[0]
    M = np.zeros((n + 1, n + 1))
    M[:n, :n] = model.A * h
    M[:n, n] = model.split * h
    E = _expm(M)
    return E[:n, :n].copy(), E[:n, n].copy()


@njit(cache=True)
def _integrate(P, q, split, central, observe, volume, vmax, km, h, bolus, rate, out):
    """Advance the state over every substep; out[j] = substep mean (trapezoid) of x[observe]/volume.
    Boluses are added (split) at the start of their substep; saturable elimination is an explicit step."""
    n = P.shape[0]
    x = np.zeros(n)
    y = np.zeros(n)
    for j in range(bolus.size):
        for r in range(n):
            x[r] += bolus[j] * split[r]
        before = x[observe] / volume
        for r in range(n):
            acc = q[r] * rate[j]
            for c in range(n):
                acc += P[r, c] * x[c]
            y[r] = acc
        if vmax > 0.0:
            conc = y[central] / volume
            y[central] = max(0.0, y[central] - h * vmax * conc / (km + conc))
        for r in range(n):
            x[r] = y[r]
        out[j] = 0.5 * (before + x[observe] / volume)


def integrate(model: PKModel, inputs: Inputs, grid: FineGrid) -> np.ndarray:
    """Substep-mean level of the observed compartment [mg/L, or mg when volume = 1] on `grid`."""
    P, q = propagator(model, grid.h)
    out = np.empty(grid.n)
    _integrate(P, q, model.split, model.central, model.observe, model.volume, model.vmax,
               model.km, grid.h, inputs.bolus * model.input_scale, inputs.rate * model.input_scale, out)
    return out


@njit(cache=True)
def _relax(target, decay, x0, out):
    x = x0
    for j in range(target.size):
        x = target[j] + (x - target[j]) * decay
        out[j] = x


def relax(target: np.ndarray, h: float, tau: float, x0: float | None = None) -> np.ndarray:
    """First-order lag dx/dt = (target - x)/tau [tau in days], exact for a stepwise target."""
    out = np.empty(target.size)
    _relax(np.ascontiguousarray(target, dtype=float), math.exp(-h / tau),
           float(target[0] if x0 is None else x0), out)
    return out


def hill(x: np.ndarray, ec50: float, n: float = 1.0) -> np.ndarray:
    """Fractional response x^n / (x^n + ec50^n), for x >= 0."""
    x = np.maximum(x, 0.0)
    return x**n / (x**n + ec50**n)


# ----------------------------------------------------------------------------------- drug levels
def entry_level(entry: ProtocolEntry, grid: FineGrid, sex: str, cycle_starts: np.ndarray) -> np.ndarray:
    """The contribution of one protocol entry to its target (TARGET_UNITS): the serum level in
    the target's units, or for receptor targets the occupancy ratio level / potency."""
    drug = entry.drug
    target = drugs()[drug]["acts_on"]
    inputs = administrations(entry, grid, cycle_starts)
    if target == "load":
        minutes = np.zeros(grid.n)
        day = np.floor(grid.times()).astype(np.int64)
        per_day = np.bincount(day, weights=inputs.bolus, minlength=day[-1] + 1) * 24 * 60
        minutes[:] = per_day[day]
        return minutes
    model = pk_model(drug, entry.route, sex, entry.dose_dimension == "mass_rate")
    level = integrate(model, inputs, grid)
    if target == "calcium":
        return level * model.volume * -model.A[model.central, model.central]
    level = level * LEVEL_UNITS[target]
    if target == "pth":
        return level * drug_value(drug, "pth_equivalent")
    if target == "lh" or target in RECEPTOR_TARGETS:
        return level / drug_value(drug, "potency")
    return level


def drug_levels(protocol: list[ProtocolEntry], grid: FineGrid, sex: str,
                cycle_starts: np.ndarray) -> dict[str, np.ndarray]:
    """Sum of every entry's contribution per target (keys of TARGET_UNITS), and for the classes
    with an efficacy the efficacy-weighted sum under '<target>_efficacy'; unused targets share
    one read-only array of zeros."""
    zeros = np.zeros(grid.n)
    zeros.flags.writeable = False
    levels = dict.fromkeys(TARGET_UNITS, zeros)
    for entry in protocol:
        target = drugs()[entry.drug]["acts_on"]
        contribution = entry_level(entry, grid, sex, cycle_starts)
        levels[target] = levels[target] + contribution
        if target in EFFICACY_TARGETS:
            key = f"{target}_efficacy"
            levels[key] = levels[key] + drug_value(entry.drug, "efficacy") * contribution
    return levels


# ----------------------------------------------------------------------------------- PD links
def occupancy(x: np.ndarray) -> np.ndarray:
    """Fraction of a class's sites occupied by its drugs, from their summed occupancy ratios."""
    return x / (1.0 + x)


def response(x: np.ndarray, efficacy_x: np.ndarray) -> np.ndarray:
    """A class's response, sum(efficacy x) / (1 + sum x): competitive ligands of one site, each
    acting with its own efficacy."""
    return efficacy_x / (1.0 + x)


def mpa_equivalent(mpa_ng_ml: np.ndarray, exogenous_p4_ng_ml: np.ndarray) -> np.ndarray:
    """Exogenous progestin as MPA-equivalent ng/mL (progesterone scaled by the PR EC50 ratio)."""
    ratio = value("endocrine.receptors.pr_ec50_mpa") / value("endocrine.receptors.pr_ec50_p4")
    return mpa_ng_ml + exogenous_p4_ng_ml * ratio


def progestin_suppression(mpa_eq: np.ndarray, h: float) -> np.ndarray:
    """Gonadotropin suppression 0..1 by exogenous progestin: a Hill function of the exposure
    lagged by `hpo.progestin_time_constant` (contraceptive exposure suppresses, luteal-phase
    doses not)."""
    lagged = relax(mpa_eq, h, value("endocrine.hpo.progestin_time_constant"), 0.0)
    return hill(lagged, value("endocrine.hpo.progestin_suppression_ec50"),
                value("endocrine.hpo.progestin_suppression_hill"))
