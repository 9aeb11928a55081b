"""`bonesim validate`: the virtual patients of every docs/targets.md trial, against the published results.

Every arm (a scenario file of experiments/scenarios/ named in `targets.ARMS`) is simulated
with the same replicate seeds (`run.replicate_seeds(simulation.seed, n)`; arms of one trial
share `simulation.seed`, so their differences are paired: common random numbers; arms with one
patient, such as a trial's placebo and therapy arms, also share the spun-up tissue of each seed,
spun up once, `runner.run_jobs`), in parallel over local processes. Each target's statistic is computed per seed; the report gives its mean
over seeds with the t-based 95% confidence interval of that mean, and a target passes when the
mean lies inside its band.

`--precision H` asks every target's 95% interval for a half-width of at most H (in the target's
units: points of BMD, %/yr, days, um): after the `--seeds` runs, each target still wider gets
the seed count its spread predicts (`seeds_for`), up to `--max-seeds`, on every arm it reads
(so its arms stay paired on common seeds), and the loop runs until no target asks for more. A
target's statistics use the seeds that all its arms have; the report gives that count and names
the targets left wider than H. Each pass that leaves a target asking for more writes the files
below as an interim table (its header names the arms still waiting and their counts).

Written atomically into OUT (default runs/validation):

| file | contents |
|---|---|
| validation.md | the table (id, target, published, measure, band, simulated mean [95% CI], seeds, result, calibrated on / validated), a table of arms, and a diagnosis of every failing target |
| validation.parquet | one row per (target or arm quantity, seed): `value`, and the statistics over seeds (`mean`, `ci95_lo`, `ci95_hi`), band, `passed`, `basis` |
| validation_series.parquet | every arm's time series per seed (`arm`, `seed`, then `BoneModel.timeseries()` columns) |
| validation.png | BMD trajectories per arm (mean and range over seeds; spine DXA-like or trabecular vBMD, as the trial measured) with the published end points and bands |

Finished (arm, seed) runs are kept in OUT/.partial (the runner's store, `runner.run_jobs`:
named by a digest of the resolved scenario, the seed and the model's code), also once the
validation is done: restarting an interrupted validation, or running a finished one again with
more --seeds or a --precision, simulates only the runs it does not hold (delete the folder to
free its space; runs of other code or settings are never read). `--quick` (for CI) uses 3
seeds, a 96x96 tissue and shorter arms where a target allows it (`targets.QUICK_YEARS`); `--size N`
and `--dt D` set an N x N tissue and a D-day step for every arm (a convergence check of the
table, or an even cheaper CI run). `--from DIR` simulates nothing: it evaluates the targets as
they are now on the runs of a finished validation in DIR (its validation_series.parquet and the
per-run remodeling summaries in its validation.parquet), every seed they hold, given the same
--size, --dt and --quick as that run and at most its --seeds.
"""

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from math import ceil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bonesim.experiments import targets as tg
from bonesim.experiments.files import atomic_path, git_revision, write_parquet
from bonesim.experiments.runner import Job, replicate_seeds, run_jobs
from bonesim.model.scenario import Scenario, ScenarioError, load_scenario

SCENARIO_DIR = Path(__file__).parent / "scenarios"
DEFAULT_SEEDS = 8
QUICK_SEEDS = 3
MAX_SEEDS = 128          # per arm, with --precision
QUICK_SIZE = (96, 96)
CONFIDENCE = 0.95

# Arm-level quantities reported beside the targets (diagnostics of what moved the bone).
ARM_QUANTITIES: tuple[tuple[str, str, str], ...] = (
    # (name, units, how): "end" = value at the end of the arm, "mean" = time mean over the arm
    ("bmd_pct_spine", "%", "end"),
    ("vbmd_pct_trabecular", "%", "end"),
    ("ctx_rel", "x baseline", "end"),
    ("p1np_rel", "x baseline", "end"),
    ("turnover_pct_per_yr", "%/yr", "mean"),
    ("activation_frequency_per_yr", "1/yr", "mean"),
    ("rankl_opg_ratio", "ratio", "mean"),
    ("serum_e2_pmol_l", "pmol/L", "mean"),
    ("serum_p4_ng_ml", "ng/mL", "mean"),
    ("serum_t_ng_dl", "ng/dL", "mean"),
)
# The arm tables' columns after the arm (and its years): its seeds, then ARM_QUANTITIES.
ARM_COLUMNS = "seeds | " + " | ".join(f"{n} ({h}, {u})" for n, u, h in ARM_QUANTITIES)


