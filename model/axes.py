"""The feedback axes of a virtual patient (docs/biology.md section 3), on the fine time grid.

- `pituitary`: the pituitary's response to GnRH, P(t) (1 untreated), under a GnRH agonist:
  a flare while its receptors are occupied and not yet desensitized, then castrate levels.
  A = occupancy by the agonist(s), D = desensitized fraction of the receptors:
      dD/dt = A (1 - D) / tau_des - (1 - A) D / tau_rec,    P = (1 + flare) (1 - D)
  with flare = the agonists' response (their efficacy, pharmacology.response).
- `hpg_men`: men's HPG axis. The hypothalamic drive G = exp(z) is an integral controller that
  holds the patient's own set point, with a lag of days (tau_fb):
      dz/dt = -(w ln(E2 / E2_0) + (1 - w) ln(T / T_0)) / tau,   ln lh_min <= z <= ln lh_max
  E2 and T are the serum totals (endogenous and exogenous), T_0 the untreated baseline at that
  age and E2_0 = e2_per_t T_0 its aromatization; tau is tau_fb while the signal suppresses LH
  and the slower tau_rise while it raises LH. LH drive L = P (G + gonadorelin response);
  the Leydig stimulation S relaxes to L + hCG (LH equivalents) with leydig_response_time;
      endogenous T = T_0 (a + (1 - a) S^n (1 + K^n) / (S^n + K^n))
  (a: adrenal share, n, K: the Leydig response). Untreated, z = 0 and L = S = 1: T = T_0
  exactly. Steady states: exogenous T or E2 above the set point drives LH to lh_min, so own
  production stops (replacement doses); an aromatase inhibitor leaving the fraction u of men's
  E2 raises T to T_0 u^(-w) and E2 to E2_0 u^(1 - w).
- `ovarian_drive`: women's gonadotropin drive of the follicular wave, P (1 - s_P) (1 - s_E),
  with the suppression by progestins (pharmacology.progestin_suppression) and by exogenous
  estrogen (`estrogen_suppression`); model/endocrine.py applies it to the drawn cycles.
- `gh_axis`: GH secretion relative to the age-normal, g = r (1 + s) + GH_exo / GH_0(age), with
  the pituitary reserve r (1, or gh.deficient_reserve in GH deficiency: secretagogues act only
  through it), the secretagogues' GH multiple s and serum GH from somatropin; serum IGF-1 =
  age median x (g lagged)^beta, so IGF-1 in GH deficiency is r^beta of the median.
- `pth_exposure`: the tissue step's peak and hours above `pth.intermittent_threshold` of the
  PTH1R-agonist level (endogenous PTH plus teriparatide), which separate intermittent from
  continuous exposure.
"""

import math

import numpy as np
from numba import njit

from bonesim.model import pharmacology as pk
from bonesim.model.parameters import value


def p(key: str) -> float:
    """A parameter of endocrine.toml."""
    return value(f"endocrine.{key}")


# ----------------------------------------------------------------------------------- pituitary
@njit(cache=True)
def _desensitize(occupied, des, rec, h, out):
    d = 0.0
    for j in range(occupied.size):
        a = occupied[j] / des
        b = (1.0 - occupied[j]) / rec
        if a + b > 0.0:
            target = a / (a + b)
            d = target + (d - target) * math.exp(-(a + b) * h)
        out[j] = d


def pituitary(agonist_x: np.ndarray, agonist_efficacy_x: np.ndarray, h: float) -> np.ndarray:
    """Pituitary response to GnRH, P (1 untreated), under GnRH agonists with summed occupancy
    ratio `agonist_x` and efficacy-weighted ratio `agonist_efficacy_x`; h: substep [days]."""
    occupied = pk.occupancy(agonist_x)
    desensitized = np.empty(occupied.size)
    _desensitize(np.ascontiguousarray(occupied, dtype=float), p("pituitary.desensitization_time"),
                 p("pituitary.recovery_time"), h, desensitized)
    return (1.0 + pk.response(agonist_x, agonist_efficacy_x)) * (1.0 - desensitized)


# ----------------------------------------------------------------------------------- men
@njit(cache=True)
def leydig_output(s, n, k, a):
    """Endogenous T relative to the untreated baseline at Leydig stimulation s (1 = normal LH):
    a + (1 - a) s^n (1 + k^n) / (s^n + k^n)."""
    return a + (1.0 - a) * s**n * (1.0 + k**n) / (s**n + k**n)


@njit(cache=True)
def _hpg(t0, t_exo, e2_exo, e2_left, pit, gnrh, hcg, e2_per_t, w, tau_fb, tau_rise, z_min,
         z_max, leydig_decay, n, k, a, h, lh, t_endo, e2):
    z = 0.0
    s = 1.0
    for j in range(t0.size):
        lh[j] = pit[j] * (math.exp(z) + gnrh[j])
        target = lh[j] + hcg[j]
        s = target + (s - target) * leydig_decay
        t_endo[j] = t0[j] * leydig_output(s, n, k, a)
        total = t_endo[j] + t_exo[j]
        e2[j] = e2_per_t * total * e2_left[j] + e2_exo[j]
        signal = w * math.log(e2[j] / (e2_per_t * t0[j])) + (1.0 - w) * math.log(total / t0[j])
        tau = tau_fb if signal > 0.0 else tau_rise
        z = min(max(z - signal * h / tau, z_min), z_max)


