"""Osteoclast lineage: precursors that home to bare bone and fuse, osteoclasts that resorb.

OsteoclastPrecursor (monocyte/macrophage lineage, RANK+): enters the marrow from a vessel,
migrates toward bare mineralized surface within the cytokine communication range, and there
differentiates when RANK is activated: hazard = differentiation_rate x occ(free RANKL)
x (1 + inflammation_gain x inflammatory tone) / (1 + tgfb_inhibition x occ(TGF-beta))
x (1 - pr_inhibition x occ(PR)). Free RANKL is what OPG (and denosumab) leave unbound, so OPG
is a competitive decoy. Next to an osteoclast the precursor fuses into it (one more nucleus).

Osteoclast (multinucleated): resorbs the resorbable bone on its faces (diagonals if none) at
resorption_rate [um^2/day per nucleus of the 2D section] x (floor + (1 - floor) occ(RANKL)) x
(1 - bisphosphonate_inhibition x bisphosphonate effect), releasing the matrix's TGF-beta and IGF-1 into its grid cell; moves
along the surface at `speed` when no bone is in reach, keeping its sense of travel but turning
its heading along the surface after each step (`along_surface`: trench mode, it does not tunnel
into the bone), with a preference for concave sites;
lifts the lining cells around each grid cell it reaches (the canopy), so new osteoclasts can
join its BMU there.
A bone cell it resorbs to marrow that cuts a trabecula (neighborhood.cuts_trabecula) is a
perforation: that cell is never refilled (`perforate`), while the rest of the cavity, on the
stumps' surfaces, is left to the BMU's team.
Apoptosis: its biological clock runs at (1 + e2_apoptosis occ(ER) + tgfb_apoptosis occ(TGF-beta)
+ bisphosphonate_apoptosis x BP) / (1 + rankl_survival occ(RANK)), so estrogen shortens its life.
"""

import numpy as np

from bonesim.agents import rates as R
from bonesim.agents import signals as sig
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.lifecycle import become, kill, outlived, since_threshold
from bonesim.agents.movement import add_target, hops, migrate, move, time_left
from bonesim.agents.neighborhood import (
    ACTIVATED, DC, DR, EMPTY, QUIESCENT, bone_components, bone_neighbours, cuts_trabecula, exposed,
    inside, is_bone, resorbable, touches_resorbable,
)
from bonesim.agents.population import (
    B_ERODED, B_FIRST_RES, B_FORMED, B_FOUNDED, B_LAST_RES, B_OSTEOCLASTS, B_PERFORATIONS,
    B_RESORBED, B_TEAM, B_TEAM_SIZE, C_NBMU, DEATH_APOPTOSIS, DEATH_FUSED, DEATH_RESORBED, DEATH_RETRACTED, I_BMU,
    I_COL, I_KIND, I_NLIFE, I_NMOVE, I_NUCLEI, I_ROW, LINING, OC_PRECURSOR, OSTEOCLAST, OSTEOCYTE,
    T_FOUNDED, T_FUSED, T_NEW_ERODED, T_OC_CAPACITY, T_OC_DEATHS, T_OC_LIFE_SUM, T_PERFORATIONS,
    T_RELEASED, T_RESORBED, T_RESORBED_MINERAL,
    X_AGE, X_HEADING, X_TRANS, X_TRANS_THR, X_TRAVEL, BoneCell,
)
from bonesim.agents.receptors import hill
from bonesim.agents.streams import decision, normal, uniform
from bonesim.agents.world import F_IGF1, F_TGFB, S_BP, S_DAY, S_DT, S_DX, S_OSTEOID_BLOCK


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
    return (prm[R.OC_RES_RATE] * nuclei * activity * (1.0 - prm[R.OC_BP_INH] * bisphosphonate)
            * dt / (dx * dx))


