"""The validation machinery: targets as data, statistics, the report files, --strict, resume.

Whether targets pass is the model's result, reported in validation.md; it is not asserted here.
The fast tests use synthetic time series; the `slow` ones run `bonesim validate --quick` once
(2 seeds under BONESIM_CI=1) and check what it wrote against an independent recomputation.
"""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bonesim.experiments import targets as tg
from bonesim.experiments import validate as v
from bonesim.experiments.cli import main
from bonesim.experiments.runner import Store
from bonesim.model.parameters import Parameter
from bonesim.model.units import DAYS_PER_YEAR

CI = os.environ.get("BONESIM_CI") == "1"
QUICK_SEEDS = 2 if CI else v.QUICK_SEEDS
# Under CI, a smaller section and a longer step than --quick's: the machinery is checked here,
# not the model's numbers (which need the default settings).
SIZE, DT = (48, 3.0) if CI else (None, None)


def quick(seeds: int = QUICK_SEEDS) -> list[str]:
    """Options of the quick validation runs of these tests."""
    return (["--quick", "--seeds", str(seeds)] + (["--size", str(SIZE)] if SIZE else [])
            + (["--dt", str(DT)] if DT else []))


# ---------------------------------------------------------------- targets as data


def test_targets_are_well_formed():
    ids = [t.id for t in tg.TARGETS]
    assert len(ids) == len(set(ids))
    for t in tg.TARGETS:
        low, high = t.band
        assert low is not None or high is not None
        assert low is None or high is None or low < high
        assert set(t.arms) <= set(tg.ARMS), t.id
        assert t.statistic and t.units and t.published


def test_every_arm_loads_and_trials_share_seeds_patient_and_tissue():
    settings = v.arm_scenarios(tg.ARMS, seeds=4, quick=False)
    assert all(s.simulation.replicates == 4 for s in settings.scenarios.values())
    for t in tg.TARGETS:  # arms compared within a target: common random numbers
        scenarios = [settings.scenarios[a] for a in t.arms]
        assert len({s.simulation.seed for s in scenarios}) == 1, t.id
        assert len({s.tissue for s in scenarios}) == 1, t.id
        assert len({s.patient for s in scenarios}) == 1, t.id
    reduced = v.arm_scenarios(tg.ARMS, seeds=3, quick=True)
    for arm, s in reduced.scenarios.items():
        assert s.tissue.size == v.QUICK_SIZE
        full = settings.scenarios[arm].simulation.duration
        assert s.simulation.duration == pytest.approx(tg.QUICK_YEARS.get(arm, full))


def test_protocols_as_published():
    s = v.arm_scenarios(tg.ARMS, seeds=1, quick=False).scenarios
    doses = {arm: {(p.drug, p.route, p.schedule, p.dose_amount, p.days) for p in s[arm].protocol}
             for arm in s}
    cee = ("cee", "oral", "daily", 0.625, None)
    assert doses["v3a_pepi_placebo"] == set()
    assert doses["v3b_pepi_cee"] == {cee}
    assert doses["v3c_pepi_cee_mpa_continuous"] == {cee, ("mpa", "oral", "daily", 2.5, None)}
    assert doses["v3d_pepi_cee_mpa_cyclic"] == {cee, ("mpa", "oral", "cyclic", 10.0, (1, 12))}
    assert doses["v3e_pepi_cee_progesterone"] == {cee, ("progesterone", "oral", "cyclic", 200.0, (1, 12))}
    (mpa,) = doses["v4c_disturbed_mpa"]
    assert mpa[:4] == ("mpa", "oral", "cyclic", 10.0) and mpa[4][1] - mpa[4][0] + 1 == 10
    assert s["v4b_disturbed_cycles"].patient.cycle.anovulatory_fraction + \
        s["v4b_disturbed_cycles"].patient.cycle.short_luteal_fraction == pytest.approx(0.29)
    assert s["v4a_anovulatory"].patient.cycle.anovulatory_fraction == 1.0
    assert s["v6_ttrials_gel"].patient.testosterone < 275 and s["v6_ttrials_gel"].patient.age >= 65
    assert s["v2_menopause"].patient.final_period_age - s["v2_menopause"].patient.age + 7 <= \
        s["v2_menopause"].simulation.duration


def test_the_model_is_calibrated_on_v1_and_v2_only():
    # a new calibration must also update the lists in model/bone_model.py and calibrate.py
    assert tg.calibrated_ids() == {"V1", "V2"}


