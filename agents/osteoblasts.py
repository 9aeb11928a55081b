"""Osteoblast lineage: precursors recruited by resorption, osteoblasts that refill the cavity.

OsteoblastPrecursor (committed mesenchymal osteoprogenitor): recruited from the perivascular
niche at a rate raised by TGF-beta released from resorbed matrix (Tang 2009: TGF-beta1 couples
resorption to formation by recruiting progenitors), migrates toward free eroded (reversal)
surface within the communication range, proliferates a few times next to it (the reversal
canopy), and commits on it to an osteoblast of that surface's BMU once resorption there
has rested for the reversal delay (`kernel.at_rest`), within the reversal window that
follows. Proliferation runs at a drive of basal + TGF-beta + PR
(progesterone, MPA) + AR + IGF-1 occupancies, commitment at a basal rate, both times the
brake (1 - inhibition by IL-1/IL-6/TNF) x (1 - inhibition by sclerostin, a Wnt antagonist):
the mitogens set how many divisions a recruit makes before it commits, so the BMU's team is
the one recruited in the window, as large as the signals make it. The PR terms here and in
vigor are PR signalling (`pr_signal`): occupancy x PR expression, which estrogen induces.

Osteoblast: lays osteoid on the eroded surface it sits on (first the partly resorbed cells of
the cavity floor on its faces, then its own grid cell) at the apposition rate x vigor, where
vigor = (1 + PR, AR, IGF-1 terms) x (1 - sclerostin) x (1 - inflammation); on a surface that was
not eroded only at flat_formation of that rate. It never fills a marrow cell that would join
two separate pieces of bone (`bridges`): formation builds on one surface, so a trabecula cut
through stays cut. When its grid cell is full it is buried as an osteocyte with the
probability that a cell volume holds one (osteocyte density x volume), or moves on to the
next free eroded cell of its own BMU's cavity, or, with none left, keeps to the quiescent
surface where it retires (retire_rate) as a lining cell (lining_fraction) or by apoptosis.
The team is finite: when its members are gone, what they left unfilled of the cavity stays
unfilled (kernel.expire_memory). Its clock runs at (1 + inflammation and sclerostin terms) / (1 + e2_survival
occ(ER) + igf1_survival occ(IGF1R) + pth_pulse_survival x PTH pulse): estrogen, IGF-1 and
intermittent PTH support its survival (Jilka 1999: daily PTH injections delay osteoblast
apoptosis, the anabolic effect; continuous PTH acts through RANKL and activation instead). It secretes
RANKL and OPG (estrogen raises OPG, lowers RANKL; PTH the reverse).
"""

from bonesim.agents import rates as R
from bonesim.agents import signals as sig
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.lifecycle import become, kill, outlived, renew, since_threshold
from bonesim.agents.movement import free_neighbour, hops, migrate, move, time_left
from bonesim.agents.neighborhood import (
    DC, DR, EMPTY, bone_components, bone_neighbours, cuts_trabecula, inside, is_bone,
    touches_bone,
)
from bonesim.agents.population import (
    B_FIRST_FORM, B_FORMED, B_LAST_FORM, B_TEAM, B_TEAM_SIZE, DEATH_APOPTOSIS, I_BMU, I_COL, I_EMBED_DRAWN, I_GEN,
    I_NLIFE, I_ROW, LINING, OB_PRECURSOR, OSTEOBLAST, OSTEOCYTE, T_FORMED, T_OB_APOPTOSIS,
    T_OB_ENDS, T_OB_LIFE_SUM, T_OB_TO_LINING, T_OB_TO_OSTEOCYTE, T_OBP_COMMITTED, X_AGE, X_AUX,
    X_AUX_THR, X_CLOCK, X_CLOCK_END, X_TRANS, X_TRANS_THR, BoneCell,
)
from bonesim.agents.streams import decision, direction, uniform
from bonesim.agents.world import (
    F_IGF1, F_SCLEROSTIN, F_T, F_TGFB, S_DAY, S_DT, S_DX, S_EMBED, S_PATCH, S_PTH_PULSE,
)


