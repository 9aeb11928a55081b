"""Pharmacokinetics, schedules and drug effects against published anchors (docs/biology.md section 4).

Tests marked `calibration` re-check a published value that a parameter of drugs.toml was
calibrated to (its source starts with "calibrated"): they guard the calibration, they do not
validate the model. `pytest -m "not calibration"` runs the rest, the checks against values no
parameter was fitted to."""

import math

import numpy as np
import pytest

from bonesim.model import axes
from bonesim.model import pharmacology as pk
from bonesim.model.endocrine import serum_course
from bonesim.model.parameters import value
from bonesim.model.scenario import parse_scenario

HOUR = 1 / 24


def scenario(protocol, days=30, sex="female", age="60 years", dt="1 d", **patient):
    return parse_scenario({"name": "t", "patient": {"sex": sex, "age": age, **patient},
                           "protocol": protocol,
                           "simulation": {"duration": f"{days} d", "dt": dt}})


def entry(drug, route, dose, schedule="daily", **kw):
    return {"drug": drug, "route": route, "dose": dose, "schedule": schedule, **kw}


def level(protocol_entry, days=30, sex="female", cycle_starts=None):
    """(grid, level of one entry in its target's units)."""
    s = scenario([protocol_entry], days=days, sex=sex)
    grid = pk.FineGrid.for_run(s.days, 1.0)
    starts = np.arange(-28.0, days + 29, 28.0) if cycle_starts is None else cycle_starts
    return grid, pk.entry_level(s.protocol[0], grid, sex, starts)


def course(protocol, days=30, **kw):
    s = scenario(protocol, days=days, **kw)
    return serum_course(s, np.random.default_rng(0))


# ----------------------------------------------------------------------------------- numerics
def test_propagator_matches_bateman_solution():
    """One absorption + one central compartment has the closed form F D ka/(V(ka-ke)) (e^-ke t - e^-ka t)."""
    grid, c = level(entry("mpa", "oral", "10 mg", stop="1 d"), days=3)
    ka = pk.drug_value("mpa", "absorption_rate", "oral") * 24
    cl, ke = pk.disposition("mpa", "female")
    v = cl / ke
    t = grid.times() - 8 * HOUR

    def exact(t):
        return np.where(t > 0, 10 / v * ka / (ka - ke) * (np.exp(-ke * t) - np.exp(-ka * t)), 0) * 1e3

    # the integrator reports the trapezoid mean of each substep's end points
    assert np.allclose(c, (exact(t) + exact(t + grid.h)) / 2, rtol=1e-9, atol=1e-12)


def test_burst_depot_matches_two_bateman_curves():
    """A microsphere depot is two parallel first-order inputs (burst and sustained release) into one
    compartment: the sum of two Bateman functions, each with its share of the dose."""
    grid, x = level(entry("leuprolide", "im_1month", "7.5 mg", stop="1 d"), days=10, sex="male")
    c = x * pk.drug_value("leuprolide", "potency")
    cl, ke = pk.disposition("leuprolide", "male")
    v = cl / ke
    fb = pk.drug_value("leuprolide", "burst_fraction", "im_1month")
    rates = {fb: pk.drug_value("leuprolide", "burst_rate", "im_1month") * 24,
             1 - fb: pk.drug_value("leuprolide", "absorption_rate", "im_1month") * 24}

    def exact(t):
        return sum(np.where(t > 0, share * 7.5 / v * ka / (ka - ke) * (np.exp(-ke * t) - np.exp(-ka * t)), 0)
                   for share, ka in rates.items()) * 1e3

    t = grid.times() - 8 * HOUR
    assert np.allclose(c, (exact(t) + exact(t + grid.h)) / 2, rtol=1e-8, atol=1e-12)


def test_iv_bolus_enters_the_blood_directly():
    """IV (no transit compartment): the dose is in the central compartment at once, and the
    bone-seeking share reaches the surface with the plasma half-life."""
    model = pk.pk_model("zoledronate", "iv", "female")
    assert model.split[model.central] == 1.0 and model.split.sum() == 1.0
    grid, x = level(entry("zoledronate", "iv", "5 mg", stop="1 d"), days=2)
    mg = x * pk.drug_value("zoledronate", "potency")
    ke = pk.disposition("zoledronate", "female")[1]
    t = grid.times() - 8 * HOUR
    on_surface = 5 * pk.drug_value("zoledronate", "bone_fraction") * (1 - np.exp(-ke * np.clip(t, 0, None)))
    assert np.allclose(mg[t > 0.25], on_surface[t > 0.25], rtol=0.01)


def test_levels_positive_finite_and_deterministic_with_many_drugs():
    protocol = [entry("leuprolide", "im_3month", "22.5 mg", "every", every="84 d"),
                entry("testosterone_undecanoate", "im", "750 mg", "every", every="70 d"),
                entry("hcg", "sc", "500 IU", "twice_weekly"), entry("anastrozole", "oral", "0.5 mg", "twice_weekly"),
                entry("somatropin", "sc", "0.3 mg", "nightly"), entry("teriparatide", "sc", "0.02 mg"),
                entry("raloxifene", "oral", "60 mg"), entry("zoledronate", "iv", "5 mg", "every", every="1 year")]
    for sex in ("male", "female"):
        a = course(protocol, days=200, sex=sex, age="50 years")
        b = course(protocol, days=200, sex=sex, age="50 years")
        values = a.fine.drop(columns="day").to_numpy()
        assert np.isfinite(values).all() and (values >= 0).all()
        assert a.fine.equals(b.fine)


def test_mass_balance_and_dose_proportionality():
    grid, c1 = level(entry("estradiol", "oral", "1 mg"), days=20)
    _, c2 = level(entry("estradiol", "oral", "2 mg"), days=20)
    assert np.allclose(c2, 2 * c1)
    # at steady state the daily AUC equals F x dose / CL
    cl, _ = pk.disposition("estradiol", "female")
    f = pk.drug_value("estradiol", "bioavailability", "oral")
    last_day = c1[-96:].mean() / pk.MG_PER_L_TO["pmol/L E2"]
    assert last_day == pytest.approx(f * 1.0 / cl, rel=0.02)


