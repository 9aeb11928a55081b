"""`bonesim converge`: does halving dt or dx change the 3-year BMD by less than 0.3 points?

The criterion is docs/design.md, decision 4, applied to the baseline (V1) patient. The
model is stochastic, and its remodeling is chaotic: two runs that differ only by a solver
tolerance found different BMUs within ~3 months. So "changes the BMD" means a change of the
mean over replicate seeds, and it is measured as one: a paired comparison over many seeds.

Arms: the V1 patient (experiments/scenarios/v1_premenopausal.toml: premenopausal, ovulatory
cycles, no therapy) for `years` (3) on a `size` x `size` section (128), three ways:

| arm | what is refined |
|---|---|
| base | nothing: the scenario's dt (1 day), fields on the cell lattice |
| dt_half | the tissue step, halved |
| dx_half | the field mesh, twice finer (`simulation.field_refinement = 2`); the lattice spacing is a cell's size, a biological quantity, not a numerical one (model/mesh.py) |

Every arm runs the same replicate seeds. Per seed, the difference refined - base of the BMD
change at the end, for the spine DXA-like BMD (the headline reading) and the trabecular vBMD
(the simulated compartment itself, ~2.3 x larger). The report gives the mean difference with
its t-based 95% confidence interval and a verdict against the margin of 0.3 points:

* *converged*: the whole interval lies inside (-0.3, 0.3);
* *not converged*: the whole interval lies outside [-0.3, 0.3];
* *undecided*: otherwise, with the number of seeds an interval of the present spread would need
  to decide (if the mean difference stays where it is).

BMD is the integral of resorption and formation over the run, and its seed-to-seed spread is
large (SD of the paired difference ~2 points at 128^2: ~600 seeds per arm to decide 0.3). The
rates and counts behind it average over thousands of cell-days and are far less noisy. So the
report has a second table: for each of them (`RATES`), the paired difference refined - base
of its mean over the run, with its interval, marked where the interval excludes zero; then
the same for the run's BMU histomorphometry (`HISTOMORPHOMETRY`: the periods of resorption,
reversal and formation, balance, erosion depth, lifespans), which says in which phase of the
sequence a difference lies. A systematic dt or dx error in a cell rule shows there after a
few seeds (docs/design.md, Numerics and resolution, names one found this way).

Written atomically into OUT (default runs/convergence): convergence.md (the report) and
convergence.parquet (one row per arm and seed: the end readings, the run means of the
rates and the run's histomorphometry). Finished runs stay in OUT/.partial (the runner's
store, `runner.run_jobs`), named by a digest of the resolved scenario, the seed and the model's
code (`files.code_digest`): running again with more --seeds adds seeds and re-simulates nothing
until the model's code changes.
"""

import os
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from bonesim.experiments.files import atomic_path, code_digest, git_revision, write_parquet
from bonesim.experiments.validate import (CONFIDENCE, SCENARIO_DIR, BadRequest, Settings,
                                          interval, run_arms, seeds_for)
from bonesim.model.scenario import ScenarioError, load_scenario

ARM_FILE = "v1_premenopausal"
MARGIN = 0.3                 # percentage points (docs/design.md, decision 4)
READINGS = (("bmd_pct_spine", "spine DXA-like BMD"),
            ("vbmd_pct_trabecular", "trabecular vBMD"))
REFINED = (("dt_half", "dt halved"), ("dx_half", "field mesh twice finer"))
RATES = (("turnover_pct_per_yr", "turnover (%/yr)"),
         ("activation_frequency_per_yr", "activation frequency (/yr)"),
         ("remodeling_space_pct", "remodeling space (%)"),
         ("ctx_rel", "CTX-like resorption (rel.)"), ("p1np_rel", "P1NP-like formation (rel.)"),
         ("rankl_opg_ratio", "RANKL/OPG"),
         ("n_oc_precursors", "osteoclast precursors"), ("n_osteoclasts", "osteoclasts"),
         ("n_ob_precursors", "osteoblast precursors"), ("n_osteoblasts", "osteoblasts"),
         ("n_lining", "lining cells"), ("n_osteocytes", "osteocytes"))
# histomorphometry of the BMUs completed in a run (readouts.remodeling_summary): where in the
# remodeling sequence a difference in the rates comes from
HISTOMORPHOMETRY = (("resorption_days", "resorption period (d, median)"),
                    ("reversal_days", "reversal period (d, median)"),
                    ("formation_days", "formation period (d, median)"),
                    ("bmu_balance", "BMU balance (formed / resorbed)"),
                    ("erosion_depth_um", "erosion depth (um)"),
                    ("osteoclast_lifespan_days", "osteoclast lifespan (d)"),
                    ("osteoblast_lifespan_days", "osteoblast lifespan (d)"))


