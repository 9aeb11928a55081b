"""`bonesim run` end to end on a small tissue: the three files, determinism, resume."""

import json

import numpy as np
import pandas as pd
import pytest

from bonesim.experiments.cli import main
from bonesim.experiments.run import final_values
from bonesim.experiments.validate import interval

SMALL = """
name = "small"
[patient]
sex = "female"
age = "50 years"
fmp_age = "50.2 years"
[tissue]
size = [32, 32]
spacing = "10 um"
[simulation]
duration = "0.1 years"
output_every = "7 d"
replicates = {replicates}
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenarios") / "small.toml"
    path.write_text(SMALL.format(replicates=2))
    return path


@pytest.fixture(scope="module")
def first_run(scenario_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "5",
                 "--workers", "1"]) == 0
    return out


def test_run_writes_the_three_files(first_run):
    assert sorted(p.name for p in first_run.iterdir()) == ["run.json", "summary.png",
                                                           "timeseries.parquet"]
    info = json.loads((first_run / "run.json").read_text())
    assert info["seed"] == 5 and info["scenario"]["name"] == "small"
    assert info["scenario"]["simulation"]["duration"] == pytest.approx(0.1)
    assert len(info["replicate_seeds"]) == 2 and info["wall_time_s"] > 0
    series = pd.read_parquet(first_run / "timeseries.parquet")
    for column in ("replicate", "day", "bmd_pct_spine", "vbmd_pct_trabecular", "bv_tv",
                   "ctx_rel", "p1np_rel", "serum_e2_pmol_l", "serum_p4_ng_ml", "serum_t_ng_dl",
                   "n_osteoclasts", "n_osteoblasts"):
        assert column in series, column
    assert sorted(series["replicate"].unique()) == [0, 1]
    assert series["day"].max() <= 0.1 * 365.25 + 1
    assert (first_run / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_gives_identical_data_and_another_seed_does_not(scenario_file, first_run,
                                                                 tmp_path, capsys):
    """The same seed on the default workers (one per CPU) gives the serial run's data, and
    prints each final value with the 95% interval of its mean over the replicates."""
    assert main(["run", str(scenario_file), "--out", str(tmp_path / "b"), "--seed", "5"]) == 0
    a = pd.read_parquet(first_run / "timeseries.parquet")
    last = a[a["day"] == a["day"].max()]["bmd_pct_spine"]
    printed = [line for line in capsys.readouterr().out.splitlines()
               if line.startswith("  final bmd_pct_spine: ")]
    assert printed == [f"  final bmd_pct_spine: {last.mean():.3f} [95% CI "
                       f"{interval(last)[1]:.3f}, {interval(last)[2]:.3f}]"]
    pd.testing.assert_frame_equal(a, pd.read_parquet(tmp_path / "b" / "timeseries.parquet"))
    # replicates 0 and 1 ran from different spawned seeds
    rep0, rep1 = (a[a["replicate"] == r].drop(columns="replicate").reset_index(drop=True)
                  for r in (0, 1))
    assert not rep0.equals(rep1)


def test_two_workers_give_the_serial_run(scenario_file, first_run, tmp_path):
    """`bonesim run --workers 2` (a process pool, one numba thread per worker) writes the same
    series as the serial run, bit for bit."""
    out = tmp_path / "pool"
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "5", "--workers", "2"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(first_run / "timeseries.parquet"),
                                  pd.read_parquet(out / "timeseries.parquet"), check_exact=True)


def interrupt_after_one(scenario_file, out, monkeypatch) -> list:
    """`bonesim run` into `out`, killed after its first replicate; then `simulate` is restored
    (still counted). Returns the list of simulate calls, before and after."""
    from bonesim.experiments import runner
    real = runner.simulate
    calls = []

    def killed_after_one(scenario, rng, parameters=None, progress=None, snapshots=None,
                         spinups=None):
        if calls:
            raise KeyboardInterrupt
        calls.append(rng)
        return real(scenario, rng, parameters, progress, snapshots, spinups)

    monkeypatch.setattr(runner, "simulate", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        main(["run", str(scenario_file), "--out", str(out), "--seed", "5", "--workers", "1"])
    assert not (out / "timeseries.parquet").exists()
    assert len(list((out / ".partial").glob("rep_000-*.parquet"))) == 1
    monkeypatch.setattr(runner, "simulate",
                        lambda s, rng, parameters=None, progress=None, snapshots=None,
                        spinups=None:
                        calls.append(rng) or real(s, rng, parameters, progress, snapshots, spinups))
    return calls


def test_interrupted_run_resumes_from_finished_replicates(scenario_file, first_run, tmp_path,
                                                          monkeypatch):
    out = tmp_path / "resumed"
    calls = interrupt_after_one(scenario_file, out, monkeypatch)
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "5",
                 "--workers", "1"]) == 0
    assert len(calls) == 2  # one before the interruption, only replicate 1 after it
    pd.testing.assert_frame_equal(pd.read_parquet(first_run / "timeseries.parquet"),
                                  pd.read_parquet(out / "timeseries.parquet"))
    assert not (out / ".partial").exists()


def test_resume_discards_replicates_of_other_model_code(scenario_file, first_run, tmp_path,
                                                        monkeypatch):
    """A replicate finished before the model's code changed is simulated again, not reused."""
    from bonesim.experiments import run as run_module
    from bonesim.experiments import runner
    digest = run_module.code_digest()
    out = tmp_path / "changed"
    calls = interrupt_after_one(scenario_file, out, monkeypatch)
    for module in (run_module, runner):
        monkeypatch.setattr(module, "code_digest", lambda: "an edited model")
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "5",
                 "--workers", "1"]) == 0
    assert len(calls) == 3  # both replicates again after the interruption
    assert json.loads((out / "run.json").read_text())["model_code"] == "an edited model"
    assert json.loads((first_run / "run.json").read_text())["model_code"] == digest


def test_final_values_are_the_mean_and_t_interval_over_replicates():
    """Three replicates ending at 1, 2, 3: mean 2, half-width t(0.975, 2) x 1 / sqrt(3) =
    4.303 x 0.577 = 2.484; earlier days do not count; one replicate has no interval."""
    series = pd.DataFrame({"replicate": [0, 0, 1, 1, 2, 2], "day": [0.0, 7.0] * 3,
                           "bmd_pct_spine": [9.0, 1.0, 9.0, 2.0, 9.0, 3.0]})
    row = final_values(series).set_index("quantity").loc["bmd_pct_spine"]
    assert row["mean"] == pytest.approx(2.0) and row["replicates"] == 3
    assert (row["ci95_lo"], row["ci95_hi"]) == pytest.approx((2.0 - 2.4841, 2.0 + 2.4841), abs=1e-4)
    one = final_values(series[series["replicate"] == 0]).iloc[0]
    assert one["mean"] == 1.0 and np.isnan(one["ci95_lo"]) and np.isnan(one["ci95_hi"])
