"""Osteoclast lineage: precursors that home to bare bone and fuse, osteoclasts that resorb.

OsteoclastPrecursor (monocyte/macrophage lineage, RANK+): enters the marrow from a vessel,
migrates toward bare mineralized surface within the cytokine communication range, and there
differentiates when RANK is activated: hazard = differentiation_rate x occ(free RANKL)
x (1 + inflammation_gain x inflammatory tone) / (1 + tgfb_inhibition x occ(TGF-beta))
x (1 - pr_inhibition x occ(PR)). Free RANKL is what OPG (and denosumab) leave unbound, so OPG
is a competitive decoy. Next to an osteoclast the precursor fuses into it (one more nucleus).

Osteoclast (multinucleated): resorbs the resorbable bone on its faces (diagonals if none) at
resorption_rate [um^2/day per nucleus of the 2D section] x (floor + (1 - floor) occ(RANKL)) x
(1 - bisphosphonate effect), releasing the matrix's TGF-beta and IGF-1 into its grid cell; moves
along the surface (persistent heading, preference for concave sites) when no bone is in reach;
lifts the lining cells around it (the canopy), so new osteoclasts can join its BMU there.
Apoptosis: its biological clock runs at (1 + e2_apoptosis occ(ER) + tgfb_apoptosis occ(TGF-beta)
+ bisphosphonate_apoptosis x BP) / (1 + rankl_survival occ(RANK)), so estrogen shortens its life.
"""

import numpy as np

from bonesim.agents import rates as R
from bonesim.agents.jit import rule
from bonesim.agents.lifecycle import kill
from bonesim.agents.neighborhood import (
    DC, DR, EMPTY, bone_neighbours, inside, is_bone, resorbable, touches_resorbable,
)
from bonesim.agents.population import (
    B_ERODED, B_FIRST_RES, B_LAST_RES, B_RESORBED, DEATH_RESORBED, I_KIND, I_NUCLEI, OC_PRECURSOR,
    OSTEOCLAST, OSTEOCYTE, T_NEW_ERODED, T_RESORBED, T_RESORBED_MINERAL, BoneCell,
)
from bonesim.agents.streams import normal, uniform
from bonesim.agents.receptors import hill


class OsteoclastPrecursor(BoneCell):
    """RANK+ mononuclear precursor in the marrow (see module doc)."""

    KIND = OC_PRECURSOR


class Osteoclast(BoneCell):
    """Multinucleated resorbing osteoclast (see module doc)."""

    KIND = OSTEOCLAST

    @property
    def nuclei(self) -> int:
        """Number of fused precursors."""
        return int(self.model.population.ints[I_NUCLEI, self.slot])


@rule
def differentiation_hazard(free_rankl, tgfb, inflammation, pr_occupancy, prm):
    """Hazard [1/day] that a precursor on bare bone differentiates (or fuses)."""
    rank = hill(free_rankl, prm[R.RANK_EC50], 1.0)
    return (prm[R.OCP_DIFF] * rank * (1.0 + prm[R.OCP_INF_GAIN] * inflammation)
            / (1.0 + prm[R.OCP_TGFB_INH] * hill(tgfb, prm[R.TGFBR_EC50], 1.0))
            * (1.0 - prm[R.OCP_PR_INH] * pr_occupancy))


@rule
def clock_rate(er_occupancy, tgfb, free_rankl, bisphosphonate, prm):
    """Rate [-] at which an osteoclast ages (1 = its reference lifespan in days)."""
    return ((1.0 + prm[R.OC_E2_APOP] * er_occupancy
             + prm[R.OC_TGFB_APOP] * hill(tgfb, prm[R.TGFBR_EC50], 1.0)
             + prm[R.OC_BP_APOP] * bisphosphonate)
            / (1.0 + prm[R.OC_RANKL_SURV] * hill(free_rankl, prm[R.RANK_EC50], 1.0)))


@rule
def resorption_capacity(nuclei, free_rankl, bisphosphonate, prm, dt, dx):
    """Grid-cell volumes an osteoclast can resorb in dt [day] at spacing dx [um]."""
    floor = prm[R.OC_ACT_FLOOR]
    activity = floor + (1.0 - floor) * hill(free_rankl, prm[R.RANK_EC50], 1.0)
    return prm[R.OC_RES_RATE] * nuclei * activity * (1.0 - bisphosphonate) * dt / (dx * dx)