class OsteoblastPrecursor(BoneCell):
    """Committed osteoprogenitor in the marrow (see module doc)."""

    KIND = OB_PRECURSOR


class Osteoblast(BoneCell):
    """Matrix-forming osteoblast on a bone surface (see module doc)."""

    KIND = OSTEOBLAST


@rule
def pr_signal(pr_occ, er_occ, prm):
    """PR signalling [0..1] in the osteoblast lineage: PR occupancy x PR expression, which
    estrogen induces (Rickard 2002): pr_er_independent + (1 - pr_er_independent) occ(ER)."""
    return pr_occ * (prm[R.PR_ER_INDEP] + (1.0 - prm[R.PR_ER_INDEP]) * er_occ)


@rule
def brake(inflammation, sclerostin_occ, prm):
    """Inhibition [0..1] of osteoprogenitor proliferation and commitment by IL-1/IL-6/TNF
    and by sclerostin (1 = none)."""
    return ((1.0 - prm[R.OBP_INF_INH] * inflammation)
            * (1.0 - prm[R.OBP_SCL_INH] * sclerostin_occ))


@rule
def drive(tgfb_occ, pr_sig, ar_occ, igf1_occ, inflammation, sclerostin_occ, prm):
    """Proliferation drive [-] of an osteoprogenitor: basal + the mitogens TGF-beta, PR
    signalling (pr_sig: `pr_signal`), AR, IGF-1, times the `brake`."""
    return ((prm[R.OBP_BASAL] + prm[R.OBP_TGFB] * tgfb_occ + prm[R.OBP_PR] * pr_sig
             + prm[R.OBP_AR] * ar_occ + prm[R.OBP_IGF] * igf1_occ)
            * brake(inflammation, sclerostin_occ, prm))


@rule
def vigor(pr_sig, ar_occ, igf1_occ, inflammation, sclerostin_occ, prm):
    """Matrix synthesis relative to the basal apposition rate [-] (pr_sig: `pr_signal`)."""
    return ((1.0 + prm[R.OB_PR_VIGOR] * pr_sig + prm[R.OB_AR_VIGOR] * ar_occ
             + prm[R.OB_IGF_VIGOR] * igf1_occ)
            * (1.0 - prm[R.OB_SCL_INH] * sclerostin_occ)
            * (1.0 - prm[R.OB_INF_INH] * inflammation))


@rule
def clock_rate(er_occ, igf1_occ, inflammation, sclerostin_occ, pth_pulse, prm):
    """Rate [-] at which an osteoblast ages (1 = its reference lifespan in days); pth_pulse:
    the PTH1R occupancy of an intermittent PTH peak above the day's mean (teriparatide)."""
    return ((1.0 + prm[R.OB_INF_APOP] * inflammation + prm[R.OB_SCL_APOP] * sclerostin_occ)
            / (1.0 + prm[R.OB_E2_SURV] * er_occ + prm[R.OB_IGF_SURV] * igf1_occ
               + prm[R.OB_PTH_SURV] * pth_pulse))


