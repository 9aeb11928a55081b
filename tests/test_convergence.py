"""`bonesim converge`: the verdict, the seeds to decide, the paired statistics, the files and the
resumption. Whether the model is converged is its result, reported in convergence.md
(docs/design.md, decision 4); it is not asserted here. The `slow` test runs the study on a small
section for a few weeks. What is asserted is the convergence of the field step in dt, paired on
one state (no noise)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bonesim.experiments import convergence as cv
from bonesim.experiments import runner
from bonesim.experiments.cli import main
from bonesim.experiments.files import code_digest
from bonesim.model.bone_model import BoneModel
from bonesim.model.fields import FIELD_INDEX, N_TRANSPORTED, TRANSPORTED, FieldSolver, free_rankl
from bonesim.model.scenario import parse_scenario


@pytest.mark.parametrize("low, high, expected", [
    (-0.29, 0.29, "converged"), (0.1, 0.25, "converged"),
    (-0.31, 0.1, "undecided"), (0.2, 0.9, "undecided"), (-1.0, 1.0, "undecided"),
    (0.31, 2.0, "not converged"), (-3.0, -0.5, "not converged"),
    (float("nan"), float("nan"), "undecided")])
def test_verdict_against_the_margin(low, high, expected):
    assert cv.verdict(low, high) == expected


def t_half_width(sd, n):
    return stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)


@pytest.mark.parametrize("mean, sd", [(0.0, 1.4), (0.1, 2.0), (0.6, 1.0), (-0.05, 0.3)])
def test_seeds_to_decide_is_the_smallest_deciding_count(mean, sd):
    """With n seeds of the same mean and spread the interval decides, with n - 1 it does not."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=20)
    d = mean + sd * (d - d.mean()) / d.std(ddof=1)          # exactly this mean and SD
    n = int(cv.seeds_to_decide(d))
    gap = abs(abs(mean) - cv.MARGIN)
    assert t_half_width(sd, n) < gap <= t_half_width(sd, n - 1)
    assert cv.verdict(mean - t_half_width(sd, n), mean + t_half_width(sd, n)) != "undecided"


def test_seeds_to_decide_degenerate_inputs():
    assert np.isnan(cv.seeds_to_decide([0.1]))
    assert np.isnan(cv.seeds_to_decide([0.1, np.nan, 0.2]))
    assert cv.seeds_to_decide([0.2, 0.4]) == np.inf            # mean on the margin


def test_differences_are_paired_by_seed():
    """Refined - base per seed; a shift common to both arms of a seed cancels."""
    seeds = np.arange(6)
    common = np.array([3.0, -2.0, 1.0, 0.5, -1.5, 2.0])       # seed-to-seed spread
    effect = {"base": 0.0, "dt_half": 0.2, "dx_half": -0.4}
    noise = np.array([0.01, -0.02, 0.0, 0.03, -0.01, -0.01])
    ends = pd.DataFrame([{"arm": arm, "seed": s, "day": 1096.0,
                          "bmd_pct_spine": common[s] + e + (noise[s] if arm != "base" else 0.0),
                          "vbmd_pct_trabecular": 2.0 * (common[s] + e)}
                         for arm, e in effect.items() for s in seeds])
    table = cv.differences(ends).set_index(["refined", "reading"])
    for arm, e in effect.items():
        if arm == "base":
            continue
        row = table.loc[(arm, "bmd_pct_spine")]
        d = e + noise
        lo, hi = stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=stats.sem(d))
        assert row["difference"] == pytest.approx(d.mean())
        assert (row["ci95_lo"], row["ci95_hi"]) == pytest.approx((lo, hi))
        assert row["sd"] == pytest.approx(d.std(ddof=1))
        assert row["verdict"] == cv.verdict(lo, hi)
        assert table.loc[(arm, "vbmd_pct_trabecular"), "difference"] == pytest.approx(2 * e)
    assert table.loc[("dt_half", "bmd_pct_spine"), "verdict"] == "converged"
    assert table.loc[("dx_half", "bmd_pct_spine"), "verdict"] == "not converged"


