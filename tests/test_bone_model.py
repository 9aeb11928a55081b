"""BoneModel: Mesa integration, readouts, coupling, determinism; V1 baseline and convergence (slow).

Fast tests use a 64 x 64 section and a short spin-up. The slow ones run the V1 scenario
(docs/targets.md) and the dt / dx convergence check; BONESIM_CI=1 gives them a smaller setting.
"""

import dataclasses
import os

import numpy as np
import pytest

from bonesim.agents.lining import LiningCell
from bonesim.agents.osteoblasts import Osteoblast
from bonesim.agents.osteocytes import Osteocyte
from bonesim.agents.population import (
    I_COL, I_ROW, LINING, OSTEOBLAST, OSTEOCYTE, T_FORMED, T_RESORBED, X_CLOCK, X_CLOCK_END,
)
from bonesim.model.bone_model import BoneModel, spinup_key, spinup_length, spinup_scenario
from bonesim.model.fields import FIELD_INDEX
from bonesim.model.parameters import all_parameters, value
from bonesim.model.readouts import remodeling_summary
from bonesim.model.scenario import load_scenario, parse_scenario
from bonesim.model.units import DAYS_PER_YEAR
from bonesim.experiments import targets as tg

CI = os.environ.get("BONESIM_CI") == "1"
SCENARIOS = __import__("pathlib").Path(__file__).resolve().parent.parent / "experiments" / "scenarios"

CONTRACT_COLUMNS = ["day", "bmd_pct_spine", "vbmd_pct_trabecular", "bv_tv", "ctx_rel", "p1np_rel",
                    "serum_e2_pmol_l", "serum_p4_ng_ml", "serum_t_ng_dl", "n_oc_precursors",
                    "n_osteoclasts", "n_ob_precursors", "n_osteoblasts", "n_osteocytes", "n_lining",
                    "rankl_opg_ratio", "activation_frequency_per_yr", "remodeling_space_pct",
                    "turnover_pct_per_yr", "bv_rs_tv", "bone_lost_pct", "lost_perforation_pct",
                    "lost_arrested_pct", "perforations_per_mm2", "bmus_completed", "bmu_balance",
                    "wall_thickness_um", "erosion_depth_um", "tb_th_um", "tb_n_per_mm",
                    "euler_per_mm2", "nodes_per_mm2", "free_ends_per_mm2"]


def scenario(site="spine", size=64, years=0.2, dt=1.0, spacing=10.0, age=35, refinement=1,
             **patient):
    return parse_scenario({
        "name": "t", "patient": {"sex": "female", "age": f"{age} years", **patient},
        "tissue": {"size": [size, size], "spacing": f"{spacing} um", "site": site, "geometry_seed": 1},
        "simulation": {"duration": f"{years} years", "dt": f"{dt} d", "output_every": "7 d",
                       "field_refinement": refinement}})


def run(model, days):
    for _ in range(round(days / model.dt)):
        model.step()
    return model


@pytest.fixture
def overrides():
    """Set parameter values for one test; restored afterwards."""
    table = all_parameters()
    saved = {}

    def set_values(**values):
        for key, v in values.items():
            key = key.replace("__", ".")
            saved.setdefault(key, table[key])
            table[key] = dataclasses.replace(table[key], value=float(v))
    yield set_values
    table.update(saved)


@pytest.fixture(scope="module")
def small():
    """A 64 x 64 section (0.4 mm^2) with a BMU at work: at V1 turnover such a section founds
    ~1 BMU per 200 days, so some seeds (3 and 5 of 3-5) have no osteoclast in the 60 days."""
    return run(BoneModel(scenario(), rng=4, spinup_days=150), 60)


def test_every_cell_is_a_mesa_agent_on_its_grid_cell(small):
    pop = small.population
    for kind, cls in ((OSTEOBLAST, Osteoblast), (OSTEOCYTE, Osteocyte), (LINING, LiningCell)):
        assert len(small.agents_by_type.get(cls, [])) == pop.count(kind)
    assert len(small.agents) == sum(pop.count(k) for k in range(6))
    for agent in list(small.agents)[:200]:
        r, c = pop.ints[I_ROW, agent.slot], pop.ints[I_COL, agent.slot]
        assert agent.cell is small.grid[(int(r), int(c))]
        assert agent in agent.cell.agents


