"""The clinical validation targets (docs/targets.md) as data.

Each `Target` is one checked quantity of a docs/targets.md row: its id ("V2" for a row with one
check, "V2.yr0-2" when a row names several), the published result, the band the model must
land in, the scenario arms it is computed from (files in experiments/scenarios/) and the
statistic. A statistic is computed once per replicate seed from the time series of every arm
it names; arms of one trial share their replicate seeds (common random numbers), so
differences between arms are paired. The report gives the mean over seeds, its 95%
confidence interval, and passes a target when the mean lies inside the band.

Bands marked "my reading" in `Target.note` turn a value given as "~x" into a range, or a
criterion into the equivalent band of a better-behaved statistic; every other band is copied
from docs/targets.md. Whether a target was used to calibrate the model is not
decided here: `calibrated_ids()` reads it from the parameter table, where every calibrated
parameter's source names the targets it was fitted to.

Times are in years from the start of the arm; BMD changes are percent of the simulated
patient's own baseline, read from the column of `BoneModel.timeseries()` that matches how the
trial measured (`Target.measure`): `bmd_pct_spine`, the spine as DXA sees it (areal, the whole
vertebra: trabecular core, cortical shell, posterior elements), for the DXA trials; and
`vbmd_pct_trabecular`, the trabecular compartment as QCT trabecular vBMD sees it, for the QCT
trials (V4: Prior 1990 and 1994; V6: TTrials). See model/readouts.py.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bonesim.model.parameters import all_parameters
from bonesim.model.scenario import Scenario
from bonesim.model.units import DAYS_PER_YEAR

BMD = "bmd_pct_spine"          # spine areal BMD, DXA-like [% change]
VBMD = "vbmd_pct_trabecular"   # trabecular vBMD, QCT-like [% change]
MEASURES = {BMD: "spine DXA-like BMD", VBMD: "trabecular vBMD (QCT-like)"}


class NotMeasurable(ValueError):
    """The model's output lacks what a statistic needs; the message says what."""


@dataclass(frozen=True)
class Arm:
    """One simulated arm of a trial: its time series and scenario for one replicate seed."""

    series: pd.DataFrame
    scenario: Scenario

    @property
    def years(self) -> np.ndarray:
        return self.series["day"].to_numpy() / DAYS_PER_YEAR

    @property
    def end(self) -> float:
        """Time of the last output row, years (the end of the arm, to one output interval)."""
        return float(self.years[-1])

    @property
    def fmp(self) -> float:
        """Years from the start of the arm to the final menstrual period."""
        return self.scenario.patient.final_period_age - self.scenario.patient.age

    def column(self, name: str) -> np.ndarray:
        if name not in self.series:
            raise NotMeasurable(f"the time series has no column '{name}'")
        return self.series[name].to_numpy(dtype=float)

    def at(self, name: str, years: float) -> float:
        """`name` at `years`, linearly interpolated between output rows (BMD columns are 0 at
        day 0); up to one output interval past the last row gives the last row."""
        t, y = self.years, self.column(name)
        if name in MEASURES and t[0] > 0:
            t, y = np.concatenate([[0.0], t]), np.concatenate([[0.0], y])
        if not t[0] - 1e-9 <= years <= t[-1] + self.scenario.simulation.output_every / DAYS_PER_YEAR:
            raise NotMeasurable(f"{name} is not recorded at {years:g} years (run covers "
                                f"{t[0]:g}-{t[-1]:g})")
        return float(np.interp(years, t, y))

    def mean(self, name: str, start: float, stop: float) -> float:
        """Time mean of `name` over output rows with start <= t <= stop (years), skipping
        undefined (NaN) rows such as the day-0 row of per-interval rates."""
        t, y = self.years, self.column(name)
        inside = (t >= start - 1e-9) & (t <= stop + 1e-9) & np.isfinite(y)
        if not inside.any():
            raise NotMeasurable(f"no output of {name} between {start:g} and {stop:g} years")
        return float(np.mean(y[inside]))

    def slope(self, start: float, stop: float, measure: str = BMD) -> float:
        """Least-squares slope of BMD column `measure` over [start, stop], %/yr of the BMD at
        `start`."""
        t, bmd = self.years, 1.0 + self.column(measure) / 100.0
        inside = (t >= start - 1e-9) & (t <= stop + 1e-9)
        if inside.sum() < 2:
            raise NotMeasurable(f"fewer than 2 BMD outputs between {start:g} and {stop:g} years")
        relative = 100.0 * (bmd[inside] / (1.0 + self.at(measure, start) / 100.0) - 1.0)
        return float(np.polyfit(t[inside], relative, 1)[0])

    def summary(self, name: str) -> float:
        """Item `name` of `readouts.remodeling_summary` at the end of the arm (BMU periods,
        lifespans), kept in the series' attrs["remodeling"] by `runner.simulate`."""
        value = self.series.attrs.get("remodeling", {}).get(name)
        if value is None:
            raise NotMeasurable(f"the run has no remodeling summary item '{name}'")
        if not np.isfinite(value):
            raise NotMeasurable(f"remodeling summary '{name}' is undefined (no completed BMU?)")
        return float(value)

    def change(self, measure: str = BMD) -> float:
        """Change of BMD column `measure` from baseline at the end of the arm, %."""
        return self.at(measure, self.end)