def arms(seeds: int, size: int, years: float) -> Settings:
    """The three arms (base, dt_half, dx_half) of the V1 scenario with `seeds` replicates, on a
    `size` x `size` section for `years`."""
    common = {"simulation.replicates": seeds, "tissue.size": [size, size],
              "simulation.duration": f"{years} years"}
    path = SCENARIO_DIR / f"{ARM_FILE}.toml"
    base = load_scenario(path, common)
    return Settings({
        "base": base,
        "dt_half": load_scenario(path, {**common, "simulation.dt": f"{base.simulation.dt / 2} d"}),
        "dx_half": load_scenario(path, {**common, "simulation.field_refinement":
                                        2 * base.simulation.field_refinement}),
    }, seeds, quick=False)


def verdict(low: float, high: float, margin: float = MARGIN) -> str:
    """'converged' if [low, high] lies inside (-margin, margin), 'not converged' if it lies
    wholly outside [-margin, margin], else 'undecided' (also for a NaN interval)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undecided"
    if -margin < low and high < margin:
        return "converged"
    if high < -margin or low > margin:
        return "not converged"
    return "undecided"


def seeds_to_decide(differences, margin: float = MARGIN) -> float:
    """Seeds an interval of the present spread would need to decide, if the mean difference
    stays where it is: `validate.seeds_for` a half-width of | |mean| - margin |. NaN with fewer
    than two differences; inf when the mean sits on the margin (more than 1e9 seeds)."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2 or not np.all(np.isfinite(d)):
        return float("nan")
    return seeds_for(d.std(ddof=1), abs(abs(d.mean()) - margin))


def end_values(settings: Settings, results: dict) -> pd.DataFrame:
    """One row per (arm, seed): the day and the readings at the end of the run, the mean of
    each of `RATES` over the run's outputs after day 0, and the run's `HISTOMORPHOMETRY` (NaN
    where a run has none)."""
    rows = []
    for arm in settings.scenarios:
        for seed in range(settings.seeds):
            run = results[arm, seed]
            last, after = run.iloc[-1], run[run["day"] > 0]
            bmus = run.attrs.get("remodeling", {})
            rows.append({"arm": arm, "seed": seed, "day": float(last["day"]),
                         **{name: float(last[name]) for name, _ in READINGS},
                         **{name: float(after[name].mean()) for name, _ in RATES},
                         **{name: float(bmus.get(name, np.nan)) for name, _ in HISTOMORPHOMETRY}})
    return pd.DataFrame(rows)


def differences(ends: pd.DataFrame) -> pd.DataFrame:
    """Per refinement and reading: the mean paired difference refined - base [points], its
    95% interval, the SD of the per-seed differences, the verdict and the seeds to decide."""
    wide = ends.pivot(index="seed", columns="arm")
    rows = []
    for arm, what in REFINED:
        for name, label in READINGS:
            d = (wide[name][arm] - wide[name]["base"]).to_numpy()
            mean, low, high = interval(d)
            rows.append({"refined": arm, "what": what, "reading": name, "label": label,
                         "base_mean": wide[name]["base"].mean(),
                         "refined_mean": wide[name][arm].mean(), "difference": mean,
                         "ci95_lo": low, "ci95_hi": high,
                         "sd": float(np.std(d, ddof=1)) if d.size > 1 else float("nan"),
                         "verdict": verdict(low, high), "seeds_to_decide": seeds_to_decide(d)})
    return pd.DataFrame(rows)


def rate_differences(ends: pd.DataFrame) -> pd.DataFrame:
    """Per refinement and rate (`RATES`, then `HISTOMORPHOMETRY`): the base mean, the mean
    paired difference refined - base of the run values with its 95% interval, the difference
    relative to the size of the base mean [%] (signed as the difference), and whether the
    interval excludes zero."""
    wide = ends.pivot(index="seed", columns="arm")
    rows = []
    for arm, what in REFINED:
        for name, label in RATES + HISTOMORPHOMETRY:
            base = wide[name]["base"].mean()
            mean, low, high = interval((wide[name][arm] - wide[name]["base"]).to_numpy())
            rows.append({"refined": arm, "what": what, "rate": name, "label": label,
                         "base_mean": base, "difference": mean, "ci95_lo": low,
                         "ci95_hi": high, "relative_pct": 100 * mean / abs(base) if base else np.nan,
                         "significant": bool(low > 0 or high < 0)})
    return pd.DataFrame(rows)