def test_agentset_queries_work(small):
    old = small.agents.select(lambda a: a.age > 30)
    assert 0 < len(old) < len(small.agents)
    assert all(a.age > 30 for a in old)


def test_fields_and_matrix_are_grid_property_layers(small):
    cell = small.grid[(5, 5)]
    assert cell.rankl == small.conc[0, 5, 5]
    assert cell.matrix == small.tissue.matrix[5, 5]


def test_a_dead_cell_leaves_the_grid_and_the_agentset(small):
    agent = next(iter(small.agents_by_type[Osteocyte]))
    cell = agent.cell
    pop = small.population
    pop.flts[X_CLOCK, agent.slot] = pop.flts[X_CLOCK_END, agent.slot] + 1.0
    small.step()
    assert agent not in small.agents
    assert agent not in small.agents_by_type[Osteocyte]
    assert agent.cell is None and agent not in cell.agents


def test_timeseries_has_the_contract_columns(small):
    ts = small.timeseries()
    assert list(ts.columns) == CONTRACT_COLUMNS
    assert ts.day.iloc[0] == 0 and ts.bmd_pct_spine.iloc[0] == 0
    assert np.all(np.diff(ts.day) == 7)
    assert (ts[[c for c in ts.columns if c.startswith("n_")]] >= 0).all().all()
    assert ts.serum_e2_pmol_l.between(20, 3000).all()
    # bone lost for good is what is gone from bone volume plus remodeling space
    bv_rs = ts.bv_rs_tv
    assert ts.bone_lost_pct.iloc[0] == 0
    assert np.allclose(ts.bone_lost_pct, 100 * (1 - bv_rs / bv_rs.iloc[0]))
    assert ts.bv_rs_tv.ge(ts.bv_tv).all()
    assert ts.tb_th_um.between(10, 300).all() and (ts.tb_n_per_mm > 0).all()


def test_architecture_of_known_shapes():
    """Strut analysis and Euler number on hand-drawn bone: a ring is one piece around one
    hole (Euler 0), a plus sign one node and four free ends, parallel plates of width w have
    Tb.Th = w (plate model), and a disk of radius r, drawn in grid cells, 2 BV / BS = r."""
    from bonesim.model.readouts import architecture
    dx = 10.0
    area = 64 * 64 * (dx / 1000) ** 2
    ring = np.zeros((64, 64), bool)
    ring[10:50, 10:50] = True
    ring[20:40, 20:40] = False
    assert architecture(ring, dx)["euler_per_mm2"] == 0.0
    plus = np.zeros((64, 64), bool)
    plus[31:33, 8:56] = plus[8:56, 31:33] = True
    a = architecture(plus, dx)
    assert a["euler_per_mm2"] * area == 1.0
    assert a["free_ends_per_mm2"] * area == 4 and a["nodes_per_mm2"] * area >= 1
    plates = np.zeros((64, 64), bool)
    plates[:, 8:14] = plates[:, 40:46] = True        # 6 cells = 60 um wide, the full height
    a = architecture(plates, dx)
    assert a["tb_th_um"] == pytest.approx(60.0, rel=0.05)
    assert a["tb_n_per_mm"] == pytest.approx(plates.mean() / 60.0 * 1000, rel=0.05)
    assert a["free_ends_per_mm2"] * area == 4 and a["nodes_per_mm2"] == 0
    rows, cols = np.mgrid[:200, :200]
    disk = (rows - 100) ** 2 + (cols - 100) ** 2 < 60 ** 2    # radius 600 um: 2 BV / BS = r
    assert architecture(disk, dx)["tb_th_um"] == pytest.approx(600.0, rel=0.02)
    ring[30, 12] = False                              # a speck of marrow in the bone
    assert architecture(ring, dx)["euler_per_mm2"] == 0.0


def test_despeckle_removes_only_small_enclosed_specks():
    """Enclosed marrow and pieces of bone below the area take the phase around them; larger
    ones, and specks at the section's edge (they run on beyond it), stay."""
    from bonesim.model.readouts import despeckle
    bone = np.ones((20, 20), bool)
    bone[5, 5] = False                                # 1 cell: 100 um^2 at 10 um
    bone[10:12, 10:12] = False                        # 4 cells: 400 um^2
    bone[0, 15] = False                               # one cell, open to the edge
    clean = despeckle(bone, 400.0, 10.0)
    assert clean[5, 5] and not clean[10:12, 10:12].any() and not clean[0, 15]
    assert despeckle(bone, 401.0, 10.0)[10:12, 10:12].all()
    marrow = ~bone
    clean = despeckle(marrow, 400.0, 10.0)            # the same shapes as bone in marrow
    assert not clean[5, 5] and clean[10:12, 10:12].all() and clean[0, 15]


