"""Virtual patients: serum levels against docs/biology.md sections 3 (Verdonk 2019, Travison 2017,
P4 ranges, menopause transition) and the SerumCourse contract."""

import math

import numpy as np
import pytest

from bonesim.model import axes, endocrine
from bonesim.model.endocrine import RECEPTOR_EC50, SERUM_NAMES, STEP_NAMES, draw_cycles, serum_course
from bonesim.model.parameters import value
from bonesim.model.scenario import parse_scenario


def scenario(years=1.0, dt="1 d", protocol=(), **patient):
    patient = {"sex": "female", "age": "30 years", **patient}
    return parse_scenario({"name": "t", "patient": patient, "protocol": list(protocol),
                           "simulation": {"duration": f"{years} years", "dt": dt}})


def course(seed=0, **kw):
    return serum_course(scenario(**kw), np.random.default_rng(seed))


def luteal_peaks(c):
    """Maximum daily P4 of each run of days above the follicular range."""
    p4 = c.mean["p4_ng_ml"]
    above = p4 > 1.0
    edges = np.flatnonzero(np.diff(above.astype(int)))
    runs = np.split(p4, edges + 1)
    return np.array([r.max() for r in runs if r.max() > 1.0])


# ----------------------------------------------------------------------------------- contract
def test_serum_course_shape_and_names():
    s = scenario(years=0.1, dt="0.5 d")
    c = serum_course(s, np.random.default_rng(1))
    n = math.ceil(s.days / 0.5)
    assert c.day.shape == (n,) and np.allclose(np.diff(c.day), 0.5)
    assert set(c.mean) == set(c.exposure) == set(SERUM_NAMES) | set(STEP_NAMES)
    assert all(v.shape == (n,) and np.isfinite(v).all() for v in c.mean.values())
    assert list(c.fine.columns) == ["day", *SERUM_NAMES, *endocrine.EXTRA_FINE]
    assert np.diff(c.fine["day"]).max() * 24 < 1.0
    assert len(c.fine) % n == 0


def test_determinism_and_seed_dependence():
    a, b, other = course(seed=7, years=2), course(seed=7, years=2), course(seed=8, years=2)
    for name in SERUM_NAMES:
        assert np.array_equal(a.mean[name], b.mean[name])
    assert not np.array_equal(a.mean["p4_ng_ml"], other.mean["p4_ng_ml"])


def test_exposure_is_the_occupancy_equivalent_level():
    c = course(years=0.5)
    for name, key in RECEPTOR_EC50.items():
        ec50 = value(key)
        fine = c.fine[name].to_numpy(dtype=float).reshape(len(c.day), -1)
        occupancy = (fine / (fine + ec50)).mean(axis=1)
        exposure = c.exposure[name]
        assert np.allclose(exposure / (exposure + ec50), occupancy, rtol=1e-4, atol=1e-9)
        assert np.all(exposure <= c.mean[name] * (1 + 1e-5))  # occupancy is concave (Jensen)


# ----------------------------------------------------------------------------------- cycles
def test_premenopausal_ranges():
    c = course(years=2)
    e2, p4 = c.mean["e2_pmol_l"], c.mean["p4_ng_ml"]
    assert e2.min() >= 31 and e2.max() <= 1942  # Verdonk 2019 premenopausal
    peaks = luteal_peaks(c)
    assert len(peaks) >= 24 and peaks.min() >= 4 and peaks.max() <= 30  # luteal 4-30 ng/mL
    follicular = p4[p4 < 1.0]
    assert follicular.max() < 1.0 and len(follicular) > 0.4 * len(p4)
    assert e2.max() > 3 * e2.min()  # a pre-ovulatory peak


def test_cycle_length_variability():
    s = scenario(years=1)
    cycles = draw_cycles(s.patient, np.random.default_rng(3), s.days)
    lengths = cycles.length[cycles.start > -60]
    long = draw_cycles(s.patient.model_copy(update={"age": 20.0}), np.random.default_rng(3), 0).length
    assert abs(long.mean() - 28) < 0.5 and 1.5 < long.std() < 2.5
    assert len(lengths) >= 12