Arms = Mapping[str, Arm]


@dataclass(frozen=True)
class Target:
    """One checked quantity of a docs/targets.md row.

    `compute(arms)` returns the statistic for one replicate seed from the arms named in
    `arms` (scenario names); `band` = (low, high), None for an open side, in `units`;
    `measure` is the BMD column the statistic reads (BMD or VBMD, as the trial measured),
    None when it reads none.
    """

    id: str
    description: str
    published: str
    band: tuple[float | None, float | None]
    units: str
    arms: tuple[str, ...]
    statistic: str
    compute: Callable[[Arms], float]
    note: str = ""
    measure: str | None = None

    @property
    def row(self) -> str:
        """The docs/targets.md row id ("V2" for "V2.yr0-2")."""
        return self.id.split(".")[0]

    def passes(self, value: float) -> bool:
        """True when `value` lies inside the band (bounds included); NaN never passes."""
        low, high = self.band
        if not np.isfinite(value):
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    @property
    def band_text(self) -> str:
        low, high = self.band
        if low is None:
            return f"<= {high:g} {self.units}"
        if high is None:
            return f">= {low:g} {self.units}"
        return f"{low:g} to {high:g} {self.units}"


@dataclass(frozen=True)
class Mark:
    """A published result drawn on the trajectory figure.

    kind "point": BMD change `value` (band lo..hi) at `years`; kind "slope": a BMD path of
    `value` %/yr (band lo..hi) from `years` to `until`, anchored on the simulated mean at `years`.
    Values are in the measure of the arm's panel (`TRIALS`), that of its targets.
    `fmp=True`: times are years from the arm's final menstrual period.
    """

    arm: str
    kind: str
    years: float | None
    value: float | None
    lo: float | None
    hi: float | None
    label: str
    until: float | None = None
    fmp: bool = False


LOSS_SHARE = 0.7   # V5: "loss at least 70% of the placebo loss"
LOSS_STATISTIC = (f"spine DXA-like BMD loss of the {{arm}} arm minus {LOSS_SHARE:g} x that of "
                  f"placebo at 1 yr, paired by seed")
LOSS_NOTE = (f"my reading: 'loss at least {100 * LOSS_SHARE:g}% of the placebo loss' as arm loss "
             f"- {LOSS_SHARE:g} x placebo loss >= 0, which holds for the seed means exactly when "
             "the mean loss is at least that share of the placebo's (a per-seed ratio is undefined "
             "whenever one placebo replicate gains); it presumes the placebo arm loses on average "
             "(see its row in the arm table)")


def _loss_margin(arms: Arms, arm: str, placebo: str) -> float:
    """Arm loss minus LOSS_SHARE x placebo loss [points]. Its mean over seeds is >= 0 exactly
    when the arms' mean loss is at least LOSS_SHARE of the placebo's mean loss; unlike a
    per-seed ratio it stays defined when one placebo replicate happens to gain bone."""
    return -arms[arm].change() + LOSS_SHARE * arms[placebo].change()


V1 = "v1_premenopausal"
V2 = "v2_menopause"
PEPI = ("v3a_pepi_placebo", "v3b_pepi_cee", "v3c_pepi_cee_mpa_continuous",
        "v3d_pepi_cee_mpa_cyclic", "v3e_pepi_cee_progesterone")
V4A, V4B, V4C = "v4a_anovulatory", "v4b_disturbed_cycles", "v4c_disturbed_mpa"
V5P, V5O, V5C = ("v5_postmeno_placebo", "v5_postmeno_progesterone_oral",
                 "v5_postmeno_progesterone_cream")
V6T, V6U = "v6_ttrials_gel", "v6_ttrials_untreated"
V7 = "v7_progesterone_cream_3y"
ARMS: tuple[str, ...] = (V1, V2, *PEPI, V4A, V4B, V4C, V5P, V5O, V5C, V6T, V6U, V7)