def test_calibrated_ids_come_from_parameter_sources():
    params = {
        "a": Parameter("a", 1.0, "1/day", (0, 2), "calibrated: experiments/calibrate.py to V1 turnover and V2"),
        "b": Parameter("b", 1.0, "1/day", (0, 2), "Pivonka 2008, mentions V3b but is not calibrated"),
        "c": Parameter("c", 1.0, "1/day", (0, 2), "Calibrated against V3f"),
    }
    assert tg.calibrated_ids(params) == {"V1", "V2", "V3f"}
    by_id = {t.id: t for t in tg.TARGETS}
    assert tg.basis(by_id["V1.drift"], {"V1"}) == "calibrated on"
    assert tg.basis(by_id["V3b"], {"V3"}) == "calibrated on"
    assert tg.basis(by_id["V3b"], {"V3f"}) == "validated"
    assert tg.basis(by_id["V6"], set()) == "validated"


def test_select():
    assert tg.select(None) == tg.TARGETS
    assert [t.id for t in tg.select(["V4c"])] == ["V4c", "V4c.vs_placebo"]
    assert tg.arms_of(tg.select(["V3f"])) == list(tg.PEPI[1:])
    with pytest.raises(ValueError, match="V99"):
        tg.select(["V99"])


# ---------------------------------------------------------------- statistics on synthetic numbers


def test_interval_matches_t_distribution():
    mean, lo, hi = v.interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, 2) x sd 1 / sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, 9)
    expected = stats.t.interval(0.95, 8, loc=x.mean(), scale=stats.sem(x))
    assert v.interval(x)[1:] == pytest.approx(expected)
    assert v.interval([4.0])[0] == 4.0 and np.isnan(v.interval([4.0])[1])
    assert all(np.isnan(v.interval([1.0, np.nan, 2.0])))


def test_band_checks_bounds_inclusive_and_nan_fails():
    t = tg.Target("X", "", "", (-1.0, 2.0), "%", (), "", lambda a: 0.0)
    assert t.passes(-1.0) and t.passes(2.0) and not t.passes(2.01) and not t.passes(np.nan)
    assert tg.Target("X", "", "", (None, 2.0), "%", (), "", lambda a: 0.0).passes(-50.0)
    assert not tg.Target("X", "", "", (70.0, None), "%", (), "", lambda a: 0.0).passes(69.9)


TRABECULAR = 2.0  # synthetic trabecular vBMD change / spine DXA-like change


def synthetic(scenario, slope: float, offset: float = 0.0, **columns) -> pd.DataFrame:
    """A time series like BoneModel.timeseries(): spine DXA-like BMD = offset + slope x years
    (0 at day 0), trabecular vBMD TRABECULAR times that."""
    day = np.arange(0.0, scenario.days + 1e-9, scenario.simulation.output_every)
    years = day / DAYS_PER_YEAR
    bmd = np.where(day > 0, offset + slope * years, 0.0)
    return pd.DataFrame({"day": day, tg.BMD: bmd, tg.VBMD: TRABECULAR * bmd,
                         **{k: f(years) for k, f in columns.items()}})


def test_arm_slope_change_and_window_mean():
    scenario = v.arm_scenarios([tg.V2], 1, False).scenarios[tg.V2]
    frame = synthetic(scenario, -3.0, activation_frequency_per_yr=lambda y: 0.2 + 0.2 * (y > 3.5))
    arm = tg.Arm(frame, scenario)
    assert arm.fmp == pytest.approx(3.0)
    # -3 points of the baseline per year are -3/0.91 %/yr of the BMD left at 3 years (91%)
    assert arm.slope(3.0, 5.0) == pytest.approx(-3.0 / 0.91, rel=1e-9)
    assert arm.slope(5.0, 10.0) == pytest.approx(-3.0 / 0.85, rel=1e-9)
    assert arm.slope(0.0, 2.0) == pytest.approx(-3.0, rel=1e-9)
    assert arm.change() == pytest.approx(-3.0 * arm.end)
    assert arm.change(tg.VBMD) == pytest.approx(-3.0 * TRABECULAR * arm.end)
    assert arm.slope(0.0, 2.0, tg.VBMD) == pytest.approx(-3.0 * TRABECULAR, rel=1e-9)
    without_day0 = tg.Arm(frame.iloc[1:], scenario)  # both BMD columns are 0 at day 0
    assert without_day0.at(tg.BMD, 0.0) == without_day0.at(tg.VBMD, 0.0) == 0.0
    assert arm.end == pytest.approx(frame["day"].iloc[-1] / DAYS_PER_YEAR)
    assert arm.mean("activation_frequency_per_yr", 0.0, 1.0) == pytest.approx(0.2)
    with pytest.raises(tg.NotMeasurable, match="no column 'nope'"):
        arm.mean("nope", 0, 1)
    with pytest.raises(tg.NotMeasurable, match="not recorded"):
        arm.at(tg.BMD, 12.0)