def test_rate_differences_flag_a_shift_the_seed_spread_would_hide():
    """A 2-count shift of the osteoclast-precursor count under dt_half is 1/25 of the
    seed-to-seed spread, yet pairing by seed finds it (interval excludes 0); scatter of zero
    mean under dx_half is not flagged; a rate both arms share has difference 0."""
    seeds = np.arange(8)
    spread = 50.0 * np.random.default_rng(3).normal(size=seeds.size)     # counts, per seed
    scatter = 0.2 * (-1.0) ** seeds                                      # counts, mean 0
    shift = {"base": 0.0 * scatter, "dt_half": 2.0 + scatter, "dx_half": scatter}
    rows = [{"arm": arm, "seed": s, "day": 1096.0,
             **{name: 1.0 + spread[s] for name, _ in cv.RATES + cv.HISTOMORPHOMETRY},
             "n_oc_precursors": 100.0 + spread[s] + shift[arm][s]}
            for arm in shift for s in seeds]
    table = cv.rate_differences(pd.DataFrame(rows)).set_index(["refined", "rate"])
    hit = table.loc[("dt_half", "n_oc_precursors")]
    assert hit["significant"] and hit["ci95_lo"] > 0
    assert hit["difference"] == pytest.approx(2.0)
    assert hit["relative_pct"] == pytest.approx(100 * 2.0 / (100.0 + spread.mean()))
    assert not table.loc[("dx_half", "n_oc_precursors"), "significant"]
    same = table.loc[("dt_half", "turnover_pct_per_yr")]
    assert same["difference"] == 0.0 and not same["significant"]
    assert len(table) == len(cv.REFINED) * (len(cv.RATES) + len(cv.HISTOMORPHOMETRY))


def test_arms_refine_one_thing_each():
    arms = cv.arms(3, 48, 0.5).scenarios
    base, dt, dx = arms["base"], arms["dt_half"], arms["dx_half"]
    assert base.tissue.size == dt.tissue.size == dx.tissue.size == (48, 48)
    assert base.simulation.duration == 0.5
    assert dt.simulation.dt == base.simulation.dt / 2
    assert dx.simulation.field_refinement == 2 * base.simulation.field_refinement
    same = ("patient", "tissue")
    assert all(getattr(dt, k) == getattr(base, k) == getattr(dx, k) for k in same)
    assert dx.simulation.dt == base.simulation.dt and dt.simulation.field_refinement == 1


