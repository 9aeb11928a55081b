"""What a cell reads where it sits: receptor occupancies of the fields at its grid cell, and
the regulated RANKL and OPG it secretes (numba, inlined into the cell rules).

Occupancies are in [0, 1] (agents/receptors.py), with the EC50s of agents/rates.py: ER by
estradiol (and SERMs), PR by progesterone and MPA (competing agonists), AR by testosterone, IGF-1R, the
TGF-beta receptor, LRP5/6 antagonism by sclerostin, RANK by free RANKL, PTH1R by serum PTH, and
the inflammatory tone of IL-1, IL-6 and TNF-alpha. RANKL and OPG expression of the osteoblast
lineage and osteocytes: RANKL x (1 - e2_rankl_suppression ER) (1 + pth_rankl_induction PTH1R)
(1 + inflammation_rankl_induction inflammation); OPG x (1 + e2_opg_induction ER)
(1 - pth_opg_suppression PTH1R).
"""

from bonesim.agents import rates as R
from bonesim.agents.jit import inline_rule
from bonesim.agents.receptors import competitive, hill, inflammation
from bonesim.agents.world import (
    F_E2, F_IL1, F_IL6, F_MPA, F_OPG, F_P4, F_RANKL, F_TNF, S_MOL_PM, S_PTH, S_SERM_AGONISM,
    S_SERM_LOAD,
)


@inline_rule
def level(w, field, r, c):
    """Concentration of `field` (an F_* index) at (r, c) [field units]."""
    return w.conc[w.fi[field], r, c]


@inline_rule
def occupancy(w, field, ec50, r, c):
    """Occupancy of the receptor of `field` (an F_* index) at (r, c), `ec50` its EC50's index in
    `prm` (R.ER_EC50, R.AR_EC50, R.IGF1R_EC50, R.TGFBR_EC50, R.SCL_EC50)."""
    return hill(level(w, field, r, c), w.prm[ec50], 1.0)


@inline_rule
def er(w, r, c):
    """ER activation by estradiol, and by SERMs when given: competitive partial agonists, with
    x = E2 / EC50, (x + agonism) / (1 + x + load) (model/endocrine.py), an agonist where
    estradiol is low and an antagonist against high estradiol; x / (1 + x) without them."""
    if w.sysv[S_SERM_LOAD] <= 0.0:
        return occupancy(w, F_E2, R.ER_EC50, r, c)
    x = max(level(w, F_E2, r, c), 0.0) / w.prm[R.ER_EC50]
    return (x + w.sysv[S_SERM_AGONISM]) / (1.0 + x + w.sysv[S_SERM_LOAD])


@inline_rule
def pr(w, r, c):
    """PR occupancy by progesterone and MPA."""
    return competitive(level(w, F_P4, r, c), w.prm[R.PR_EC50_P4], level(w, F_MPA, r, c),
                       w.prm[R.PR_EC50_MPA], 1.0)


@inline_rule
def inflammation_at(w, r, c):
    """Inflammatory tone [0..1]."""
    return inflammation(level(w, F_IL1, r, c), level(w, F_IL6, r, c), level(w, F_TNF, r, c),
                        w.prm[R.IL1_EC50], w.prm[R.IL6_EC50], w.prm[R.TNF_EC50])


@inline_rule
def pth1r(w):
    """PTH1R occupancy by serum PTH (systemic)."""
    return hill(w.sysv[S_PTH], w.prm[R.PTH_EC50], 1.0)


@inline_rule
def expression(w, er_occ, infl):
    """(RANKL, OPG) expression relative to the basal rate [-] (see the module doc)."""
    p = pth1r(w)
    rankl = ((1.0 - w.prm[R.EX_E2_RANKL] * er_occ) * (1.0 + w.prm[R.EX_PTH_RANKL] * p)
             * (1.0 + w.prm[R.EX_INF_RANKL] * infl))
    opg = (1.0 + w.prm[R.EX_E2_OPG] * er_occ) * (1.0 - w.prm[R.EX_PTH_OPG] * p)
    return rankl, opg


@inline_rule
def secrete_rankl_opg(w, r, c, rankl_rate, opg_rate, er_occ, infl, scale):
    """Add the RANKL and OPG a cell at (r, c) secretes this step to `source`: basal rates
    [molecules/day] x `expression` x pM per molecule x `scale` (patch for surface cells)."""
    rankl_expr, opg_expr = expression(w, er_occ, infl)
    mol = w.sysv[S_MOL_PM]
    w.source[w.fi[F_RANKL], r, c] += rankl_rate * rankl_expr * mol * scale
    w.source[w.fi[F_OPG], r, c] += opg_rate * opg_expr * mol * scale
