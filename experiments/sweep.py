"""`bonesim sweep SWEEP.toml`: parameter sweeps, sensitivity screens and virtual cohorts.

The same as a Python API for notebooks and scripts:

    from bonesim.experiments.sweep import load_sweep, run_sweep
    results = run_sweep(load_sweep("experiments/sweeps/morris_cells.toml"), "runs/morris")

A sweep (sweep files: `sweep_spec`) runs every point of its design (`designs.Design`) or every
virtual patient of its cohort, `replicates` times, in every arm, through the one runner
(`runner.run_jobs`) on local processes or a Dask cluster. Seeds come from
`numpy.random.SeedSequence(seed).spawn`: replicate r of a design sweep uses the same seed at
every point and in every arm (common random numbers: the differences between points are the
inputs' effects, not noise); each virtual patient has seeds of her own, shared by her arms.
Results are the same whatever the number of workers and the order in which runs finish.

OUT (default runs/sweeps/<name>) holds

| file | contents |
|---|---|
| manifest.json | the sweep file and its text, design, seed, model code digest; every run: name, point, replicate, arm, inputs, result file |
| runs/<run>-<digest>.parquet | each run's time series, written atomically as soon as it finishes |
| runs/<run>-<digest>.error.json | a failed run's error and traceback (the sweep goes on) |
| results.parquet | one row per run: point, replicate, arm, inputs, each output at the end of the run, status, error |
| sensitivity.md, .parquet, .png | sobol: S1 and ST, morris: mu* and sigma, per output and arm, with 95% CIs |
| response.png | grid: each output against each varied input, mean and 95% CI per arm |
| cohort.png | cohort: each output per arm over the patients, and the paired difference to the first arm |

Running the same sweep again simulates only runs that are not finished (failed ones are tried
again), so a killed sweep resumes; `bonesim sweep --status OUT` counts what is done.
"""

import argparse
import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from bonesim.experiments.designs import Design
from bonesim.experiments.files import write_json, write_parquet
from bonesim.experiments.runner import Job, Store, replicate_seeds, run_jobs
from bonesim.experiments.sweep_spec import (Covariate, Sweep, SweepError, base_scenario, load_sweep,
                                             reduced)

__all__ = ["load_sweep", "run_sweep", "run_example", "status", "Run", "plan", "SweepError"]


@dataclass(frozen=True)
class Run:
    """One run of a sweep: design point (or patient) `point`, `replicate`, `arm` (or "")."""

    job: Job
    point: int
    replicate: int
    arm: str
    inputs: dict


def design(sweep: Sweep) -> Design:
    """The sweep's design over its varied inputs (a cohort has none)."""
    return Design(sweep.design, tuple(f.path for f in sweep.factors),
                  tuple(f.bounds for f in sweep.factors), sweep.samples, sweep.levels, sweep.seed,
                  tuple(f.values if f.values is not None else
                        tuple(float(x) for x in np.linspace(*f.bounds, f.levels))
                        for f in sweep.factors))


def draw(covariate: Covariate, rng: np.random.Generator, n: int) -> list:
    """`n` values of a covariate, drawn in order from `rng`."""
    c = covariate.numbers
    if covariate.distribution == "uniform":
        x = rng.uniform(c["low"], c["high"], n)
    elif covariate.distribution == "normal":
        x = rng.normal(c["mean"], c["sd"], n)
        low, high = c.get("low", -np.inf), c.get("high", np.inf)
        while np.any(out := (x < low) | (x > high)):    # truncated: draw again outside
            x[out] = rng.normal(c["mean"], c["sd"], int(out.sum()))
    elif covariate.distribution == "lognormal":
        x = c["median"] * np.exp(c["sd_log"] * rng.standard_normal(n))
    elif covariate.distribution == "integers":
        return [int(v) for v in rng.integers(c["low"], c["high"] + 1, n)]
    else:
        weights = c.get("weights")
        p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
        return [c["values"][i] for i in rng.choice(len(c["values"]), n, p=p)]
    return [float(v) for v in x]


def _written(value, units: str | None):
    """A value as the scenario file writes it: with its unit when the key has one."""
    return f"{value:g} {units}" if units and isinstance(value, (int, float)) else value


def points(sweep: Sweep) -> list[dict]:
    """Each design point (or virtual patient) as {path: value}, values in the sweep's units."""
    if sweep.design == "cohort":
        rng = np.random.default_rng(np.random.SeedSequence(sweep.seed).spawn(2)[0])
        drawn = {c.path: draw(c, rng, sweep.samples) for c in sweep.cohort}
        return [{path: values[i] for path, values in drawn.items()} for i in range(sweep.samples)]
    names = [f.path for f in sweep.factors]
    return [dict(zip(names, p)) for p in design(sweep).points()]


def plan(sweep: Sweep) -> list[Run]:
    """Every run of the sweep, each scenario validated (SweepError if one is refused)."""
    units = {f.path: f.units for f in sweep.factors} | {c.path: c.units for c in sweep.cohort}
    parameters = {f.path for f in sweep.factors if f.parameter}
    arms = sweep.arms or {"": {}}
    todo = points(sweep)
    if sweep.design == "cohort":       # each patient her own seeds
        spawned = np.random.SeedSequence(sweep.seed).spawn(2)[1].spawn(len(todo) * sweep.replicates)
        seeds = [spawned[p * sweep.replicates:(p + 1) * sweep.replicates] for p in range(len(todo))]
    else:                              # replicate r on the same seed at every point
        seeds = [replicate_seeds(sweep.seed, sweep.replicates)] * len(todo)
    runs = []
    for p, inputs in enumerate(todo):
        keys = {k: _written(v, units[k]) for k, v in inputs.items() if k not in parameters}
        values = sweep.parameters | {k: float(v) for k, v in inputs.items() if k in parameters}
        for arm, overrides in arms.items():
            scenario = base_scenario(sweep, {**overrides, **keys})
            for r in range(sweep.replicates):
                name = f"p{p:05d}-r{r:02d}" + (f"-{arm}" if arm else "")
                runs.append(Run(Job(name, scenario, seeds[p][r], values), p, r, arm, inputs))
    return runs