class BadRequest(ValueError):
    """Unknown target ids, or a seed or worker count below 1; the message says which."""


@dataclass(frozen=True)
class Settings:
    """What a validation run simulates: the arms (resolved scenarios) and the seed count."""

    scenarios: dict[str, Scenario]
    seeds: int
    quick: bool


def arm_scenarios(arms: Iterable[str], seeds: int, quick: bool, size: int | None = None,
                  dt: float | None = None) -> Settings:
    """Load each arm's scenario file with `seeds` replicates, the --quick reductions, and when
    given a square tissue of side `size` grid cells and a tissue step of `dt` days."""
    scenarios = {}
    for arm in arms:
        overrides: dict = {"simulation.replicates": seeds}
        if quick:
            overrides["tissue.size"] = list(QUICK_SIZE)
            if arm in tg.QUICK_YEARS:
                overrides["simulation.duration"] = f"{tg.QUICK_YEARS[arm]} years"
        if size is not None:
            overrides["tissue.size"] = [size, size]
        if dt is not None:
            overrides["simulation.dt"] = f"{dt} d"
        scenarios[arm] = load_scenario(SCENARIO_DIR / f"{arm}.toml", overrides)
    return Settings(scenarios, seeds, quick)


def job_name(arm: str, index: int) -> str:
    """The runner job of seed `index` of `arm`."""
    return f"{arm}-{index:03d}"


def arm_jobs(settings: Settings, counts: dict[str, int] | None = None) -> list[Job]:
    """One runner job per (arm, seed), named by `job_name`: the longest arms first (it balances
    the workers), then seed by seed, so that an interrupted run leaves whole seeds. `counts`:
    seeds per arm where they differ from `settings.seeds`; a larger count adds seeds after the
    first ones (`replicate_seeds` keeps its prefix), so those are reused."""
    counts = counts or {}
    jobs = [(arm, index, scenario, seed) for arm, scenario in settings.scenarios.items()
            for index, seed in enumerate(replicate_seeds(scenario.simulation.seed,
                                                         counts.get(arm, settings.seeds)))]
    jobs.sort(key=lambda job: (-job[2].days, job[1]))
    return [Job(job_name(arm, index), scenario, seed) for arm, index, scenario, seed in jobs]


def run_arms(settings: Settings, out: Path, workers: int, show_progress: bool | None = None,
             counts: dict[str, int] | None = None) -> dict[tuple[str, int], pd.DataFrame]:
    """Simulate every (arm, seed) not already finished in OUT/.partial (`runner.run_jobs`);
    return all their time series, keyed (arm, seed index). `counts` as in `arm_jobs`."""
    counts = counts or {}
    frames = run_jobs(arm_jobs(settings, counts), Path(out) / ".partial", workers,
                      show_progress=show_progress, label="validate")
    return {(arm, index): frames[job_name(arm, index)] for arm in settings.scenarios
            for index in range(counts.get(arm, settings.seeds))}


