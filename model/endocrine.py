"""Virtual patients: the systemic hormones, co-factors and loading the tissue sees over years.

`serum_course(scenario, rng, dt_day)` computes, before the tissue runs, the whole course of
(units in the names; `SERUM_NAMES` on the fine grid and as tissue-step means, `STEP_NAMES` per
tissue step only):

- e2_pmol_l: women, the ovary's menstrual cycles (`draw_cycles`: cycle length, ovulatory /
  short-luteal / anovulatory cycles and hormone peaks drawn from `rng`), fading over the
  menopausal transition (`ovarian_fraction`, a logistic fall centred on the FMP) and stopping
  at the final menstrual period (FMP), driven by the gonadotropins (model/axes.py: GnRH-agonist
  flare and castration, suppression of the follicular wave and of ovulation by progestins and
  exogenous estrogen), plus extragonadal E2 from androgens that decline with age; men,
  aromatization of T in the HPG feedback loop (model/axes.py). Both plus exogenous estradiol /
  CEE (E2-equivalent). Aromatase-derived E2 is cut by aromatase inhibitors (in men only
  partly: aromatization.male_escape).
- p4_ng_ml: follicular baseline plus the corpus luteum's P4 after each ovulation, plus drug.
- mpa_ng_ml: drug only.
- t_ng_dl: men, the HPG axis: age-declining endogenous T (or the patient's measured T) under
  LH with E2/T feedback, hCG and GnRH agonists, plus exogenous T; women, androgens declining
  with age (Davison 2005), plus drug (hCG's luteotropic action in women is not modeled).
- igf1_ng_ml: the GH axis (model/axes.py): age median x (GH secretion relative to normal)^beta,
  lowered in GH deficiency, raised by secretagogues through the pituitary reserve and by
  somatropin regardless of it.
- vitd_ng_ml (25(OH)D), calcium_rel (absorbed calcium / adequate), pth_pg_ml (endogenous
  intact PTH: rises with age, low vitamin D and low calcium).
- pth_total_pg_ml: PTH1R agonism, endogenous PTH plus teriparatide as intact-PTH equivalents
  (equimolar) [pg/mL]; per tissue step also pth_peak_pg_ml (the step's peak) and
  pth_hours_above (hours of the step above pth.intermittent_threshold): a daily injection gives
  a high peak for ~2 h, a continuous exposure the same mean all day (Komarova 2005).
- serm_er_load and serm_er_agonism: the SERMs' ER occupancy ratios sum(C/potency) and
  sum(efficacy C/potency) [1]; bone ER activation with E2 at level E is
  (E/EC50 + agonism) / (1 + E/EC50 + load), EC50 = receptors.er_ec50_e2 (competitive partial
  agonists: agonist after menopause, antagonist against premenopausal E2).
- aromatase_inhibition (0..1), load_rel (daily stress stimulus / habitual moderate activity),
  denosumab_ng_ml, bisphosphonate_rel (0..1: occupancy of resorbing surfaces by every
  bisphosphonate given, each with its own potency).

`SerumCourse.mean[name]` is the tissue-step mean (peak and hours for STEP_NAMES),
`SerumCourse.exposure[name]` the constant level giving the step-mean receptor occupancy
C/(C + EC50) for the receptor-acting hormones (EC50s in endocrine.toml [receptors], keys in
`RECEPTOR_EC50`) and the mean otherwise.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bonesim.model import axes
from bonesim.model import pharmacology as pk
from bonesim.model.axes import p
from bonesim.model.parameters import value
from bonesim.model.scenario import Patient, Scenario
from bonesim.model.units import DAYS_PER_YEAR

SERUM_NAMES = ("e2_pmol_l", "p4_ng_ml", "mpa_ng_ml", "t_ng_dl", "igf1_ng_ml", "pth_pg_ml",
               "vitd_ng_ml", "calcium_rel", "aromatase_inhibition", "load_rel",
               "denosumab_ng_ml", "bisphosphonate_rel", "pth_total_pg_ml", "serm_er_load",
               "serm_er_agonism")
STEP_NAMES = ("pth_peak_pg_ml", "pth_hours_above")
EXTRA_FINE = ("lh_drive", "t_endogenous_ng_dl", "t_exogenous_ng_dl", "pituitary_response",
              "aromatase_occupancy", "gh_rel", "ovarian_fraction")
RECEPTOR_EC50 = {
    "e2_pmol_l": "endocrine.receptors.er_ec50_e2",
    "p4_ng_ml": "endocrine.receptors.pr_ec50_p4",
    "mpa_ng_ml": "endocrine.receptors.pr_ec50_mpa",
    "t_ng_dl": "endocrine.receptors.ar_ec50_t",
}
OVULATORY, SHORT_LUTEAL, ANOVULATORY = 0, 1, 2


@dataclass(frozen=True)
class SerumCourse:
    """Systemic levels over a whole run.

    day: (n_steps,) start day of each tissue step; mean / exposure: name -> (n_steps,) arrays
    for SERUM_NAMES and STEP_NAMES (see module doc); fine: DataFrame at sub-hour resolution with
    'day', SERUM_NAMES and EXTRA_FINE columns: lh_drive, the gonadotropin drive of the gonads
    (1 = normal; men's LH, women's drive of the follicular wave); t_endogenous_ng_dl and
    t_exogenous_ng_dl, the parts of serum T; pituitary_response, its response to GnRH (GnRH
    agonists: flare > 1, desensitized ~0); aromatase_occupancy 0..1; gh_rel, GH secretion
    relative to the age-normal; ovarian_fraction, the ovary's remaining output 0..1.
    """

    day: np.ndarray
    mean: dict[str, np.ndarray]
    exposure: dict[str, np.ndarray]
    fine: pd.DataFrame


# ----------------------------------------------------------------------------------- women
def fmp_day(patient: Patient) -> float:
    """Day of the final menstrual period relative to the simulation start (negative: before)."""
    return (patient.final_period_age - patient.age) * DAYS_PER_YEAR


def transition_history_days(patient: Patient) -> float:
    """Days since a woman's menopausal transition began (one transition duration before her
    FMP, when 1.2% of her ovaries' fall in output is done, `ovarian_fraction`), 0 for a woman
    before it and for a man: the history her tissue has lived through since then."""
    if patient.sex != "female":
        return 0.0
    start = fmp_day(patient) - p("menopause.transition_duration") * DAYS_PER_YEAR
    return max(0.0, -start)


def ovarian_fraction(t: np.ndarray, fmp: float) -> np.ndarray:
    """The ovary's output relative to the reproductive years (1 -> 0) at days t: a logistic
    fall centred on the FMP, 1 / (1 + exp((t - fmp) / s)), whose 10-90% span is the transition
    duration D (s = D / (2 ln 9)). As SWAN measured E2 (Randolph 2011): unchanged until ~2 years
    before the FMP (1.2% of the fall done one duration before it), falling fastest at the FMP,
    stable ~2 years after it. Exactly 1 until two durations before the FMP (where the logistic
    has lost 0.015%), so that the courses of younger women do not depend on it."""
    duration = p("menopause.transition_duration") * DAYS_PER_YEAR
    scale = duration / (2.0 * np.log(9.0))
    t = np.asarray(t, dtype=float)
    fall = 0.5 * (1.0 - np.tanh((t - fmp) / (2.0 * scale)))
    return np.where(t < fmp - 2.0 * duration, 1.0, fall)


def late_transition(t: np.ndarray, fmp: float) -> np.ndarray:
    """Progress 0..1 through the late menopausal transition at days t: linear from its start,
    `menopause.late_transition` before the FMP, to the FMP. Anovulation rises here while mean E2
    is still near the reproductive years' (SWAN: O'Connor 2009; Randolph 2011)."""
    length = p("menopause.late_transition") * DAYS_PER_YEAR
    return np.clip(1.0 - (fmp - np.asarray(t, dtype=float)) / length, 0.0, 1.0)


@dataclass(frozen=True)
class Cycles:
    """Menstrual cycles before the FMP: start (day of menses), length [days], kind (OVULATORY,
    SHORT_LUTEAL, ANOVULATORY), luteal length [days], and the drawn peak levels e2_peak,
    e2_luteal [pmol/L] and p4_peak [ng/mL]."""

    start: np.ndarray
    length: np.ndarray
    kind: np.ndarray
    luteal: np.ndarray
    e2_peak: np.ndarray
    e2_luteal: np.ndarray
    p4_peak: np.ndarray

    def ovulation(self) -> np.ndarray:
        """Day of ovulation of each cycle (meaningful for ovulatory kinds)."""
        return self.start + self.length - self.luteal


def draw_cycles(patient: Patient, rng: np.random.Generator, end: float) -> Cycles:
    """The patient's cycles covering the simulation, drawn backwards from the FMP (the last
    menses) so that it falls exactly at `final_period_age`. Each cycle draws, in order: its length
    (normal, patient.cycle), kind (anovulatory fraction, raised in the late transition by
    `cycle.perimenopause_anovulation` x its progress, `late_transition`; short-luteal fraction),
    luteal length, and log-normal E2 and P4 peak multipliers (truncated at 2 SD)."""
    c = patient.cycle
    fmp = fmp_day(patient)
    luteal_mean = p("cycle.luteal_length")
    starts = [fmp]
    while starts[-1] > -2 * c.length:
        starts.append(starts[-1] - float(np.clip(rng.normal(c.length, c.length_sd),
                                                 p("cycle.min_follicular") + p("cycle.short_luteal_min"),
                                                 2 * c.length)))
    ascending = np.array(starts[::-1])
    start, length = ascending[:-1], np.diff(ascending)
    n = start.size
    p_anov = c.anovulatory_fraction + (1 - c.anovulatory_fraction - c.short_luteal_fraction) * \
        p("cycle.perimenopause_anovulation") * late_transition(start + length / 2, fmp)
    u = rng.random(n)
    kind = np.where(u < p_anov, ANOVULATORY,
                    np.where(u < p_anov + c.short_luteal_fraction, SHORT_LUTEAL, OVULATORY))
    normal_luteal = rng.normal(luteal_mean, p("cycle.luteal_length_sd"), n)
    short_luteal = rng.uniform(p("cycle.short_luteal_min"), p("cycle.short_luteal_max"), n)
    luteal = np.where(kind == SHORT_LUTEAL, short_luteal,
                      np.clip(normal_luteal, p("cycle.short_luteal_max") + 1, luteal_mean + 3))
    luteal = np.minimum(luteal, length - p("cycle.min_follicular"))

    def lognormal(cv):  # mean 1, truncated at +/- 2 SD of the log
        sigma = math.sqrt(math.log(1 + cv**2))
        return np.exp(np.clip(rng.normal(0.0, sigma, n), -2 * sigma, 2 * sigma) - sigma**2 / 2)

    e2_mult, e2_lut_mult, p4_mult = lognormal(p("cycle.e2_peak_cv")), lognormal(p("cycle.e2_peak_cv")), \
        lognormal(p("cycle.p4_peak_cv"))
    return Cycles(start, length, kind, luteal, p("cycle.e2_preovulatory_peak") * e2_mult,
                  p("cycle.e2_luteal_peak") * e2_lut_mult, p("cycle.p4_luteal_peak") * p4_mult)


def cycle_starts(patient: Patient, cycles: Cycles | None, end: float) -> np.ndarray:
    """Days on which a 'cycle' begins for cyclic schedules 'of cycle': the menses of real cycles,
    then consecutive nominal cycles of the mean cycle length from the FMP (or from the start of
    the simulation for postmenopausal women and men)."""
    length = patient.cycle.length
    origin = max(fmp_day(patient), 0.0) if patient.sex == "female" else 0.0
    real = cycles.start[cycles.start < origin] if cycles is not None else np.empty(0)
    nominal = origin + length * np.arange(max(0, math.ceil((end - origin) / length)) + 1)
    return np.concatenate([real, nominal])


def _gauss(t, centre, sd_left, sd_right):
    sd = np.where(t < centre, sd_left, sd_right)
    return np.exp(-0.5 * ((t - centre) / sd) ** 2)


def ovarian_hormones(cycles: Cycles, t: np.ndarray, fmp: float, drive: np.ndarray,
                     pit: np.ndarray, grid: pk.FineGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ovarian E2 [pmol/L], luteal P4 above baseline [ng/mL], ovarian fraction) on the grid.

    Ovarian E2 = fraction x (pituitary response x early-follicular ovarian baseline +
    gonadotropin drive x follicular wave + luteal wave); after the FMP only the fading baseline
    remains. A cycle whose gonadotropin drive at the planned ovulation is below 1 -
    `hpo.ovulation_block` does not ovulate (axes.ovarian_drive, axes.pituitary).
    """
    base = p("cycle.e2_early_follicular") - p("cycle.e2_extragonadal")
    follicular = np.zeros(t.size)
    luteal_e2 = np.zeros(t.size)
    p4 = np.zeros(t.size)
    rise, fall = p("cycle.e2_rise_sd"), p("cycle.e2_fall_sd")
    normal_luteal = p("cycle.luteal_length")
    lut_width = p("cycle.e2_luteal_width")
    anov_sd = p("cycle.anovulatory_wave_sd")
    root2pi = math.sqrt(2 * math.pi)
    block = p("hpo.ovulation_block")
    ovulation = cycles.ovulation()
    window = int(math.ceil(3 * cycles.length.max() / grid.h)) if cycles.start.size else 0
    for k in range(cycles.start.size):
        lo = max(0, int((cycles.start[k] - cycles.length[k]) / grid.h))
        hi = min(t.size, lo + window)
        if hi <= 0 or lo >= t.size:
            continue
        tt = t[lo:hi]
        peak_amp = cycles.e2_peak[k] - p("cycle.e2_early_follicular")
        lut_amp = cycles.e2_luteal[k] - p("cycle.e2_early_follicular")
        ov = ovulation[k]
        blocked = 1.0 - drive[grid.index(ov)] > block if 0 <= ov < grid.end else False
        if cycles.kind[k] == ANOVULATORY or blocked:
            area = p("cycle.anovulatory_e2_area") * (
                peak_amp * (rise + fall) / 2 * root2pi + lut_amp * lut_width * normal_luteal * root2pi)
            centre = cycles.start[k] + cycles.length[k] / 2
            follicular[lo:hi] += area / (anov_sd * root2pi) * _gauss(tt, centre, anov_sd, anov_sd)
            continue
        lut = cycles.luteal[k]
        follicular[lo:hi] += peak_amp * _gauss(tt, ov - 1.0, rise, fall)
        sd = lut_width * lut
        luteal_e2[lo:hi] += lut_amp * _gauss(tt, ov + lut / 2, sd, sd)
        phase = (tt - ov) / lut
        inside = (phase > 0) & (phase < 1)
        amp = (cycles.p4_peak[k] - p("cycle.p4_follicular")) * (
            p("cycle.short_luteal_p4_factor") if cycles.kind[k] == SHORT_LUTEAL else 1.0)
        p4[lo:hi] += np.where(inside, amp * np.sin(np.pi * np.clip(phase, 0, 1)) ** 2, 0.0)
    fraction = ovarian_fraction(t, fmp)
    cycling = t < fmp
    e2 = fraction * (pit * base + cycling * (drive * follicular + luteal_e2))
    return e2, p4 * cycling, fraction