def test_expm_against_eigendecomposition():
    model = pk.pk_model("denosumab", "sc", "female")
    P, _ = pk.propagator(model, 3.0)
    w, V = np.linalg.eig(model.A * 3.0)
    assert np.allclose(P, (V @ np.diag(np.exp(w)) @ np.linalg.inv(V)).real, atol=1e-10)


# ----------------------------------------------------------------------------------- schedules
def times_of(e, days=60, cycle_starts=None):
    s = scenario([e], days=days)
    starts = np.arange(-28.0, days + 29, 28.0) if cycle_starts is None else cycle_starts
    return pk.administration_times(s.protocol[0], s.days, starts)


def test_daily_and_nightly_hours():
    daily = times_of(entry("estradiol", "oral", "1 mg"), days=10)
    nightly = times_of(entry("progesterone", "oral", "200 mg", "nightly"), days=10)
    assert np.allclose(daily, np.arange(10) + 8 * HOUR)
    assert np.allclose(nightly, np.arange(10) + 22 * HOUR)


def test_weekly_twice_weekly_per_week_every():
    assert np.allclose(np.diff(times_of(entry("testosterone_cypionate", "im", "100 mg", "weekly"))), 7)
    tw = times_of(entry("anastrozole", "oral", "0.5 mg", "twice_weekly"), days=28)
    assert len(tw) == 8 and np.allclose(np.diff(tw), 3.5)
    pw = times_of(entry("exercise", "weight_bearing", "45 min", "per_week", per_week=3), days=28)
    assert len(pw) == 12 and np.allclose(np.diff(pw), 7 / 3)
    pellets = times_of(entry("testosterone_pellet", "pellet", "750 mg", "every", every="4 months"), days=365)
    assert len(pellets) == 3 and np.allclose(np.diff(pellets), 4 * 365.25 / 12)


def test_start_and_stop():
    t = times_of(entry("estradiol", "oral", "1 mg", start="10 d", stop="20 d"))
    assert t[0] == pytest.approx(10 + 8 * HOUR) and len(t) == 10 and t[-1] < 20
    late = times_of(entry("estradiol", "oral", "1 mg", "weekly", start="10.5 d"), days=30)
    assert late[0] == pytest.approx(11 + 8 * HOUR)


def test_cyclic_days_of_month():
    t = times_of(entry("mpa", "oral", "10 mg", "cyclic", days=[1, 12]), days=365)
    assert len(t) == 12 * 12
    day = np.floor(t)
    month_day = np.floor(day - np.floor(day / (365.25 / 12)) * (365.25 / 12)) + 1
    assert month_day.min() == 1 and month_day.max() == 12


def test_cyclic_days_of_cycle_follow_menses():
    starts = np.array([-30.0, 0.0, 26.0, 57.0, 85.0])  # cycles of 26, 31 and 28 days
    t = times_of(entry("mpa", "oral", "10 mg", "cyclic", days=[16, 25], of="cycle"), days=85,
                 cycle_starts=starts)
    assert len(t) == 30
    for first in (15.0, 41.0, 72.0):  # day 16 of the cycles starting on days 0, 26, 57
        assert np.any(np.isclose(t, first + 8 * HOUR))


def test_patch_rate_dose_is_continuous_delivery():
    s = scenario([entry("estradiol", "transdermal", "0.05 mg/day", "twice_weekly")], days=28)
    grid = pk.FineGrid.for_run(s.days, 1.0)
    inputs = pk.administrations(s.protocol[0], grid, np.zeros(1))
    delivered = inputs.rate.sum() * grid.h
    assert delivered == pytest.approx(0.05 * (28 - 8 * HOUR), rel=1e-6)
    c = course([entry("estradiol", "transdermal", "0.05 mg/day", "twice_weekly")], days=28)
    e2 = c.mean["e2_pmol_l"][14:]
    assert 100 < e2.mean() < 220  # 0.05 mg/day patch: E2 ~40-50 pg/mL (Vivelle label)


# ----------------------------------------------------------------------------------- progestins
@pytest.mark.calibration
def test_oral_progesterone_200mg_maxson_anchor():
    """200 mg oral micronized P4 peaks at a few to ~17 ng/mL within ~3 h, back near baseline by 24 h."""
    grid, c = level(entry("progesterone", "oral", "200 mg", stop="1 d"), days=3)
    hours_after = grid.times() * 24 - 8
    peak = c.max()
    assert 3 < peak < 17
    assert 0.5 < hours_after[c.argmax()] <= 3.5
    assert c[grid.index(1 + 8 * HOUR)] < 0.5
    assert pk.drug_value("progesterone", "bioavailability", "oral") < 0.1


@pytest.mark.calibration
def test_progesterone_cream_barely_raises_serum():
    """Cream 32 mg/d: only a slight rise (Wren 2003), far below luteal levels (4-30 ng/mL)."""
    _, c = level(entry("progesterone", "transdermal", "32 mg"), days=21)
    steady = c[-7 * 96:]
    assert 0.05 < steady.mean() < 1.0 and steady.max() < 1.5