def dxa_scale() -> float:
    """bmd_pct_spine / vbmd_pct_trabecular from the parameter table: f + (1 - f) r."""
    f = value("tissue.dxa.spine_trabecular_fraction")
    return f + (1.0 - f) * value("tissue.dxa.cortical_turnover_ratio")


def test_spine_dxa_reading_is_the_trabecular_one_scaled(small):
    """DXA-like spine BMD = trabecular vBMD x (f + (1 - f) r), row by row; both 0 at day 0."""
    ts = small.timeseries()
    assert ts.bmd_pct_spine.iloc[0] == 0 and ts.vbmd_pct_trabecular.iloc[0] == 0
    assert (ts.vbmd_pct_trabecular.iloc[1:] != 0).all()   # the section's mineral moved
    assert 0.3 < dxa_scale() < 0.6                         # the table: ~0.43
    np.testing.assert_allclose(ts.bmd_pct_spine, dxa_scale() * ts.vbmd_pct_trabecular,
                               rtol=1e-12, atol=0)


def test_hip_site_reports_hip_bmd():
    """At the hip the whole section (with its cortex) is bmd_pct_hip; the spine readings are
    those of the section's trabecular part, by the same formula as at the spine."""
    model = run(BoneModel(scenario(site="hip", size=128), rng=1, spinup_days=30), 14)
    ts = model.timeseries()
    assert "bmd_pct_hip" in ts.columns
    assert ts.bv_tv.iloc[0] < model.tissue.bone.mean()     # BV/TV of the trabecular part
    trabecular = ~model.tissue.cortical
    last = 100.0 * (model.tissue.mineral[trabecular].sum() / model.recorder.mineral0_trab - 1.0)
    assert ts.vbmd_pct_trabecular.iloc[-1] == pytest.approx(last, rel=1e-12)
    assert ts.vbmd_pct_trabecular.iloc[-1] != pytest.approx(ts.bmd_pct_hip.iloc[-1])
    np.testing.assert_allclose(ts.bmd_pct_spine, dxa_scale() * ts.vbmd_pct_trabecular, rtol=1e-12)


def test_same_seed_same_run_other_seed_other_run():
    a = run(BoneModel(scenario(), rng=7, spinup_days=60), 30).timeseries()
    b = run(BoneModel(scenario(), rng=7, spinup_days=60), 30).timeseries()
    c = run(BoneModel(scenario(), rng=8, spinup_days=60), 30).timeseries()
    assert a.equals(b)
    assert not a.equals(c)


def test_the_arms_of_a_trial_share_one_spinup(overrides):
    """A model that takes its spun-up tissue from `spinups`, where an arm under another protocol
    put it, steps exactly like one spun up alone, with its own arrays, grid and agents; the key
    tells apart what a spin-up depends on (seed, length, patient, parameters), not the
    protocol."""
    small_arm = {"tissue.size": [48, 48], "simulation.duration": "0.1 years"}
    placebo, treated = (load_scenario(SCENARIOS / f"{name}.toml", small_arm)
                        for name in ("v3a_pepi_placebo", "v3b_pepi_cee"))
    spinups = {}
    first = BoneModel(placebo, rng=3, spinup_days=60, spinups=spinups)
    shared = BoneModel(treated, rng=3, spinup_days=60, spinups=spinups)
    alone = BoneModel(treated, rng=3, spinup_days=60)
    assert len(spinups) == 1
    for model in (shared, alone):
        run(model, 30)
    assert shared.timeseries().equals(alone.timeseries())
    assert state_digest(shared) == state_digest(alone)
    assert shared.spec == treated and not np.shares_memory(shared.conc, first.conc)
    assert np.shares_memory(shared.grid.rankl.data, shared.conc)
    for agent in list(shared.agents)[:300]:
        assert agent.model is shared and agent.cell is shared.grid[agent.position]
        assert agent in agent.cell.agents
    key = spinup_key(placebo, 3, 60.0)
    older = placebo.patient.model_copy(update={"age": placebo.patient.age + 1})
    assert key == spinup_key(treated, 3, 60.0)
    assert key not in (spinup_key(placebo, 4, 60.0), spinup_key(placebo, 3, 61.0),
                       spinup_key(placebo.model_copy(update={"patient": older}), 3, 60.0))
    overrides(cells__osteoblast__lifespan=80.0)
    assert spinup_key(placebo, 3, 60.0) != key
    with pytest.raises(TypeError, match="needs a seed"):
        BoneModel(placebo, rng=np.random.default_rng(3), spinups=spinups)