def test_v5_margin_passes_exactly_when_the_mean_loss_ratio_reaches_the_share():
    scenario = v.arm_scenarios([tg.V5P], 1, False).scenarios[tg.V5P]
    target = next(t for t in tg.TARGETS if t.id == "V5.oral")

    def margins(placebo, oral):    # %/yr per seed -> the target's per-seed statistic
        return [target.compute({tg.V5P: tg.Arm(synthetic(scenario, p), scenario),
                                tg.V5O: tg.Arm(synthetic(scenario, o), scenario)})
                for p, o in zip(placebo, oral)]

    placebo = (-2.5, 0.5)          # seed 1's placebo gains: a per-seed ratio is undefined there
    for share in (tg.LOSS_SHARE - 0.01, tg.LOSS_SHARE + 0.01):   # either side of the boundary
        oral = (share * np.mean(placebo) * 2 - 0.3, 0.3)          # mean loss = share x placebo's
        m = margins(placebo, oral)
        assert np.isfinite(m).all()
        assert target.passes(np.mean(m)) == (share >= tg.LOSS_SHARE)


def test_every_statistic_on_synthetic_arms():
    """Each arm loses or gains linearly at a known rate; every statistic follows by hand."""
    settings = v.arm_scenarios(tg.ARMS, seeds=2, quick=False)
    rate = {arm: -1.0 - 0.5 * k for k, arm in enumerate(tg.ARMS)}  # %/yr, distinct per arm
    results = {}
    for arm, scenario in settings.scenarios.items():
        for seed in range(2):
            results[arm, seed] = synthetic(
                scenario, rate[arm] + seed, turnover_pct_per_yr=lambda y: 20.0 + 0 * y,
                activation_frequency_per_yr=lambda y: 0.2 + 0.2 * (y > 3.5))
            results[arm, seed].attrs["remodeling"] = {"osteoclast_lifespan_days": 14.0 + seed,
                                                      "erosion_depth_um": 30.0 + seed,
                                                      "resorption_days": np.nan}
    table = v.evaluate(tg.TARGETS, settings, results)
    values = table[table["level"] == "target"].set_index(["id", "seed"])["value"]
    end = {arm: results[arm, 0]["day"].iloc[-1] / DAYS_PER_YEAR for arm in tg.ARMS}
    change = {(arm, s): (rate[arm] + s) * end[arm] for arm in tg.ARMS for s in range(2)}
    vbmd = {key: TRABECULAR * c for key, c in change.items()}  # QCT trials: V4, V6
    p = tg.PEPI
    for s in range(2):
        assert values["V1.drift", s] == pytest.approx(rate[tg.V1] + s)
        assert values["V1.turnover", s] == pytest.approx(20.0)
        assert values["V1.oc_lifespan", s] == pytest.approx(14.0 + s)
        assert np.isnan(values["V1.resorption", s])  # undefined: not measurable
        assert np.isnan(values["V1.formation", s])  # not in the summary: not measurable
        assert values["V1.erosion_depth", s] == pytest.approx(30.0 + s)
        assert values["V2.activation", s] == pytest.approx(2.0)
        assert values["V3b", s] == pytest.approx(change[p[1], s])
        assert values["V3c.above_V3b", s] == pytest.approx(change[p[2], s] - change[p[1], s])
        cyc = np.mean([change[a, s] for a in p[2:]])
        assert values["V3f", s] == pytest.approx((cyc - change[p[1], s]) / end[p[1]])
        assert values["V4a", s] == pytest.approx(TRABECULAR * (rate[tg.V4A] + s))
        assert values["V4c.vs_placebo", s] == pytest.approx(vbmd[tg.V4C, s] - vbmd[tg.V4B, s])
        assert values["V5.oral", s] == pytest.approx(-change[tg.V5O, s] + tg.LOSS_SHARE * change[tg.V5P, s])
        assert values["V6", s] == pytest.approx(vbmd[tg.V6T, s] - vbmd[tg.V6U, s])
        assert values["V7", s] == pytest.approx(change[tg.V7, s])
    rows = v.summary(table).set_index(["level", "id"])
    assert rows.loc[("target", "V1.turnover"), "passed"]  # 20 %/yr is inside 15-35
    assert not rows.loc[("target", "V1.resorption"), "passed"]
    assert "resorption_days" in rows.loc[("target", "V1.resorption"), "note"]
    arm_rows = table[(table["level"] == "arm") & (table["quantity"] == "osteoclast_lifespan_days (summary)")]
    assert len(arm_rows) == 2 * len(tg.ARMS)
    assert v.exit_code(table, strict=True) == 1 and v.exit_code(table, strict=False) == 0
    passing = table[table["id"] == "V1.turnover"]
    assert v.exit_code(passing, strict=True) == 0


