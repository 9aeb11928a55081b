"""One runner for every command that simulates: `run`, `validate`, `converge` and `sweep`.

A `Job` is one simulation: a resolved scenario, one replicate seed and, for sweeps, values of
model parameters. `run_jobs` simulates the jobs not yet finished in a store directory and
writes each result there as soon as it arrives, as `<name>-<digest>.parquet` (atomically). The
digest covers the resolved scenario (less its replicate count), the seed, the parameter values
and the model's code (`files.code_digest`): running the same jobs again simulates only what is
missing, so a killed run resumes, and a changed scenario, seed, parameter or model is never
mistaken for a finished run. With `keep_going`, a job that raises is recorded beside them as
`<name>-<digest>.error.json` and the others go on; the next run tries it again.

Jobs that share a spin-up (the arms of one trial: one patient, tissue, seed and parameter
set under different protocols) spin up once: the first leaves its spun-up tissue in the store
(`SpinupFiles`) and the others take it (`BoneModel`'s `spinups`); results are the same either
way.

Executors: the calling process (`workers` = 1), local processes (`workers` > 1), or a Dask
cluster (`scheduler`: "tcp://HOST:PORT", "local" for a `LocalCluster` of `workers` processes,
or a `distributed.Client`). A job's numbers come from its own seed alone and every worker runs
numba on one thread, so results are the same whatever the executor, the worker count or the
order in which jobs finish.
"""

import dataclasses
import hashlib
import json
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from bonesim.experiments.files import atomic_path, code_digest, write_json, write_parquet
from bonesim.model.parameters import all_parameters
from bonesim.model.scenario import Scenario


def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """One independent seed per replicate, spawned from `seed` (same whatever the worker count)."""
    return np.random.SeedSequence(seed).spawn(replicates)


@dataclass(frozen=True, eq=False)
class Job:
    """One simulation: `scenario` from replicate `seed`, with model `parameters` set
    ({"cells.osteoblast.lifespan": 91.0, ...}, each in its documented units). `name` is the
    start of its result file's name (letters, digits, '_', '-', '.'). `snapshots`: (folder,
    interval [day]) to also write field and cell snapshots there (experiments/snapshots.py);
    `spinups`: where its spun-up tissue is shared with the jobs that have the same spin-up
    (set by `run_jobs`). Neither changes the result, so neither is part of its digest."""

    name: str
    scenario: Scenario
    seed: np.random.SeedSequence
    parameters: dict[str, float] = field(default_factory=dict)
    snapshots: tuple[Path, float] | None = None
    spinups: "SpinupFiles | None" = None

    def digest(self, code: str) -> str:
        """16 hex digits identifying what this job computes with model code digest `code`."""
        resolved = self.scenario.model_dump(mode="json")
        resolved["simulation"].pop("replicates")
        identity = {"scenario": resolved, "entropy": self.seed.entropy,
                    "spawn_key": list(self.seed.spawn_key), "parameters": self.parameters,
                    "code": code}
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def parameters_set(values: dict[str, float]):
    """Model parameters ("file.section.name") set to `values` in this process while the block
    runs (the model reads them as it is built and as it steps); restored afterwards."""
    table = all_parameters()
    saved = {key: table[key] for key in values}
    for key, new in values.items():
        table[key] = dataclasses.replace(table[key], value=float(new))
    try:
        yield
    finally:
        table.update(saved)


def simulate(scenario: Scenario, seed: np.random.SeedSequence | int,
             parameters: dict[str, float] | None = None,
             progress: Callable[[float], None] | None = None,
             snapshots: tuple[Path, float] | None = None,
             spinups: "SpinupFiles | None" = None) -> pd.DataFrame:
    """Run one replicate of `scenario` from `seed`, with model `parameters` set; return its time
    series (`BoneModel.timeseries()`, one row per output interval) with the
    `readouts.remodeling_summary` of the final model (BMU periods, cell lifespans) in
    attrs["remodeling"]. `progress(day)` is called after each step. `snapshots` (folder,
    interval [day]): field and cell snapshots on day 0 and at that interval
    (snapshots.SnapshotWriter). `spinups`: spun-up tissues shared with other jobs (BoneModel)."""
    from bonesim.model.bone_model import BoneModel
    from bonesim.model.readouts import remodeling_summary

    snapshot = None
    if snapshots is not None:
        from bonesim.experiments.snapshots import SnapshotWriter
        snapshot = SnapshotWriter(*snapshots)
    with parameters_set(parameters or {}):
        model = BoneModel(scenario, rng=seed, spinups=spinups)
        if snapshot is not None:
            snapshot(model)
        for _ in range(model.n_steps):    # the last step ends at or just past the scenario's end
            model.step()
            if progress is not None:
                progress(model.day)
            if snapshot is not None:
                snapshot(model)
        frame = model.timeseries()
        frame.attrs["remodeling"] = {k: float(v) for k, v in remodeling_summary(model).items()}
    return frame