def test_solver_tolerance_bounds_the_field_error_in_the_running_model():
    """Each day's fields, solved at the default tolerance (fields.solver.tolerance), lie within
    a few tolerances of a tight solve from the same state, relative to each field's maximum,
    through a menstrual cycle (the steroid fields jump, the cytokines follow the cells), and
    within 1% whatever the table sets: half the 2% to which the serum course is resolved."""
    tol = value("fields.solver.tolerance")
    model = BoneModel(scenario(), rng=3)
    solver, solve = model.solver, model.solver.step
    worst = np.zeros(solver.n_fields)     # the transported fields (the hormones are profiles)

    def compare(conc, *args, **kwargs):
        loose = conc.copy()
        solve(loose, *args, **kwargs)
        solver.tol = 1e-10
        solve(conc, *args, **kwargs)
        solver.tol = tol
        error = np.abs(loose - conc).max(axis=(1, 2)) / np.maximum(conc.max(axis=(1, 2)), 1e-300)
        np.maximum(worst, error, out=worst)

    solver.step = compare
    run(model, 30)
    assert 0 < worst.max() < min(5 * tol, 0.01)


def test_a_finer_field_mesh_reads_the_same_fields():
    """One step from the same state (no spin-up: the same cells secrete the same sources), the
    fields solved on the lattice and on a mesh twice finer (simulation.field_refinement), as
    the marrow cells read them: within a few % of each field's maximum there (the lattice's
    discretization error, see tests/test_fields.py; measured <= 1.5%), steroids within 0.5%
    (vessels exchange with weight 1/2 on the finer mesh, so the tissue level stays at the
    serum's). Inside the matrix, where diffusion is 50-500x slower, osteocytes' secretions
    make peaks one lattice cell wide that the lattice resolves only to ~10-20%; cells there
    read hormones only."""
    coarse = run(BoneModel(scenario(), rng=5, spinup_days=0), 1)
    fine = run(BoneModel(scenario(refinement=2), rng=5, spinup_days=0), 1)
    assert fine.solver.shape == (128, 128) and fine.conc.shape == coarse.conc.shape
    assert np.array_equal(coarse.population.ints, fine.population.ints)   # same cells
    marrow = ~coarse.tissue.matrix_mask()
    scale = np.maximum(coarse.conc[:, marrow].max(axis=1), 1e-300)
    error = np.abs(fine.conc - coarse.conc)[:, marrow].max(axis=1) / scale
    print("largest difference / maximum in the marrow:", np.round(error, 4))
    steroids = [FIELD_INDEX[name] for name in ("e2", "p4", "t")]
    assert error.max() < 0.05
    assert error[steroids].max() < 0.005


def test_no_tgfb_release_no_coupled_formation(overrides):
    """Formation follows resorption only through matrix TGF-beta: without its release (and
    without TGF-beta-independent recruitment) no osteoblast lineage reaches the bone."""
    overrides(cells__matrix__tgfb_content=0.0, cells__ob_precursor__recruitment_basal=0.0)
    model = BoneModel(scenario(), rng=2, spinup_days=150)
    assert model.population.count(OSTEOBLAST) == 0
    assert model.tally[T_FORMED] == 0.0


def test_with_tgfb_release_formation_follows_resorption(small):
    assert small.tally[T_RESORBED] > 0
    assert small.timeseries().n_osteoblasts.max() > 0
    assert small.tally[T_FORMED] > 0


def test_markers_without_a_baseline_are_undefined_not_infinite(overrides):
    """A section with no resorption in the baseline window has no CTX baseline: its relative
    marker is NaN (undefined), never inf."""
    overrides(cells__oc_precursor__recruitment=0.0)
    ts = run(BoneModel(scenario(), rng=2, spinup_days=60), 28).timeseries()
    assert ts.n_osteoclasts.max() == 0
    assert ts.ctx_rel.iloc[1:].isna().all()
    assert np.isfinite(ts.p1np_rel.dropna()).all()