@pytest.mark.calibration
def test_pepi_progestin_doses():
    _, mpa25 = level(entry("mpa", "oral", "2.5 mg"), days=14)
    grid, mpa10 = level(entry("mpa", "oral", "10 mg", "cyclic", days=[1, 12]), days=31)
    _, p4 = level(entry("progesterone", "oral", "200 mg", "cyclic", days=[1, 12]), days=31)
    assert 0.03 < mpa25[-96 * 7:].mean() < 0.15 and mpa25.max() < 0.4
    on = slice(grid.index(2), grid.index(12))
    off = slice(grid.index(15), grid.index(30))
    assert 0.4 < mpa10[on].max() < 1.2  # Provera label: Cmax 0.71 ng/mL at 10 mg/d
    assert mpa10[off].max() < 0.01 and p4[off].max() < 0.01
    assert 3 < p4[on].max() < 17
    # both cyclic arms occupy PR substantially on their days, neither saturates it
    for x, name in ((mpa10, "mpa"), (p4, "p4")):
        occupancy = np.mean(x[on] / (x[on] + pk.value(f"endocrine.receptors.pr_ec50_{name}")))
        assert 0.15 < occupancy < 0.8


def test_high_dose_progestin_lowers_e2_usual_oral_dose_does_not():
    young = dict(age="30 years", days=120)
    base = course([], **young)
    high = course([entry("mpa", "oral", "50 mg")], **young)
    luteal = course([entry("mpa", "oral", "10 mg", "cyclic", days=[16, 25], of="cycle")], **young)
    later = slice(30, None)
    assert high.mean["e2_pmol_l"][later].mean() < 0.7 * base.mean["e2_pmol_l"][later].mean()
    assert (high.mean["p4_ng_ml"][later].max()) < 1.0  # no ovulation
    assert luteal.mean["e2_pmol_l"].mean() == pytest.approx(base.mean["e2_pmol_l"].mean(), rel=0.1)


# ----------------------------------------------------------------------------------- estrogens
@pytest.mark.calibration
def test_pepi_cee_and_oral_estradiol_levels():
    cee = course([entry("cee", "oral", "0.625 mg")], age="58 years")
    e2 = course([entry("estradiol", "oral", "1 mg")], age="58 years")
    assert 90 < cee.mean["e2_pmol_l"][7:].mean() < 200  # ~25-55 pg/mL
    assert 90 < e2.mean["e2_pmol_l"][7:].mean() < 250  # oral 1 mg: ~30-60 pg/mL (F ~5%)


# ----------------------------------------------------------------------------------- testosterone
@pytest.mark.calibration
def test_testosterone_cypionate_200mg_im():
    """Peak 2-5 days after 200 mg IM (about threefold over hypogonadal basal), basal by ~day 14."""
    c = course([entry("testosterone_cypionate", "im", "200 mg", "every", every="28 d")], days=28,
               sex="male", age="55 years", testosterone="250 ng/dL")
    t = c.fine["t_ng_dl"].to_numpy()
    day = c.fine["day"].to_numpy()
    baseline = t[0]
    peak_day = day[t.argmax()]
    assert 2 <= peak_day <= 5
    assert 2.5 < t.max() / baseline < 5
    at14 = t[np.searchsorted(day, 14)]
    assert at14 < 1.5 * baseline
    assert c.mean["e2_pmol_l"].max() > 2 * c.mean["e2_pmol_l"][0]  # E2 rises with T (Nankin 1987)


@pytest.mark.parametrize("volume, low, high", [("0.1 mL", 100, 350), ("0.2 mL", 180, 600)])
def test_testosterone_sc_in_women(volume, low, high):
    """SC 10-20 units (0.1-0.2 mL of 200 mg/mL) weekly: above the female range, below male levels."""
    c = course([entry("testosterone_cypionate", "sc", volume, "weekly", concentration="200 mg/mL")],
               days=84, age="50 years")
    t = c.mean["t_ng_dl"][42:]
    assert low < t.mean() < high and t.max() < 916


def endogenous_fraction(protocol, days=84):
    """Mean endogenous T over the last 3 weeks / untreated T, eugonadal man of 30."""
    treated = course(protocol, days=days, sex="male", age="30 years")
    untreated = course([], days=days, sex="male", age="30 years")
    last = slice(-21 * 96, None)
    return treated.fine["t_endogenous_ng_dl"].iloc[last].mean() / untreated.fine["t_ng_dl"].iloc[last].mean()


TE_WEEKLY = entry("testosterone_enanthate", "im", "200 mg", "weekly")


@pytest.mark.parametrize("protocol", [[entry("testosterone_cypionate", "im", "200 mg", "every", every="14 d")],
                                      [TE_WEEKLY], [entry("testosterone_gel", "transdermal", "50 mg")]],
                         ids=["cypionate_200_q2w", "enanthate_200_weekly", "gel_50_daily"])
def test_replacement_t_suppresses_own_production_nearly_completely(protocol):
    """LH and FSH fall to ~5% and testicular T by 94% on TE 200 mg/week (Coviello 2005 JCEM)."""
    assert endogenous_fraction(protocol) < 0.1


def test_replacement_steady_state_is_the_lh_floor():
    """Exogenous T above the set point winds the integral feedback down to lh_min: endogenous T =
    T0 x leydig_output(lh_min) exactly (adrenal share plus what the floor of LH drives)."""
    expected = axes.leydig_output(value("endocrine.hpg.lh_min"), value("endocrine.hpg.leydig_hill"),
                                  value("endocrine.hpg.leydig_saturation"), value("endocrine.hpg.adrenal_fraction"))
    assert endogenous_fraction([entry("testosterone_gel", "transdermal", "100 mg")]) == pytest.approx(expected, rel=0.01)


@pytest.mark.calibration
def test_hcg_and_gonadorelin_keep_testicular_output_going_on_trt():
    """hCG 250 IU every other day keeps testicular T at ~93% of baseline during TE 200 mg/week
    (Coviello 2005); a higher dose gives more; gonadorelin pulses act through the pituitary."""
    alone = endogenous_fraction([TE_WEEKLY])
    hcg = {dose: endogenous_fraction([TE_WEEKLY, entry("hcg", "sc", dose, "every", every="2 d")])
           for dose in ("125 IU", "250 IU", "500 IU")}
    assert 0.75 < hcg["250 IU"] < 1.1
    assert alone < hcg["125 IU"] < hcg["250 IU"] < hcg["500 IU"]
    gnrh = endogenous_fraction([TE_WEEKLY, entry("gonadorelin", "sc", "0.1 mg", "twice_weekly")])
    assert gnrh > alone
    pulse = course([TE_WEEKLY, entry("gonadorelin", "sc", "0.1 mg", "twice_weekly")], days=56, sex="male",
                   age="30 years").fine["lh_drive"].to_numpy()[-14 * 96:]
    assert pulse.max() > 0.3 > value("endocrine.hpg.lh_min") * 2 > np.median(pulse)