# Where a row allows it, --quick simulates fewer years (the statistic is then taken at the end
# of the shortened arm). Every other arm needs its full duration for its statistic.
QUICK_YEARS: dict[str, float] = {V1: 2.0, V7: 1.0}

TARGETS: tuple[Target, ...] = (
    Target("V1.drift", "premenopausal woman, ovulatory cycles: bone mass stable",
           "stable", (-0.5, 0.5), "%/yr", (V1,),
           "least-squares spine DXA-like BMD slope over the run",
           lambda a: a[V1].slope(0.0, a[V1].end), measure=BMD),
    Target("V1.turnover", "premenopausal trabecular turnover", "~25%/yr", (15.0, 35.0), "%/yr",
           (V1,), "mean of turnover_pct_per_yr over the run",
           lambda a: a[V1].mean("turnover_pct_per_yr", 0.0, a[V1].end)),
    Target("V1.resorption", "resorption phase of a BMU", "2-4 weeks", (14.0, 28.0), "days",
           (V1,), "median first-to-last resorption day of the BMUs completed in the run",
           lambda a: a[V1].summary("resorption_days")),
    Target("V1.formation", "formation phase of a BMU", "3-5 months", (91.0, 152.0), "days", (V1,),
           "median first-to-last formation day of the BMUs completed in the run",
           lambda a: a[V1].summary("formation_days"), note="3-5 months taken as 91-152 days"),
    Target("V1.erosion_depth", "erosion depth of a trabecular BMU", "40-60 um (Eriksen 1986)",
           (40.0, 60.0), "um", (V1,),
           "erosion depth of the BMUs completed in the run: their resorbed volume / the surface "
           "they eroded (readouts.remodeling_summary)",
           lambda a: a[V1].summary("erosion_depth_um"),
           note="my reading: the mean depth of a cavity over its eroded surface, against the "
                "published range of final erosion depths"),
    Target("V1.oc_lifespan", "osteoclast lifespan", "~2 weeks", (7.0, 21.0), "days", (V1,),
           "mean age at death of the osteoclasts that died in the run",
           lambda a: a[V1].summary("osteoclast_lifespan_days"),
           note="my reading: '~2 weeks' taken as 2 weeks +-50%"),
    Target("V1.ob_lifespan", "osteoblast lifespan", "~3 months", (46.0, 137.0), "days", (V1,),
           "mean age of the osteoblasts that ended (apoptosis, lining cell, osteocyte) in the run",
           lambda a: a[V1].summary("osteoblast_lifespan_days"),
           note="my reading: '~3 months' taken as 3 months +-50% (46-137 days)"),
    Target("V2.yr0-2", "natural menopause: spine loss in the 2 years after the FMP",
           "-3.3%/yr (Sowers 2010)", (-4.3, -2.3), "%/yr", (V2,),
           "least-squares spine DXA-like BMD slope from FMP to FMP+2 yr, % of BMD at FMP per yr",
           lambda a: a[V2].slope(a[V2].fmp, a[V2].fmp + 2.0), measure=BMD),
    Target("V2.yr2-7", "natural menopause: spine loss in years 2-7 after the FMP",
           "-1.1%/yr (Sowers 2010)", (-1.8, -0.6), "%/yr", (V2,),
           "least-squares spine DXA-like BMD slope from FMP+2 to FMP+7 yr, % of BMD at FMP+2 "
           "per yr", lambda a: a[V2].slope(a[V2].fmp + 2.0, a[V2].fmp + 7.0), measure=BMD),
    Target("V2.activation", "activation frequency about one year after the FMP vs premenopausal",
           "~x2 (Recker 2004)", (1.5, 3.0), "x", (V2,),
           "mean activation_frequency_per_yr over FMP+0.5..FMP+1.5 yr / mean over the first "
           "(premenopausal) year",
           lambda a: a[V2].mean("activation_frequency_per_yr", a[V2].fmp + 0.5, a[V2].fmp + 1.5)
           / a[V2].mean("activation_frequency_per_yr", 0.0, 1.0)),
    Target("V3a", "PEPI placebo, 3 years", "spine -1.8% (PEPI 1996)", (-2.8, -0.8), "%",
           (PEPI[0],), "spine DXA-like BMD change at 3 yr", lambda a: a[PEPI[0]].change(),
           measure=BMD),
    Target("V3b", "PEPI CEE 0.625 mg/d alone, 3 years", "spine +3.5 to +4% (PEPI 1996)",
           (2.5, 4.8), "%", (PEPI[1],), "spine DXA-like BMD change at 3 yr",
           lambda a: a[PEPI[1]].change(), measure=BMD),
    Target("V3c", "PEPI CEE + MPA 2.5 mg/d continuous, 3 years", "spine +5.0% (PEPI 1996)",
           (4.0, 6.0), "%", (PEPI[2],), "spine DXA-like BMD change at 3 yr",
           lambda a: a[PEPI[2]].change(), measure=BMD),
    Target("V3c.above_V3b", "PEPI CEE + continuous MPA gains more than CEE alone",
           "+5.0% vs +3.5-4% (PEPI 1996)", (0.0, None), "points", (PEPI[1], PEPI[2]),
           "V3c minus V3b spine DXA-like BMD change at 3 yr, paired by seed",
           lambda a: a[PEPI[2]].change() - a[PEPI[1]].change(), measure=BMD),
    Target("V3d", "PEPI CEE + MPA 10 mg days 1-12 monthly, 3 years",
           "within the +3.8% mean of the cyclic arms (PEPI 1996)", (2.8, 4.8), "%", (PEPI[3],),
           "spine DXA-like BMD change at 3 yr", lambda a: a[PEPI[3]].change(), measure=BMD),
    Target("V3e", "PEPI CEE + micronized progesterone 200 mg days 1-12 monthly, 3 years",
           "within the +3.8% mean of the cyclic arms (PEPI 1996)", (2.8, 4.8), "%", (PEPI[4],),
           "spine DXA-like BMD change at 3 yr", lambda a: a[PEPI[4]].change(), measure=BMD),
    Target("V3f", "estrogen + progestin minus estrogen alone, per year",
           "+0.68%/yr, 95% CI 0.38-0.97 (Prior 2017 meta-analysis)", (0.2, 1.2), "%/yr", PEPI[1:],
           "(mean of V3c, V3d, V3e minus V3b spine DXA-like BMD change at 3 yr) / 3 yr, paired "
           "by seed",
           lambda a: (np.mean([a[arm].change() for arm in PEPI[2:]]) - a[PEPI[1]].change())
           / a[PEPI[1]].end, measure=BMD),
    Target("V4a", "premenopausal, normal estrogen, anovulatory cycles, 1 year",
           "-4.2%/yr (Prior 1990, QCT trabecular spine)", (-6.0, -2.5), "%/yr", (V4A,),
           "trabecular vBMD (QCT-like) change at the end / years",
           lambda a: a[V4A].change(VBMD) / a[V4A].end, measure=VBMD),
    Target("V4b", "premenopausal, ~29% of cycles disturbed, 1 year", "-2.0%/yr (Prior 1990)",
           (-3.2, -0.8), "%/yr", (V4B,), "trabecular vBMD (QCT-like) change at the end / years",
           lambda a: a[V4B].change(VBMD) / a[V4B].end, measure=VBMD),
    Target("V4c", "V4b plus cyclic MPA 10 mg x 10 days/month: no loss", "+1.7% (Prior 1994)",
           (0.0, None), "%", (V4C,), "trabecular vBMD (QCT-like) change at 1 yr, MPA arm",
           lambda a: a[V4C].change(VBMD), measure=VBMD),
    Target("V4c.vs_placebo", "V4b plus cyclic MPA: gain over its placebo (V4b)",
           "+1.7% vs -2.0% (Prior 1994)", (2.0, None), "points", (V4B, V4C),
           "V4c minus V4b trabecular vBMD (QCT-like) change at 1 yr, paired by seed",
           lambda a: a[V4C].change(VBMD) - a[V4B].change(VBMD), measure=VBMD),
    Target("V5.oral", "postmenopausal, oral micronized progesterone alone: no prevention of loss",
           "no prevention vs placebo (Seifert-Klauss & Prior 2010)", (0.0, None), "points",
           (V5P, V5O), LOSS_STATISTIC.format(arm="oral"), lambda a: _loss_margin(a, V5O, V5P),
           note=LOSS_NOTE, measure=BMD),
    Target("V5.cream", "postmenopausal, progesterone cream 20 mg/d alone: no prevention of loss",
           "no difference vs placebo (Leonetti 1999)", (0.0, None), "points", (V5P, V5C),
           LOSS_STATISTIC.format(arm="cream"), lambda a: _loss_margin(a, V5C, V5P),
           note=LOSS_NOTE, measure=BMD),
    Target("V6", "hypogonadal men >= 65, testosterone gel to mid-normal T, 1 year",
           "+7.5% vs +0.8%, trabecular spine vBMD (TTrials, Snyder 2017)", (4.0, 10.0), "points",
           (V6U, V6T),
           "treated minus untreated trabecular vBMD (QCT-like) change at 1 yr, paired by seed",
           lambda a: a[V6T].change(VBMD) - a[V6U].change(VBMD), measure=VBMD),
    Target("V7", "negative control: postmenopausal, progesterone cream alone, 3 years",
           "RCTs: no effect (Lee 1990 claimed +15.4%, uncontrolled)", (None, 2.0), "%", (V7,),
           "spine DXA-like BMD change at the end", lambda a: a[V7].change(), measure=BMD),
)