def hpg_men(t0: np.ndarray, t_exo: np.ndarray, e2_exo: np.ndarray, e2_left: np.ndarray,
            pit: np.ndarray, gnrh: np.ndarray, hcg: np.ndarray, h: float) -> dict[str, np.ndarray]:
    """Men's HPG axis on the fine grid (substep h days), starting from the untreated steady state.

    t0: untreated baseline T [ng/dL]; t_exo: exogenous T [ng/dL]; e2_exo: exogenous E2 [pmol/L];
    e2_left: fraction of aromatization-derived E2 left by aromatase inhibitors; pit: pituitary
    response (`pituitary`); gnrh: gonadorelin's LH response (pharmacology.response); hcg: hCG
    as LH equivalents. Returns lh_drive (1 = normal), t_endogenous_ng_dl and e2_pmol_l."""
    out = {name: np.empty(t0.size) for name in ("lh_drive", "t_endogenous_ng_dl", "e2_pmol_l")}
    _hpg(*(np.ascontiguousarray(x, dtype=float) for x in (t0, t_exo, e2_exo, e2_left, pit, gnrh, hcg)),
         value("endocrine.aromatization.e2_per_t"), p("hpg.e2_feedback_weight"),
         p("hpg.feedback_time"), p("hpg.rise_time"), math.log(p("hpg.lh_min")), math.log(p("hpg.lh_max")),
         math.exp(-h / p("hpg.leydig_response_time")), p("hpg.leydig_hill"),
         p("hpg.leydig_saturation"), p("hpg.adrenal_fraction"), h,
         out["lh_drive"], out["t_endogenous_ng_dl"], out["e2_pmol_l"])
    return out


def e2_left_men(inhibition: np.ndarray) -> np.ndarray:
    """Fraction of men's aromatization-derived serum E2 left at aromatase inhibition 0..1."""
    return 1.0 - (1.0 - p("aromatization.male_escape")) * inhibition


# ----------------------------------------------------------------------------------- women
def estrogen_suppression(e2_exo: np.ndarray, h: float) -> np.ndarray:
    """Gonadotropin suppression 0..1 by exogenous estrogen [pmol/L E2-equivalent], lagged."""
    lagged = pk.relax(e2_exo, h, p("hpo.estrogen_time_constant"), 0.0)
    return pk.hill(lagged, p("hpo.estrogen_suppression_ec50"), p("hpo.estrogen_suppression_hill"))


def ovarian_drive(pit: np.ndarray, progestin: np.ndarray, estrogen: np.ndarray) -> np.ndarray:
    """Gonadotropin drive of the follicular wave (1 untreated) from the pituitary response and
    the suppressions 0..1 by progestins and estrogens."""
    return pit * (1.0 - progestin) * (1.0 - estrogen)


# ----------------------------------------------------------------------------------- GH
def gh_endogenous(igf1_median: np.ndarray) -> np.ndarray:
    """Age-normal 24-h mean serum GH [ng/mL] behind the age-median IGF-1 [ng/mL]:
    GH_0 = gh.endogenous_mean_at_25 x (median / median at 25)^(1/beta)."""
    ratio = igf1_median / p("igf1.at_25")
    return p("gh.endogenous_mean_at_25") * ratio ** (1.0 / p("igf1.gh_exponent"))


def gh_axis(deficient: bool, release_x: np.ndarray, release_efficacy_x: np.ndarray,
            gh_exo_ng_ml: np.ndarray, igf1_median: np.ndarray, h: float) -> dict[str, np.ndarray]:
    """GH secretion relative to the age-normal (gh_rel) and serum IGF-1 [ng/mL] (igf1_ng_ml),
    from the untreated steady state. release_x, release_efficacy_x: the secretagogues' occupancy
    ratios; gh_exo_ng_ml: serum GH from somatropin; igf1_median: age-median IGF-1."""
    reserve = p("gh.deficient_reserve") if deficient else 1.0
    gh_rel = reserve * (1.0 + pk.response(release_x, release_efficacy_x)) + \
        gh_exo_ng_ml / gh_endogenous(igf1_median)
    lagged = pk.relax(gh_rel, h, p("igf1.response_half_time") / math.log(2), reserve)
    return {"gh_rel": gh_rel, "igf1_ng_ml": igf1_median * lagged ** p("igf1.gh_exponent")}


# ----------------------------------------------------------------------------------- PTH
def pth_exposure(agonist_pg_ml: np.ndarray, grid: pk.FineGrid) -> dict[str, np.ndarray]:
    """Per tissue step: peak PTH1R-agonist level [pg/mL intact-PTH equivalent] and hours above
    `pth.intermittent_threshold`."""
    steps = agonist_pg_ml.reshape(grid.n_steps, grid.n_sub)
    above = (steps > p("pth.intermittent_threshold")).sum(axis=1) * grid.h * 24.0
    return {"pth_peak_pg_ml": steps.max(axis=1), "pth_hours_above": above}