def load_runs(settings: Settings, source: Path) -> dict[tuple[str, int], pd.DataFrame]:
    """The time series of a finished validation in `source`, keyed (arm, seed), each with its
    remodeling summary in attrs["remodeling"] (read back from the arm rows of
    validation.parquet): every seed it holds for each arm, at least `settings.seeds`. BadRequest
    if a file, an (arm, seed) or its output days are missing."""
    if not Path(source).is_dir():
        raise BadRequest(f"{source}: not a directory (--from needs a finished validation's "
                         "directory)")
    files = [Path(source) / "validation_series.parquet", Path(source) / "validation.parquet"]
    for f in files:
        if not f.exists():
            raise BadRequest(f"{f}: no such file (--from needs a finished validation's directory)")
    try:
        series, table = (pd.read_parquet(f) for f in files)
    except (OSError, ValueError) as err:   # pyarrow's ArrowInvalid is a ValueError
        raise BadRequest(f"{source}: cannot read a finished validation there "
                         f"({type(err).__name__}: {str(err).splitlines()[0]})") from None
    blocks = dict(tuple(series.groupby(["arm", "seed"])))
    summaries = table[(table["level"] == "arm") & table["quantity"].str.endswith(" (summary)")]
    summary_of = dict(tuple(summaries.groupby(["id", "seed"])))
    results = {}
    for arm, scenario in settings.scenarios.items():
        step = max(scenario.simulation.dt, scenario.simulation.output_every)
        held = sum(1 for a, _ in blocks if a == arm)
        for index in range(max(settings.seeds, held)):
            block = blocks.get((arm, index))
            if block is None or abs(block["day"].iloc[-1] - scenario.days) > step:
                raise BadRequest(f"{files[0]}: arm {arm} seed {index} is missing or does not "
                                 f"run {scenario.days:g} days (same --seeds, --size, --dt, --quick?)")
            frame = block.drop(columns=["arm", "seed"]).reset_index(drop=True)
            rows = summary_of.get((arm, index), summaries.iloc[:0])
            frame.attrs["remodeling"] = {q.removesuffix(" (summary)"): float(x)
                                         for q, x in zip(rows["quantity"], rows["value"])}
            results[arm, index] = frame
    return results


def interval(values) -> tuple[float, float, float]:
    """Mean of `values` and the t-based `CONFIDENCE` interval of that mean.

    NaN anywhere gives NaN throughout; fewer than two values give a NaN interval.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return mean, mean - half, mean + half


def _arm_value(arm: tg.Arm, name: str, how: str) -> float:
    try:
        return arm.at(name, arm.end) if how == "end" else arm.mean(name, 0.0, arm.end)
    except tg.NotMeasurable:
        return float("nan")


def evaluate(targets: tuple[tg.Target, ...], settings: Settings,
             results: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """The validation table: one row per (target or arm quantity, seed), with statistics. An
    arm has the seeds `results` holds for it; a target, the seeds all its arms hold."""
    calibrated = tg.calibrated_ids()
    records = []
    for index in sorted({index for _, index in results}):
        arms = {arm: tg.Arm(results[arm, index], s) for arm, s in settings.scenarios.items()
                if (arm, index) in results}
        for t in (t for t in targets if all(arm in arms for arm in t.arms)):
            try:
                value, note = float(t.compute(arms)), ""
            except tg.NotMeasurable as err:
                value, note = float("nan"), f"not measurable: {err}"
            low, high = t.band
            records.append({"level": "target", "id": t.id, "quantity": t.statistic,
                            "units": t.units, "seed": index, "value": value,
                            "band_lo": np.nan if low is None else low,
                            "band_hi": np.nan if high is None else high,
                            "basis": tg.basis(t, calibrated), "note": note})
        for arm_name, arm in arms.items():
            for name, units, how in ARM_QUANTITIES:
                records.append({"level": "arm", "id": arm_name, "quantity": f"{name} ({how})",
                                "units": units, "seed": index, "value": _arm_value(arm, name, how),
                                "band_lo": np.nan, "band_hi": np.nan, "basis": "", "note": ""})
            for name, item in arm.series.attrs.get("remodeling", {}).items():
                records.append({"level": "arm", "id": arm_name, "quantity": f"{name} (summary)",
                                "units": "", "seed": index, "value": item,
                                "band_lo": np.nan, "band_hi": np.nan, "basis": "", "note": ""})
    table = pd.DataFrame.from_records(records)
    keys = ["level", "id", "quantity"]
    summary = table.groupby(keys, sort=False)["value"].apply(
        lambda v: pd.Series(interval(v), index=["mean", "ci95_lo", "ci95_hi"])).unstack()
    table = table.join(summary, on=keys)
    by_id = {t.id: t for t in targets}
    table["passed"] = [by_id[i].passes(m) if level == "target" else pd.NA
                       for level, i, m in zip(table["level"], table["id"], table["mean"])]
    table["passed"] = table["passed"].astype("boolean")
    table["note"] = table.groupby(keys, sort=False)["note"].transform(
        lambda notes: "; ".join(dict.fromkeys(n for n in notes if n)))
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per target or arm quantity (the per-seed columns dropped), with `n`, its seeds."""
    keys = ["level", "id", "quantity"]
    n = table.groupby(keys, sort=False)["seed"].size().rename("n")
    return table.drop(columns=["seed", "value"]).drop_duplicates(keys).join(n, on=keys)