def test_anovulatory_cycles_no_luteal_p4_near_normal_e2():
    ovulatory = course(years=2, seed=2)
    anovulatory = course(years=2, seed=2, cycle={"anovulatory_fraction": 1.0})
    assert anovulatory.mean["p4_ng_ml"].max() < 1.0
    ratio = anovulatory.mean["e2_pmol_l"].mean() / ovulatory.mean["e2_pmol_l"].mean()
    assert 0.85 < ratio < 1.15


def test_disturbed_cycle_fractions():
    s = scenario(years=1, cycle={"anovulatory_fraction": 0.15, "short_luteal_fraction": 0.14})
    cycles = draw_cycles(s.patient.model_copy(update={"age": 20.0}), np.random.default_rng(5), 0)
    kind = cycles.kind[cycles.start < (30 - 20) * 365.25]  # far from the transition
    assert np.mean(kind == endocrine.ANOVULATORY) == pytest.approx(0.15, abs=0.03)
    assert np.mean(kind == endocrine.SHORT_LUTEAL) == pytest.approx(0.14, abs=0.03)
    short = cycles.luteal[cycles.kind == endocrine.SHORT_LUTEAL]
    assert short.max() < 10 and short.min() >= 5


def test_short_luteal_phase_lowers_progesterone():
    normal = luteal_peaks(course(years=2, seed=4))
    short = luteal_peaks(course(years=2, seed=4, cycle={"short_luteal_fraction": 1.0}))
    assert short.mean() < 0.8 * normal.mean() and short.min() >= 4


# ----------------------------------------------------------------------------------- menopause
def test_menopause_transition_shape():
    """E2 falls over ~1.7 years (OpenBoneMin) into the postmenopausal range, unchanged until ~2
    years before the FMP, fastest across the FMP and stable ~2 years after it (SWAN, Randolph
    2011); no luteal P4 after the FMP; the skeletal ER effect falls ~64% (OpenBoneMin)."""
    c = course(years=9, age="47 years", fmp_age="51 years")
    day = c.day
    fmp = 4 * 365.25

    def year_mean(name, start):
        m = (day >= fmp + start * 365.25) & (day < fmp + (start + 1) * 365.25)
        return c.mean[name][m].mean()

    pre = year_mean("e2_pmol_l", -4)
    assert 250 < pre < 600
    assert year_mean("e2_pmol_l", -3) > 0.9 * pre  # not yet declining 3-2 years before
    e2 = {k: year_mean("e2_pmol_l", k) for k in (-2, -1, 0, 1, 2, 3)}
    assert e2[-1] - e2[0] > max(e2[-2] - e2[-1], e2[0] - e2[1])  # fastest across the FMP
    assert abs(e2[2] - e2[3]) < 0.02 * pre  # stable 2 years after it
    assert e2[2] < 26 and year_mean("e2_pmol_l", 4) < 26  # Verdonk 2019
    after = day >= fmp
    assert c.mean["p4_ng_ml"][after].max() < 1.0
    ec50 = value(RECEPTOR_EC50["e2_pmol_l"])
    def occupancy(start):
        x = c.exposure["e2_pmol_l"][(day >= fmp + start * 365.25) & (day < fmp + (start + 1) * 365.25)]
        return np.mean(x / (x + ec50))

    fall = 1 - occupancy(3) / occupancy(-4)
    assert 0.5 < fall < 0.75
    lost = 1 - c.fine["ovarian_fraction"].to_numpy()
    days_fine = c.fine["day"].to_numpy()
    t10, t90 = days_fine[np.searchsorted(lost, 0.1 * 0.95)], days_fine[np.searchsorted(lost, 0.9 * 0.95)]
    assert 1.0 < (t90 - t10) / 365.25 < 3.0


def test_perimenopause_more_anovulation():
    s = scenario(years=1, age="40 years", fmp_age="51 years")
    cycles = draw_cycles(s.patient, np.random.default_rng(0), s.days)
    years_to_fmp = (endocrine.fmp_day(s.patient) - cycles.start) / 365.25
    late = cycles.kind[years_to_fmp < 1] == endocrine.ANOVULATORY
    early = cycles.kind[years_to_fmp > 3] == endocrine.ANOVULATORY
    assert late.mean() > 0.3 and early.mean() < 0.05