def change_arms(arms: list[str], changes: dict[str, list[float]]):
    """Settings of `arms` and synthetic results whose spine and trabecular BMD end at the given
    per-seed changes (points); each arm has as many seeds as it has changes."""
    settings = v.arm_scenarios(arms, seeds=1, quick=False)
    results = {}
    for arm, values in changes.items():
        scenario = settings.scenarios[arm]
        years = synthetic(scenario, 0.0)["day"].iloc[-1] / DAYS_PER_YEAR
        for seed, value in enumerate(values):
            results[arm, seed] = synthetic(scenario, value / years)
    return settings, results


def test_a_target_uses_the_seeds_all_its_arms_have():
    """V4B has 4 seeds, V4C 2: V4b reads 4, V4c and the paired V4c.vs_placebo the first 2."""
    settings, results = change_arms([tg.V4B, tg.V4C], {tg.V4B: [-1.0, -2.0, -3.0, -4.0],
                                                       tg.V4C: [1.0, 3.0]})
    targets = tg.select(["V4b", "V4c"])
    table = v.evaluate(targets, settings, results)
    rows = v.summary(table).set_index(["level", "id"])
    assert rows.loc[("target", "V4b"), "n"] == 4
    assert rows.loc[("target", "V4c"), "n"] == rows.loc[("target", "V4c.vs_placebo"), "n"] == 2
    assert rows.loc[("target", "V4c.vs_placebo"), "mean"] == pytest.approx(
        TRABECULAR * np.mean([1.0 + 1.0, 3.0 + 2.0]))
    header = {"when": "now", "version": "0", "git": "x", "workers": 1, "wall_s": 0.0}
    text = v.report(table, targets, settings, header)
    assert f"2 to 4 replicate seeds per arm ({tg.V4C} 2, {tg.V4B} 4)" in text
    assert next(l for l in text.splitlines() if l.startswith("| V4c.vs_placebo |")).split(
        " | ")[6] == "2"


def test_seeds_for_is_the_fewest_seeds_that_reach_the_half_width():
    """SD sqrt(20/3) = 2.582 and a half-width of 1: t(0.975, 27) x 2.582 / sqrt(28) = 1.001,
    t(0.975, 28) x 2.582 / sqrt(29) = 0.982, so 29 seeds."""
    assert v.seeds_for(np.sqrt(20 / 3), 1.0) == 29
    for sd, half in [(1.0, 1.0), (4.9, 1.0), (0.3, 2.0)]:
        n = int(v.seeds_for(sd, half))
        assert n == 2 or t_half(sd, n - 1) > half
        assert t_half(sd, n) <= half
    assert v.seeds_for(1.0, 0.0) == np.inf


def t_half(sd: float, n: int) -> float:
    return stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)


def test_more_seeds_asks_the_count_the_spread_predicts():
    """Four seeds at 0, 2, 4, 6 points (SD 2.582, 95% half-width 4.11): one point takes 29
    seeds (`seeds_for`), 4 points one more seed, 4.2 points none."""
    settings, results = change_arms([tg.V7], {tg.V7: [0.0, 2.0, 4.0, 6.0]})
    targets = tg.select(["V7"])
    table = v.evaluate(targets, settings, results)
    counts = {tg.V7: 4}
    assert v.more_seeds(table, targets, counts, 1.0, 128) == {tg.V7: 29}
    assert v.more_seeds(table, targets, counts, 1.0, 20) == {tg.V7: 20}
    assert v.more_seeds(table, targets, counts, 4.0, 128) == {tg.V7: 5}
    assert v.more_seeds(table, targets, counts, 4.2, 128) == {}
    assert v.more_seeds(table, targets, counts, 1.0, 4) == {}
    results[tg.V7, 3] = results[tg.V7, 3].assign(**{tg.BMD: np.nan})
    table = v.evaluate(targets, settings, results)
    assert v.more_seeds(table, targets, counts, 1.0, 128) == {}   # no interval to narrow


def test_more_seeds_raises_every_arm_of_a_target_to_the_most_any_target_asks():
    """V4b (arm V4B) is wide, V4c.vs_placebo (V4C - V4B, paired) is narrower: V4B gets what
    V4b asks, V4C what the paired target asks, and both at least one more seed."""
    v4b = [0.0, 4.0, 8.0]
    v4c = [x + d for x, d in zip(v4b, (0.0, 0.4, 0.8))]
    settings, results = change_arms([tg.V4B, tg.V4C], {tg.V4B: v4b, tg.V4C: v4c})
    counts = {tg.V4B: 3, tg.V4C: 3}
    table = v.evaluate(tg.select(["V4b", "V4c.vs_placebo"]), settings, results)
    more = v.more_seeds(table, tg.select(["V4b", "V4c.vs_placebo"]), counts, 1.0, 128)
    alone = {t: v.more_seeds(table, tg.select([t]), counts, 1.0, 128)
             for t in ("V4b", "V4c.vs_placebo")}
    assert alone["V4c.vs_placebo"][tg.V4B] == alone["V4c.vs_placebo"][tg.V4C] > 3
    assert more == {tg.V4B: alone["V4b"][tg.V4B], tg.V4C: alone["V4c.vs_placebo"][tg.V4C]}
    assert more[tg.V4B] > more[tg.V4C]