MARKS: tuple[Mark, ...] = (
    Mark(V1, "slope", 0.0, 0.0, -0.5, 0.5, "stable +-0.5%/yr", until=5.0),
    Mark(V2, "slope", 0.0, -3.3, -4.3, -2.3, "Sowers 2010: -3.3%/yr", until=2.0, fmp=True),
    Mark(V2, "slope", 2.0, -1.1, -1.8, -0.6, "Sowers 2010: -1.1%/yr", until=7.0, fmp=True),
    Mark(PEPI[0], "point", 3.0, -1.8, -2.8, -0.8, "PEPI placebo -1.8%"),
    Mark(PEPI[1], "point", 3.0, 3.75, 2.5, 4.8, "PEPI CEE +3.5-4%"),
    Mark(PEPI[2], "point", 3.0, 5.0, 4.0, 6.0, "PEPI CEE+MPA cont. +5.0%"),
    Mark(PEPI[3], "point", 3.0, 3.8, 2.8, 4.8, "PEPI cyclic arms +3.8%"),
    Mark(PEPI[4], "point", 3.0, 3.8, 2.8, 4.8, "PEPI cyclic arms +3.8%"),
    Mark(V4A, "point", 1.0, -4.2, -6.0, -2.5, "Prior 1990 anovulatory -4.2%"),
    Mark(V4B, "point", 1.0, -2.0, -3.2, -0.8, "Prior 1990/1994 placebo -2.0%"),
    Mark(V4C, "point", 1.0, 1.7, 0.0, None, "Prior 1994 MPA +1.7%"),
    Mark(V6T, "point", 1.0, 7.5, None, None, "TTrials T gel +7.5%"),
    Mark(V6U, "point", 1.0, 0.8, None, None, "TTrials placebo +0.8%"),
    Mark(V7, "point", 3.0, 15.4, None, 2.0, "Lee 1990 claim +15.4% (must stay <= +2%)"),
)