@rule
def resorb(r, c, capacity, bmu, w):
    """Resorb up to `capacity` grid-cell volumes from the exposed resorbable bone under the
    osteoclast's footprint: the cells within `footprint_radius` of (r, c) that face marrow
    (`exposed`), shared equally (a share a cell cannot fill passes on to the next ones; at most
    as many shares as cells were in reach at the start); returns the capacity left (all of it when none is in reach, so the osteoclast
    moves on). A footprint wider than one grid cell erodes a lacuna as broad as the cell,
    deepening while it stays, instead of a channel one grid cell wide."""
    osteoid, matrix = w.osteoid, w.matrix
    block = w.sysv[S_OSTEOID_BLOCK]
    rows, cols = matrix.shape
    reach = max(w.prm[R.OC_FOOTPRINT] / w.sysv[S_DX], 1.5)
    n_reach = int(reach)
    n = 0
    for rr in range(max(0, r - n_reach), min(rows, r + n_reach + 1)):
        for cc in range(max(0, c - n_reach), min(cols, c + n_reach + 1)):
            if under_footprint(osteoid, matrix, r, c, rr, cc, reach, block):
                n += 1
    i = 0
    for rr in range(max(0, r - n_reach), min(rows, r + n_reach + 1)):
        for cc in range(max(0, c - n_reach), min(cols, c + n_reach + 1)):
            if i < n and under_footprint(osteoid, matrix, r, c, rr, cc, reach, block):
                capacity -= resorb_cell(r, c, rr, cc, capacity / (n - i), bmu, w)
                i += 1
    return capacity


@rule
def under_footprint(osteoid, matrix, r, c, rr, cc, reach, osteoid_block):
    """Grid cell (rr, cc) is resorbable bone facing marrow within `reach` grid steps of an
    osteoclast at (r, c) (not its own cell)."""
    d2 = (rr - r) * (rr - r) + (cc - c) * (cc - c)
    return 0 < d2 <= reach * reach and resorbable(osteoid, matrix, rr, cc, osteoid_block) and \
        exposed(osteoid, matrix, rr, cc)


@rule
def resorb_cell(r, c, rr, cc, volume, bmu, w):
    """Resorb up to `volume` grid-cell volumes of bone cell (rr, cc) for an osteoclast at
    (r, c) of BMU `bmu`; returns the volume taken. Pools shrink in proportion; matrix TGF-beta
    (activated share) and IGF-1 go to the osteoclast's grid cell as a source [field units/day];
    osteocytes in fully resorbed cells die; resorbed bone cells are marked eroded by this BMU
    (the reversal-surface memory; the remains of a cell already marrow and out of any cavity
    stay out), and the quiescent surface they bore is tallied as newly eroded
    (`quiescent_faces`). A bone cell turned to marrow that `cuts_trabecula` perforates
    (`perforate`)."""
    osteoid, matrix, mineral_p, mineral_s = w.osteoid, w.matrix, w.mineral_p, w.mineral_s
    site_bmu, tally, bmu_stats, prm = w.site_bmu, w.tally, w.bmu_stats, w.prm
    day, dt = w.sysv[S_DAY], w.sysv[S_DT]
    b = osteoid[rr, cc] + matrix[rr, cc]
    bridge = bone_components(osteoid, matrix, rr, cc) >= 2   # between bone pieces
    take = min(volume, b)
    mineral = (mineral_p[rr, cc] + mineral_s[rr, cc]) * take / b
    if b - take <= 1e-9:
        take = b
        osteoid[rr, cc] = 0.0
        matrix[rr, cc] = 0.0
        mineral_p[rr, cc] = 0.0
        mineral_s[rr, cc] = 0.0
        o = w.occ[rr, cc]
        if o >= 0 and w.ints[I_KIND, o] == OSTEOCYTE:
            kill(o, DEATH_RESORBED, w.ints, w.occ, w.free, w.counters, w.events)
    else:
        keep = 1.0 - take / b
        osteoid[rr, cc] *= keep
        matrix[rr, cc] *= keep
        mineral_p[rr, cc] *= keep
        mineral_s[rr, cc] *= keep
    if site_bmu[rr, cc] >= 0 or b >= 0.5:    # bone eroded, or a cavity deepened
        if site_bmu[rr, cc] < 0:
            faces = quiescent_faces(rr, cc, osteoid, matrix, site_bmu)
            tally[T_NEW_ERODED] += faces
            if bmu >= 0:
                bmu_stats[bmu, B_ERODED] += faces
        site_bmu[rr, cc] = bmu
        w.eroded_day[rr, cc] = day
    if b >= 0.5 and not is_bone(osteoid, matrix, rr, cc) and \
            fusion_partner(rr, cc, w.occ, w.ints, prm[R.OC_MAX_NUC]) >= 0:
        open_to_precursors(0, rr, cc, w)       # marrow now, next to an osteoclast
    if bridge and b >= 0.5 and not is_bone(osteoid, matrix, rr, cc) and \
            cuts_trabecula(osteoid, matrix, rr, cc, int(prm[R.OC_CUT_REACH] / w.sysv[S_DX]),
                           w.queue, w.mark):
        perforate(rr, cc, bmu, w)
    w.source[w.fi[F_TGFB], r, c] += take * prm[R.MAT_TGFB] * prm[R.MAT_TGFB_ACT] / dt
    w.source[w.fi[F_IGF1], r, c] += take * prm[R.MAT_IGF1] / dt
    tally[T_RESORBED] += take
    tally[T_RESORBED_MINERAL] += mineral
    if bmu >= 0:
        if bmu_stats[bmu, B_FIRST_RES] < 0:
            bmu_stats[bmu, B_FIRST_RES] = day
        bmu_stats[bmu, B_LAST_RES] = day + dt
        bmu_stats[bmu, B_RESORBED] += take
    return take