# ----------------------------------------------------------------------------------- men, GH, minerals
def women_androgens(age: np.ndarray) -> np.ndarray:
    """Women's androgen level relative to the age of 20: floor + (1 - floor) exp(-(age - 20) /
    decline_time), steepest in the early reproductive years (Davison 2005)."""
    floor = p("testosterone.women_floor")
    years = np.maximum(np.asarray(age, dtype=float) - 20.0, 0.0)
    return floor + (1.0 - floor) * np.exp(-years / p("testosterone.women_decline_time"))


def testosterone_baseline(patient: Patient, age: np.ndarray) -> np.ndarray:
    """Endogenous total T [ng/dL] before any drug: men decline from `testosterone.men_young`
    (or from the patient's measured level at the start) after `decline_onset`; women follow
    `women_androgens` from `women_at_20` (or from the measured level at the start)."""
    if patient.sex == "female":
        if patient.testosterone is None:
            return p("testosterone.women_at_20") * women_androgens(age)
        return patient.testosterone * women_androgens(age) / women_androgens(np.array(patient.age))
    onset, rate = p("testosterone.decline_onset"), p("testosterone.decline_rate")
    years_declined = np.maximum(age - onset, 0.0)
    if patient.testosterone is None:
        return p("testosterone.men_young") * np.exp(-rate * years_declined)
    return patient.testosterone * np.exp(-rate * (years_declined - max(patient.age - onset, 0.0)))