def seeds_for(sd: float, half: float) -> float:
    """The fewest seeds n >= 2 whose t-based `CONFIDENCE` interval of a mean, with SD `sd`
    between seeds, has a half-width t(n - 1) sd / sqrt(n) of at most `half` (the units of sd);
    inf beyond 1e9 seeds."""
    bound = (stats.norm.ppf(0.5 + CONFIDENCE / 2) * sd) ** 2
    if bound > 1e9 * half**2:
        return float("inf")
    n = max(2, ceil(bound / half**2))
    while stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / np.sqrt(n) > half:
        n += 1    # from the normal-quantile bound up: t > z, so a few steps at most
    return float(n)


def more_seeds(table: pd.DataFrame, targets: tuple[tg.Target, ...], counts: dict[str, int],
               precision: float, max_seeds: int) -> dict[str, int]:
    """Seeds per arm for every target's 95% half-width to reach `precision` (its units): a
    target wider than that asks `seeds_for` its SD between seeds (at least one more than it
    has, at most `max_seeds`) of each of its arms. Returns the arms whose count rises, with
    their new counts; empty when no target asks for more (a target without a finite interval
    asks for nothing: more seeds would not give it one)."""
    values = table[table["level"] == "target"].groupby("id")["value"]
    wanted = dict(counts)
    for t in targets:
        x = values.get_group(t.id).to_numpy()
        _, low, high = interval(x)
        if not np.isfinite(low) or (high - low) / 2 <= precision or x.size >= max_seeds:
            continue
        need = int(min(max_seeds, max(x.size + 1, seeds_for(x.std(ddof=1), precision))))
        for arm in t.arms:
            wanted[arm] = max(wanted[arm], need)
    return {arm: n for arm, n in wanted.items() if n > counts[arm]}


def exit_code(table: pd.DataFrame, strict: bool) -> int:
    """1 under `strict` when any target failed, else 0."""
    failed = ~summary(table).query("level == 'target'")["passed"].astype(bool)
    return int(strict and bool(failed.any()))


def series_table(settings: Settings, results: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Every arm's time series, one block per (arm, seed)."""
    frames = [results[arm, i].assign(arm=arm, seed=i) for arm in settings.scenarios
              for i in sorted(i for a, i in results if a == arm)]
    series = pd.concat(frames, ignore_index=True)
    series = series[["arm", "seed", *[c for c in series.columns if c not in ("arm", "seed")]]]
    series.attrs = {}  # the per-run summaries are arm quantities of validation.parquet
    return series


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.{digits}f}" if x < 0 else f"{x:.{digits}f}"


def _diagnosis(t: tg.Target, row: pd.Series, arms: pd.DataFrame) -> str:
    """A failing target: where the mean fell, and the arm readouts behind it."""
    low, high = t.band
    mean = row["mean"]
    if not np.isfinite(mean):
        where = row["note"] or "no finite value"
    elif low is not None and mean < low:
        where = f"{_fmt(low - mean)} {t.units} below the band"
    else:
        where = f"{_fmt(mean - high)} {t.units} above the band"
    lines = [f"### {t.id}: {t.description}", "",
             f"Simulated {_fmt(mean)} [{_fmt(row['ci95_lo'])}, {_fmt(row['ci95_hi'])}] {t.units}; "
             f"band {t.band_text}; {where}. Statistic: {t.statistic}.", ""]
    if t.note:
        lines += [f"Band: {t.note}.", ""]
    lines += [f"| arm | {ARM_COLUMNS} |", "|---|" + "---|" * (len(ARM_QUANTITIES) + 1)]
    lines += [f"| {arm} | {_arm_cells(arms, arm)} |" for arm in t.arms]
    return "\n".join(lines + [""])


def _arm_cells(arms: pd.DataFrame, arm: str) -> str:
    """An arm's seed count and its `ARM_QUANTITIES` means, as table cells."""
    return " | ".join([str(arms.loc[arm, "n"].max())] + [
        _fmt(arms.loc[(arm, f"{q} ({h})"), "mean"]) for q, _, h in ARM_QUANTITIES])


