"""`bonesim sweep` end to end on a 16x16 section for two weeks (a 200-day spin-up): the same
runs whatever the executor (in-process, 2 local processes, a Dask LocalCluster on loopback),
failure isolation, and resumption after a real `kill -9` of a worker and of the driver."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from bonesim.experiments import runner
from bonesim.experiments.cli import main
from bonesim.experiments.sweep import load_sweep, run_sweep

pytestmark = pytest.mark.slow

SCENARIO = """
name = "tiny"
[patient]
sex = "female"
age = "50 years"
fmp_age = "50.2 years"
"""
SWEEP = """
[sweep]
scenario = "tiny.toml"
design = "grid"
replicates = 2
seed = 3
[set]
"tissue.size" = [16, 16]
"simulation.duration" = "14 d"
"tissue.spinup.days" = 200
[vary."cells.osteoblast.lifespan"]
values = [60.0, 120.0]
"""
RUNS = 4


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "tiny.toml").write_text(SCENARIO)
    (folder / "grid.toml").write_text(SWEEP)
    return folder / "grid.toml"


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory) -> Path:
    """The sweep run whole on two local worker processes."""
    out = tmp_path_factory.mktemp("reference")
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "2"]) == 0
    return out


def run_files(out: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((out / "runs").glob("*.parquet"))}


def assert_same_runs(out: Path, reference: Path) -> None:
    """Every run's time series identical to the reference's, bit for bit, and the results."""
    mine, theirs = run_files(out), run_files(reference)
    assert list(mine) == list(theirs) and len(mine) == RUNS
    for name in mine:
        pd.testing.assert_frame_equal(pd.read_parquet(mine[name]), pd.read_parquet(theirs[name]),
                                      check_exact=True)
    columns = ["run", "cells.osteoblast.lifespan", "day", "bmd_pct_spine", "ctx_rel", "p1np_rel",
               "bone_lost_pct", "status"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet")[columns],
                                  pd.read_parquet(reference / "results.parquet")[columns],
                                  check_exact=True)


def copy_finished(reference: Path, out: Path, leave_out: int) -> None:
    """`out` as a sweep interrupted after all but `leave_out` runs of the reference."""
    (out / "runs").mkdir(parents=True)
    for path in list(run_files(reference).values())[leave_out:]:
        shutil.copy(path, out / "runs" / path.name)


def test_reference_files(reference):
    table = pd.read_parquet(reference / "results.parquet")
    assert len(table) == RUNS and (table["status"] == "done").all()
    assert sorted(table["cells.osteoblast.lifespan"]) == [60.0, 60.0, 120.0, 120.0]
    assert (table["day"] >= 14).all()
    assert (reference / "response.png").read_bytes()[:4] == b"\x89PNG"


def test_failure_is_recorded_the_sweep_goes_on_and_a_rerun_retries_it(
        sweep_file, reference, tmp_path, monkeypatch, capsys):
    """In-process (1 worker) against the 2-process reference: one run raises; the others are
    done, the failure is in results.parquet and --status; the rerun simulates only it."""
    out = tmp_path / "failing"
    copy_finished(reference, out, leave_out=2)
    real, calls = runner.simulate, []

    def failing(scenario, seed, parameters=None, progress=None, snapshots=None, spinups=None):
        calls.append(seed.spawn_key)
        if parameters["cells.osteoblast.lifespan"] == 60.0 and seed.spawn_key == (0,):
            raise RuntimeError("injected failure")
        return real(scenario, seed, parameters, progress, snapshots, spinups)

    monkeypatch.setattr(runner, "simulate", failing)
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1"]) == 1
    assert len(calls) == 2
    table = pd.read_parquet(out / "results.parquet")
    failed = table[table["status"] == "failed"]
    assert failed["run"].tolist() == ["p00000-r00"]
    assert "RuntimeError: injected failure" in failed["error"].iloc[0]
    assert table.loc[table["status"] == "done", "bmd_pct_spine"].notna().all()
    capsys.readouterr()
    assert main(["sweep", "--status", str(out)]) == 0
    report = capsys.readouterr().out
    assert "3 of 4 runs done, 1 failed, 0 pending" in report and "injected failure" in report

    calls.clear()
    monkeypatch.setattr(runner, "simulate", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1"]) == 0
    assert len(calls) == 1
    assert_same_runs(out, reference)
    assert not list((out / "runs").glob("*.error.json"))


def test_dask_local_cluster_gives_the_same_runs(sweep_file, reference, tmp_path):
    out = tmp_path / "dask"
    copy_finished(reference, out, leave_out=2)
    run_sweep(load_sweep(sweep_file), out, workers=2, scheduler="local", show_progress=False)
    assert_same_runs(out, reference)


def start(sweep_file: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bonesim.experiments.cli", "sweep",
                             str(sweep_file), "--out", str(out), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(condition, timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def workers_of(driver: subprocess.Popen) -> list[psutil.Process]:
    """The driver's pool worker processes (not multiprocessing's resource tracker); none once
    the driver has ended."""
    try:
        children = psutil.Process(driver.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "spawn_main" in " ".join(p.cmdline()) and
            "resource_tracker" not in " ".join(p.cmdline())]


def test_kill_9_of_a_worker_and_of_the_driver_then_resume(sweep_file, reference, tmp_path):
    out = tmp_path / "killed"
    driver = start(sweep_file, out)
    try:
        wait_for(lambda: len(run_files(out)) >= 1 and len(workers_of(driver)) == 2)
        os.kill(workers_of(driver)[0].pid, signal.SIGKILL)          # a worker
        _, err = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 1 and "worker process died" in err, err
    finished = len(run_files(out))
    assert finished < RUNS

    driver = start(sweep_file, out)
    try:   # with one run left the driver simulates it in-process, with no worker
        wait_for(lambda: driver.poll() is not None or len(workers_of(driver)) >= 1)
        time.sleep(3.0)
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)                   # the driver and its workers
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    for path in run_files(out).values():                            # no corrupt result
        pd.read_parquet(path)

    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "2"]) == 0
    assert_same_runs(out, reference)