# Panels of the trajectory figure: a title, the arms drawn together, and the BMD column drawn
# (the measure of the arms' targets, in which their marks are given).
TRIALS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("V1 premenopausal", (V1,), BMD),
    ("V2 natural menopause (FMP at dashed line)", (V2,), BMD),
    ("V3 PEPI, 3 years", PEPI, BMD),
    ("V4 ovulatory disturbances (Prior 1990, 1994)", (V4A, V4B, V4C), VBMD),
    ("V5 progesterone alone after menopause", (V5P, V5O, V5C), BMD),
    ("V6 TTrials, men >= 65", (V6U, V6T), VBMD),
    ("V7 progesterone cream, 3 years", (V7,), BMD),
)


def calibrated_ids(parameters=None) -> set[str]:
    """docs/targets.md row ids ("V1", "V2", ...) that some calibrated parameter was fitted to.

    A parameter counts as calibrated when its `source` starts with "calibrated"; the row ids
    its source names (e.g. "calibrated: experiments/calibrate.py, V1 turnover") are returned.
    """
    parameters = all_parameters() if parameters is None else parameters
    ids: set[str] = set()
    for p in parameters.values():
        if p.source.strip().lower().startswith("calibrated"):
            ids.update(re.findall(r"\bV\d+[a-f]?\b", p.source))
    return ids


def basis(target: Target, calibrated: set[str]) -> str:
    """'calibrated on' when the target's row (or its trial, e.g. V3 for V3b) was fitted to."""
    trial = re.match(r"V\d+", target.row).group(0)
    return "calibrated on" if {target.row, trial} & calibrated else "validated"


def arms_of(targets: tuple[Target, ...]) -> list[str]:
    """The arms `targets` need, in the order of `ARMS`."""
    needed = {arm for t in targets for arm in t.arms}
    return [arm for arm in ARMS if arm in needed]


def select(ids: list[str] | None) -> tuple[Target, ...]:
    """Targets whose id or row is in `ids` (all when None); ValueError names unknown ids."""
    if not ids:
        return TARGETS
    known = {t.id for t in TARGETS} | {t.row for t in TARGETS}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown target id(s) {', '.join(unknown)} (known: "
                         f"{', '.join(sorted(known))})")
    return tuple(t for t in TARGETS if t.id in ids or t.row in ids)