@rule
def resorb(r, c, capacity, bmu, day, dt, osteoid, matrix, mineral_p, mineral_s, site_bmu,
           eroded_day, occ, ints, free, counters, events, source, i_tgfb, i_igf1, prm,
           osteoid_block, tally, bmu_stats):
    """Resorb up to `capacity` grid-cell volumes from the resorbable face neighbours of (r, c)
    (diagonal neighbours if no face neighbour is resorbable), shared equally; returns the
    capacity left. Pools shrink in proportion; matrix TGF-beta (activated share) and IGF-1 go
    to the osteoclast's grid cell as a source [field units/day]; osteocytes in fully resorbed
    cells die; resorbed cells are marked eroded by this BMU (the reversal-surface memory), and
    the quiescent surface they bore is tallied as newly eroded (`quiescent_faces`)."""
    rows, cols = matrix.shape
    tgfb_release = prm[R.MAT_TGFB] * prm[R.MAT_TGFB_ACT] / dt
    igf1_release = prm[R.MAT_IGF1] / dt
    for ring in range(2):
        k0 = 4 * ring
        n = 0
        for k in range(k0, k0 + 4):
            rr, cc = r + DR[k], c + DC[k]
            if inside(rr, cc, rows, cols) and resorbable(osteoid, matrix, rr, cc, osteoid_block):
                n += 1
        if n == 0:
            continue
        share = capacity / n
        for k in range(k0, k0 + 4):
            rr, cc = r + DR[k], c + DC[k]
            if not (inside(rr, cc, rows, cols) and resorbable(osteoid, matrix, rr, cc, osteoid_block)):
                continue
            b = osteoid[rr, cc] + matrix[rr, cc]
            take = min(share, b)
            mineral = (mineral_p[rr, cc] + mineral_s[rr, cc]) * take / b
            if b - take <= 1e-9:
                take = b
                osteoid[rr, cc] = 0.0
                matrix[rr, cc] = 0.0
                mineral_p[rr, cc] = 0.0
                mineral_s[rr, cc] = 0.0
                o = occ[rr, cc]
                if o >= 0 and ints[I_KIND, o] == OSTEOCYTE:
                    kill(o, DEATH_RESORBED, ints, occ, free, counters, events)
            else:
                keep = 1.0 - take / b
                osteoid[rr, cc] *= keep
                matrix[rr, cc] *= keep
                mineral_p[rr, cc] *= keep
                mineral_s[rr, cc] *= keep
            if site_bmu[rr, cc] < 0:
                faces = quiescent_faces(rr, cc, osteoid, matrix, site_bmu)
                tally[T_NEW_ERODED] += faces
                if bmu >= 0:
                    bmu_stats[bmu, B_ERODED] += faces
            site_bmu[rr, cc] = bmu
            eroded_day[rr, cc] = day
            source[i_tgfb, r, c] += take * tgfb_release
            source[i_igf1, r, c] += take * igf1_release
            tally[T_RESORBED] += take
            tally[T_RESORBED_MINERAL] += mineral
            if bmu >= 0:
                if bmu_stats[bmu, B_FIRST_RES] < 0:
                    bmu_stats[bmu, B_FIRST_RES] = day
                bmu_stats[bmu, B_LAST_RES] = day + dt
                bmu_stats[bmu, B_RESORBED] += take
            capacity -= take
        return capacity
    return capacity


@rule
def quiescent_faces(r, c, osteoid, matrix, site_bmu):
    """Faces [count] between bone cell (r, c) and marrow not eroded by any BMU: the quiescent
    bone surface that eroding (r, c) turns into eroded surface. Cells inside the bone or under
    a cavity already open bear none, so the tally is eroded surface, not resorbed volume."""
    rows, cols = matrix.shape
    n = 0.0
    for k in range(4):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and site_bmu[rr, cc] < 0 and \
                not is_bone(osteoid, matrix, rr, cc):
            n += 1.0
    return n


@rule
def choose_move(r, c, heading, osteoid, matrix, occ, vessel, prm, osteoid_block, h):
    """Neighbour index k (0..7) an osteoclast moves to, or -1: an empty marrow cell next to
    resorbable bone, scored by alignment with the heading, concavity (bone neighbours,
    depth_preference) and turning noise (the k-th normal number of the move's hash h)."""
    rows, cols = matrix.shape
    best, best_k = -np.inf, -1
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or occ[rr, cc] != EMPTY or vessel[rr, cc]:
            continue
        if is_bone(osteoid, matrix, rr, cc) or not touches_resorbable(osteoid, matrix, rr, cc, osteoid_block):
            continue
        angle = np.arctan2(DR[k], DC[k])
        score = (np.cos(angle - heading) + prm[R.OC_DEPTH] * bone_neighbours(osteoid, matrix, rr, cc) / 8.0
                 + prm[R.OC_TURN] * normal(h, k))
        if score > best:
            best, best_k = score, k
    return best_k


@rule
def surface_tangent(r, c, osteoid, matrix, h):
    """A heading [rad] along the bone surface at (r, c): the inward normal turned by +-90 deg
    (either way with equal odds, from the decision hash h); a random heading off the surface."""
    rows, cols = matrix.shape
    nr, nc = 0.0, 0.0
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and is_bone(osteoid, matrix, rr, cc):
            nr += DR[k]
            nc += DC[k]
    turn = np.pi / 2 if uniform(h, 0) < 0.5 else -np.pi / 2
    if nr == 0.0 and nc == 0.0:
        return np.pi * (2.0 * uniform(h, 1) - 1.0)
    return np.arctan2(nr, nc) + turn