def test_postmenopausal_woman():
    c = course(years=1, age="65 years")
    assert c.mean["e2_pmol_l"].max() < 26 and c.mean["p4_ng_ml"].max() < 1.0
    assert 15 <= c.mean["t_ng_dl"].mean() <= 70


def test_womens_androgens_decline_with_age_and_extragonadal_e2_with_them():
    """Davison 2005: total T declines steeply in the early reproductive years, less later; the
    androgens are the substrate of postmenopausal (extragonadal) E2."""
    t = {age: course(years=0.1, age=f"{age} years").mean["t_ng_dl"][0] for age in (22, 35, 50, 70)}
    assert all(15 <= x <= 70 for x in t.values())
    assert t[22] > t[35] > t[50] > t[70]
    assert t[22] - t[35] > t[50] - t[70]  # steeper early
    e2 = {age: course(years=0.1, age=f"{age} years").mean["e2_pmol_l"][0] for age in (55, 75)}
    assert e2[75] < 0.95 * e2[55]
    measured = course(years=5, age="40 years", testosterone="50 ng/dL").mean["t_ng_dl"]
    assert measured[0] == pytest.approx(50, rel=1e-3) and measured[-1] < measured[0]


# ----------------------------------------------------------------------------------- men
def test_men_testosterone_age_decline_and_aromatization():
    young = course(years=1, sex="male", age="30 years")
    old = course(years=1, sex="male", age="75 years")
    t_young, t_old = young.mean["t_ng_dl"].mean(), old.mean["t_ng_dl"].mean()
    assert 264 <= t_young <= 916  # Travison 2017
    assert 0.55 < t_old / t_young < 0.85
    for c in (young, old):
        assert 12 <= c.mean["e2_pmol_l"].min() and c.mean["e2_pmol_l"].max() <= 136  # Verdonk 2019
    assert young.mean["e2_pmol_l"].mean() > old.mean["e2_pmol_l"].mean()
    assert young.mean["p4_ng_ml"].max() < 1.0


def test_hypogonadal_man_keeps_his_level_and_declines():
    c = course(years=5, sex="male", age="68 years", testosterone="250 ng/dL")
    t = c.mean["t_ng_dl"]
    assert t[0] == pytest.approx(250, rel=1e-3)
    assert t[-1] == pytest.approx(250 * math.exp(-value("endocrine.testosterone.decline_rate") * 5), rel=0.01)


def test_untreated_man_is_the_axis_fixed_point():
    """No drug: the HPG loop sits exactly at its set point (LH drive 1, T = the baseline)."""
    c = course(years=2, sex="male", age="60 years", testosterone="320 ng/dL")
    assert np.array_equal(c.fine["lh_drive"].to_numpy(), np.ones(len(c.fine), dtype=np.float32))
    baseline = endocrine.testosterone_baseline(scenario(sex="male", age="60 years", testosterone="320 ng/dL").patient,
                                               60 + c.fine["day"].to_numpy(dtype=float) / 365.25)
    assert np.allclose(c.fine["t_ng_dl"], baseline, rtol=1e-6)


ANASTROZOLE = {"drug": "anastrozole", "route": "oral", "dose": "1 mg", "schedule": "daily"}


def test_aromatase_inhibitor_raises_t_in_men_and_lowers_e2_less_than_in_women():
    """Leder 2004 (JCEM): anastrozole 1 mg/d for 12 weeks in men 62-74 with T < 350 ng/dL:
    T 343 -> 572 ng/dL (+67%), E2 26 -> 17 pg/mL (-35%), LH up; the label's 70-80% E2 fall is
    for postmenopausal women."""
    man = dict(years=84 / 365.25, sex="male", age="65 years", testosterone="320 ng/dL")
    base, ai = course(**man), course(protocol=[ANASTROZOLE], **man)
    last = slice(-14, None)
    t_ratio = ai.mean["t_ng_dl"][last].mean() / base.mean["t_ng_dl"][last].mean()
    e2_ratio = ai.mean["e2_pmol_l"][last].mean() / base.mean["e2_pmol_l"][last].mean()
    assert 1.5 < t_ratio < 1.85
    assert 0.55 < e2_ratio < 0.8
    assert ai.fine["lh_drive"].iloc[-96 * 14:].mean() > 1.3
    women = dict(years=84 / 365.25, age="65 years")
    fall_women = 1 - course(protocol=[ANASTROZOLE], **women).mean["e2_pmol_l"][last].mean() / \
        course(**women).mean["e2_pmol_l"][last].mean()
    assert fall_women > 0.7 and fall_women > 2 * (1 - e2_ratio)