def test_hcg_label_pk():
    """Ovidrel label [L]: tmax 12-24 h, terminal half-life ~29 h."""
    grid, x = level(entry("hcg", "sc", "5000 IU", stop="1 d"), days=8, sex="male")
    t = grid.times()
    assert 12 <= (t[x.argmax()] - 8 * HOUR) * 24 <= 24
    i1, i2 = np.searchsorted(t, 3.0), np.searchsorted(t, 6.0)
    assert 24 < (t[i2] - t[i1]) * 24 * math.log(2) / math.log(x[i1] / x[i2]) < 36


# ----------------------------------------------------------------------------------- GnRH agonist
@pytest.mark.calibration
def test_leuprolide_depot_label_pk():
    """Lupron Depot label: 7.5 mg 1-month ~20 ng/mL at 4 h, 0.36 ng/mL at 4 weeks (0.4-1.4 over 28
    days, Periti 2002); 22.5 mg 3-month 48.9 ng/mL at 4 h, 0.67 ng/mL at 12 weeks."""
    potency = pk.drug_value("leuprolide", "potency")
    for route, dose, days, peak, late in (("im_1month", "7.5 mg", 28, (14, 26), (0.25, 0.9)),
                                          ("im_3month", "22.5 mg", 84, (35, 60), (0.35, 0.9))):
        grid, x = level(entry("leuprolide", route, dose, stop="1 d"), days=days + 1, sex="male")
        c = x * potency
        hours = (grid.times()[c.argmax()] - 8 * HOUR) * 24
        assert peak[0] < c.max() < peak[1] and 0.5 <= hours <= 4.5
        assert late[0] < c[grid.index(days + 8 * HOUR)] < late[1]


def test_leuprolide_flare_then_castrate_t():
    """A GnRH-agonist depot: T rises for a few days (flare, ~+50%), then falls to castrate levels
    (< 50 ng/dL) within 2-4 weeks and stays there while the depot is renewed (Lupron Depot label)."""
    c = course([entry("leuprolide", "im_1month", "7.5 mg", "every", every="28 d")], days=168, sex="male",
               age="65 years")
    t = c.mean["t_ng_dl"]
    base = course([], days=7, sex="male", age="65 years").mean["t_ng_dl"][0]
    assert 1.25 < t[:4].max() / base < 2.0 and t[:3].argmax() <= 2
    castrate = int(np.argmax(t < 50))
    assert 14 <= castrate <= 28
    assert t[castrate:].max() < 50
    assert c.mean["e2_pmol_l"][60:].mean() < 0.2 * c.mean["e2_pmol_l"][0]


def test_leuprolide_suppresses_the_ovary_to_postmenopausal_e2():
    """In premenopausal women estrogens fall to postmenopausal levels within 2-4 weeks and
    ovulation stops (Lupron Depot 3.75 mg label)."""
    c = course([entry("leuprolide", "im_1month", "3.75 mg", "every", every="28 d")], days=168, age="30 years")
    assert c.mean["e2_pmol_l"][42:].max() < 60 and c.mean["e2_pmol_l"][42:].mean() < 35
    assert c.mean["p4_ng_ml"][30:].max() < 1.0


# ----------------------------------------------------------------------------------- contraception
def ovulations(c):
    """Luteal phases (P4 rising through 2 ng/mL) in a course."""
    p4 = c.mean["p4_ng_ml"]
    return int(((p4[1:] > 2) & (p4[:-1] <= 2)).sum())


@pytest.mark.calibration
def test_depot_mpa_label_pk():
    """Depo-Provera CI 150 mg IM: peak 1-7 ng/mL at ~3 weeks (label), ~0.3-0.5 ng/mL at 12 weeks
    (Nanda 2016), undetectable (< 0.1 ng/mL) 120-200 days after the injection (label)."""
    grid, c = level(entry("mpa", "im", "150 mg", stop="1 d"), days=200)
    assert 1.0 < c.max() < 7.0 and 14 <= grid.times()[c.argmax()] <= 35
    assert 0.25 < c[grid.index(84)] < 0.8
    assert c[grid.index(199)] < 0.1


def test_progestins_suppress_ovulation_and_follicular_e2_dose_dependently():
    """DMPA 150 mg every 13 weeks suppresses ovulation (label) and lowers E2 to early-follicular
    levels; oral MPA suppresses dose-dependently: 10 mg/day continuously yes, 2.5 mg/day not."""
    young = dict(age="30 years", days=365)
    base = course([], **young)
    dmpa = course([entry("mpa", "im", "150 mg", "every", every="91 d")], **young)
    oral = {dose: course([entry("mpa", "oral", dose)], **young) for dose in ("2.5 mg", "10 mg")}
    assert ovulations(base) >= 12 and ovulations(oral["2.5 mg"]) >= 12
    assert ovulations(dmpa) == 0 and ovulations(oral["10 mg"]) == 0
    e2 = base.mean["e2_pmol_l"].mean()
    assert 110 < dmpa.mean["e2_pmol_l"].mean() < 0.6 * e2
    assert oral["2.5 mg"].mean["e2_pmol_l"].mean() == pytest.approx(e2, rel=0.05)