@rule
def form(r, c, amount, w):
    """Lay `amount` grid-cell volumes of osteoid: first into partly resorbed eroded bone cells
    on the faces of (r, c) (the cavity floor), then into (r, c) itself unless it `bridges` two
    pieces of bone; returns the amount laid. Every eroded cell refilled to 1 leaves the
    reversal-surface memory (site_bmu = -1)."""
    osteoid, matrix, site_bmu, bmu_stats = w.osteoid, w.matrix, w.site_bmu, w.bmu_stats
    day, dt = w.sysv[S_DAY], w.sysv[S_DT]
    rows, cols = matrix.shape
    laid = 0.0
    for k in range(5):
        if k < 4:
            rr, cc = r + DR[k], c + DC[k]
            if not inside(rr, cc, rows, cols) or site_bmu[rr, cc] < 0:
                continue
        else:
            rr, cc = r, c
        room = 1.0 - osteoid[rr, cc] - matrix[rr, cc]
        if room <= 0.0 or (k < 4 and not is_bone(osteoid, matrix, rr, cc)):
            continue
        if k == 4 and bridges(r, c, w):
            continue
        put = min(room, amount - laid)
        osteoid[rr, cc] += put
        laid += put
        bmu = site_bmu[rr, cc]
        if bmu >= 0:
            if bmu_stats[bmu, B_FIRST_FORM] < 0:
                bmu_stats[bmu, B_FIRST_FORM] = day
            bmu_stats[bmu, B_LAST_FORM] = day + dt
            bmu_stats[bmu, B_FORMED] += put
        if room - put <= 1e-9:
            osteoid[rr, cc] = 1.0 - matrix[rr, cc]
            site_bmu[rr, cc] = -1
        if laid >= amount:
            break
    w.tally[T_FORMED] += laid
    return laid


@rule
def next_site(r, c, osteoid, matrix, occ, vessel, site_bmu, bmu):
    """Neighbour index k (0..7) of the next free marrow cell for an osteoblast whose grid cell
    is full: an eroded cell of its BMU `bmu` touching bone, or, with bmu < 0, any surface cell;
    the most concave first; -1 if none."""
    rows, cols = matrix.shape
    best, best_k = -1, -1
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or occ[rr, cc] != EMPTY or vessel[rr, cc]:
            continue
        if is_bone(osteoid, matrix, rr, cc) or (bmu >= 0 and site_bmu[rr, cc] != bmu):
            continue
        if not touches_bone(osteoid, matrix, rr, cc):
            continue
        n = bone_neighbours(osteoid, matrix, rr, cc)
        if n > best:
            best, best_k = n, k
    return best_k


@rule
def bridges(r, c, w):
    """Filling the marrow cell (r, c) would join two pieces of bone that are apart nearby
    (`neighborhood.cuts_trabecula` with the cell left marrow): osteoblasts lay bone on one
    surface and do not bridge a gap, so a trabecula cut through stays cut. Pieces that meet
    again nearby (the walls and floor of a cavity being refilled) are one surface."""
    osteoid, matrix = w.osteoid, w.matrix
    return (not is_bone(osteoid, matrix, r, c) and bone_components(osteoid, matrix, r, c) >= 2
            and cuts_trabecula(osteoid, matrix, r, c, int(w.prm[R.OC_CUT_REACH] / w.sysv[S_DX]),
                               w.queue, w.mark))


@rule
def eroded_work(r, c, osteoid, matrix, site_bmu):
    """An osteoblast at (r, c) has eroded surface to refill (its own cell or a partly
    resorbed bone cell on its faces)."""
    if site_bmu[r, c] >= 0:
        return True
    rows, cols = matrix.shape
    for k in range(4):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and site_bmu[rr, cc] >= 0 and \
                is_bone(osteoid, matrix, rr, cc) and osteoid[rr, cc] + matrix[rr, cc] < 1.0:
            return True
    return False


@inline_rule
def leave_team(s, w):
    """Osteoblast s stops working: it leaves its BMU's team and the lifespan tallies."""
    b = w.ints[I_BMU, s]
    if b >= 0:
        w.bmu_stats[b, B_TEAM] -= 1.0
    w.ints[I_BMU, s] = -1
    w.tally[T_OB_ENDS] += 1.0
    w.tally[T_OB_LIFE_SUM] += w.flts[X_AGE, s]