def _settings_text(settings: Settings) -> str:
    first = next(iter(settings.scenarios.values()))
    rows, cols = first.tissue.size
    text = f"tissue {rows}x{cols}, dt {first.simulation.dt:g} d"
    if not settings.quick:
        return text + ", durations as in the scenario files"
    shortened = ", ".join(f"{arm} {years:g} yr" for arm, years in tg.QUICK_YEARS.items()
                          if arm in settings.scenarios)
    return f"--quick: {text}" + (f", shortened arms: {shortened}" if shortened else "")


def _seeds_text(rows: pd.DataFrame) -> str:
    """How many replicate seeds the arms of `rows` (a `summary`) had."""
    per_arm = rows[rows["level"] == "arm"].groupby("id")["n"].max()
    if per_arm.min() == per_arm.max():
        return f"{per_arm.min()} replicate seeds per arm"
    return (f"{per_arm.min()} to {per_arm.max()} replicate seeds per arm (" +
            ", ".join(f"{arm} {n}" for arm, n in per_arm.sort_values().items()) + ")")


def _precision_text(header: dict) -> str:
    """The header's account of `--precision`: the rule, and in an interim table the seeds
    still to run."""
    if "precision" not in header:
        return ""
    text = (f"; seeds added where a target's 95% half-width exceeded {header['precision']:g}, "
            f"in its units, up to {header['max_seeds']} per arm")
    if header.get("waiting"):
        text += "; **an interim table**: still to run, seeds per arm: " + ", ".join(
            f"{arm} {n}" for arm, n in header["waiting"].items())
    return text


def _wider_text(by_target: pd.DataFrame, precision: float) -> str:
    """Which targets' 95% half-widths are still wider than `precision`, with their seeds."""
    half = (by_target["ci95_hi"] - by_target["ci95_lo"]) / 2
    wider = [f"{i} ({_fmt(h)}, {by_target.loc[i, 'n']} seeds)" for i, h in half.items()
             if not h <= precision]
    if not wider:
        return f"Every target's 95% half-width is at most {precision:g}."
    return (f"Targets whose 95% half-width is still wider than {precision:g} (half-width, seeds; "
            "at the seed limit, or without a finite interval): " + ", ".join(wider) + ".")


def report(table: pd.DataFrame, targets: tuple[tg.Target, ...], settings: Settings,
           header: dict) -> str:
    """validation.md: the target table, the arm table and a diagnosis of each failure."""
    rows = summary(table)
    by_target = rows[rows["level"] == "target"].set_index("id")
    arms = rows[rows["level"] == "arm"].set_index(["id", "quantity"])
    passed = int(by_target["passed"].sum())
    lines = ["# bonesim clinical validation", "",
             f"{header['when']}; bonesim {header['version']}, git {header['git']}; "
             f"{_seeds_text(rows)} (common random numbers within a trial"
             f"{_precision_text(header)}); "
             f"{_settings_text(settings)}; "
             f"{header['workers']} worker(s), wall time {header['wall_s']:.0f} s.", "",
             f"**{passed} of {len(by_target)} targets pass.** Mean over seeds with the 95% "
             "confidence interval of that mean (t distribution); a target passes when the mean "
             "lies inside the band. *measure*: the BMD the statistic reads, spine DXA-like "
             "(areal, whole vertebra) or trabecular vBMD (QCT-like), as the trial measured. "
             "*seeds*: those all the target's arms have. *calibrated on*: a parameter in "
             "model/parameters was fitted to this row (its source says so); *validated*: none "
             "was.", ""]
    if "precision" in header:
        lines += [_wider_text(by_target, header["precision"]), ""]
    lines += ["| id | target | published | measure | band | simulated mean [95% CI] | seeds | "
              "result | basis |",
              "|---|---|---|---|---|---|---|---|---|"]
    for t in targets:
        r = by_target.loc[t.id]
        value = f"{_fmt(r['mean'])} [{_fmt(r['ci95_lo'])}, {_fmt(r['ci95_hi'])}] {t.units}"
        measure = tg.MEASURES.get(t.measure, "")
        lines.append(f"| {t.id} | {t.description} | {t.published} | {measure} | {t.band_text} | "
                     f"{value} | {r['n']} | {'pass' if r['passed'] else 'FAIL'} | {r['basis']} |")
    lines += ["", "## Arms", "",
              "Mean over the arm's seeds; *end* = at the end of the arm, *mean* = averaged over "
              "the arm.", "",
              f"| arm | years | {ARM_COLUMNS} |", "|---|---|" + "---|" * (len(ARM_QUANTITIES) + 1)]
    lines += [f"| {arm} | {scenario.simulation.duration:g} | {_arm_cells(arms, arm)} |"
              for arm, scenario in settings.scenarios.items()]
    failing = [t for t in targets if not by_target.loc[t.id, "passed"]]
    lines += ["", "## Failing targets", ""]
    lines += [_diagnosis(t, by_target.loc[t.id], arms) for t in failing] or ["None.", ""]
    notes = [t for t in targets if t.note]
    if notes:
        lines += ["## Notes on bands", ""] + [f"- {t.id}: {t.note}." for t in notes] + [""]
    return "\n".join(lines)