@rule
def perforate(r, c, bmu, w):
    """Resorption has cut through a trabecula at (r, c): the cell of the cut is never refilled
    (Liu 2008: a cavity is refilled unless it perforates a plate, breaks a rod or isolates a
    fragment; Parfitt 1983: formation needs a surface to build on, so osteoblasts refill the
    stumps' surfaces but do not bridge the gap, `osteoblasts.bridges`). The cell leaves the
    cavity memory (quiescent marrow: no target for osteoblast precursors) and its unfilled
    volume is tallied as released (not the remains, under half a cell, that the osteoclast
    may take after the cut)."""
    w.tally[T_PERFORATIONS] += 1.0
    if bmu >= 0:
        w.bmu_stats[bmu, B_PERFORATIONS] += 1.0
    w.site_bmu[r, c] = QUIESCENT
    w.tally[T_RELEASED] += max(0.0, 1.0 - w.osteoid[r, c] - w.matrix[r, c])
    w.eroded_day[r, c] = w.sysv[S_DAY]


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
    resorbable bone with room for the cell's body (at most half of its 8 neighbours bone: an
    osteoclast tens of um across does not enter a channel one or two grid cells wide, it
    widens it from outside), scored by alignment with the heading, concavity (bone
    neighbours, depth_preference) and turning noise (the k-th normal number of the move's
    hash h)."""
    rows, cols = matrix.shape
    best, best_k = -np.inf, -1
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or occ[rr, cc] != EMPTY or vessel[rr, cc]:
            continue
        if is_bone(osteoid, matrix, rr, cc) or not touches_resorbable(osteoid, matrix, rr, cc, osteoid_block):
            continue
        if bone_neighbours(osteoid, matrix, rr, cc) > 4:   # no room for the cell's body
            continue
        angle = np.arctan2(DR[k], DC[k])
        score = (np.cos(angle - heading) + prm[R.OC_DEPTH] * bone_neighbours(osteoid, matrix, rr, cc) / 8.0
                 + prm[R.OC_TURN] * normal(h, k))
        if score > best:
            best, best_k = score, k
    return best_k


@rule
def bone_direction(r, c, osteoid, matrix):
    """(rows, cols) sum of the unit steps from (r, c) to its bone neighbours: the inward normal
    of the bone surface there, (0, 0) off the surface."""
    rows, cols = matrix.shape
    nr, nc = 0.0, 0.0
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and is_bone(osteoid, matrix, rr, cc):
            nr += DR[k]
            nc += DC[k]
    return nr, nc


@rule
def surface_tangent(r, c, osteoid, matrix, h):
    """A heading [rad] along the bone surface at (r, c): the inward normal turned by +-90 deg
    (either way with equal odds, from the decision hash h); a random heading off the surface."""
    nr, nc = bone_direction(r, c, osteoid, matrix)
    turn = np.pi / 2 if uniform(h, 0) < 0.5 else -np.pi / 2
    if nr == 0.0 and nc == 0.0:
        return np.pi * (2.0 * uniform(h, 1) - 1.0)
    return np.arctan2(nr, nc) + turn


@rule
def along_surface(r, c, heading, osteoid, matrix):
    """The heading [rad] along the bone surface at (r, c) nearest to `heading`: the inward
    normal turned by +90 or -90 deg, whichever is closer; `heading` itself off the surface.
    An osteoclast keeps its sense of travel along the surface but does not turn into the bone
    (trench mode, Soe & Delaisse 2017)."""
    nr, nc = bone_direction(r, c, osteoid, matrix)
    if nr == 0.0 and nc == 0.0:
        return heading
    normal = np.arctan2(nr, nc)
    left, right = normal + np.pi / 2, normal - np.pi / 2
    return left if np.cos(left - heading) >= np.cos(right - heading) else right


@rule
def fusion_partner(r, c, occ, ints, max_nuclei):
    """An osteoclast next to (r, c) that can take one more nucleus, or -1."""
    rows, cols = occ.shape
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols):
            o = occ[rr, cc]
            if o >= 0 and ints[I_KIND, o] == OSTEOCLAST and ints[I_NUCLEI, o] < max_nuclei:
                return o
    return -1


@rule
def next_to_osteoclast(r, c, occ, ints):
    rows, cols = occ.shape
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and occ[rr, cc] >= 0 and ints[I_KIND, occ[rr, cc]] == OSTEOCLAST:
            return True
    return False


@rule
def bmu_of_new_osteoclast(r, c, w):
    """BMU id for an osteoclast formed at (r, c): that of eroded surface or an osteoclast
    next to it, else a new BMU (an activation event)."""
    site_bmu, bmu_stats = w.site_bmu, w.bmu_stats
    rows, cols = site_bmu.shape
    if site_bmu[r, c] >= 0:
        return site_bmu[r, c]
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols):
            continue
        if site_bmu[rr, cc] >= 0:
            return site_bmu[rr, cc]
        o = w.occ[rr, cc]
        if o >= 0 and w.ints[I_KIND, o] == OSTEOCLAST and w.ints[I_BMU, o] >= 0:
            return w.ints[I_BMU, o]
    b = w.counters[C_NBMU]
    if b >= bmu_stats.shape[0]:
        return -1
    w.counters[C_NBMU] = b + 1
    bmu_stats[b, :] = -1.0
    bmu_stats[b, B_FOUNDED] = w.sysv[S_DAY]
    bmu_stats[b, B_RESORBED] = 0.0
    bmu_stats[b, B_FORMED] = 0.0
    bmu_stats[b, B_OSTEOCLASTS] = 0.0
    bmu_stats[b, B_ERODED] = 0.0
    bmu_stats[b, B_TEAM] = 0.0
    bmu_stats[b, B_TEAM_SIZE] = 0.0
    bmu_stats[b, B_PERFORATIONS] = 0.0
    w.tally[T_FOUNDED] += 1.0
    return b


@rule
def lift_canopy(r, c, w):
    """An osteoclast lifts the lining off the quiescent bone around it: the surrounding
    surface cells become ACTIVATED (their lining cells retract), so the BMU's cutting front
    can recruit new osteoclasts there for the activation window (the BMU canopy, Andersen
    2009; lining retraction ahead of resorption, Everts 2002)."""
    osteoid, matrix, site_bmu = w.osteoid, w.matrix, w.site_bmu
    block = w.sysv[S_OSTEOID_BLOCK]
    rows, cols = matrix.shape
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or site_bmu[rr, cc] == ACTIVATED or site_bmu[rr, cc] >= 0:
            continue
        if is_bone(osteoid, matrix, rr, cc) or not touches_resorbable(osteoid, matrix, rr, cc, block):
            continue
        o = w.occ[rr, cc]
        if o >= 0:
            if w.ints[I_KIND, o] != LINING:
                continue
            kill(o, DEATH_RETRACTED, w.ints, w.occ, w.free, w.counters, w.events)
        site_bmu[rr, cc] = ACTIVATED
        w.eroded_day[rr, cc] = w.sysv[S_DAY]
        open_to_precursors(1, rr, cc, w)


@rule
def open_to_precursors(i, r, c, w):
    """Marrow cell (r, c) has become a target of the osteoclast precursors' distance map i
    (`kernel.targets`: 0 next to an osteoclast that can take a nucleus, 1 activated bare
    surface) within the step: the map takes it in at once (`movement.add_target`), so that
    precursors find it when it appears, not from the next step on, whatever dt."""
    if not w.vessel[r, c]:
        add_target(w.dist[i], r, c, w.prm[R.OCP_RADIUS] / w.sysv[S_DX], w.osteoid, w.matrix,
                   w.queue)


@rule
def offer_fusion(s, w):
    """Osteoclast s has come to its grid cell (formed or moved there): if it can take a
    nucleus, the marrow cells around it, free or held by a precursor, are fusion targets from
    now on."""
    if w.ints[I_NUCLEI, s] >= w.prm[R.OC_MAX_NUC]:
        return
    r, c = w.ints[I_ROW, s], w.ints[I_COL, s]
    rows, cols = w.occ.shape
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or is_bone(w.osteoid, w.matrix, rr, cc):
            continue
        o = w.occ[rr, cc]
        if o == EMPTY or w.ints[I_KIND, o] == OC_PRECURSOR:
            open_to_precursors(0, rr, cc, w)


@inline_rule
def precursor_step(s, w):
    """One step of an osteoclast precursor: it dies at the end of its life; it walks toward an
    osteoclast that can take a nucleus or toward activated bare bone in range (a random walk
    otherwise); there, from its arrival (`movement.time_left`), it fuses into the osteoclast, or
    on activated surface or at a cutting front it differentiates into a new osteoclast, at
    `differentiation_hazard`."""
    ints, flts, prm, dist = w.ints, w.flts, w.prm, w.dist
    dt, dx = w.sysv[S_DT], w.sysv[S_DX]
    block = w.sysv[S_OSTEOID_BLOCK]
    if outlived(s, w, 1.0):
        kill(s, DEATH_APOPTOSIS, ints, w.occ, w.free, w.counters, w.events)
        return
    r, c = ints[I_ROW, s], ints[I_COL, s]
    target = 0 if dist[0, r, c] >= 0 else 1      # an osteoclast in range first
    walked = migrate(s, dist[target], hops(prm[R.OCP_SPEED], flts[X_AGE, s], dt, dx), w.osteoid,
                     w.matrix, w.occ, ints, w.moved)
    r, c = ints[I_ROW, s], ints[I_COL, s]
    partner = fusion_partner(r, c, w.occ, ints, prm[R.OC_MAX_NUC])
    # a new osteoclast forms on bare bone that is either surface activated by lining-cell
    # retraction or the cutting front next to an osteoclast; eroded surface behind the
    # front is left to reversal and formation, other bare surface to the lining cells
    if partner < 0 and not (not is_bone(w.osteoid, w.matrix, r, c)
                            and touches_resorbable(w.osteoid, w.matrix, r, c, block)
                            and (w.site_bmu[r, c] == ACTIVATED
                                 or next_to_osteoclast(r, c, w.occ, ints))):
        return
    hazard = differentiation_hazard(w.rankl_free[r, c], sig.level(w, F_TGFB, r, c),
                                    sig.inflammation_at(w, r, c), sig.pr(w, r, c), prm)
    if partner >= 0:
        hazard *= prm[R.OCP_FUSION] / prm[R.OCP_DIFF]
    flts[X_TRANS, s] += time_left(prm[R.OCP_SPEED], flts[X_AGE, s], dt, dx, walked) * hazard
    if flts[X_TRANS, s] < flts[X_TRANS_THR, s]:
        return
    if partner >= 0:
        ints[I_NUCLEI, partner] += 1
        kill(s, DEATH_FUSED, ints, w.occ, w.free, w.counters, w.events)
        w.tally[T_FUSED] += 1.0
        return
    since = since_threshold(s, flts, hazard)
    b = bmu_of_new_osteoclast(r, c, w)
    ints[I_BMU, s] = b
    ints[I_NUCLEI, s] = 1
    flts[X_HEADING, s] = surface_tangent(r, c, w.osteoid, w.matrix, decision(ints, s, I_NLIFE))
    if b >= 0:
        w.bmu_stats[b, B_OSTEOCLASTS] += 1.0
    become(s, OSTEOCLAST, since, w)
    offer_fusion(s, w)


@inline_rule
def osteoclast_step(s, w):
    """One step of an osteoclast: it ages at `clock_rate` and dies at the end of its life; over
    the step it resorbs the bone in reach at its `resorption_capacity` per step (tallied, so
    that the share it used can be read), and where none is left in reach it travels along the
    surface (`choose_move`) at its speed, one grid step per dx / speed days, lifting the lining
    around each grid cell it reaches (`lift_canopy`); the precursors' maps take in the
    activated surface and the free cells around it as they open (`open_to_precursors`,
    `offer_fusion`). Its time is followed within the step:
    digging spends capacity in proportion to time, travel goes on while it digs (the
    progress toward its next grid cell, `X_TRAVEL`, is banked up to one grid step) and waiting
    for it idles the capacity, so where it goes and how deep it digs do not depend on dt."""
    ints, flts, prm = w.ints, w.flts, w.prm
    dt, dx = w.sysv[S_DT], w.sysv[S_DX]
    bp = w.sysv[S_BP]
    r, c = ints[I_ROW, s], ints[I_COL, s]
    fr = w.rankl_free[r, c]
    if outlived(s, w, clock_rate(sig.er(w, r, c), sig.level(w, F_TGFB, r, c), fr, bp, prm)):
        w.tally[T_OC_DEATHS] += 1.0
        w.tally[T_OC_LIFE_SUM] += flts[X_AGE, s]
        kill(s, DEATH_APOPTOSIS, ints, w.occ, w.free, w.counters, w.events)
        return
    lift_canopy(r, c, w)
    capacity = resorption_capacity(ints[I_NUCLEI, s], fr, bp, prm, dt, dx)
    w.tally[T_OC_CAPACITY] += capacity
    pace = prm[R.OC_SPEED] / dx                  # grid steps per day
    left = dt                                    # days of the step not yet spent
    for _ in range(64):
        if left <= 0.0 or capacity <= 0.0:
            break
        volume = capacity * left / dt
        rest = resorb(r, c, volume, ints[I_BMU, s], w)
        if rest < volume:        # it dug; bone it laid bare may now be in reach
            spent = left * (1.0 - rest / volume)
            flts[X_TRAVEL, s] = min(1.0, flts[X_TRAVEL, s] + spent * pace)
            left -= spent
            continue
        wait = (1.0 - flts[X_TRAVEL, s]) / pace if pace > 0.0 else np.inf
        if wait > left:
            break
        k = choose_move(r, c, flts[X_HEADING, s], w.osteoid, w.matrix, w.occ, w.vessel, prm,
                        w.sysv[S_OSTEOID_BLOCK], decision(ints, s, I_NMOVE))
        if k < 0:
            break
        left -= wait
        flts[X_TRAVEL, s] = 0.0
        move(s, r, c, r + DR[k], c + DC[k], w.occ, ints, w.moved)
        r, c = r + DR[k], c + DC[k]
        flts[X_HEADING, s] = along_surface(r, c, np.arctan2(DR[k], DC[k]), w.osteoid, w.matrix)
        lift_canopy(r, c, w)
        offer_fusion(s, w)
    flts[X_TRAVEL, s] = min(1.0, flts[X_TRAVEL, s] + left * pace)