QCT_TARGETS = {"V4a", "V4b", "V4c", "V4c.vs_placebo", "V6"}  # Prior 1990, 1994; TTrials
DXA_TARGETS = {"V1.drift", "V2.yr0-2", "V2.yr2-7", "V3a", "V3b", "V3c", "V3c.above_V3b", "V3d",
               "V3e", "V3f", "V5.oral", "V5.cream", "V7"}


def test_each_statistic_reads_the_measure_of_its_trial():
    """Moving one BMD column (trabecular vBMD or spine DXA-like) moves exactly the statistics
    that read it: the QCT trials' trabecular vBMD, the DXA trials' spine BMD, and no other."""
    settings = v.arm_scenarios(tg.ARMS, seeds=1, quick=False)
    rate = {arm: -1.0 - 0.5 * k for k, arm in enumerate(tg.ARMS)}    # %/yr: every arm loses
    steer = {arm: -0.1 * (k + 1) for k, arm in enumerate(tg.ARMS)}   # %/yr, distinct per arm

    def statistics(moved: str | None) -> dict[str, float]:
        arms = {}
        for arm, scenario in settings.scenarios.items():
            frame = synthetic(scenario, rate[arm], turnover_pct_per_yr=lambda y: 20.0 + 0 * y,
                              activation_frequency_per_yr=lambda y: 0.2 + 0.2 * (y > 3.5))
            frame.attrs["remodeling"] = {"resorption_days": 20.0, "formation_days": 120.0,
                                         "erosion_depth_um": 45.0,
                                         "osteoclast_lifespan_days": 14.0,
                                         "osteoblast_lifespan_days": 90.0}
            if moved:
                frame[moved] += steer[arm] * frame["day"] / DAYS_PER_YEAR
            arms[arm] = tg.Arm(frame, scenario)
        return {t.id: t.compute(arms) for t in tg.TARGETS}

    base = statistics(None)
    moved = {column: statistics(column) for column in tg.MEASURES}
    reads = {t.id: {c for c in tg.MEASURES if moved[c][t.id] != pytest.approx(base[t.id])}
             for t in tg.TARGETS}
    assert {i for i, r in reads.items() if r == {tg.VBMD}} == QCT_TARGETS
    assert {i for i, r in reads.items() if r == {tg.BMD}} == DXA_TARGETS
    for t in tg.TARGETS:
        assert reads[t.id] == ({t.measure} if t.measure else set()), t.id
        named = [c for c, name in tg.MEASURES.items() if name in t.statistic]
        assert named == ([t.measure] if t.measure else []), t.id


def test_report_and_figure_show_the_measure_of_each_trial():
    """validation.md names each target's measure; each figure panel draws the measure of its
    trial's targets (the one its published marks are in)."""
    settings = v.arm_scenarios(tg.ARMS, seeds=1, quick=False)
    results = {(arm, 0): synthetic(s, -1.0) for arm, s in settings.scenarios.items()}
    table = v.evaluate(tg.TARGETS, settings, results)
    header = {"when": "now", "version": "0", "git": "x", "workers": 1, "wall_s": 0.0}
    lines = v.report(table, tg.TARGETS, settings, header).splitlines()
    for t in tg.TARGETS:
        cells = next(line for line in lines if line.startswith(f"| {t.id} |")).split(" | ")
        assert cells[3] == tg.MEASURES.get(t.measure, ""), t.id
    fig = v.figure(v.series_table(settings, results), settings.scenarios)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert len(panels) == len(tg.TRIALS)
    for title, arms, measure in tg.TRIALS:
        assert {t.measure for t in tg.TARGETS if set(t.arms) & set(arms) and t.measure} == {measure}
        ax = panels[title]
        assert tg.MEASURES[measure] in ax.get_ylabel()
        np.testing.assert_allclose(ax.lines[0].get_ydata(), results[arms[0], 0][measure])


