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

Every file is written atomically (temporary file in the same folder, then `os.replace`), so a
killed run never leaves a corrupt file. Finished replicates are kept in `DIR/.partial/` until the
run completes; running the same scenario and seed again into the same folder resumes from them.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from bonesim.model.scenario import Scenario

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: dict) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write `frame` as Parquet, atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def git_revision() -> str | None:
    """The git revision of the bonesim source tree (with '-dirty' if modified), or None."""
    try:
        rev = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def code_digest() -> str:
    """SHA-256 (hex) of the simulation's own code: every .py file of model/ and agents/ and the
    parameter tables (model/parameters/*.toml), by path and content. Two runs with the same
    scenario, seed and digest are the same run, whatever was committed or edited elsewhere
    (tests, docs, experiments), so finished runs can be reused by later runs; any edit to the
    model, committed or not, changes it."""
    h = hashlib.sha256()
    files = sorted([*PACKAGE_ROOT.glob("model/**/*.py"), *PACKAGE_ROOT.glob("agents/**/*.py"),
                    *PACKAGE_ROOT.glob("model/parameters/*.toml")])
    for f in files:
        h.update(f.relative_to(PACKAGE_ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """One independent seed per replicate, spawned from `seed` (same whatever the worker count)."""
    return np.random.SeedSequence(seed).spawn(replicates)


def simulate(scenario: Scenario, rng: np.random.SeedSequence | int,
             progress: Callable[[float], None] | None = None,
             snapshot: Callable | None = None) -> pd.DataFrame:
    """Run one replicate of `scenario`; return its time series. `progress(day)` after each step;
    `snapshot(model)` at day 0 and after each step (a snapshots.SnapshotWriter)."""
    from bonesim.model.bone_model import BoneModel

    model = BoneModel(scenario, rng=rng)
    if snapshot is not None:
        snapshot(model)
    for _ in range(model.n_steps):    # the last step ends at or just past the scenario's end
        model.step()
        if progress is not None:
            progress(model.day)
        if snapshot is not None:
            snapshot(model)
    return model.timeseries()


def _snapshot_writer(out: Path, replicate: int, every: float | None):
    if every is None:
        return None
    from bonesim.experiments.snapshots import SnapshotWriter
    return SnapshotWriter(out / "snapshots" / f"rep_{replicate:03d}", every)


def _simulate_replicate(args) -> pd.DataFrame:
    scenario, seed_seq, replicate, snapshot = args
    frame = simulate(scenario, seed_seq, snapshot=snapshot)
    frame.insert(0, "replicate", replicate)
    return frame


class Progress:
    """A progress bar of simulated time (years, rate, ETA) on a terminal; silent otherwise."""

    def __init__(self, total_days: float, label: str, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total_days = total_days
        self.done_days = 0.0
        if self.enabled:
            from rich.progress import (BarColumn, Progress as Bar, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self.bar = Bar(TextColumn("{task.description}"), BarColumn(),
                           TextColumn("{task.fields[years]:.2f}/{task.fields[total_years]:.2f} yr"),
                           TextColumn("{task.fields[rate]:.0f} sim-days/s"),
                           TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                           transient=True)
            self.task = self.bar.add_task(label, total=total_days, years=0.0,
                                          total_years=total_days / 365.25, rate=0.0)
            self.start = time.perf_counter()

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()

    def advance_to(self, offset_days: float, day: float) -> None:
        """Report that the replicate starting at `offset_days` of the total reached `day`."""
        if not self.enabled:
            return
        done = offset_days + day
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(self.task, completed=done, years=done / 365.25, rate=rate)


def run_scenario(scenario: Scenario, out: Path, seed: int | None = None,
                 workers: int = 1, show_progress: bool | None = None,
                 snapshot_every: float | None = None) -> pd.DataFrame:
    """Run every replicate of `scenario` and write the run directory `out`; return the series.

    `seed` overrides `scenario.simulation.seed`. Replicates already finished in `out/.partial`
    by an earlier, interrupted run of the same scenario and seed are reused. `snapshot_every`
    [day]: also write field and cell snapshots (experiments/snapshots.py) at that interval.
    """
    out = Path(out)
    seed = scenario.simulation.seed if seed is None else seed
    replicates = scenario.simulation.replicates
    seeds = replicate_seeds(seed, replicates)
    partial = out / ".partial"
    resolved = scenario.model_dump(mode="json")
    identity = {"scenario": resolved, "seed": seed, "model_code": code_digest()}
    _prepare_partial(partial, identity)

    started = time.perf_counter()
    frames: dict[int, pd.DataFrame] = {
        r: pd.read_parquet(partial / f"rep_{r:03d}.parquet")
        for r in range(replicates) if (partial / f"rep_{r:03d}.parquet").exists()}
    todo = [r for r in range(replicates) if r not in frames]
    with Progress(scenario.days * len(todo), scenario.name, show_progress) as bar:
        if workers <= 1 or len(todo) <= 1:
            for k, r in enumerate(todo):
                frame = simulate(scenario, seeds[r],
                                 lambda day, k=k: bar.advance_to(k * scenario.days, day),
                                 _snapshot_writer(out, r, snapshot_every))
                frame.insert(0, "replicate", r)
                frames[r] = frame
                write_parquet(partial / f"rep_{r:03d}.parquet", frame)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                jobs = [(scenario, seeds[r], r, _snapshot_writer(out, r, snapshot_every))
                        for r in todo]
                for k, (r, frame) in enumerate(zip(todo, pool.map(_simulate_replicate, jobs))):
                    frames[r] = frame
                    write_parquet(partial / f"rep_{r:03d}.parquet", frame)
                    bar.advance_to((k + 1) * scenario.days, 0.0)
    series = pd.concat([frames[r] for r in range(replicates)], ignore_index=True)

    write_parquet(out / "timeseries.parquet", series)
    from bonesim.experiments.figures import summary_figure
    with atomic_path(out / "summary.png") as tmp:
        summary_figure(series, scenario.name).savefig(tmp, format="png", dpi=110)
    write_json(out / "run.json", {
        **identity,
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


def _prepare_partial(partial: Path, identity: dict) -> None:
    """Keep finished replicates only if they belong to the same scenario, seed and model code."""
    marker = partial / "identity.json"
    if partial.exists():
        same = marker.exists() and json.loads(marker.read_text()) == json.loads(
            json.dumps(identity, default=str))
        if not same:
            for f in partial.glob("*"):
                f.unlink()
    partial.mkdir(parents=True, exist_ok=True)
    write_json(marker, identity)