def test_exogenous_estrogen_feeds_back_on_the_ovary():
    """Estradiol feedback on the follicular wave: high exogenous E2 (estradiol valerate 10 mg IM
    every 2 weeks) suppresses ovulations, replacement doses (oral 1 mg/day) do not."""
    young = dict(age="30 years", days=365)
    base = ovulations(course([], **young))
    assert ovulations(course([entry("estradiol", "oral", "1 mg")], **young)) == base
    assert ovulations(course([entry("estradiol_valerate", "im", "10 mg", "every", every="14 d")], **young)) < 0.75 * base


# ----------------------------------------------------------------------------------- new estrogens and androgens
@pytest.mark.calibration
def test_estradiol_valerate_im_pk():
    """5 mg IM: E2 peaks ~2 days after the injection and lasts 7-8 days (estradiol valerate
    monograph: IM half-life 3.5 (1.2-7.2) days)."""
    grid, e2 = level(entry("estradiol_valerate", "im", "5 mg", stop="1 d"), days=20)
    pg_ml = e2 / 3.671
    assert 1.0 <= grid.times()[e2.argmax()] <= 3.5 and 250 < pg_ml.max() < 900
    assert pg_ml[grid.index(8.3)] < 0.3 * pg_ml.max() and pg_ml[grid.index(14)] < 0.05 * pg_ml.max()


@pytest.mark.calibration
def test_vaginal_estradiol_barely_raises_serum():
    """10 ug tablet: 24-h mean +~5 pg/mL on day 1, near baseline on twice-weekly maintenance
    (Eugster-Hausmann 2010: Cave 9.4 pg/mL day 1, 4.6 pg/mL day 83, GC-MS)."""
    _, daily = level(entry("estradiol", "vaginal", "0.01 mg"), days=14)
    _, twice = level(entry("estradiol", "vaginal", "0.01 mg", "twice_weekly"), days=84)
    assert 2 < daily[:96].mean() / 3.671 < 8
    assert twice[-14 * 96:].mean() / 3.671 < 3


@pytest.mark.calibration
def test_testosterone_enanthate_pk():
    """125 mg IM in hypogonadal men: total T ~760 ng/dL on day 1, below the pre-treatment level by
    day 14 (Endocr J 2006;53:305)."""
    c = course([entry("testosterone_enanthate", "im", "125 mg", stop="1 d")], days=20, sex="male",
               age="59 years", testosterone="230 ng/dL")
    t = c.fine["t_ng_dl"].to_numpy()
    day = c.fine["day"].to_numpy()
    assert 600 < t[np.searchsorted(day, 1 + 8 * HOUR)] < 950
    assert 0.7 <= day[t.argmax()] <= 2.5
    assert t[np.searchsorted(day, 14 + 8 * HOUR)] < 230


@pytest.mark.calibration
def test_testosterone_undecanoate_label():
    """Aveed 750 mg at 0 and 4 weeks, then every 10 weeks: Cavg 494 ng/dL, Cmax 890 ng/dL (label)."""
    protocol = [entry("testosterone_undecanoate", "im", "750 mg", "every", every="28 d", stop="29 d"),
                entry("testosterone_undecanoate", "im", "750 mg", "every", every="70 d", start="98 d")]
    c = course(protocol, days=238, sex="male", age="55 years", testosterone="200 ng/dL")
    t = c.fine["t_ng_dl"].to_numpy()
    third = (c.fine["day"] >= 168).to_numpy()
    assert 400 < t[third].mean() < 600 and 700 < t[third].max() < 1200



# ------------------------------------------------------------------- routes not covered above
@pytest.mark.calibration
def test_vaginal_progesterone_200mg_daily():
    """Vaginal micronized progesterone 200 mg/day: serum P4 ~5-15 ng/mL (Levy 2000 Hum Reprod;
    Crinone label), luteal levels from a route without the oral first pass."""
    grid, c = level(entry("progesterone", "vaginal", "200 mg"), days=14)
    steady = c[grid.times() >= 7]
    assert 5 < steady.mean() < 15


@pytest.mark.xfail(strict=True, reason="the model peaks at ~1.8 h after a 90 mg dose: one vaginal "
                   "depot at routes.vaginal.absorption_rate 0.12/h against progesterone's fast "
                   "elimination gives an early peak and a slow tail, where the Crinone label "
                   "(the rate's own source) reports tmax ~4-8 h")
def test_vaginal_progesterone_peaks_hours_after_the_dose():
    """Crinone 90 mg: tmax ~4-8 h with sustained levels (Crinone label)."""
    grid, c = level(entry("progesterone", "vaginal", "90 mg", stop="1 d"), days=3)
    assert 4 <= grid.times()[c.argmax()] * 24 - 8 <= 8


def test_testosterone_gel_50mg_restores_normal_male_levels():
    """AndroGel 1% 50 mg/day in hypogonadal men: mean 24-h T within the normal male range
    (300-1000 ng/dL) by day 30, rising within hours of the first application (Swerdloff 2000
    JCEM 85:4500; AndroGel label); TTrials titrated the gel to mid-normal (Snyder 2016)."""
    c = course([entry("testosterone_gel", "transdermal", "50 mg")], days=60, sex="male",
               age="65 years", testosterone="230 ng/dL")
    t = c.fine["t_ng_dl"].to_numpy()
    day = c.fine["day"].to_numpy()
    assert 400 < t[day >= 30].mean() < 800
    assert t[np.searchsorted(day, 8 * HOUR + 4 * HOUR)] > 1.5 * t[0]


@pytest.mark.xfail(strict=True, reason="the model gives ~60 pg/mL at 0.75 mg/day and ~116 pg/mL at "
                   "1.5 mg/day, about twice the published levels: routes.transdermal."
                   "bioavailability 0.10 (Estrogel label '~10% absorbed') with the E2 disposition "
                   "of the patch (whose 0.05 mg/day gives its published ~40 pg/mL)")