def extragonadal_e2(age: np.ndarray) -> np.ndarray:
    """Women's extragonadal E2 [pmol/L] from adrenal androgens, following their decline with age
    (`cycle.e2_extragonadal` at `androgens.reference_age`)."""
    reference = women_androgens(np.array(p("androgens.reference_age")))
    return p("cycle.e2_extragonadal") * women_androgens(age) / reference


def igf1_median(age: np.ndarray) -> np.ndarray:
    """Age-median serum IGF-1 [ng/mL] (normal GH secretion)."""
    return p("igf1.at_25") * np.exp(-p("igf1.decline_rate") * np.maximum(age - 25.0, 0.0))


def calcium_absorbed_rel(intake_mg_day: np.ndarray, vitd_ng_ml: np.ndarray) -> np.ndarray:
    """Absorbed calcium relative to an adequate intake at a sufficient 25(OH)D (1 = adequate)."""
    k = p("calcium.absorption_k")
    efficiency = vitd_ng_ml / (vitd_ng_ml + k)
    reference = p("vitamin_d.reference") / (p("vitamin_d.reference") + k)
    return intake_mg_day * efficiency / (p("calcium.adequate_intake") * reference)


def pth_level(age: np.ndarray, vitd_ng_ml: np.ndarray, calcium_rel: np.ndarray) -> np.ndarray:
    """Intact PTH [pg/mL]: rises with age, with 25(OH)D below its plateau and with low calcium."""
    age_factor = 1 + p("pth.age_slope") * np.maximum(age - p("pth.age_reference"), 0.0)
    vitd_factor = 1 + p("pth.vitd_gain") * np.maximum(1 - vitd_ng_ml / p("pth.vitd_plateau"), 0.0)
    calcium_factor = 1 + p("pth.calcium_gain") * np.maximum(1 - calcium_rel, 0.0)
    return p("pth.baseline") * age_factor * vitd_factor * calcium_factor