def test_spinup_covers_a_womans_own_menopausal_transition():
    """The spin-up reaches a steady state (tissue.spinup.days), then lives through the years
    since a woman's menopausal transition began (one transition duration before her FMP), at
    most tissue.spinup.history_max of them; a man, or a woman before her transition, has the
    steady-state spin-up only."""
    base = value("tissue.spinup.days")
    transition = value("endocrine.menopause.transition_duration") * DAYS_PER_YEAR
    man = parse_scenario({"name": "m", "patient": {"sex": "male", "age": "70 years"}})
    assert spinup_length(man) == base
    assert spinup_length(scenario(age=35)) == base
    assert spinup_length(scenario(age=48, fmp_age="50 years")) == base
    five_years_after = scenario(age=55, fmp_age="50 years")
    days = spinup_length(five_years_after)
    assert days == pytest.approx(base + 5 * DAYS_PER_YEAR + transition)
    before = spinup_scenario(five_years_after, days).patient
    assert before.final_period_age - before.age == pytest.approx(
        transition / DAYS_PER_YEAR + base / DAYS_PER_YEAR)
    assert spinup_length(scenario(age=80, fmp_age="50 years")) == \
        base + value("tissue.spinup.history_max")


def test_a_postmenopausal_tissue_starts_with_the_bone_its_transition_lost():
    """Same sections and seeds: women 6 years past their FMP start day 0 with less bone than
    premenopausal ones, because their spin-up lived through the transition. Pooled over three
    seeds: one 64^2 section's loss ranges 6-18%."""
    pre = [BoneModel(scenario(age=40), rng=seed).tissue.bone.sum() for seed in (3, 4, 5)]
    post = [BoneModel(scenario(age=56, fmp_age="50 years"), rng=seed).tissue.bone.sum()
            for seed in (3, 4, 5)]
    assert sum(post) < 0.9 * sum(pre)


def test_estrogen_loss_raises_rankl_over_opg():
    """Quick mechanism check: the same woman pre- and postmenopausal (same tissues and seeds):
    estrogen lowers RANKL and raises OPG expression, so RANKL/OPG rises without it. Pooled
    over three seeds: one 30-day section ranges 1.2-2.8x with its BMUs."""
    pre, post = [], []
    for seed in (4, 5, 6):
        pre.append(run(BoneModel(scenario(years=0.2), rng=seed, spinup_days=60), 30).timeseries())
        post.append(run(BoneModel(scenario(years=0.2, age=60), rng=seed, spinup_days=60),
                        30).timeseries())

    def mean(runs, column):
        return np.mean([ts[column].mean() for ts in runs])

    assert mean(post, "serum_e2_pmol_l") < 0.2 * mean(pre, "serum_e2_pmol_l")
    assert mean(post, "rankl_opg_ratio") > 1.5 * mean(pre, "rankl_opg_ratio")


# -------------------------------------------------------------------------- slow checks
def v1_setting():
    """V1 scenario; CI: 2 years on a 160 x 160 section, full: the scenario's 5 years."""
    sc = load_scenario(SCENARIOS / "v1_premenopausal.toml")
    if CI:
        sc = sc.model_copy(update={
            "simulation": sc.simulation.model_copy(update={"duration": 2.0}),
            "tissue": sc.tissue.model_copy(update={"size": (160, 160)})})
    return sc


@pytest.fixture(scope="module")
def v1_measured():
    """V1's quantities of the targets table (experiments/targets.py), mean over seeds. CI runs
    2 seeds of a 160^2 section for 2 years instead of 3 seeds of 256^2 for 5 years."""
    sc = v1_setting()
    seeds = (1, 2) if CI else (1, 2, 3)
    slopes, turnover, summaries = [], [], []
    for seed in seeds:
        model = run(BoneModel(sc, rng=seed), sc.days)
        ts = model.timeseries()
        slopes.append(np.polyfit(ts.day / DAYS_PER_YEAR, ts.bmd_pct_spine, 1)[0])
        turnover.append(ts.turnover_pct_per_yr.iloc[1:].mean())
        summaries.append(remodeling_summary(model))
    mean = {k: np.nanmean([s[k] for s in summaries]) for k in summaries[0]}
    return {"V1.drift": np.mean(slopes), "V1.turnover": np.mean(turnover),
            "V1.resorption": mean["resorption_days"], "V1.formation": mean["formation_days"],
            "V1.erosion_depth": mean["erosion_depth_um"],
            "V1.oc_lifespan": mean["osteoclast_lifespan_days"],
            "V1.ob_lifespan": mean["osteoblast_lifespan_days"]}


