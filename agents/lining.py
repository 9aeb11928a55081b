"""Bone lining cells: the quiescent surface, and where BMUs are activated.

A lining cell covers one grid face of quiescent bone. It is *activated* (retracts, exposing the
mineralized surface to osteoclast precursors) with hazard activation_rate x (patch width
fraction) x (activation_basal (1 - e2_basal_suppression occ(ER)) + occ(free RANKL)) x
(1 + disuse_gain max(0, 1 - s)) x (1 + pth_gain occ(PTH1R)): a nontargeted (stochastic) rate
that estrogen restrains, the osteocyte-derived targeted RANKL signal, disuse (s the local
mechanical stimulus) and PTH (Parfitt 1982, 2002; Nakashima 2011; Everts 2002: lining cells
retract and clear the surface before resorption). The exposed site is marked ACTIVATED: for
activation_window days it is where osteoclast precursors may form a new osteoclast (a BMU
starts only there, or next to an osteoclast at a cutting front); then it is quiescent again.
Bare quiescent surface (e.g. where an osteoblast died) is re-covered by neighbouring lining
cells spreading at spread_speed. Lining cells make little RANKL and OPG.
"""

from bonesim.agents import rates as R
from bonesim.agents.jit import rule
from bonesim.agents.population import LINING, BoneCell
from bonesim.agents.receptors import hill


class LiningCell(BoneCell):
    """Flat quiescent cell on a bone surface (see module doc)."""

    KIND = LINING


@rule
def activation_hazard(free_rankl, er_occ, stimulus, pth_occ, patch_scale, prm):
    """Hazard [1/day] that a lining cell retracts and exposes the bone (er_occ: ER occupancy)."""
    return (prm[R.LIN_ACT] * patch_scale
            * (prm[R.LIN_ACT_BASAL] * (1.0 - prm[R.LIN_E2_BASAL] * er_occ)
               + hill(free_rankl, prm[R.RANK_EC50], 1.0))
            * (1.0 + prm[R.LIN_DISUSE] * max(0.0, 1.0 - stimulus))
            * (1.0 + prm[R.LIN_PTH] * pth_occ))