def test_estradiol_gel_mass_dose_levels():
    """Estradiol gel by mass: 0.75 mg/day (EstroGel 1.25 g) gives a median serum E2 of ~32-34
    pg/mL and 1.5 mg/day ~60-65 pg/mL at 12 weeks (Brennan 2001 Ther Drug Monit 23:134); 1.5
    mg/day ~68 pg/mL at steady state (Scott 1991 Obstet Gynecol 77:758). Bands: +-50%."""
    for dose, published in (("0.75 mg", 33.0), ("1.5 mg", 65.0)):
        c = course([entry("estradiol", "transdermal", dose)], days=21, age="58 years")
        pg_ml = c.mean["e2_pmol_l"][14:].mean() / 3.671
        assert 0.5 * published < pg_ml < 1.5 * published, (dose, pg_ml)


@pytest.mark.calibration
def test_testosterone_pellets_peak_then_fall_by_100_days():
    """11 x 75 mg pellets (825 mg) in hypogonadal men: T peaks about a month after implantation
    and is back near 300 ng/dL at ~100 days, when re-implantation is due (Pastuszak 2012 J
    Androl; Testopel label: 3-6 months)."""
    c = course([entry("testosterone_pellet", "pellet", "825 mg", stop="1 d")], days=140,
               sex="male", age="55 years", testosterone="250 ng/dL")
    t = c.fine["t_ng_dl"].to_numpy()
    day = c.fine["day"].to_numpy()
    assert 20 <= day[t.argmax()] <= 45 and 500 < t.max() < 1100
    assert 200 < t[np.searchsorted(day, 100)] < 400


@pytest.mark.calibration
@pytest.mark.parametrize("drug, dose, schedule, published", [
    ("sermorelin", "1 mg", "nightly", 0.30),            # Walker 1994; Vittone 1997: +30-40%
    ("cjc1295_ipamorelin", "0.2 mg", "nightly", 0.30),  # assumed as sermorelin (no trial data)
    ("hexarelin", "0.1 mg", "daily", 0.20),             # Rahim 1998: modest rise, desensitizing
])
def test_secretagogue_igf1_gain(drug, dose, schedule, published):
    """Steady-state IGF-1 rise over 6 weeks of a GH secretagogue in a man of 60 with a working
    pituitary, against the published gain its efficacy was set to (drugs.toml sources)."""
    base = course([], days=42, sex="male", age="60 years")
    treated = course([entry(drug, "sc", dose, schedule)], days=42, sex="male", age="60 years")
    rise = treated.mean["igf1_ng_ml"][-7:].mean() / base.mean["igf1_ng_ml"][-7:].mean() - 1
    assert published - 0.1 < rise < published + 0.1

# ----------------------------------------------------------------------------------- anastrozole
def test_anastrozole_half_life_50h():
    grid, c = level(entry("anastrozole", "oral", "1 mg", stop="1 d"), days=10)
    t = grid.times()
    i1, i2 = np.searchsorted(t, 3.0), np.searchsorted(t, 8.0)
    half_life_h = (t[i2] - t[i1]) * 24 * math.log(2) / math.log(c[i1] / c[i2])
    assert 40 < half_life_h < 60


@pytest.mark.calibration
def test_anastrozole_e2_suppression_label():
    """1 mg/d lowers E2 ~70% within 24 h and ~80% by day 14 (postmenopausal woman)."""
    protocol = [entry("anastrozole", "oral", "1 mg")]
    base = course([], days=21, age="65 years")
    ai = course(protocol, days=21, age="65 years")
    day = ai.fine["day"].to_numpy()

    def suppression(at):
        i = np.searchsorted(day, at)
        return 1 - ai.fine["e2_pmol_l"].iloc[i] / base.fine["e2_pmol_l"].iloc[i]

    assert 0.62 < suppression(1 + 8 * HOUR) < 0.78
    assert 0.75 < suppression(14 + 8 * HOUR) < 0.88


# ----------------------------------------------------------------------------------- other drugs
@pytest.mark.calibration
def test_gh_secretagogues_raise_igf1_through_gh():
    base = course([], days=42, sex="male", age="60 years")
    tesa = course([entry("tesamorelin", "sc", "2 mg")], days=42, sex="male", age="60 years")
    mk = course([entry("mk677", "oral", "25 mg")], days=42, sex="male", age="60 years")
    rise = lambda c: c.mean["igf1_ng_ml"][-7:].mean() / base.mean["igf1_ng_ml"][-7:].mean() - 1  # noqa: E731
    assert 0.6 < rise(tesa) < 1.0  # Falutz 2007: ~+80%
    assert 0.4 < rise(mk) < 0.8  # Nass 2008 / Chapman 1996


@pytest.mark.calibration
def test_somatropin_label_pk():
    """Genotropin SmPC: ~80% absorbed, Cmax 13-35 ng/mL 3-6 h after 0.035 mg/kg SC (2.5 mg)."""
    grid, gh = level(entry("somatropin", "sc", "2.5 mg", stop="1 d"), days=2, sex="male")
    assert 13 < gh.max() < 35
    assert 3 <= (grid.times()[gh.argmax()] - 8 * HOUR) * 24 <= 6
    assert gh[grid.index(1 + 8 * HOUR)] < 0.02 * gh.max()


def test_gh_deficiency_somatropin_restores_igf1_secretagogues_need_the_pituitary():
    """GH deficiency lowers IGF-1; somatropin 0.4 mg/day restores the age median (Molitch 2011);
    a secretagogue acts only through the remaining pituitary reserve: a smaller absolute rise
    than with a working pituitary, and IGF-1 stays low."""
    man = dict(days=60, sex="male", age="40 years")
    igf1 = lambda c: c.mean["igf1_ng_ml"][-7:].mean()  # noqa: E731
    normal, ghd = igf1(course([], **man)), igf1(course([], gh="deficient", **man))
    assert ghd < 0.6 * normal
    somatropin = igf1(course([entry("somatropin", "sc", "0.4 mg", "nightly")], gh="deficient", **man))
    assert somatropin == pytest.approx(normal, rel=0.15)
    mk = entry("mk677", "oral", "25 mg")
    rise_ghd = igf1(course([mk], gh="deficient", **man)) - ghd
    rise_normal = igf1(course([mk], **man)) - normal
    assert 0 < rise_ghd < 0.6 * rise_normal and ghd + rise_ghd < 0.85 * normal