def simulate_job(job: Job) -> pd.DataFrame:
    """`simulate(job)` in a worker process: numba on one thread, runs are the parallelism."""
    import numba

    numba.set_num_threads(1)
    return simulate(job.scenario, job.seed, job.parameters, snapshots=job.snapshots,
                    spinups=job.spinups)


class Progress:
    """A progress bar of simulated time (years, runs done, rate, ETA) on a terminal; silent
    otherwise."""

    def __init__(self, total_days: float, runs: int, label: str, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        if self.enabled:
            from rich.progress import (BarColumn, Progress as Bar, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self.bar = Bar(TextColumn("{task.description}"), BarColumn(),
                           TextColumn("{task.fields[runs]}/{task.fields[total_runs]} runs"),
                           TextColumn("{task.fields[years]:.2f}/{task.fields[total_years]:.2f} yr"),
                           TextColumn("{task.fields[rate]:.0f} sim-days/s"),
                           TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                           transient=True)
            self.task = self.bar.add_task(label, total=total_days, runs=0, total_runs=runs,
                                          years=0.0, total_years=total_days / 365.25, rate=0.0)
            self.start = time.perf_counter()

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()

    def advance_to(self, done_days: float, runs: int) -> None:
        """Report `done_days` simulated in all and `runs` runs finished."""
        if not self.enabled:
            return
        rate = done_days / max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(self.task, completed=done_days, runs=runs, years=done_days / 365.25,
                        rate=rate)


class Store:
    """The directory of finished runs: `<name>-<digest>.parquet`, or `.error.json` for a run
    that failed (its error and traceback)."""

    def __init__(self, path: Path, code: str | None = None):
        self.path = Path(path)
        self.code = code_digest() if code is None else code
        self.spinups = SpinupFiles(self.path, self.code)

    def result(self, job: Job) -> Path:
        return self.path / f"{job.name}-{job.digest(self.code)}.parquet"

    def error(self, job: Job) -> Path:
        return self.path / f"{job.name}-{job.digest(self.code)}.error.json"

    def save(self, job: Job, frame: pd.DataFrame) -> None:
        write_parquet(self.result(job), frame)
        self.error(job).unlink(missing_ok=True)

    def fail(self, job: Job, err: BaseException) -> None:
        cause = "".join(traceback.format_exception(err))
        write_json(self.error(job), {"run": job.name, "error": f"{type(err).__name__}: {err}",
                                     "traceback": cause})

    def failure(self, job: Job) -> str | None:
        """The recorded error of `job`'s last attempt, or None."""
        path = self.error(job)
        return json.loads(path.read_text())["error"] if path.exists() else None


@dataclass(frozen=True)
class SpinupFiles:
    """Spun-up tissues shared by jobs (BoneModel's `spinups`, by `spinup_key`) as files in a
    store directory: `spinup-<digest>.zlib`, the digest covering the key and the model's code,
    each written atomically (~25 MB at 256 x 256). `run_jobs` deletes one when every job that
    shares it has finished; a killed run leaves them for its resumption."""

    path: Path
    code: str

    def file(self, key: str) -> Path:
        digest = hashlib.sha256((key + self.code).encode()).hexdigest()[:16]
        return self.path / f"spinup-{digest}.zlib"

    def __contains__(self, key: str) -> bool:
        return self.file(key).exists()

    def __getitem__(self, key: str) -> bytes:
        return self.file(key).read_bytes()

    def __setitem__(self, key: str, state: bytes) -> None:
        with atomic_path(self.file(key)) as tmp:
            tmp.write_bytes(state)

    def discard(self, key: str) -> None:
        self.file(key).unlink(missing_ok=True)


def shared_spinups(jobs: Iterable[Job]) -> dict[str, str]:
    """The spin-up key (BoneModel's `spinup_key`) of each job, by name, whose spin-up another of
    `jobs` shares: the arms of one trial, same patient, tissue and seed."""
    from bonesim.model.bone_model import spinup_key, spinup_length

    keys = {}
    for job in jobs:
        with parameters_set(job.parameters):
            keys[job.name] = spinup_key(job.scenario, job.seed, spinup_length(job.scenario))
    count = Counter(keys.values())
    return {name: key for name, key in keys.items() if count[key] > 1}


class WorkerDied(RuntimeError):
    """A worker process ended without returning its run (killed, out of memory)."""


class NoScheduler(RuntimeError):
    """No Dask scheduler answers at the address given."""


def run_jobs(jobs: Iterable[Job], store: Path, workers: int = 1, scheduler=None,
             keep_going: bool = False, show_progress: bool | None = None,
             label: str = "run") -> dict[str, pd.DataFrame]:
    """Simulate every job not yet finished in `store`, in the given order but for jobs that
    share a spin-up (`shared_spinups`: the first of them goes ahead and leaves its spun-up
    tissue in `store` for the others, on local executors); return the time series of every
    finished job by name (read back from `store` for those done before).

    A job that raises stops the run (its error propagates) unless `keep_going`: then it is
    recorded in `store` and left out of the result. WorkerDied if a local worker process dies;
    what finished before is kept.
    """
    store = Store(store)
    jobs = list(jobs)
    frames = {job.name: pd.read_parquet(store.result(job)) for job in jobs
              if store.result(job).exists()}
    todo = [job for job in jobs if job.name not in frames]
    shared = shared_spinups(jobs) if scheduler in (None, "local") else {}
    first = {shared[job.name]: job.name for job in reversed(todo) if job.name in shared}
    todo = sorted((dataclasses.replace(job, spinups=store.spinups) if job.name in shared else job
                   for job in todo),
                  key=lambda job: job.name in shared and first[shared[job.name]] != job.name)
    pending = Counter(shared[job.name] for job in todo if job.name in shared)
    done = {"days": 0.0, "runs": 0}

    def finished(job: Job, frame: pd.DataFrame | None, err: BaseException | None) -> None:
        if job.name in shared:
            pending[shared[job.name]] -= 1
            if pending[shared[job.name]] == 0:
                store.spinups.discard(shared[job.name])
        if err is not None:
            if not keep_going:
                raise err
            store.fail(job, err)
        else:
            store.save(job, frame)
            frames[job.name] = frame
        done["days"] += job.scenario.days
        done["runs"] += 1
        bar.advance_to(done["days"], done["runs"])

    with Progress(sum(job.scenario.days for job in todo), len(todo), label,
                  show_progress) as bar:
        if scheduler is not None:
            _on_dask(todo, scheduler, workers, finished)
        elif workers <= 1 or len(todo) <= 1:
            for job in todo:
                start = done["days"]
                try:
                    frame = simulate(job.scenario, job.seed, job.parameters,
                                     lambda day: bar.advance_to(start + day, done["runs"]),
                                     job.snapshots, job.spinups)
                except Exception as err:  # recorded (keep_going) or raised again
                    finished(job, None, err)
                else:
                    finished(job, frame, None)
        else:
            _on_processes(todo, workers, finished)
    return frames


def _on_processes(jobs: list[Job], workers: int, finished) -> None:
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(simulate_job, job): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    frame = future.result()
                except BrokenProcessPool as err:
                    raise WorkerDied(f"a worker process died ({err}); the finished runs are "
                                     "kept: run the same command again to resume") from None
                except Exception as err:
                    finished(futures[future], None, err)
                else:
                    finished(futures[future], frame, None)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _on_dask(jobs: list[Job], scheduler, workers: int, finished) -> None:
    from distributed import Client, LocalCluster, as_completed as dask_completed

    if isinstance(scheduler, Client):
        _submit_to(scheduler, jobs, finished, dask_completed)
    elif scheduler == "local":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            _submit_to(client, jobs, finished, dask_completed)
    else:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:      # refused, unreachable, timed out
            raise NoScheduler(f"--scheduler {scheduler}: no Dask scheduler answers there "
                              f"({type(err).__name__}: {err})") from None
        with client:
            _submit_to(client, jobs, finished, dask_completed)


def _submit_to(client, jobs: list[Job], finished, dask_completed) -> None:
    futures = {client.submit(simulate_job, job, pure=False): job for job in jobs}
    try:
        for future in dask_completed(futures):
            try:
                frame = future.result()
            except Exception as err:
                finished(futures[future], None, err)
            else:
                finished(futures[future], frame, None)
    except BaseException:
        client.cancel(list(futures))
        raise
