"""Bone lining cells: the quiescent surface, and where BMUs are activated.

A lining cell covers one grid face of quiescent bone. It is *activated* (retracts, exposing the
mineralized surface to osteoclast precursors) with hazard activation_rate x (patch width
fraction) x (activation_basal (1 - e2_basal_suppression occ(ER)) + occ(free RANKL)) x
`mechanostat`(s) x (1 + pth_gain occ(PTH1R)): a nontargeted (stochastic) rate that estrogen
restrains, the osteocyte-derived targeted RANKL signal, the local mechanical stimulus s and
PTH, x (1 - bisphosphonate_suppression x the bisphosphonate effect) (Parfitt 1982, 2002;
Nakashima 2011; Everts 2002: lining cells retract and clear the surface before resorption;
bisphosphonates act mostly by fewer BMUs being activated). The mechanostat raises activation
in disuse and lowers it under overload, as where bone has been lost below the set point
(Frost 1987: remodeling is depressed above the set point; Riggs 1998: so the rapid
postmenopausal loss subsides). The exposed site is marked ACTIVATED: for
activation_window days it is where osteoclast precursors may form a new osteoclast (a BMU
starts only there, or next to an osteoclast at a cutting front); then it is quiescent again.
Bare quiescent surface (e.g. where an osteoblast died) is re-covered by neighbouring lining
cells spreading at spread_speed. Lining cells make little RANKL and OPG.
"""

from bonesim.agents import rates as R
from bonesim.agents import signals as sig
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.lifecycle import kill, renew
from bonesim.agents.neighborhood import (
    ACTIVATED, DC, DR, EMPTY, QUIESCENT, inside, is_bone, touches_bone, touches_resorbable,
)
from bonesim.agents.osteocytes import load_response
from bonesim.agents.population import (
    DEATH_DETACHED, DEATH_RETRACTED, I_COL, I_NLIFE, I_ROW, LINING, T_ACTIVATED, X_AUX,
    X_AUX_THR, X_TRANS, X_TRANS_THR, BoneCell,
)
from bonesim.agents.receptors import hill
from bonesim.agents.streams import SPREAD, decision, direction, peek
from bonesim.agents.world import S_BP, S_DAY, S_DT, S_DX, S_OSTEOID_BLOCK, S_PATCH


class LiningCell(BoneCell):
    """Flat quiescent cell on a bone surface (see module doc)."""

    KIND = LINING


@rule
def mechanostat(stimulus, prm):
    """Activation relative to that at habitual load [-]: (1 + disuse_gain) / (1 + disuse_gain
    s^mechano_hill), 1 at s = 1, 1 + disuse_gain in full disuse (s = 0), toward 0 under
    overload (s the local mechanical stimulus, agents/osteocytes.py)."""
    return load_response(stimulus, prm[R.LIN_DISUSE], prm)


@rule
def activation_hazard(free_rankl, er_occ, stimulus, pth_occ, bisphosphonate, patch_scale, prm):
    """Hazard [1/day] that a lining cell retracts and exposes the bone (er_occ: ER occupancy;
    bisphosphonate: its skeletal effect 0..1)."""
    return (prm[R.LIN_ACT] * patch_scale
            * (prm[R.LIN_ACT_BASAL] * (1.0 - prm[R.LIN_E2_BASAL] * er_occ)
               + hill(free_rankl, prm[R.RANK_EC50], 1.0))
            * mechanostat(stimulus, prm)
            * (1.0 + prm[R.LIN_PTH] * pth_occ)
            * (1.0 - prm[R.LIN_BP] * bisphosphonate))


@inline_rule
def lining_step(s, w):
    """One step of a lining cell: it dies off a surface; it secretes RANKL and OPG; it retracts
    at `activation_hazard`, leaving its surface ACTIVATED; otherwise it spreads over bare
    quiescent surface next to it at spread_speed, looking first in a direction that stays
    until it has spread."""
    ints, flts, prm = w.ints, w.flts, w.prm
    osteoid, matrix, site_bmu = w.osteoid, w.matrix, w.site_bmu
    dt = w.sysv[S_DT]
    patch = w.sysv[S_PATCH]
    r, c = ints[I_ROW, s], ints[I_COL, s]
    if not touches_bone(osteoid, matrix, r, c):
        kill(s, DEATH_DETACHED, ints, w.occ, w.free, w.counters, w.events)
        return
    er = sig.er(w, r, c)
    sig.secrete_rankl_opg(w, r, c, prm[R.LIN_RANKL], prm[R.LIN_OPG], er,
                          sig.inflammation_at(w, r, c), patch)
    flts[X_TRANS, s] += dt * activation_hazard(w.rankl_free[r, c], er, w.stimulus[r, c],
                                               sig.pth1r(w), w.sysv[S_BP], patch, prm)
    if flts[X_TRANS, s] >= flts[X_TRANS_THR, s]:
        w.tally[T_ACTIVATED] += 1.0
        kill(s, DEATH_RETRACTED, ints, w.occ, w.free, w.counters, w.events)
        if site_bmu[r, c] == QUIESCENT:
            site_bmu[r, c] = ACTIVATED
            w.eroded_day[r, c] = w.sysv[S_DAY]
        return
    rows, cols = matrix.shape
    start = direction(peek(ints, s, SPREAD, I_NLIFE), 0)
    for j in range(8):
        k = (start + j) % 8
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and w.occ[rr, cc] == EMPTY and not w.vessel[rr, cc] and \
                site_bmu[rr, cc] == QUIESCENT and not is_bone(osteoid, matrix, rr, cc) and \
                touches_resorbable(osteoid, matrix, rr, cc, w.sysv[S_OSTEOID_BLOCK]):
            flts[X_AUX, s] += dt * prm[R.LIN_SPREAD] / w.sysv[S_DX]
            if flts[X_AUX, s] >= flts[X_AUX_THR, s]:
                renew(s, LINING, rr, cc, 0, decision(ints, s, I_NLIFE), w)
            break