def test_bad_requests_exit_2(tmp_path, capsys):
    assert main(["validate", "--only", "V99", "--out", str(tmp_path)]) == 2
    assert "V99" in capsys.readouterr().err
    assert main(["validate", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert main(["validate", "--size", "8", "--out", str(tmp_path)]) == 2
    assert "tissue.size" in capsys.readouterr().err
    assert main(["validate", "--dt", "30", "--out", str(tmp_path)]) == 2
    assert "simulation.dt" in capsys.readouterr().err
    for args in (["--precision", "0"], ["--precision", "1", "--seeds", "1"],
                 ["--precision", "1", "--seeds", "8", "--max-seeds", "4"]):
        assert main(["validate", *args, "--out", str(tmp_path)]) == 2
        assert "--precision must be > 0" in capsys.readouterr().err
    assert main(["validate", "--max-seeds", "40", "--out", str(tmp_path)]) == 2
    assert "it needs --precision" in capsys.readouterr().err
    assert main(["validate", "--precision", "1", "--from", str(tmp_path), "--out",
                 str(tmp_path)]) == 2
    assert "--from simulates nothing" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything ran or was written


# ---------------------------------------------------------------- bonesim validate --quick


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    rc = main(["validate", *quick(), "--out", str(out)])
    return out, rc


@pytest.mark.slow
def test_quick_run_writes_every_file(quick_run):
    out, rc = quick_run
    assert rc == 0  # not --strict: failing targets do not fail the command
    for name in ("validation.md", "validation.parquet", "validation_series.parquet", "validation.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "validation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_parquet(out / "validation_series.parquet").groupby(["arm", "seed"]).ngroups
    assert len(list((out / ".partial").glob("*.parquet"))) == runs      # kept for a rerun
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_every_target_in_report_and_parquet(quick_run):
    out, _ = quick_run
    report = (out / "validation.md").read_text()
    table = pd.read_parquet(out / "validation.parquet")
    ids = [t.id for t in tg.TARGETS]
    reported = re.findall(r"^\| (V\d+[a-f]?(?:\.\S+)?) \|", report, flags=re.M)
    assert reported == ids
    assert sorted(table.query("level == 'target'")["id"].unique()) == sorted(ids)
    counts = table.groupby(["level", "id", "quantity"])["seed"].apply(sorted)
    assert all(seeds == list(range(QUICK_SEEDS)) for seeds in counts)
    assert set(table.query("level == 'arm'")["id"]) == set(tg.ARMS)
    assert {re.match(r"V\d+[a-f]?", i).group(0) for i in reported} == {t.row for t in tg.TARGETS}


@pytest.mark.slow
def test_statistics_recomputed_from_per_seed_values(quick_run):
    out, _ = quick_run
    table = pd.read_parquet(out / "validation.parquet")
    report = (out / "validation.md").read_text()
    for (level, ident, _), group in table.groupby(["level", "id", "quantity"]):
        x = group.sort_values("seed")["value"].to_numpy()
        first = group.iloc[0]
        if not np.all(np.isfinite(x)):
            assert np.isnan(first["mean"])
            continue
        assert first["mean"] == pytest.approx(x.mean())
        if np.std(x) > 0:
            lo, hi = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
            assert (first["ci95_lo"], first["ci95_hi"]) == pytest.approx((lo, hi))
        if level == "target":
            t = next(t for t in tg.TARGETS if t.id == ident)
            assert bool(first["passed"]) == t.passes(x.mean())
            line = next(l for l in report.splitlines() if l.startswith(f"| {ident} |"))
            assert f"{x.mean():.2f}".lstrip("-") in line
            assert ("| pass |" in line) == t.passes(x.mean())


@pytest.mark.slow
def test_per_seed_values_recomputed_from_series(quick_run):
    """Statistics recomputed by hand from validation_series.parquet (last output = end)."""
    out, _ = quick_run
    table = pd.read_parquet(out / "validation.parquet").query("level == 'target'")
    values = table.set_index(["id", "seed"])["value"]
    series = pd.read_parquet(out / "validation_series.parquet")
    last = series.sort_values("day").groupby(["arm", "seed"]).last()
    end, end_vbmd = last[tg.BMD], last[tg.VBMD]
    for s in range(QUICK_SEEDS):
        p = tg.PEPI
        assert values["V3a", s] == pytest.approx(end[p[0], s])
        e_plus_p = np.mean([end[a, s] for a in p[2:]])
        years = last.loc[(p[1], s), "day"] / DAYS_PER_YEAR
        assert values["V3f", s] == pytest.approx((e_plus_p - end[p[1], s]) / years)
        assert values["V6", s] == pytest.approx(end_vbmd[tg.V6T, s] - end_vbmd[tg.V6U, s])
        assert values["V4c.vs_placebo", s] == pytest.approx(end_vbmd[tg.V4C, s]
                                                            - end_vbmd[tg.V4B, s])
        v1 = series[(series["arm"] == tg.V1) & (series["seed"] == s)]
        years_v1 = v1["day"] / DAYS_PER_YEAR
        assert values["V1.drift", s] == pytest.approx(np.polyfit(years_v1, v1[tg.BMD], 1)[0])


def plant(out: Path, frames: dict[int, pd.DataFrame]) -> None:
    """Put finished V7 runs into OUT/.partial, as an interrupted validation would leave them."""
    settings = v.arm_scenarios([tg.V7], QUICK_SEEDS, quick=True, size=SIZE, dt=DT)
    jobs = {job.name: job for job in v.arm_jobs(settings)}
    for index, frame in frames.items():
        Store(out / ".partial").save(jobs[f"{tg.V7}-{index:03d}"], frame)


def v7_values(out: Path) -> pd.Series:
    """V7's statistic per seed in the validation.parquet of OUT."""
    table = pd.read_parquet(out / "validation.parquet")
    return table.query("id == 'V7'").set_index("seed")["value"]


def v7_frames(quick_run) -> dict[int, pd.DataFrame]:
    series = pd.read_parquet(quick_run[0] / "validation_series.parquet")
    return {s: g.drop(columns=["arm", "seed"]).reset_index(drop=True)
            for s, g in series[series["arm"] == tg.V7].groupby("seed")}


@pytest.mark.slow
def test_resume_reuses_finished_runs(quick_run, tmp_path):
    frames = v7_frames(quick_run)
    plant(tmp_path, {0: frames[0].assign(**{tg.BMD: frames[0][tg.BMD] + 100.0})})
    assert main(["validate", *quick(2), "--only", "V7", "--out", str(tmp_path)]) == 0
    old, new = v7_values(quick_run[0]), v7_values(tmp_path)
    assert new[0] == pytest.approx(old[0] + 100.0)  # the planted run was used, not recomputed
    assert new[1] == pytest.approx(old[1], rel=1e-9, abs=1e-9)  # simulated again: same result


@pytest.mark.slow
def test_a_finished_validation_run_again_with_more_seeds_simulates_only_those(quick_run, tmp_path):
    """A finished validation keeps its runs: run again into the same directory with one seed
    more, it reads the runs it has (a stored run altered after the finish is read as altered)
    and simulates only the new seed."""
    shutil.copytree(quick_run[0], tmp_path, dirs_exist_ok=True)
    index = 0
    frame = v7_frames(quick_run)[index]
    plant(tmp_path, {index: frame.assign(**{tg.BMD: frame[tg.BMD] + 100.0})})
    more = QUICK_SEEDS + 1
    assert main(["validate", *quick(more), "--only", "V7", "--out", str(tmp_path)]) == 0
    old, new = v7_values(quick_run[0]), v7_values(tmp_path)
    assert new[index] == pytest.approx(old[index] + 100.0)
    assert sorted(new.index) == list(range(more))
    assert len(list((tmp_path / ".partial").glob(f"{tg.V7}-*.parquet"))) == more


@pytest.mark.slow
def test_precision_adds_seeds_after_the_planted_ones(quick_run, tmp_path):
    """Two planted V7 runs 10 points apart are too wide for a half-width of 1 point: the run
    adds seeds up to --max-seeds 3, reusing the planted two and simulating only the third."""
    frames = v7_frames(quick_run)
    plant(tmp_path, {s: frames[s].assign(**{tg.BMD: frames[s][tg.BMD] + 10.0 * s})
                     for s in range(2)})
    args = ["validate", *quick(2), "--only", "V7", "--precision", "1", "--max-seeds", "3"]
    assert main(args + ["--out", str(tmp_path)]) == 0
    values = v7_values(tmp_path)
    assert sorted(values.index) == [0, 1, 2]
    end = {s: frames[s][tg.BMD].iloc[-1] for s in range(2)}
    assert values[1] - values[0] == pytest.approx(end[1] + 10.0 - end[0])   # planted, reused
    text = (tmp_path / "validation.md").read_text()
    assert "exceeded 1, in its units, up to 3 per arm" in text
    assert "| 3 | pass |" in text or "| 3 | FAIL |" in text
    assert re.search(r"still wider than 1 \(.*\): V7 \(\d+\.\d+, 3 seeds\)", text)
    series = pd.read_parquet(tmp_path / "validation_series.parquet")
    assert sorted(series["seed"].unique()) == [0, 1, 2]
    again = tmp_path / "again"
    assert main(["validate", *quick(2), "--only", "V7", "--from", str(tmp_path), "--out",
                 str(again)]) == 0       # --from reads every seed the run holds
    pd.testing.assert_series_equal(v7_values(again), values)


@pytest.mark.slow
@pytest.mark.parametrize("bmd, strict, rc", [(0.0, True, 0), (100.0, True, 1), (100.0, False, 0)])
def test_strict_exit_code(quick_run, tmp_path, bmd, strict, rc):
    """V7 (<= +2%) passes with BMD unchanged and fails at +100%; only --strict turns a failure
    into exit status 1. Every run is planted, so nothing is simulated."""
    plant(tmp_path, {s: f.assign(**{tg.BMD: bmd}) for s, f in v7_frames(quick_run).items()})
    args = ["validate", *quick(), "--only", "V7", "--out", str(tmp_path)]
    assert main(args + ["--strict"] * strict) == rc
    report = (tmp_path / "validation.md").read_text()
    assert ("| V7 |" in report) and (("| pass |" in report) == (bmd == 0.0))


# ---------------------------------------------------------------- calibration procedure


def test_calibration_touches_only_v1_cell_parameters():
    from bonesim.experiments import calibrate as cal

    for knob in cal.KNOBS:
        assert knob.target.startswith("V1.")
        assert all(key.startswith("cells.") and key in cal.all_parameters() for key in knob.keys)
        low, high = next(t for t in tg.TARGETS if t.id == knob.target).band
        assert low <= knob.goal <= high


def test_solve_reaches_goal_inside_the_documented_range():
    from bonesim.experiments import calibrate as cal

    params = cal.all_parameters()
    knob = cal.KNOBS[2]  # turnover: two keys moved by one factor
    values = {k: params[k].value for k in knob.keys}
    room = min(params[k].range[1] / values[k] for k in knob.keys)   # largest factor allowed
    start = knob.goal / np.sqrt(room) ** 0.8    # the goal needs a factor sqrt(room)
    calls = []

    def turnover(trial):  # a response ~ activation^0.8, below the goal at the current values
        calls.append(trial)
        factor = trial[knob.keys[0]] / values[knob.keys[0]]
        return {knob.target: start * factor ** 0.8}

    out = cal.solve(knob, values, turnover, log=lambda *_: None)
    factor = out[knob.keys[0]] / values[knob.keys[0]]
    assert start * factor ** 0.8 == pytest.approx(knob.goal, abs=knob.tolerance)
    assert out[knob.keys[1]] / values[knob.keys[1]] == pytest.approx(factor)
    assert len(calls) <= 4
    drift = cal.KNOBS[3]  # additive response; and a goal beyond the range stops at its edge
    key = drift.keys[0]
    out = cal.solve(drift, {key: params[key].value},
                    lambda t: {drift.target: -5.0 + 0.1 * t[key] / params[key].value},
                    log=lambda *_: None)
    assert out[key] == pytest.approx(params[key].range[1])


def test_write_values_changes_only_the_values(tmp_path):
    from bonesim.experiments import calibrate as cal

    source = cal.PARAMETER_DIR / "cells.toml"
    (tmp_path / "cells.toml").write_text(source.read_text())
    keys = [k for knob in cal.KNOBS for k in knob.keys]
    cal.write_values({k: 1.2345 for k in keys}, tmp_path)
    old, new = source.read_text().splitlines(), (tmp_path / "cells.toml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(old) == len(new) and len(changed) == len(keys)
    for a, b in changed:
        assert re.sub(r"value = [^,]+", "", a) == re.sub(r"value = [^,]+", "", b)
        assert "value = 1.234," in b or "value = 1.235," in b


def test_calibrate_only_the_chosen_knobs():
    """`--only V1.turnover` moves the turnover knob's parameters and nothing else."""
    from bonesim.experiments import calibrate as cal

    turnover = next(k for k in cal.KNOBS if k.target == "V1.turnover")
    base = {k: cal.all_parameters()[k].value for k in turnover.keys}

    def evaluate(trial):  # turnover ~ the knob's factor, 20 %/yr at the current values
        factor = trial[turnover.keys[0]] / base[turnover.keys[0]]
        return {k.target: k.goal for k in cal.KNOBS} | {turnover.target: 20.0 * factor}

    out = cal.calibrate(evaluate, passes=1, knobs=(turnover,), log=lambda *_: None)
    assert set(out) == set(turnover.keys)
    factor = out[turnover.keys[0]] / base[turnover.keys[0]]
    assert 20.0 * factor == pytest.approx(turnover.goal, abs=turnover.tolerance)
    with pytest.raises(SystemExit):
        cal.main(["--only", "V9.nothing"])


@pytest.mark.slow
def test_from_reevaluates_a_finished_validation_without_simulating(quick_run, tmp_path):
    out, _ = quick_run
    assert main(["validate", *quick(), "--from", str(out), "--out", str(tmp_path)]) == 0
    keys = ["level", "id", "quantity", "seed"]
    before = pd.read_parquet(out / "validation.parquet").set_index(keys)["value"]
    after = pd.read_parquet(tmp_path / "validation.parquet").set_index(keys)["value"]
    pd.testing.assert_series_equal(after.sort_index(), before.sort_index())   # V1 summaries too
    assert f"runs read from {out}" in (tmp_path / "validation.md").read_text()
    assert not (tmp_path / ".partial").exists()             # nothing was simulated


def test_from_refuses_a_directory_without_a_finished_validation(tmp_path, capsys):
    assert main(["validate", "--from", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "validation_series.parquet: no such file" in capsys.readouterr().err
