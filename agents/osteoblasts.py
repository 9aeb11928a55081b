"""Osteoblast lineage: precursors recruited by resorption, osteoblasts that refill the cavity.

OsteoblastPrecursor (committed mesenchymal osteoprogenitor): recruited from the perivascular
niche at a rate raised by TGF-beta released from resorbed matrix (Tang 2009: TGF-beta1 couples
resorption to formation by recruiting progenitors), migrates toward free eroded (reversal)
surface within the communication range, proliferates a few times next to it (the reversal
canopy), and commits on it to an osteoblast. Proliferation and commitment share one drive:
basal + TGF-beta + PR (progesterone, MPA) + AR + IGF-1 occupancies, times (1 - inhibition by
IL-1/IL-6/TNF) x (1 - inhibition by sclerostin, a Wnt antagonist). The PR terms here and in
vigor are PR signalling (`pr_signal`): occupancy x PR expression, which estrogen induces.

Osteoblast: lays osteoid on the eroded surface it sits on (first the partly resorbed cells of
the cavity floor on its faces, then its own grid cell) at the apposition rate x vigor, where
vigor = (1 + PR, AR, IGF-1 terms) x (1 - sclerostin) x (1 - inflammation); on a surface that was
not eroded only at flat_formation of that rate. When its grid cell is full it is buried as an
osteocyte with the probability that a cell volume holds one (osteocyte density x volume),
or moves on to the next free eroded cell, or, with no eroded surface left, keeps to the
quiescent surface where it retires (retire_rate) as a lining cell (lining_fraction) or by
apoptosis. Its clock runs at (1 + inflammation and sclerostin terms) / (1 + e2_survival
occ(ER) + igf1_survival occ(IGF1R)): estrogen and IGF-1 support its survival. It secretes
RANKL and OPG (estrogen raises OPG, lowers RANKL; PTH the reverse).
"""

from bonesim.agents import rates as R
from bonesim.agents.jit import rule
from bonesim.agents.neighborhood import DC, DR, EMPTY, bone_neighbours, inside, is_bone, touches_bone
from bonesim.agents.population import (
    B_FIRST_FORM, B_FORMED, B_LAST_FORM, OB_PRECURSOR, OSTEOBLAST, T_FORMED, BoneCell,
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
def drive(tgfb_occ, pr_sig, ar_occ, igf1_occ, inflammation, sclerostin_occ, prm):
    """Proliferation/commitment drive [-] of an osteoprogenitor (pr_sig: `pr_signal`)."""
    return ((prm[R.OBP_BASAL] + prm[R.OBP_TGFB] * tgfb_occ + prm[R.OBP_PR] * pr_sig
             + prm[R.OBP_AR] * ar_occ + prm[R.OBP_IGF] * igf1_occ)
            * (1.0 - prm[R.OBP_INF_INH] * inflammation)
            * (1.0 - prm[R.OBP_SCL_INH] * sclerostin_occ))


@rule
def vigor(pr_sig, ar_occ, igf1_occ, inflammation, sclerostin_occ, prm):
    """Matrix synthesis relative to the basal apposition rate [-] (pr_sig: `pr_signal`)."""
    return ((1.0 + prm[R.OB_PR_VIGOR] * pr_sig + prm[R.OB_AR_VIGOR] * ar_occ
             + prm[R.OB_IGF_VIGOR] * igf1_occ)
            * (1.0 - prm[R.OB_SCL_INH] * sclerostin_occ)
            * (1.0 - prm[R.OB_INF_INH] * inflammation))


@rule
def clock_rate(er_occ, igf1_occ, inflammation, sclerostin_occ, prm):
    """Rate [-] at which an osteoblast ages (1 = its reference lifespan in days)."""
    return ((1.0 + prm[R.OB_INF_APOP] * inflammation + prm[R.OB_SCL_APOP] * sclerostin_occ)
            / (1.0 + prm[R.OB_E2_SURV] * er_occ + prm[R.OB_IGF_SURV] * igf1_occ))


@rule
def form(r, c, amount, day, dt, osteoid, matrix, site_bmu, tally, bmu_stats):
    """Lay `amount` grid-cell volumes of osteoid: first into partly resorbed eroded bone cells
    on the faces of (r, c) (the cavity floor), then into (r, c) itself; returns the amount laid.
    Every eroded cell refilled to 1 leaves the reversal-surface memory (site_bmu = -1)."""
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
    tally[T_FORMED] += laid
    return laid


@rule
def next_site(r, c, osteoid, matrix, occ, vessel, site_bmu, eroded):
    """Neighbour index k (0..7) of the next free marrow cell for an osteoblast whose grid cell
    is full: an eroded cell touching bone (eroded=True) or any surface cell (eroded=False),
    the most concave first; -1 if none."""
    rows, cols = matrix.shape
    best, best_k = -1, -1
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or occ[rr, cc] != EMPTY or vessel[rr, cc]:
            continue
        if is_bone(osteoid, matrix, rr, cc) or (eroded and site_bmu[rr, cc] < 0):
            continue
        if not touches_bone(osteoid, matrix, rr, cc):
            continue
        n = bone_neighbours(osteoid, matrix, rr, cc)
        if n > best:
            best, best_k = n, k
    return best_k