def validate(out: Path, quick: bool = False, seeds: int | None = None, workers: int | None = None,
             only: list[str] | None = None, size: int | None = None, dt: float | None = None,
             show_progress: bool | None = None, source: Path | None = None,
             precision: float | None = None, max_seeds: int | None = None) -> pd.DataFrame:
    """Run the validation into `out`; return the table written to validation.parquet.

    `seeds` defaults to 8 (3 with `quick`), `workers` to os.cpu_count(); `only` restricts it to
    some target ids or rows (e.g. ["V1", "V3f"]); `size` sets a square tissue of that many grid
    cells a side (default: the scenario files', 96 with `quick`) and `dt` the tissue step in days
    (default: the scenario files'); with both, the whole table can be checked for convergence.
    `source`: evaluate the runs of a finished validation in that directory instead of simulating
    (`load_runs`). `precision`: add seeds, up to `max_seeds` per arm (default `MAX_SEEDS`),
    until every target's 95% half-width is at most this, in its units (`more_seeds`).
    BadRequest for unknown ids, counts < 1, a precision <= 0 or with fewer than 2 seeds or more
    than `max_seeds`, a `max_seeds` without a precision, a source together with a precision, a
    size or dt the scenario schema refuses, or a source that lacks a run.
    """
    out = Path(out)
    try:
        targets = tg.select(only)
    except ValueError as err:
        raise BadRequest(str(err)) from None
    seeds = (QUICK_SEEDS if quick else DEFAULT_SEEDS) if seeds is None else seeds
    workers = (os.cpu_count() or 1) if workers is None else workers
    if seeds < 1 or workers < 1:
        raise BadRequest(f"--seeds and --workers must be >= 1 (got {seeds} and {workers})")
    if max_seeds is not None and precision is None:
        raise BadRequest("--max-seeds bounds the seeds --precision adds; it needs --precision")
    max_seeds = MAX_SEEDS if max_seeds is None else max_seeds
    if precision is not None and not (precision > 0 and max_seeds >= seeds >= 2):
        raise BadRequest(f"--precision must be > 0, with 2 <= --seeds <= --max-seeds (got "
                         f"{precision}, {seeds} and {max_seeds}): the spread of the first seeds "
                         "sets how many more a target needs")
    if precision is not None and source is not None:
        raise BadRequest("--precision adds seeds by simulating them; --from simulates nothing")
    try:
        settings = arm_scenarios(tg.arms_of(targets), seeds, quick, size, dt)
    except ScenarioError as err:
        raise BadRequest(str(err)) from None
    started = time.perf_counter()
    header = {"version": version("bonesim"), "git": git_revision(), "workers": workers}
    if source is not None:
        header["git"] = f"{header['git']} (targets; runs read from {source})"
        results = load_runs(settings, source)
        table = evaluate(targets, settings, results)
    else:
        if precision is not None:
            header |= {"precision": precision, "max_seeds": max_seeds}
        counts = dict.fromkeys(settings.scenarios, seeds)
        while True:
            results = run_arms(settings, out, workers, show_progress, counts)
            table = evaluate(targets, settings, results)
            more = {} if precision is None else more_seeds(table, targets, counts, precision,
                                                           max_seeds)
            if not more:
                break
            write_files(out, table, targets, settings, results,
                        header | {"waiting": more, "wall_s": time.perf_counter() - started})
            counts.update(more)
    write_files(out, table, targets, settings, results,
                header | {"wall_s": time.perf_counter() - started})
    return table