V1_OPEN = {"V1.formation": "finite teams refill the model's shallow cavities (E.De ~18 um, "
                           "40-60 um in patients) in ~80-90 days, at the band's lower edge; "
                           "deeper cavities are the fix",
           "V1.erosion_depth": "a BMU resorbs about one osteoclast's capacity (~2,300 um^2) over "
                               "~120 um of surface, so E.De stays near 18 um however the "
                               "osteoclast moves (experiments/reports/bmu_depth.md)"}


@pytest.mark.slow
@pytest.mark.parametrize("target_id", [
    pytest.param(i, marks=pytest.mark.xfail(reason=V1_OPEN[i], strict=True)) if i in V1_OPEN
    else i for i in ("V1.drift", "V1.turnover", "V1.resorption", "V1.formation",
                     "V1.erosion_depth", "V1.oc_lifespan", "V1.ob_lifespan")])
def test_v1_premenopausal_baseline_is_stable(v1_measured, target_id):
    """V1 against its row of the targets table, the band as published; only CI's smaller
    setting has CI_ALLOWANCE on the drift and the resorption period, labelled so. A row the
    model misses for a known reason is an expected failure that states it (V1_OPEN)."""
    target, = tg.select([target_id])
    low, high = target.band
    extra = CI_ALLOWANCE.get(target_id, 0.0) if CI else 0.0
    assert low - extra <= v1_measured[target_id] <= high + extra, v1_measured[target_id]


# CI allowances on V1 bands: CI's 2 seeds of a 160^2 section over 2 years give a noisier drift
# [%/yr] than the full 3 seeds of 256^2 over 5 years, and a resorption period [days] whose
# median per seed spreads with SD ~1.5 days (128^2 x 16 seeds: 15.0 [14.3, 15.8] days, on
# the band's lower edge; CI's seeds 1 and 2 give 14.5 and 13.0)
CI_ALLOWANCE = {"V1.drift": 0.5, "V1.resorption": 2.0}


@pytest.fixture(scope="module")
def pre_and_post():
    """The same section and seeds, a premenopausal and a postmenopausal woman (paired by seed:
    common random numbers): per seed, the trabecular vBMD change [points], the erosion depth
    [um] and the balance of the completed BMUs, their number, and the bone lost for good
    (bone volume plus remodeling space) [% of day 0]. Both tissues have the steady-state spin-up
    (tissue.spinup.days), not the postmenopausal woman's history since her transition, so that
    they differ in their hormones alone."""
    years, size, seeds = (1.0, 128, (1, 2)) if CI else (2.0, 192, (1, 2, 3))
    spinup = value("tissue.spinup.days")
    out = {}
    for label, patient in (("pre", {"age": 35}), ("post", {"age": 58, "fmp_age": "50 years"})):
        sc = scenario(size=size, years=years, **patient)
        rows = []
        for seed in seeds:
            model = run(BoneModel(sc, rng=seed, spinup_days=spinup), sc.days)
            summary = remodeling_summary(model)
            rows.append((model.timeseries().vbmd_pct_trabecular.iloc[-1],
                         summary["erosion_depth_um"], summary["bmu_balance"],
                         summary["bmus_completed"], model.timeseries().bone_lost_pct.iloc[-1]))
        out[label] = np.array(rows)
    return out


@pytest.mark.slow
def test_menopause_lowers_bmu_balance_and_loses_more_bone(pre_and_post):
    """Bone lost for good, not vBMD: over CI's year the vBMD of the postmenopausal tissue
    also carries the maturing mineral of its young bone (128^2, seeds 1-4: bone lost for good
    1.2-3.3% against -0.7-0.0% premenopausal, vBMD -2.4 to +2.9 points in both)."""
    pre, post = pre_and_post["pre"], pre_and_post["post"]
    assert (post[:, 4] - pre[:, 4]).mean() > 1.0, pre_and_post        # % of day-0 bone
    assert np.nanmean(post[:, 2]) < np.nanmean(pre[:, 2]), pre_and_post