def test_teriparatide_label_pk_and_intermittent_exposure():
    """Forteo label: peak ~30 min after 20 ug SC, SC half-life ~1 h, non-quantifiable within 3 h;
    peak PTH1R agonism a few times the upper limit of intact PTH. The step's keys separate a
    daily pulse (high peak, ~1-4 h above the threshold) from the endogenous level."""
    c = course([entry("teriparatide", "sc", "0.02 mg")], days=10, age="65 years")
    fine = c.fine["pth_total_pg_ml"].to_numpy()
    day = c.fine["day"].to_numpy()
    endogenous = c.fine["pth_pg_ml"].to_numpy()
    drug = fine - endogenous
    first = day < 1
    hours = (day[first][drug[first].argmax()] - 8 * HOUR) * 24
    assert 0.1 <= hours <= 0.75
    assert 200 < drug.max() < 800
    assert drug[np.searchsorted(day, 8 * HOUR + 4 * HOUR)] < 0.1 * drug.max()
    assert np.allclose(c.mean["pth_pg_ml"], course([], days=10, age="65 years").mean["pth_pg_ml"])
    assert np.all(c.mean["pth_peak_pg_ml"] > 4 * c.mean["pth_pg_ml"])
    assert np.all((c.mean["pth_hours_above"] > 1) & (c.mean["pth_hours_above"] < 4))
    assert c.mean["pth_total_pg_ml"].mean() < 2 * c.mean["pth_pg_ml"].mean()


def test_pth_exposure_separates_pulse_from_continuous():
    """The same daily mean as a 2-h pulse or all day: peaks and hours above the threshold differ."""
    grid = pk.FineGrid.for_run(2, 1.0)
    threshold = value("endocrine.pth.intermittent_threshold")
    two_hours = round(2 / 24 / grid.h)
    pulse = np.where(np.arange(grid.n) % grid.n_sub < two_hours, 9 * threshold, 0.0) + 0.4 * threshold
    continuous = np.full(grid.n, pulse.mean())
    a, b = axes.pth_exposure(pulse, grid), axes.pth_exposure(continuous, grid)
    assert np.allclose(a["pth_hours_above"], 2.0) and np.allclose(b["pth_hours_above"], 24.0)
    assert np.all(a["pth_peak_pg_ml"] > 5 * b["pth_peak_pg_ml"])


def test_serm_label_pk_and_er_keys():
    """Evista label: 60 mg/day averages ~0.86 ng/mL (AUC 24.2 ng*h/mL per mg/kg), half-life 27.7 h;
    tamoxifen 20 mg/day ~150 ng/mL at steady state (Nolvadex), half-life ~7 days. The serum keys
    carry the occupancy ratios sum(C/potency) and sum(efficacy C/potency)."""
    _, ral = level(entry("raloxifene", "oral", "60 mg"), days=30)
    css = ral[-3 * 96:].mean() * pk.drug_value("raloxifene", "potency")
    assert 0.6 < css < 1.2
    grid, single = level(entry("raloxifene", "oral", "60 mg", stop="1 d"), days=8)
    t = grid.times()
    i1, i2 = np.searchsorted(t, 3.0), np.searchsorted(t, 6.0)
    assert 24 < (t[i2] - t[i1]) * 24 * math.log(2) / math.log(single[i1] / single[i2]) < 32
    _, tam = level(entry("tamoxifen", "oral", "20 mg"), days=60)
    assert 100 < tam[-96:].mean() * pk.drug_value("tamoxifen", "potency") < 200
    c = course([entry("raloxifene", "oral", "60 mg")], days=30, age="65 years")
    load, agonism = c.mean["serm_er_load"], c.mean["serm_er_agonism"]
    assert np.allclose(agonism, pk.drug_value("raloxifene", "efficacy") * load)
    assert 5 < load[-7:].mean() < 20
    assert np.all(course([], days=5).mean["serm_er_load"] == 0)


def test_zoledronate_yearly_acts_with_its_own_potency():
    """Reclast 5 mg IV yearly: effect still ~0.8 of maximal at 12 months (turnover markers stay
    suppressed across the interval); the surface occupancy uses zoledronate's potency, not
    alendronate's."""
    c = course([entry("zoledronate", "iv", "5 mg", "every", every="1 year")], days=2 * 365, age="65 years")
    b = c.mean["bisphosphonate_rel"]
    assert b[7] > 0.9 and 0.7 < b[364] < b[91] and b[729] > 0.7
    grid, surface = level(entry("zoledronate", "iv", "5 mg", stop="1 d"), days=3)
    x = surface  # occupancy ratio with zoledronate's own potency
    mg = x * pk.drug_value("zoledronate", "potency")
    assert mg[grid.index(2)] == pytest.approx(5 * pk.drug_value("zoledronate", "bone_fraction"), rel=0.02)
    assert pk.drug_value("zoledronate", "potency") != pk.drug_value("alendronate", "potency")


def test_vitamin_d_and_calcium():
    c = course([entry("vitamin_d", "oral", "1000 IU"), entry("calcium", "oral", "500 mg")], days=180,
               vitamin_d="12 ng/mL", calcium_intake="500 mg/day")
    none = course([], days=180, vitamin_d="12 ng/mL", calcium_intake="500 mg/day")
    assert 5 < c.mean["vitd_ng_ml"][-1] - 12 < 8  # Heaney 2003: ~0.7 ng/mL per 100 IU/d
    assert c.mean["calcium_rel"][-1] > none.mean["calcium_rel"][-1]
    assert c.mean["pth_pg_ml"][-1] < none.mean["pth_pg_ml"][-1]