def write_files(out: Path, table: pd.DataFrame, targets: tuple[tg.Target, ...],
                settings: Settings, results: dict[tuple[str, int], pd.DataFrame],
                header: dict) -> None:
    """validation.parquet, validation_series.parquet, validation.md and validation.png, each
    written atomically; `header` as `report` reads it, less the time of day."""
    header = {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **header}
    series = series_table(settings, results)
    write_parquet(out / "validation.parquet", table)
    write_parquet(out / "validation_series.parquet", series)
    with atomic_path(out / "validation.md") as tmp:
        tmp.write_text(report(table, targets, settings, header))
    with atomic_path(out / "validation.png") as tmp:
        figure(series, settings.scenarios).savefig(tmp, format="png", dpi=110)


def _mark_years(mark: tg.Mark, scenario: Scenario) -> tuple[float, float | None]:
    offset = scenario.patient.final_period_age - scenario.patient.age if mark.fmp else 0.0
    until = None if mark.until is None else min(mark.until + offset, scenario.simulation.duration)
    return mark.years + offset, until


def figure(series: pd.DataFrame, scenarios: dict[str, Scenario]):
    """BMD trajectories per arm (mean over seeds, shaded min..max) with the published marks;
    each panel draws the BMD column its trial's targets read (`targets.TRIALS`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(title, [a for a in arms if a in scenarios], measure)
              for title, arms, measure in tg.TRIALS]
    panels = [(title, arms, measure) for title, arms, measure in panels if arms]
    ncols = 2
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 3.3 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (title, arms, measure) in zip(axes.flat, panels):
        for arm in arms:
            frame = series[series["arm"] == arm].assign(years=lambda f: f["day"] / 365.25)
            by_time = frame.groupby("years")[measure]
            mean = by_time.mean()
            line, = ax.plot(mean.index, mean.values, lw=1.5,
                            label=f"{arm} ({frame['seed'].nunique()} seeds)")
            ax.fill_between(mean.index, by_time.min().values, by_time.max().values,
                            color=line.get_color(), alpha=0.2, lw=0)
            scenario = scenarios[arm]
            if scenario.patient.sex == "female" and 0 < scenario.patient.final_period_age - \
                    scenario.patient.age < scenario.simulation.duration:
                ax.axvline(scenario.patient.final_period_age - scenario.patient.age, color="k",
                           ls="--", lw=0.8)
            for mark in (m for m in tg.MARKS if m.arm == arm):
                _draw_mark(ax, mark, scenario, mean, line.get_color())
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("years from start")
        ax.set_ylabel(f"{tg.MEASURES[measure]} change (%)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("bonesim validation: simulated BMD (mean, range over seeds) vs published results "
                 "(markers, bands),\nin the measure each trial used (y axis): spine DXA-like or "
                 "trabecular vBMD (QCT-like)")
    fig.tight_layout()
    return fig


def _draw_mark(ax, mark: tg.Mark, scenario: Scenario, mean: pd.Series, color) -> None:
    start, until = _mark_years(mark, scenario)
    if mark.kind == "slope":
        anchor = float(np.interp(start, mean.index, mean.values))
        t = np.array([start, until])
        ax.plot(t, anchor + mark.value * (t - start), color=color, ls=":", lw=1.5)
        ax.fill_between(t, anchor + mark.lo * (t - start), anchor + mark.hi * (t - start),
                        color=color, alpha=0.12, lw=0, hatch="//")
        ax.annotate(mark.label, (until, anchor + mark.value * (until - start)), fontsize=7,
                    color=color, ha="right", va="top")
        return
    if mark.lo is not None and mark.hi is not None:
        ax.errorbar([start], [mark.value], yerr=[[mark.value - mark.lo], [mark.hi - mark.value]],
                    fmt="D", color=color, capsize=4, ms=5)
    else:
        ax.plot([start], [mark.value], "D", color=color, ms=5)
        bound = mark.lo if mark.lo is not None else mark.hi
        if bound is not None:
            ax.plot([start], [bound], "^" if mark.lo is not None else "v", color=color, ms=7,
                    mfc="none")
    ax.annotate(mark.label, (start, mark.value), fontsize=7, color=color,
                xytext=(-4, 4), textcoords="offset points", ha="right")