def test_aromatase_inhibitor_steady_state_matches_the_integral_feedback():
    """At steady state the feedback signal is zero: T/T0 = u^-w and E2/E2_0 = u^(1-w), with u the
    fraction of men's E2 left by the inhibitor (the day-to-day swing of u is small at 1 mg/d)."""
    man = dict(years=0.5, sex="male", age="65 years", testosterone="320 ng/dL")
    base, ai = course(**man), course(protocol=[ANASTROZOLE], **man)
    last = slice(-28 * 96, None)
    u = axes.e2_left_men(ai.fine["aromatase_inhibition"].to_numpy(dtype=float)[last])
    w = value("endocrine.hpg.e2_feedback_weight")
    # the loop zeroes the time-mean signal: w <ln(E2/E2_0)> + (1-w) <ln(T/T0)> = 0
    log_t = np.log(ai.fine["t_ng_dl"].to_numpy(dtype=float)[last] / base.fine["t_ng_dl"].to_numpy(dtype=float)[last])
    log_e2 = np.log(ai.fine["e2_pmol_l"].to_numpy(dtype=float)[last] / base.fine["e2_pmol_l"].to_numpy(dtype=float)[last])
    assert abs(w * log_e2.mean() + (1 - w) * log_t.mean()) < 0.01
    assert np.exp(log_t.mean()) == pytest.approx(np.exp(-w * np.log(u).mean()), rel=0.03)


# ----------------------------------------------------------------------------------- GH, minerals, load
def test_igf1_age_and_gh_deficiency():
    """IGF-1 = age median x (GH secretion)^beta: in GH deficiency reserve^beta of the median
    (~45%, below -2 SDS, Molitch 2011)."""
    young, old = course(years=0.1, age="25 years", sex="male"), course(years=0.1, age="75 years", sex="male")
    ghd = course(years=0.1, age="75 years", sex="male", gh="deficient")
    assert 180 < young.mean["igf1_ng_ml"][0] < 320 and 100 < old.mean["igf1_ng_ml"][0] < 160
    factor = value("endocrine.gh.deficient_reserve") ** value("endocrine.igf1.gh_exponent")
    assert np.allclose(ghd.mean["igf1_ng_ml"], old.mean["igf1_ng_ml"] * factor, rtol=1e-6)
    assert 0.3 < factor < 0.6


def test_pth_vitamin_d_calcium():
    replete = course(years=0.1, age="60 years")
    deficient = course(years=0.1, age="60 years", vitamin_d="10 ng/mL", calcium_intake="400 mg/day")
    assert replete.mean["calcium_rel"][0] == pytest.approx(1.0)
    assert deficient.mean["calcium_rel"][0] < 0.4
    ratio = deficient.mean["pth_pg_ml"][0] / replete.mean["pth_pg_ml"][0]
    assert 1.4 < ratio < 2.5  # secondary hyperparathyroidism (Chapuy 1997)
    assert 15 < replete.mean["pth_pg_ml"][0] < 65


@pytest.mark.parametrize("activity", ["bedrest", "sedentary", "moderate", "active"])
def test_load_by_activity(activity):
    load = course(years=0.05, activity=activity).mean["load_rel"]
    expected = {"bedrest": (0.1, 0.45), "sedentary": (0.75, 0.95), "moderate": (1.0, 1.0),
                "active": (1.05, 1.25)}[activity]
    assert expected[0] - 1e-9 <= load.min() <= load.max() <= expected[1] + 1e-9