def load_level(activity: str, exercise_minutes: np.ndarray) -> np.ndarray:
    """Daily stress stimulus relative to habitual moderate activity: ((n_steps + n_ex s^m) /
    n_moderate)^(1/m) with n_ex = minutes x cadence and s the exercise stress vs walking."""
    m = p("loading.stress_exponent")
    cycles = p(f"loading.steps_{activity}") + exercise_minutes * p("loading.exercise_cadence") * \
        p("loading.exercise_stress") ** m
    return (cycles / p("loading.steps_moderate")) ** (1 / m)


# ----------------------------------------------------------------------------------- the course
def receptor_exposure(fine: np.ndarray, ec50: float, grid: pk.FineGrid) -> np.ndarray:
    """Constant level whose occupancy C/(C+EC50) equals the step-mean occupancy of `fine`."""
    occupancy = np.clip(grid.step_mean(fine / (fine + ec50)), 0.0, 1.0 - 1e-12)
    return ec50 * occupancy / (1.0 - occupancy)


def serum_course(scenario: Scenario, rng, dt_day: float | None = None) -> SerumCourse:
    """The systemic course of `scenario` over its whole duration, in tissue steps of `dt_day`
    (default scenario.simulation.dt). `rng`: numpy Generator (or seed) for the cycle draws;
    the same scenario and generator state give identical output."""
    rng = np.random.default_rng(rng)
    patient = scenario.patient
    dt = scenario.simulation.dt if dt_day is None else dt_day
    grid = pk.FineGrid.for_run(scenario.days, dt)
    t = grid.times()
    age = patient.age + t / DAYS_PER_YEAR
    female = patient.sex == "female"
    cycles = draw_cycles(patient, rng, grid.end) if female else None
    drugs = pk.drug_levels(scenario.protocol, grid, patient.sex, cycle_starts(patient, cycles, grid.end))

    inhibition = pk.response(drugs["aromatase"], drugs["aromatase_efficacy"])
    pit = axes.pituitary(drugs["gnrh_agonist"], drugs["gnrh_agonist_efficacy"], grid.h)
    t_base = testosterone_baseline(patient, age)
    e2_per_t = p("aromatization.e2_per_t")
    if female:
        progestin = pk.progestin_suppression(pk.mpa_equivalent(drugs["mpa"], drugs["p4"]), grid.h)
        drive = axes.ovarian_drive(pit, progestin, axes.estrogen_suppression(drugs["e2"], grid.h))
        ovarian, luteal_p4, fraction = ovarian_hormones(cycles, t, fmp_day(patient), drive, pit, grid)
        t_endogenous = t_base
        ovary_blocked = (1 - p("aromatization.ovarian_escape")) * inhibition
        e2 = ovarian * (1 - ovary_blocked) + drugs["e2"] + \
            (extragonadal_e2(age) + e2_per_t * (t_endogenous + drugs["t"])) * (1 - inhibition)
    else:
        luteal_p4, fraction = np.zeros(grid.n), np.zeros(grid.n)
        gnrh = pk.response(drugs["gnrh"], drugs["gnrh_efficacy"])
        hpg = axes.hpg_men(t_base, drugs["t"], drugs["e2"], axes.e2_left_men(inhibition), pit, gnrh,
                           drugs["lh"], grid.h)
        drive, t_endogenous, e2 = hpg["lh_drive"], hpg["t_endogenous_ng_dl"], hpg["e2_pmol_l"]
    gh = axes.gh_axis(patient.gh == "deficient", drugs["gh_release"], drugs["gh_release_efficacy"],
                      drugs["gh"], igf1_median(age), grid.h)
    vitd = patient.vitamin_d + drugs["vitd"]
    calcium_rel = calcium_absorbed_rel(patient.calcium_intake + drugs["calcium"], vitd)
    pth = pth_level(age, vitd, calcium_rel)
    fine = {
        "e2_pmol_l": e2,
        "p4_ng_ml": p("cycle.p4_follicular") + luteal_p4 + drugs["p4"],
        "mpa_ng_ml": drugs["mpa"],
        "t_ng_dl": t_endogenous + drugs["t"],
        "igf1_ng_ml": gh["igf1_ng_ml"],
        "pth_pg_ml": pth,
        "vitd_ng_ml": vitd,
        "calcium_rel": calcium_rel,
        "aromatase_inhibition": inhibition,
        "load_rel": load_level(patient.activity, drugs["load"]),
        "denosumab_ng_ml": drugs["denosumab"],
        "bisphosphonate_rel": pk.occupancy(drugs["bisphosphonate"]),
        "pth_total_pg_ml": pth + drugs["pth"],
        "serm_er_load": drugs["serm"],
        "serm_er_agonism": drugs["serm_efficacy"],
        "lh_drive": drive,
        "t_endogenous_ng_dl": t_endogenous,
        "t_exogenous_ng_dl": drugs["t"],
        "pituitary_response": pit,
        "aromatase_occupancy": pk.occupancy(drugs["aromatase"]),
        "gh_rel": gh["gh_rel"],
        "ovarian_fraction": fraction,
    }
    mean = {name: grid.step_mean(fine[name]) for name in SERUM_NAMES}
    mean.update(axes.pth_exposure(fine["pth_total_pg_ml"], grid))
    exposure = {name: (receptor_exposure(fine[name], value(RECEPTOR_EC50[name]), grid)
                       if name in RECEPTOR_EC50 else mean[name]) for name in mean}
    frame = pd.DataFrame({"day": t, **{k: np.asarray(v, dtype=np.float32) for k, v in fine.items()}})
    return SerumCourse(np.arange(grid.n_steps) * dt, mean, exposure, frame)
