"""Sweep files, designs, seeds and the sensitivity analysis, without simulating: bad files are
refused naming file, key and value; the analysis recovers known indices (Ishigami, a linear
function) through the code path a sweep uses; cohorts and grids get their seeds as documented."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bonesim.experiments import sweep_report
from bonesim.experiments.cli import main
from bonesim.experiments.sweep import plan, points
from bonesim.experiments.sweep_spec import load_sweep

SWEEPS = Path(__file__).resolve().parents[1] / "experiments" / "sweeps"
HEAD = '[sweep]\nscenario = "default"\n'
LIFESPAN = '[vary."cells.osteoblast.lifespan"]\n'


@pytest.mark.parametrize("text, key, value, reason", [
    (HEAD + 'design = "grid"\n[vary."cells.osteoblast.lifespn"]\n',
     "vary.cells.osteoblast.lifespn", None, "unknown parameter path"),
    (HEAD + 'design = "grid"\n[vary."protocol[0].dose"]\nvalues = ["1 mg"]\n',
     "vary.protocol[0].dose", None, "unknown parameter path"),
    (HEAD + 'design = "lhs"\nsamples = 4\n' + LIFESPAN + 'bounds = [20, 100]\n',
     "vary.cells.osteoblast.lifespan.bounds", "20", "outside the documented plausible range"),
    (HEAD + 'design = "grid"\n' + LIFESPAN + 'values = [60, 400]\n',
     "vary.cells.osteoblast.lifespan.values", "400", "outside the documented plausible range"),
    (HEAD + 'design = "grid"\n[set]\n"tissue.spinup.days" = 5\n' + LIFESPAN,
     "set.tissue.spinup.days", "5", "outside the documented plausible range"),
    (HEAD + 'design = "sobol"\nsamples = 48\n' + LIFESPAN, "sweep.samples", "48",
     "power of 2"),
    (HEAD + 'design = "morris"\nsamples = 4\n', "vary", None, "empty design"),
    (HEAD + 'design = "grid"\n', "vary", None, "empty design"),
    (HEAD + 'design = "cohort"\nsamples = 4\n', "cohort", None, "empty design"),
    (HEAD + 'design = "anneal"\n', "sweep.design", "'anneal'", "unknown design"),
    (HEAD + 'design = "grid"\nworkers = 3\n' + LIFESPAN, "sweep.workers", None, "unknown key"),
    (HEAD + 'design = "cohort"\nsamples = 3\n[cohort."patient.age"]\ndistribution = "normal"\n'
     'mean = 50\n', "cohort.patient.age.sd", None, "normal needs mean, sd"),
    (HEAD + 'design = "grid"\n[vary."patient.age"]\nvalues = [50, 60]\n' + '[set]\n'
     '"simulation.duration" = "-1 years"\n', "simulation.duration", None, "scenario refuses"),
])
def test_bad_sweep_files_exit_2_naming_file_key_and_value(tmp_path, capsys, text, key, value,
                                                          reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and key in err and reason in err, err
    if value is not None:
        assert f"= {value}" in err, err
    assert not out.exists()


def test_outside_range_allowed_when_asked(tmp_path):
    path = tmp_path / "wide.toml"
    path.write_text(HEAD + 'design = "lhs"\nsamples = 4\nallow_outside_range = true\n' + LIFESPAN
                    + "bounds = [20, 300]\n")
    values = [p["cells.osteoblast.lifespan"] for p in points(load_sweep(path))]
    assert len(values) == 4 and min(values) >= 20 and max(values) <= 300
    assert sum(v > 150 for v in values) == 2       # Latin hypercube: one point per stratum


def test_documented_range_is_the_default_bounds(tmp_path):
    path = tmp_path / "morris.toml"
    path.write_text(HEAD + 'design = "morris"\nsamples = 3\n' + LIFESPAN)
    sweep = load_sweep(path)
    assert sweep.factors[0].bounds == (30.0, 150.0)     # cells.toml: range = [30.0, 150.0]
    values = {p["cells.osteoblast.lifespan"] for p in points(sweep)}
    assert min(values) == 30.0 and max(values) == 150.0
    assert len(plan(sweep)) == 3 * 2                     # trajectories x (factors + 1)


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


PARAMETERS = {"cells.osteoblast.lifespan": (30.0, 150.0), "cells.osteoclast.lifespan": (14.0, 50.0),
              "cells.oc_precursor.lifespan": (1.0, 10.0)}


def analysed(tmp_path, design: str, samples: int, function) -> pd.DataFrame:
    """A sweep file over three cell parameters, a results table whose outputs are `function`
    of the design points (rescaled to [0, 1]), analysed by `sweep_report.sensitivity`."""
    path = tmp_path / f"{design}.toml"
    path.write_text(HEAD + f'design = "{design}"\nsamples = {samples}\nlevels = 4\nreplicates = 2\n'
                    'outputs = ["y"]\n' + "".join(f'[vary."{k}"]\n' for k in PARAMETERS))
    sweep = load_sweep(path)
    x = np.array([[p[k] for k in PARAMETERS] for p in points(sweep)])
    low, high = np.array(list(PARAMETERS.values())).T
    y = function((x - low) / (high - low))
    table = pd.DataFrame({"point": np.repeat(np.arange(len(y)), 2), "replicate": [0, 1] * len(y),
                          "arm": "", "y": np.repeat(y, 2) + np.tile([-1.0, 1.0], len(y)),
                          "status": "done"})   # replicates +-1 about y: their mean is y
    return sweep_report.sensitivity(sweep, table).set_index("input")


def test_sobol_indices_of_the_ishigami_function(tmp_path):
    indices = analysed(tmp_path, "sobol", 1024,
                       lambda u: ishigami(-math.pi + 2 * math.pi * u))
    v = 7.0**2 / 8 + 0.1 * math.pi**4 / 5 + 0.1**2 * math.pi**8 / 18 + 0.5
    s1 = [0.5 * (1 + 0.1 * math.pi**4 / 5) ** 2 / v, 7.0**2 / 8 / v, 0.0]
    st = [s1[0] + 8 * 0.1**2 * math.pi**8 / 225 / v, s1[1], 8 * 0.1**2 * math.pi**8 / 225 / v]
    for name, exact_s1, exact_st in zip(PARAMETERS, s1, st):
        row = indices.loc[name]
        assert row["S1"] == pytest.approx(exact_s1, abs=0.05)
        assert row["ST"] == pytest.approx(exact_st, abs=0.05)
        assert row["S1_lo"] - 0.02 <= exact_s1 <= row["S1_hi"] + 0.02
        assert row["ST_lo"] - 0.02 <= exact_st <= row["ST_hi"] + 0.02


def test_morris_mu_star_of_a_linear_function(tmp_path):
    indices = analysed(tmp_path, "morris", 20, lambda u: 3.0 * u[:, 0] - 1.0 * u[:, 1])
    assert indices["mu_star"].tolist() == pytest.approx([3.0, 1.0, 0.0], abs=1e-9)
    assert indices["sigma"].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert indices["mu"].tolist() == pytest.approx([3.0, -1.0, 0.0], abs=1e-9)


def test_grid_runs_every_point_and_arm_on_the_same_replicate_seeds():
    sweep = load_sweep(SWEEPS / "progesterone_dose.toml")
    runs = plan(sweep)
    assert len(runs) == 4 * 2 * sweep.replicates            # doses x arms x replicates
    doses = {(r.arm, r.job.scenario.protocol[0].dose) for r in runs}
    assert doses == {(a, f"{d} mg") for a in ("oral", "cream") for d in (25, 50, 100, 200)}
    for r in runs:
        assert r.job.scenario.protocol[0].route == {"oral": "oral", "cream": "transdermal"}[r.arm]
        assert r.job.seed.spawn_key == (r.replicate,)       # common random numbers
    assert len({r.job.name for r in runs}) == len(runs)


def test_cohort_patients_have_own_seeds_shared_by_their_arms():
    sweep = load_sweep(SWEEPS / "cohort_cee.toml")
    runs, again = plan(sweep), plan(sweep)
    assert len(runs) == 40 * 2
    assert [r.inputs for r in runs] == [r.inputs for r in again]      # reproducible draws
    by_patient: dict[int, set] = {}
    for r in runs:
        by_patient.setdefault(r.point, set()).add(tuple(r.job.seed.spawn_key))
        p = r.job.scenario.patient
        assert 52 <= p.age <= 58 and 47 <= p.fmp_age <= 52
        assert p.activity in ("sedentary", "moderate", "active")
        assert [e.drug for e in r.job.scenario.protocol] == ([] if r.arm == "placebo" else ["cee"])
    assert all(len(keys) == 1 for keys in by_patient.values())       # arms share the seed
    assert len({next(iter(k)) for k in by_patient.values()}) == 40   # patients do not
    ages = [runs[2 * i].inputs["patient.age"] for i in range(40)]
    assert len(set(ages)) == 40


def test_every_example_sweep_loads():
    for path in SWEEPS.glob("*.toml"):
        assert plan(load_sweep(path)), path


def test_grid_over_section_size_is_reported_one_level_per_size(tmp_path):
    """A grid over a list-valued scenario key (tissue.size) runs one point per size, and its
    report groups the runs by size (a list is no pandas group key as it stands)."""
    sweep = load_sweep(SWEEPS / "precision_area.toml")
    runs = plan(sweep)
    sizes = [tuple(r.job.scenario.tissue.size) for r in runs]
    assert sorted(set(sizes)) == [(64, 64), (128, 128), (256, 256)]
    assert all(sizes.count(s) == sweep.replicates for s in set(sizes))
    table = pd.DataFrame({"arm": "", "status": "done",
                          "tissue.size": [list(s) for s in sizes],
                          **{o: [float(s[0]) + r.replicate for s, r in zip(sizes, runs)]
                             for o in sweep.outputs}})
    sweep_report.write(sweep, table, tmp_path)
    assert (tmp_path / "response.png").stat().st_size > 0
    level = table["tissue.size"].map(sweep_report._level)
    assert level.unique().tolist() == ["64 x 64", "128 x 128", "256 x 256"]