def test_exercise_sessions_raise_load_on_their_days():
    c = course([entry("exercise", "weight_bearing", "45 min", "per_week", per_week=3)], days=14,
               activity="sedentary")
    load = c.mean["load_rel"]
    assert np.isclose(load.min(), (4000 / 8000) ** 0.25, rtol=1e-6)
    assert (load > 1.0).sum() == 6


def test_denosumab_label_pk():
    c = course([entry("denosumab", "sc", "60 mg", "every", every="6 months")], days=170)
    d = c.mean["denosumab_ng_ml"]
    assert 3 <= d.argmax() <= 21  # Prolia label tmax ~10 days (3-21)
    assert 4000 < d.max() < 12000  # Cmax 6.75 ug/mL
    assert d[-1] < 0.05 * d.max()


def test_alendronate_effect_onset_and_persistence():
    c = course([entry("alendronate", "oral", "70 mg", "weekly", stop="2 years")], days=int(3.5 * 365))
    b = c.mean["bisphosphonate_rel"]
    assert b[90] > 0.75
    assert 0.2 < b[-1] < b[2 * 365 - 1]  # partial persistence after stopping (FLEX)


def test_two_drugs_of_one_class_share_one_conversion():
    """Bisphosphonates given together occupy the surfaces as sum(x) / (1 + sum(x)), each x with
    its own potency."""
    both = [entry("alendronate", "oral", "70 mg", "weekly"), entry("zoledronate", "iv", "5 mg", "every", every="1 year")]
    s = scenario(both, days=60)
    grid = pk.FineGrid.for_run(s.days, 1.0)
    x = [pk.entry_level(e, grid, "female", np.zeros(1)) for e in s.protocol]
    levels = pk.drug_levels(s.protocol, grid, "female", np.zeros(1))
    assert np.allclose(levels["bisphosphonate"], x[0] + x[1])
    c = serum_course(s, np.random.default_rng(0))
    assert np.allclose(c.fine["bisphosphonate_rel"], pk.occupancy(x[0] + x[1]), rtol=1e-5)


@pytest.fixture
def letrozole_table(tmp_path, monkeypatch):
    """The parameter tables with a second aromatase inhibitor added to drugs.toml, table entry only:
    letrozole, ~10x anastrozole's potency per ng/mL and a deeper maximal block (T'Sjoen 2005)."""
    from bonesim.model import parameters
    for path in parameters.PARAMETER_DIR.glob("*.toml"):
        (tmp_path / path.name).write_text(path.read_text())
    with open(tmp_path / "drugs.toml", "a") as f:
        f.write('''
[letrozole]
label = "letrozole (aromatase inhibitor)"
acts_on = "aromatase"
clearance = { value = 2.1, units = "L/h", range = [1.0, 3.0], source = "test entry" }
elimination_half_life = { value = 48.0, units = "h", range = [40.0, 100.0], source = "test entry" }
efficacy = { value = 0.97, units = "fraction of aromatase-derived E2 blocked at full occupancy", range = [0.9, 0.99], source = "test entry" }
potency = { value = 0.15, units = "ng/mL", range = [0.05, 1.0], source = "test entry" }
routes.oral.dose = ["mass"]
routes.oral.dose_range = { low = "0.5 mg", high = "5 mg", source = "test entry" }
routes.oral.bioavailability = { value = 1.0, units = "1", range = [1.0, 1.0], source = "test entry" }
routes.oral.absorption_rate = { value = 1.0, units = "1/h", range = [0.5, 3.0], source = "test entry" }
routes.oral.transit = { value = 1, units = "compartments", range = [1, 1], source = "test entry" }
''')
    monkeypatch.setattr(parameters, "PARAMETER_DIR", tmp_path)
    parameters.table.cache_clear()
    parameters.all_parameters.cache_clear()
    yield
    monkeypatch.undo()
    parameters.table.cache_clear()
    parameters.all_parameters.cache_clear()


def test_second_aromatase_inhibitor_through_the_table_acts_with_its_own_potency(letrozole_table):
    """A drug added to drugs.toml only: its inhibition is efficacy x / (1 + x) with its own
    potency and efficacy, so letrozole 2.5 mg blocks more E2 than anastrozole 1 mg."""
    women = dict(days=28, age="65 years")
    let = course([entry("letrozole", "oral", "2.5 mg")], **women)
    ana = course([entry("anastrozole", "oral", "1 mg")], **women)
    base = course([], **women)
    s = scenario([entry("letrozole", "oral", "2.5 mg")], days=28)
    grid = pk.FineGrid.for_run(s.days, 1.0)
    x = pk.entry_level(s.protocol[0], grid, "female", np.zeros(1))
    assert np.allclose(let.fine["aromatase_inhibition"], 0.97 * x / (1 + x), rtol=1e-5)
    fall = lambda c: 1 - c.mean["e2_pmol_l"][-7:].mean() / base.mean["e2_pmol_l"][-7:].mean()  # noqa: E731
    assert fall(let) > fall(ana) + 0.05
    both = course([entry("letrozole", "oral", "2.5 mg"), entry("anastrozole", "oral", "1 mg")], **women)
    assert both.fine["aromatase_inhibition"].max() <= 0.97 + 1e-6


def test_fine_step_convergence():
    """A different tissue step (hence substep) gives the same exposure over a week."""
    protocol = [entry("progesterone", "oral", "200 mg", "nightly"), entry("anastrozole", "oral", "1 mg")]
    a = serum_course(scenario(protocol, days=7), np.random.default_rng(0), dt_day=1.0)
    b = serum_course(scenario(protocol, days=7), np.random.default_rng(0), dt_day=0.7)
    for name in ("p4_ng_ml", "aromatase_inhibition"):
        auc_a = a.mean[name].sum() * 1.0
        auc_b = b.mean[name].sum() * 0.7
        assert auc_b == pytest.approx(auc_a, rel=0.01)