@pytest.mark.slow
@pytest.mark.skipif(CI, reason="a year of 128^2 completes 8-19 BMUs per seed, so one seed's "
                    "erosion depth spreads 20-33 um: the paired pre/post difference has a "
                    "standard error of ~2.5 um at six seeds against the 1.2 um asked (seeds 1-2 "
                    "gave +2% and +14% on two realizations); the full setting decides it")
@pytest.mark.xfail(strict=True, reason="the model's postmenopausal BMUs resorb more over a "
                   "longer trench, not deeper (experiments/reports/bmu_depth.md): at 192^2 for 2 "
                   "years, pre 24.7 and post 25.2 um over seeds 1-6 (+2.2%, paired standard "
                   "error 1.3%), +4.2% over seeds 1-3")
def test_menopause_deepens_cavities(pre_and_post):
    """Estrogen deficiency deepens cavities (longer-lived, more active osteoclasts; Eriksen,
    Parfitt; docs/biology.md section 1): the mean erosion depth rises by at least 5%."""
    pre, post = pre_and_post["pre"], pre_and_post["post"]
    assert np.nanmean(post[:, 1]) > 1.05 * np.nanmean(pre[:, 1]), pre_and_post


def test_an_exercise_session_on_any_weekday_moves_the_stimulus():
    """One weekly session, whichever weekday it falls on, raises the mechanical stimulus the
    osteocytes sense (BoneModel._mechanics takes the load of the whole interval) and so lowers
    their sclerostin; with no session the stimulus stays at the habitual 1."""
    def stimulus(start):
        protocol = [] if start is None else [{"drug": "exercise", "route": "weight_bearing",
                                              "dose": "60 min", "schedule": "weekly",
                                              "start": f"{start} d"}]
        sc = parse_scenario({
            "name": "t", "patient": {"sex": "female", "age": "35 years", "activity": "sedentary"},
            "protocol": protocol,
            "tissue": {"size": [32, 32], "spacing": "10 um", "site": "spine", "geometry_seed": 1},
            "simulation": {"duration": "0.1 years", "dt": "1 d", "output_every": "7 d"}})
        model = run(BoneModel(sc, rng=1, spinup_days=0), 15)
        return model.stimulus[model.tissue.bone >= 0.5].mean()
    rest = stimulus(None)
    assert rest == pytest.approx(1.0 * stimulus_scale(), rel=1e-6)
    for weekday in range(7):
        assert stimulus(weekday) > rest * 1.01, weekday


def test_bone_lost_is_sensed_as_overload_while_it_is_missing():
    """The mechanostat's set point is the section as built and does not follow the bone lost:
    where half the bone is gone, the stimulus is load x (density as built / now)^n = 2^n x
    load, and it is the same after ten years of weekly refreshes as after the first."""
    model = BoneModel(scenario(size=48), rng=1, spinup_days=0)
    model.tissue.matrix[:24] *= 0.5

    def refresh():
        model.load_days[:] = (7.0, 7.0)                 # habitual load for a week
        model._mechanics()
        return model.stimulus.copy()

    first = refresh()
    for _ in range(520):
        refresh()
    last = refresh()
    inner = (slice(0, 9), slice(None))      # whose density box lies in the thinned half
    built = model.tissue.density0[inner] > 0.05
    expected = 2.0 ** value("tissue.mechanics.strain_exponent")
    np.testing.assert_allclose(first[inner][built], expected, rtol=1e-9)
    np.testing.assert_array_equal(last, first)


def stimulus_scale():
    """The sedentary load relative to habitual: the stimulus of an unchanged tissue."""
    from bonesim.model.endocrine import load_level
    return float(load_level("sedentary", np.zeros(1))[0])


