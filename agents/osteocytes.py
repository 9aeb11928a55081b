"""Osteocytes: mechanosensors embedded in the matrix, sources of RANKL, OPG and sclerostin.

Mechanical stimulus s [-] at an osteocyte = load_rel (mean since the last refresh) x (set point
density / local density now)^strain_exponent (strain ~ load / modulus, modulus ~ density^2,
Carter & Hayes 1977): s = 1 for the habitual load on the tissue the osteocyte has adapted to
(Frost's mechanostat set point: the density of the section as built, model/bone_model.py).
Disuse factor u = 2 / (1 + s^mechano_hill): 1 at habitual load, up to 2 in disuse, toward 0
under overload. Sclerostin secretion x u x (1 - e2_sclerostin_suppression occ(ER)) (Robling
2008: loading suppresses Sost; Modder 2011: estrogen lowers sclerostin);
RANKL secretion x u x expression regulation (Nakashima 2011: osteocytes are the main RANKL
source for remodeling); OPG secretion x expression regulation. Apoptosis: the clock runs at
(1 + disuse_apoptosis max(0, 1 - s)) (1 + e2_survival (1 - occ(ER))) (Tomkinson 1997:
estrogen withdrawal raises osteocyte apoptosis; Aguirre 2006: disuse does).
"""

from bonesim.agents import rates as R
from bonesim.agents import signals as sig
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.lifecycle import kill, outlived
from bonesim.agents.population import (
    DEATH_APOPTOSIS, I_COL, I_ROW, OSTEOCYTE, T_OCY_DEATHS, BoneCell,
)
from bonesim.agents.world import F_SCLEROSTIN, S_MOL_PM


class Osteocyte(BoneCell):
    """Osteocyte in its lacuna (see module doc)."""

    KIND = OSTEOCYTE


@rule
def load_response(stimulus, gain, prm):
    """(1 + gain) / (1 + gain s^n), n = mechano_hill: 1 at habitual load (s = 1), -> 1 + gain
    in disuse, -> 0 under overload; the form of every mechanostat response in the model."""
    return (1.0 + gain) / (1.0 + gain * max(stimulus, 0.0) ** prm[R.OCY_MECH_HILL])


@rule
def disuse_factor(stimulus, prm):
    """u = 2 / (1 + s^n): 1 at habitual load, -> 2 in disuse, -> 0 under overload."""
    return load_response(stimulus, 1.0, prm)


@rule
def clock_rate(stimulus, er_occ, prm):
    """Rate [-] at which an osteocyte ages (1 = its reference lifespan)."""
    return ((1.0 + prm[R.OCY_DISUSE_APOP] * max(0.0, 1.0 - stimulus))
            * (1.0 + prm[R.OCY_E2_SURV] * (1.0 - er_occ)))


@inline_rule
def osteocyte_step(s, w):
    """One step of an osteocyte: it ages at `clock_rate` and dies at the end of its life; it
    secretes sclerostin and RANKL (both x the disuse factor) and OPG."""
    prm = w.prm
    r, c = w.ints[I_ROW, s], w.ints[I_COL, s]
    stim = w.stimulus[r, c]
    er = sig.er(w, r, c)
    if outlived(s, w, clock_rate(stim, er, prm)):
        w.tally[T_OCY_DEATHS] += 1.0
        kill(s, DEATH_APOPTOSIS, w.ints, w.occ, w.free, w.counters, w.events)
        return
    u = disuse_factor(stim, prm)
    w.source[w.fi[F_SCLEROSTIN], r, c] += (prm[R.OCY_SCL] * u * (1.0 - prm[R.OCY_E2_SCL] * er)
                                           * w.sysv[S_MOL_PM])
    sig.secrete_rankl_opg(w, r, c, prm[R.OCY_RANKL] * u, prm[R.OCY_OPG], er,
                          sig.inflammation_at(w, r, c), 1.0)