@rule
def end_of_work(s, r, c, since, w):
    """End of an osteoblast's working life, `since` days before the step's end: lining cell
    (if on a surface, with lining_fraction) or apoptosis."""
    ints, tally = w.ints, w.tally
    leave_team(s, w)
    if touches_bone(w.osteoid, w.matrix, r, c) and not is_bone(w.osteoid, w.matrix, r, c) and \
            uniform(decision(ints, s, I_NLIFE), 0) < w.prm[R.OB_LINING]:
        become(s, LINING, since, w)
        tally[T_OB_TO_LINING] += 1.0
    else:
        kill(s, DEATH_APOPTOSIS, ints, w.occ, w.free, w.counters, w.events)
        tally[T_OB_APOPTOSIS] += 1.0


@inline_rule
def precursor_step(s, w):
    """One step of an osteoblast precursor: it dies at the end of its life; it secretes RANKL
    and OPG; in the canopy over eroded surface (within 2 grid steps) it divides up to
    max_divisions times at division_rate x `drive`; it walks toward free eroded surface in
    range (a random walk otherwise) and, from its arrival (`movement.time_left`), commits there
    to an osteoblast of that surface's BMU at commitment_rate x `brake`. The mitogens thus set
    how many divisions a recruit makes before it commits: the size of the BMU's team."""
    ints, flts, prm, dist = w.ints, w.flts, w.prm, w.dist
    dt, dx = w.sysv[S_DT], w.sysv[S_DX]
    if outlived(s, w, 1.0):
        kill(s, DEATH_APOPTOSIS, ints, w.occ, w.free, w.counters, w.events)
        return
    r, c = ints[I_ROW, s], ints[I_COL, s]
    er = sig.er(w, r, c)
    infl = sig.inflammation_at(w, r, c)
    scl = sig.occupancy(w, F_SCLEROSTIN, R.SCL_EC50, r, c)
    d = drive(sig.occupancy(w, F_TGFB, R.TGFBR_EC50, r, c), pr_signal(sig.pr(w, r, c), er, prm),
              sig.occupancy(w, F_T, R.AR_EC50, r, c), sig.occupancy(w, F_IGF1, R.IGF1R_EC50, r, c),
              infl, scl, prm)
    sig.secrete_rankl_opg(w, r, c, prm[R.OBP_RANKL], prm[R.OBP_OPG], er, infl, w.sysv[S_PATCH])
    if ints[I_GEN, s] < prm[R.OBP_MAX_DIV] and 0 <= dist[2, r, c] <= 2:  # in the canopy
        flts[X_AUX, s] += dt * prm[R.OBP_DIV] * d
        if flts[X_AUX, s] >= flts[X_AUX_THR, s]:
            h = decision(ints, s, I_NLIFE)
            k = free_neighbour(r, c, direction(h, 0), w.osteoid, w.matrix, w.occ)
            rr, cc = -1, -1
            if k >= 0:
                ints[I_GEN, s] += 1
                rr, cc = r + DR[k], c + DC[k]
            renew(s, OB_PRECURSOR, rr, cc, ints[I_GEN, s], h, w)
    walked = migrate(s, dist[2], hops(prm[R.OBP_SPEED], flts[X_AGE, s], dt, dx), w.osteoid,
                     w.matrix, w.occ, ints, w.moved)
    r, c = ints[I_ROW, s], ints[I_COL, s]
    if dist[2, r, c] != 0:
        return
    commitment = prm[R.OBP_COMMIT] * brake(infl, scl, prm)      # hazard [1/day]
    flts[X_TRANS, s] += time_left(prm[R.OBP_SPEED], flts[X_AGE, s], dt, dx, walked) * commitment
    if flts[X_TRANS, s] >= flts[X_TRANS_THR, s]:
        since = since_threshold(s, flts, commitment)
        b = w.site_bmu[r, c]
        ints[I_BMU, s] = b
        if b >= 0:
            w.bmu_stats[b, B_TEAM] += 1.0
            w.bmu_stats[b, B_TEAM_SIZE] += 1.0
        w.tally[T_OBP_COMMITTED] += 1.0
        become(s, OSTEOBLAST, since, w)