def test_histomorphometry_of_a_hand_built_bmu_history():
    """remodeling_summary on BMU records with known answers: periods, balance, wall thickness,
    erosion depth, and which BMUs count as completed."""
    from types import SimpleNamespace

    from bonesim.agents.population import (
        B_ERODED, B_FIRST_FORM, B_FIRST_RES, B_FORMED, B_FOUNDED, B_LAST_FORM, B_LAST_RES,
        B_OSTEOCLASTS, B_PERFORATIONS, B_RESORBED, B_TEAM, B_TEAM_SIZE, C_NBMU, N_BMU_COLS,
        N_TALLY, Population,
    )
    rows = [  # founded, resorption days, formation days, resorbed, formed, eroded faces, team
        (10, (12, 40), (30, 130), 20.0, 19.0, 4.0, 0),   # refilled 95%
        (50, (55, 70), (80, 200), 30.0, 24.0, 6.0, 0),   # refilled 80%
        (60, (60, 75), None, 10.0, 0.0, 2.0, 0),         # no team came: arrested
        (300, (300, 320), (310, 390), 8.0, 2.0, 2.0, 3),  # still at work: not completed
        (-50, (-40, -20), (-10, 90), 5.0, 5.0, 1.0, 0),  # founded before day 0: not counted
    ]
    stats = np.full((8, N_BMU_COLS), -1.0)
    for i, (founded, res, form, resorbed, formed, eroded, team) in enumerate(rows):
        stats[i, [B_FOUNDED, B_FIRST_RES, B_LAST_RES]] = founded, *res
        if form is not None:
            stats[i, [B_FIRST_FORM, B_LAST_FORM]] = form
        stats[i, [B_RESORBED, B_FORMED, B_ERODED, B_TEAM]] = resorbed, formed, eroded, team
        stats[i, [B_OSTEOCLASTS, B_TEAM_SIZE, B_PERFORATIONS]] = 2, 5, 0
    population = Population(16)
    population.counters[C_NBMU] = len(rows)
    model = SimpleNamespace(population=population, bmu_stats=stats, day=400.0, dx=10.0,
                            tally=np.zeros(N_TALLY),
                            recorder=SimpleNamespace(tally0=np.zeros(N_TALLY)))
    summary = remodeling_summary(model)
    assert summary["bmus_completed"] == 3
    assert summary["resorption_days"] == pytest.approx(np.median([28, 15]))
    assert summary["reversal_days"] == pytest.approx(np.median([30 - 40, 80 - 70]))
    assert summary["formation_days"] == pytest.approx(np.median([100, 120]))
    assert summary["bmu_balance"] == pytest.approx(43.0 / 60.0)
    assert summary["erosion_depth_um"] == pytest.approx(60.0 / 12.0 * 10.0)
    assert summary["wall_thickness_um"] == pytest.approx(43.0 / 12.0 * 10.0)
    assert summary["wall_thickness_um"] / summary["erosion_depth_um"] == pytest.approx(
        summary["bmu_balance"])


# Regression pin: the state of a small menopausal model after 40 steps. Commits that claim
# "same results" (refactors) keep it; a commit that changes the model's results on purpose
# updates it, saying so. Rounded to 9 significant digits so that a CPU with other vector
# instructions (last-bit differences in the field solver's sums) still matches.
PINNED_STATE = "5c95d516198a"


def state_digest(model) -> str:
    """SHA-1 (12 hex digits) of the model's state: matrix pools, surface memory, fields,
    live cells' state, tallies and BMU records, floats rounded to 9 significant digits."""
    import hashlib

    from bonesim.agents.population import C_NBMU, I_KIND
    pop = model.population
    live = pop.ints[I_KIND, : pop.n_hi] >= 0
    h = hashlib.sha1()
    for a in (model.tissue.pools, model.tissue.site_bmu, model.conc, pop.ints[:, : pop.n_hi][:, live],
              pop.flts[:, : pop.n_hi][:, live], model.tally,
              model.bmu_stats[: pop.counters[C_NBMU]]):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = np.array([float(f"{x:.9g}") for x in a.ravel()])
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def test_state_after_40_steps_is_pinned():
    sc = scenario(size=48, years=0.2, age=52, fmp_age="51 years")
    model = run(BoneModel(sc, rng=7, spinup_days=60), 40)
    assert state_digest(model) == PINNED_STATE


def test_pth_pulse_is_anabolic_only_when_intermittent():
    """Daily teriparatide (a ~2-3 h peak of ~420 pg/mL over a mean of ~75) gives a pulse; the
    same mean held steady, or a peak that is no pulse, gives none."""
    from bonesim.model.bone_model import pth_pulse
    assert pth_pulse(419.0, 74.0, 3.25) > 0.2
    assert pth_pulse(74.0, 74.0, 24.0) == 0.0
    assert pth_pulse(37.8, 37.1, 0.0) == 0.0