def test_code_digest_follows_the_model_code(tmp_path, monkeypatch):
    from bonesim.experiments import files

    for d in ("model/parameters", "agents"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "model" / "a.py").write_text("x = 1\n")
    (tmp_path / "model" / "parameters" / "p.toml").write_text("a = 1\n")
    (tmp_path / "agents" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(files, "PACKAGE_ROOT", tmp_path)
    first = files.code_digest()
    (tmp_path / "README.md").write_text("docs do not count\n")
    assert files.code_digest() == first
    for f in ("model/a.py", "model/parameters/p.toml", "agents/b.py"):
        path = tmp_path / f
        old = path.read_text()
        path.write_text(old + "# edit\n")
        assert files.code_digest() != first, f
        path.write_text(old)
    assert files.code_digest() == first
    assert len(code_digest()) == 64


def test_bad_requests_exit_2(tmp_path, capsys):
    assert main(["converge", "--seeds", "1", "--out", str(tmp_path)]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["converge", "--size", "8", "--out", str(tmp_path)]) == 2
    assert "tissue.size" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_study_writes_its_files_and_resumes(tmp_path, monkeypatch):
    """Two seeds on a 32^2 section for 0.1 year; then again (nothing simulated); then with a
    third seed (only its three runs simulated). The report's numbers are the parquet's."""
    args = ["converge", "--size", "32", "--years", "0.1", "--workers", "1", "--out", str(tmp_path)]
    assert main(args + ["--seeds", "2"]) == 0
    ends = pd.read_parquet(tmp_path / "convergence.parquet")
    assert sorted(ends["arm"].unique()) == ["base", "dt_half", "dx_half"]
    assert sorted(ends["seed"].unique()) == [0, 1]
    assert np.allclose(ends["day"], np.ceil(0.1 * 365.25))     # every arm covers the 0.1 year
    report = (tmp_path / "convergence.md").read_text()
    table = cv.differences(ends)
    for _, r in table.iterrows():
        assert f"| {r['what']} | {r['label']} |" in report
        assert f"{r['difference']:+.2f} [{r['ci95_lo']:+.2f}, {r['ci95_hi']:+.2f}]" in report
    for _, r in cv.rate_differences(ends).iterrows():
        assert f"| {r['what']} | {r['label']} | {r['base_mean']:.4g} |" in report
    assert len(list((tmp_path / ".partial").glob("*.parquet"))) == 6

    calls = []
    real = runner.simulate

    def counting(scenario, seed, parameters=None, progress=None, snapshots=None, spinups=None):
        calls.append(seed.spawn_key)
        return real(scenario, seed, parameters, progress, snapshots, spinups)

    monkeypatch.setattr(runner, "simulate", counting)
    assert main(args + ["--seeds", "2"]) == 0
    assert calls == []
    assert pd.read_parquet(tmp_path / "convergence.parquet").equals(ends)
    assert main(args + ["--seeds", "3"]) == 0
    assert sorted(calls) == [(2,)] * 3
    again = pd.read_parquet(tmp_path / "convergence.parquet")
    pd.testing.assert_frame_equal(again[again["seed"] < 2].reset_index(drop=True), ends)
    assert not list(tmp_path.glob(".*.tmp"))


def test_field_day_converges_in_dt_on_one_state():
    """Paired, without noise: from one spun-up menopausal state, with the cells' secretion of
    one step held, the transported fields after one day taken in 1, 2, 4 and 8 steps (the
    hormones are steady profiles, the same at any dt). Backward Euler converges at first
    order: from 2 steps a day on, the change from halving dt falls by 2^p with p within
    0.6-1.6 (ratio 1.5-3; second order would give 4), for the slow fields OPG and TGF-beta that
    carry the largest error. Not exactly 2: a stiff component's one-day error
    (1 + k dt)^(-1/dt) - exp(-k) falls faster than dt while k dt is not small; on one state
    OPG's max-norm ratio was 2.59, 2.67 and 2.43 from 1, 2 and 4 steps a day on, TGF-beta's
    1.90, 1.98 and 1.96. At dt = 1 d every field present but
    TGF-beta is within 2% of its maximum in the marrow of the dt -> 0 limit (Richardson) on
    this state (over 6 seeds' states OPG's error ran from 0.08% to 4.8%, RANKL's from 0.01% to
    0.43%). The RANKL free to bind RANK at the cells is off by no more than OPG is: free RANKL
    falls with OPG at a relative slope of at most 1, and RANKL, fast, is quasi-steady within a
    day (over the 6 states its error was 0.08-0.36 of OPG's). TGF-beta, cleared within a day,
    is transient: a 1-day step damps it by 1 / (1 + k dt) against exp(-k dt), so its error
    against its marrow maximum ran from 0.3% while resorption released it to over 100% while
    it decayed without a source (3 seeds x 6 steps measured); only its order is asserted
    here. The whole model's dt and dx convergence, with the cells' noise, is measured by
    `bonesim converge` (experiments/reports/convergence.md); the field mesh is checked the same
    paired way in tests/test_bone_model.py."""
    sc = parse_scenario({
        "name": "t", "patient": {"sex": "female", "age": "53 years", "fmp_age": "51 years"},
        "tissue": {"size": [64, 64], "spacing": "10 um", "site": "spine", "geometry_seed": 1},
        "simulation": {"duration": "0.1 years", "dt": "1 d", "output_every": "7 d"}})
    model = BoneModel(sc, rng=1, spinup_days=120)
    model.step()
    n = N_TRANSPORTED
    serum = model._serum_vector(model.course, 0)[:n]

    def one_day(steps: int) -> np.ndarray:
        solver = FieldSolver(model.tissue.shape, model.dx, 1.0 / steps, TRANSPORTED, tol=1e-9,
                             max_iter=2000)
        solver.set_matrix(model._matrix_mask())
        conc = model.conc[:n].copy()
        for _ in range(steps):
            solver.step(conc, model.source[:n], None, model.field_vessel, serum)
        return conc

    c1, c2, c4, c8 = (one_day(k) for k in (1, 2, 4, 8))
    limit = 2 * c8 - c4
    marrow = ~model.tissue.matrix_mask()
    scale = np.maximum(limit[:, marrow].max(axis=1), 1e-300)

    def change(a, b):
        return np.abs(a - b)[:, marrow].max(axis=1) / scale

    for name in ("opg", "tgfb"):
        f = FIELD_INDEX[name]
        assert 1.5 < change(c2, c4)[f] / change(c4, c8)[f] < 3.0
    checked = limit[:, marrow].max(axis=1) > 1e-6     # a field long without a source is ~0
    checked[FIELD_INDEX["tgfb"]] = False
    assert change(c1, limit)[checked].max() < 0.02
    cells = marrow & (model.occ >= 0)
    free_error = abs(free_rankl(c1)[cells].mean() / free_rankl(limit)[cells].mean() - 1)
    assert free_error <= change(c1, limit)[FIELD_INDEX["opg"]]
