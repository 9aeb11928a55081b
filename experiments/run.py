"""Running a scenario and writing its run directory.

A run directory holds
- `run.json`: the resolved scenario (canonical units: ages in years, times in days, lengths in um),
  the seed and each replicate's seed, bonesim version, git revision, the model's code digest
  (`code_digest`), wall time;
- `timeseries.parquet`: one row per output interval and replicate (columns from
  `BoneModel.timeseries()`, plus `replicate`);
- `summary.png`: BMD change, turnover markers and serum hormones over time;
- with `snapshot_every`, `snapshots/rep_NNN/day_DDDDD.npz`: field and cell snapshots
  (experiments/snapshots.py).

Every file is written atomically, so a killed run never leaves a corrupt file. Finished
replicates are kept in `DIR/.partial/` (the runner's store, `runner.run_jobs`) until the run
completes; running the same scenario and seed again into the same folder resumes from them.
"""

import platform
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from bonesim.experiments.files import atomic_path, code_digest, git_revision, write_json, write_parquet
from bonesim.experiments.runner import Job, replicate_seeds, run_jobs
from bonesim.experiments.validate import interval
from bonesim.model.scenario import Scenario

FINAL_COLUMNS = ("bmd_pct_spine", "vbmd_pct_trabecular", "bmd_pct_hip", "bv_tv", "ctx_rel",
                 "p1np_rel")


def run_scenario(scenario: Scenario, out: Path, seed: int | None = None,
                 workers: int = 1, show_progress: bool | None = None,
                 snapshot_every: float | None = None) -> pd.DataFrame:
    """Run every replicate of `scenario` and write the run directory `out`; return the series.

    `seed` overrides `scenario.simulation.seed`. Replicates already finished in `out/.partial`
    by an earlier, interrupted run of the same scenario and seed are reused; `workers` > 1 runs
    replicates on that many processes, with the same results. `snapshot_every` [day]: also write
    field and cell snapshots (experiments/snapshots.py) at that interval.
    """
    out = Path(out)
    seed = scenario.simulation.seed if seed is None else seed
    seeds = replicate_seeds(seed, scenario.simulation.replicates)
    partial = out / ".partial"
    started = time.perf_counter()
    jobs = [Job(f"rep_{r:03d}", scenario, s,
                snapshots=None if snapshot_every is None
                else (out / "snapshots" / f"rep_{r:03d}", snapshot_every))
            for r, s in enumerate(seeds)]
    frames = run_jobs(jobs, partial, workers, show_progress=show_progress, label=scenario.name)
    series = pd.concat([frames[job.name].assign(replicate=r)[["replicate", *frames[job.name]]]
                        for r, job in enumerate(jobs)], ignore_index=True)
    series.attrs = {}

    write_parquet(out / "timeseries.parquet", series)
    from bonesim.experiments.figures import summary_figure
    with atomic_path(out / "summary.png") as tmp:
        summary_figure(series, scenario.name).savefig(tmp, format="png", dpi=110)
    write_json(out / "run.json", {
        "scenario": scenario.model_dump(mode="json"), "seed": seed, "model_code": code_digest(),
        "replicate_seeds": [{"entropy": s.entropy, "spawn_key": list(s.spawn_key)} for s in seeds],
        "bonesim_version": version("bonesim"),
        "git_revision": git_revision(),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "python": platform.python_version(),
        "units": "resolved scenario in canonical units: ages and duration in years, "
                 "times in days, lengths in um, doses in mg (or IU, mg/day, days)",
    })
    for f in partial.glob("*"):
        f.unlink()
    partial.rmdir()
    return series


def final_values(series: pd.DataFrame) -> pd.DataFrame:
    """The FINAL_COLUMNS of a run's `series` at its last output day: per quantity the mean over
    replicates and the 95% t-interval of that mean (`validate.interval`; NaN with one
    replicate). Columns quantity, mean, ci95_lo, ci95_hi, replicates."""
    last = series[series["day"] == series["day"].max()]
    rows = [(column, *interval(last[column]), len(last))
            for column in FINAL_COLUMNS if column in last]
    return pd.DataFrame(rows, columns=["quantity", "mean", "ci95_lo", "ci95_hi", "replicates"])