def _g(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.3g}"


def _pp(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.2f}"


def report(table: pd.DataFrame, rates: pd.DataFrame, settings: Settings,
           header: dict) -> str:
    base = settings.scenarios["base"]
    lines = [
        "# bonesim convergence in dt and dx",
        "",
        f"{header['when']}; bonesim {header['version']}, git {header['git']}, model code "
        f"{header['code'][:16]}; {settings.seeds} replicate seeds per arm; {ARM_FILE} for "
        f"{base.simulation.duration:g} years on a {base.tissue.size[0]}x{base.tissue.size[1]} "
        f"section, dt {base.simulation.dt:g} d; {header['workers']} worker(s), "
        f"{header['wall_s']:.0f} s (runs already in .partial are not simulated again).",
        "",
        f"Criterion (docs/design.md, decision 4): halving dt or dx changes the {base.simulation.duration:g}"
        f"-year BMD by less than {MARGIN} percentage points. Difference = refined - base, paired "
        f"by seed, mean with its t-based {CONFIDENCE:.0%} interval; *converged* when the whole "
        f"interval lies inside +-{MARGIN}, *not converged* when wholly outside, else *undecided* "
        "(with the seeds an interval of the present spread would need, if the mean stays).",
        "",
        "| refined | reading | base mean (%) | refined mean (%) | difference [95% CI] (points) "
        "| SD of the per-seed differences | verdict | seeds to decide |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        need = r["seeds_to_decide"]
        lines.append(
            f"| {r['what']} | {r['label']} | {_pp(r['base_mean'])} | {_pp(r['refined_mean'])} "
            f"| {_pp(r['difference'])} [{_pp(r['ci95_lo'])}, {_pp(r['ci95_hi'])}] "
            f"| {r['sd']:.2f} | {r['verdict']} "
            f"| {'n/a' if not np.isfinite(need) else f'{need:.0f}'} |")
    lines += [
        "",
        "## The rates behind the BMD",
        "",
        "Mean of each rate or count over the run (outputs after day 0), then the run's "
        "histomorphometry (BMUs founded and completed in it: median periods, balance, mean "
        "erosion depth and lifespans); difference = refined - "
        f"base, paired by seed, with its {CONFIDENCE:.0%} interval. Marked **yes** where the "
        "interval excludes zero: a systematic effect of the refinement. No margin applies; "
        "these locate a dt or dx error long before the BMD can show it, and the periods say "
        "in which phase of the remodeling sequence it lies.",
        "",
        "| refined | rate | base mean | difference [95% CI] | relative | CI excludes 0 |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in rates.iterrows():
        lines.append(
            f"| {r['what']} | {r['label']} | {r['base_mean']:.4g} "
            f"| {_g(r['difference'])} [{_g(r['ci95_lo'])}, {_g(r['ci95_hi'])}] "
            f"| {'n/a' if not np.isfinite(r['relative_pct']) else f'{r['relative_pct']:+.1f}%'} "
            f"| {'**yes**' if r['significant'] else 'no'} |")
    return "\n".join(lines) + "\n"


def converge(out: Path, seeds: int = 16, workers: int | None = None, size: int = 128,
             years: float = 3.0, show_progress: bool | None = None) -> pd.DataFrame:
    """Run (or resume) the convergence study into `out`; return the table of differences.
    BadRequest for seeds < 2, workers < 1, or a size or duration the scenario schema refuses."""
    out = Path(out)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if seeds < 2 or workers < 1:
        raise BadRequest(f"--seeds must be >= 2 and --workers >= 1 (got {seeds} and {workers})")
    try:
        settings = arms(seeds, size, years)
    except ScenarioError as err:
        raise BadRequest(str(err)) from None
    started = time.perf_counter()
    results = run_arms(settings, out, workers, show_progress)
    ends = end_values(settings, results)
    table = differences(ends)
    header = {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "version": version("bonesim"), "git": git_revision(), "code": code_digest(),
              "workers": workers, "wall_s": time.perf_counter() - started}
    write_parquet(out / "convergence.parquet", ends)
    with atomic_path(out / "convergence.md") as tmp:
        tmp.write_text(report(table, rate_differences(ends), settings, header))
    return table