@inline_rule
def osteoblast_step(s, w):
    """One step of an osteoblast: it secretes RANKL and OPG; it ages at `clock_rate` and ends
    its work at the end of its life (`end_of_work`); with no eroded surface in reach it
    retires at retire_rate. It lays osteoid at apposition_rate x `vigor` (flat_formation of
    that off eroded surface) with the step's time: when its grid cell is full it is buried as
    an osteocyte with the probability that a cell volume holds one (drawn once per grid cell),
    or moves on to the next free eroded cell of its BMU's cavity (any surface cell if none), and
    works on there with the time left; a cell that `bridges` a gap it leaves unfilled."""
    ints, flts, prm = w.ints, w.flts, w.prm
    osteoid, matrix, site_bmu = w.osteoid, w.matrix, w.site_bmu
    dt, dx = w.sysv[S_DT], w.sysv[S_DX]
    r, c = ints[I_ROW, s], ints[I_COL, s]
    er = sig.er(w, r, c)
    infl = sig.inflammation_at(w, r, c)
    igf = sig.occupancy(w, F_IGF1, R.IGF1R_EC50, r, c)
    scl = sig.occupancy(w, F_SCLEROSTIN, R.SCL_EC50, r, c)
    sig.secrete_rankl_opg(w, r, c, prm[R.OB_RANKL], prm[R.OB_OPG], er, infl, w.sysv[S_PATCH])
    ageing = clock_rate(er, igf, infl, scl, w.sysv[S_PTH_PULSE], prm)
    if outlived(s, w, ageing):
        end_of_work(s, r, c, (flts[X_CLOCK, s] - flts[X_CLOCK_END, s]) / ageing, w)
        return
    ar = sig.occupancy(w, F_T, R.AR_EC50, r, c)
    rate = prm[R.OB_MAR] * vigor(pr_signal(sig.pr(w, r, c), er, prm), ar, igf, infl, scl,
                                 prm) / dx      # grid cells/day
    if not eroded_work(r, c, osteoid, matrix, site_bmu):
        flts[X_TRANS, s] += dt * prm[R.OB_RETIRE]
        if flts[X_TRANS, s] >= flts[X_TRANS_THR, s]:
            end_of_work(s, r, c, since_threshold(s, flts, prm[R.OB_RETIRE]), w)
            return
    left = dt                 # days of work left in this step (carried to the next site)
    for _ in range(4):
        if not touches_bone(osteoid, matrix, r, c) and osteoid[r, c] + matrix[r, c] <= 0.0:
            return
        here = rate if eroded_work(r, c, osteoid, matrix, site_bmu) else rate * prm[R.OB_FLAT]
        if here <= 0.0:
            return
        laid = form(r, c, here * left, w)
        left -= laid / here
        full = osteoid[r, c] + matrix[r, c] >= 1.0 - 1e-9
        if not full and not bridges(r, c, w):
            return
        if full and ints[I_EMBED_DRAWN, s] == 0 and \
                uniform(decision(ints, s, I_NLIFE), 0) < w.sysv[S_EMBED]:    # once per site
            leave_team(s, w)
            w.tally[T_OB_TO_OSTEOCYTE] += 1.0
            become(s, OSTEOCYTE, left, w)
            return
        ints[I_EMBED_DRAWN, s] = 1
        k = -1
        if ints[I_BMU, s] >= 0:
            k = next_site(r, c, osteoid, matrix, w.occ, w.vessel, site_bmu, ints[I_BMU, s])
        if k < 0:
            k = next_site(r, c, osteoid, matrix, w.occ, w.vessel, site_bmu, -1)
        if k < 0:     # it waits, crowded, until a neighbour frees
            return
        move(s, r, c, r + DR[k], c + DC[k], w.occ, ints, w.moved)
        r, c = r + DR[k], c + DC[k]
        ints[I_EMBED_DRAWN, s] = 0
        if left <= 1e-12:
            return