def default_out(sweep: Sweep) -> Path:
    """Where a sweep goes when no OUT is given: runs/sweeps/<name>."""
    return Path("runs") / "sweeps" / sweep.name


def run_sweep(sweep: Sweep, out: Path | None = None, workers: int = 1, scheduler=None,
              show_progress: bool | None = None) -> pd.DataFrame:
    """Run (or resume) `sweep` into `out`; write its files and return results.parquet's table."""
    from bonesim.experiments import sweep_report

    out = default_out(sweep) if out is None else Path(out)
    runs = plan(sweep)
    store = Store(out / "runs")
    write_json(out / "manifest.json", {
        "sweep_file": str(sweep.source), "sweep_text": sweep.source.read_text(),
        "name": sweep.name, "design": sweep.design, "seed": sweep.seed,
        "replicates": sweep.replicates, "outputs": list(sweep.outputs),
        "inputs": [f.path for f in sweep.factors] + [c.path for c in sweep.cohort],
        "arms": list(sweep.arms), "model_code": store.code, "bonesim_version": version("bonesim"),
        "runs": [{"name": r.job.name, "point": r.point, "replicate": r.replicate, "arm": r.arm,
                  "inputs": r.inputs, "file": store.result(r.job).name,
                  "error_file": store.error(r.job).name} for r in runs]})
    frames = run_jobs([r.job for r in runs], store.path, workers, scheduler, keep_going=True,
                      show_progress=show_progress, label=sweep.name)
    table = results(sweep, runs, frames, store)
    write_parquet(out / "results.parquet", table)
    sweep_report.write(sweep, table, out)
    return table


def results(sweep: Sweep, runs: list[Run], frames: dict[str, pd.DataFrame],
            store: Store) -> pd.DataFrame:
    """One row per run: run, point, replicate, arm, the inputs, `day` and each output at the
    end of the run (NaN for a failed run), status ("done" or "failed") and error."""
    rows = []
    for run in runs:
        frame = frames.get(run.job.name)
        row = {"run": run.job.name, "point": run.point, "replicate": run.replicate,
               "arm": run.arm, **run.inputs}
        if frame is None:
            rows.append({**row, "day": np.nan, **{o: np.nan for o in sweep.outputs},
                         "status": "failed", "error": store.failure(run.job) or ""})
            continue
        missing = [o for o in sweep.outputs if o not in frame]
        if missing:
            raise SweepError(f"{sweep.source}: sweep.outputs = {missing[0]!r}: not a column of "
                             f"the time series (allowed: {', '.join(frame.columns[1:])})")
        last = frame.iloc[-1]
        rows.append({**row, "day": float(last["day"]),
                     **{o: float(last[o]) for o in sweep.outputs}, "status": "done", "error": ""})
    return pd.DataFrame(rows)


def status(out: Path) -> dict:
    """What a sweep directory holds: counts of runs done, failed and pending, and the errors
    of the failed ones ({run: error}). SweepError if `out` holds no sweep."""
    manifest = Path(out) / "manifest.json"
    if not manifest.is_file():
        raise SweepError(f"{out}: no sweep here (no manifest.json)")
    info = json.loads(manifest.read_text())
    runs_dir = Path(out) / "runs"
    counts = {"name": info["name"], "total": len(info["runs"]), "done": 0, "failed": 0,
              "pending": 0, "errors": {}}
    for run in info["runs"]:
        if (runs_dir / run["file"]).exists():
            counts["done"] += 1
        elif (runs_dir / run["error_file"]).exists():
            counts["failed"] += 1
            error = json.loads((runs_dir / run["error_file"]).read_text())["error"]
            counts["errors"][run["name"]] = error
        else:
            counts["pending"] += 1
    return counts


def run_example(path: Path, argv: list[str] | None = None) -> tuple[Sweep, pd.DataFrame, Path]:
    """What each script of experiments/sweeps/ does first: read `[--out DIR] [--workers W]
    [--small]` from `argv` (default: the command line), run its sweep file `path` (at the CI
    setting of `sweep_spec.reduced` with --small or BONESIM_CI=1) and return the sweep, its
    results table and its directory."""
    parser = argparse.ArgumentParser(description=f"run {path.name}, then summarise it")
    parser.add_argument("--out", help="sweep directory (default runs/sweeps/<name>[-small])")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--small", action="store_true", default=os.environ.get("BONESIM_CI") == "1",
                        help="CI setting: a 32x32 section for 30 days, fewest samples")
    args = parser.parse_args(argv)
    sweep = load_sweep(path)
    if args.small:
        sweep = reduced(sweep)
    out = Path(args.out) if args.out else default_out(sweep).with_name(
        sweep.name + ("-small" if args.small else ""))
    table = run_sweep(sweep, out, workers=args.workers)
    print(f"{sweep.name}: {int((table['status'] == 'done').sum())} of {len(table)} runs done; "
          f"files in {out}/")
    return sweep, table, out
