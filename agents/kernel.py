"""The per-step cell kernel: every cell's rules for one tissue step, over arrays, in numba.

`step_cells` advances all cells by dt: recruitment of precursors at vessels, then each cell in
a random order (ageing, receptor occupancies from the fields at its grid cell, secretion into
`source`, resorption, formation, migration, and the hazards of its transitions). Discrete
events (births, deaths, changes of type) are written to the event buffer through
agents/lifecycle.py; moves set the `moved` flag. Every cell and every vessel's recruitment
draws from its own random stream (agents/streams.py); only the loop order comes from the
step's seed. The lineage rules live in osteoclasts.py, osteoblasts.py, osteocytes.py and
lining.py; parameters come in `prm` (agents/rates.py).

Conventions. A grid cell of side dx [um] stands for a slice `section_thickness` thick.
Point-like cells (precursors' nuclei, osteoclasts, osteocytes) secrete molecules/day, which
become a concentration rate in their grid cell through S_MOL_PM [pM per molecule]. Surface
cells (osteoblasts, lining cells, and osteoblast precursors, which become osteoblasts) each
cover one grid face: their rates are given per `patch_width` of surface and scaled by
S_PATCH = dx / patch_width, and osteoblast precursors are recruited in proportion to the
faces they will cover. These keep rates per um of surface, but a grid cell is still the place
of one cell (an osteoclast resorbs its face neighbours, an osteoblast fills its grid cell and
then moves), so dx is a cell's size and results depend on it. Measured on V1, one year of the
same 2.6 mm^2 section: at 5 um (1 seed) vBMD -1.9%, BMU balance 0.89, osteoblast lifespan
42 d; at 10 um (2 seeds) -0.3 and -0.4%, 1.02, 52 d; formation per osteoblast-day the same
(0.24 and 0.26 um/day over its face). The parameters are calibrated at dx = 10 um =
patch_width; the fields' numerical resolution is checked apart (simulation.field_refinement).
"""

import numpy as np
from numba import njit

from bonesim.agents import lining, osteoblasts, osteoclasts, osteocytes
from bonesim.agents import rates as R
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.lifecycle import become, kill, spawn
from bonesim.agents.neighborhood import (
    ACTIVATED, DC, DR, EMPTY, QUIESCENT, inside, is_bone, touches_bone, touches_resorbable,
)
from bonesim.agents.population import (
    B_ERODED, B_FORMED, B_FOUNDED, B_OSTEOCLASTS, B_RESORBED, C_NBMU, C_NHI, C_STEP,
    DEATH_APOPTOSIS, DEATH_DETACHED, DEATH_FUSED, DEATH_RETRACTED, I_BMU, I_COL, I_GEN, I_KIND,
    I_NLIFE, I_NMOVE, I_NUCLEI, I_ROW, I_STAMP, LINING,
    OB_PRECURSOR, OC_PRECURSOR, OSTEOBLAST, OSTEOCLAST, OSTEOCYTE, T_ACTIVATED, T_FOUNDED,
    T_FUSED, T_OB_APOPTOSIS, T_OB_ENDS, T_OB_LIFE_SUM, T_OB_TO_LINING, T_OB_TO_OSTEOCYTE,
    T_OBP_COMMITTED, T_OC_DEATHS, T_OC_LIFE_SUM, T_OCY_DEATHS, X_AGE, X_AUX, X_AUX_THR,
    X_CLOCK, X_CLOCK_END, X_HEADING, X_TRANS, X_TRANS_THR,
)
from bonesim.agents.receptors import competitive, hill, inflammation
from bonesim.agents.streams import (
    DIRECTIONS_PER_HASH, SPREAD, decision, direction, exponential, hash2, peek, uniform,
)

# the fields a cell reads, in the order of the `fi` index vector the model passes
FIELD_ORDER = ("rankl", "opg", "il1", "il6", "tnf", "tgfb", "igf1", "sclerostin", "e2", "p4",
               "mpa", "t")
F_RANKL, F_OPG, F_IL1, F_IL6, F_TNF, F_TGFB, F_IGF1, F_SCL, F_E2, F_P4, F_MPA, F_T = range(12)

# the systemic / per-run vector `sysv`
(S_DAY, S_DT, S_DX, S_LOAD, S_PTH, S_BP, S_OCP_RATE, S_OBP_RATE, S_MOL_PM, S_PATCH,
 S_EMBED, S_OSTEOID_BLOCK) = range(12)
N_SYS = 12


@rule
def _move(s, r, c, nr, nc, occ, ints, moved):
    occ[r, c] = EMPTY
    occ[nr, nc] = s
    ints[I_ROW, s] = nr
    ints[I_COL, s] = nc
    moved[s] = True


@rule
def _free_neighbour(r, c, start, osteoid, matrix, occ):
    """The first empty marrow neighbour (k index) of (r, c) from direction `start` on (a
    random one for a random start), or -1."""
    rows, cols = matrix.shape
    for j in range(8):
        k = (start + j) & 7
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and occ[rr, cc] == EMPTY and not is_bone(osteoid, matrix, rr, cc):
            return k
    return -1


@rule
def migrate(s, dist, hops, osteoid, matrix, occ, ints, moved):
    """Move cell s up to `hops` grid steps through empty marrow down the distance map `dist`
    (grid steps to the nearest target, -1 out of range): chemotaxis toward the nearest target
    within the communication range, a random walk if none is in range. One move decision of
    the cell's stream per step: its hash gives the first direction looked at of 21 hops, 3
    bits each (and is rehashed for every further 21). Returns True when the cell ends on a
    target (dist 0)."""
    rows, cols = matrix.shape
    r0, c0 = ints[I_ROW, s], ints[I_COL, s]
    if hops <= 0 or dist[r0, c0] == 0:
        return dist[r0, c0] == 0
    h = decision(ints, s, I_NMOVE)
    r, c = r0, c0
    occ[r, c] = EMPTY         # left during the walk (never its own neighbour), moved on arrival
    for j in range(hops):
        here = dist[r, c]
        if here == 0:
            break
        if j > 0 and j % DIRECTIONS_PER_HASH == 0:
            h = hash2(h, j)
        start = (h >> (3 * (j % DIRECTIONS_PER_HASH))) & 7
        if here > 0:      # downhill; sideways around a cell in the way
            best_k, best_d = -1, here + 1
            for i in range(8):
                k = (start + i) & 7
                rr, cc = r + DR[k], c + DC[k]
                if inside(rr, cc, rows, cols) and occ[rr, cc] == EMPTY and 0 <= dist[rr, cc] < best_d:
                    best_k, best_d = k, dist[rr, cc]
        else:
            best_k = _free_neighbour(r, c, start, osteoid, matrix, occ)
        if best_k < 0:
            break
        r, c = r + DR[best_k], c + DC[best_k]
    occ[r0, c0] = s
    if r != r0 or c != c0:
        _move(s, r0, c0, r, c, occ, ints, moved)
    return dist[r, c] == 0


@rule
def distance_map(seeds, n_seeds, radius, osteoid, matrix, dist, queue):
    """Breadth-first grid distance (8-neighbour steps through marrow) from the seed cells,
    up to `radius` steps; dist (rows, cols) int64 is overwritten, -1 beyond the radius."""
    rows, cols = matrix.shape
    dist[:] = -1
    head, tail = 0, 0
    for i in range(n_seeds):
        r, c = seeds[i, 0], seeds[i, 1]
        if dist[r, c] < 0:
            dist[r, c] = 0
            queue[tail] = r * cols + c
            tail += 1
    while head < tail:
        v = queue[head]
        head += 1
        r, c = v // cols, v % cols
        d = dist[r, c]
        if d >= radius:
            continue
        for k in range(8):
            rr, cc = r + DR[k], c + DC[k]
            if inside(rr, cc, rows, cols) and dist[rr, cc] < 0 and not is_bone(osteoid, matrix, rr, cc):
                dist[rr, cc] = d + 1
                queue[tail] = rr * cols + cc
                tail += 1


@rule
def _hops(speed, age, dt, dx):
    """Grid steps in this tissue step for a migration speed [um/day] of a cell `age` days in
    its type (age counted to the end of the step; a recruit may have entered within the step):
    the whole grid steps that its path speed x age crosses in the step. Their sum over any span
    is the same whatever dt."""
    before = max(age - dt, 0.0)
    return int(np.floor(speed * age / dx + 1e-9) - np.floor(speed * before / dx + 1e-9))


@njit(cache=True)
def targets(osteoid, matrix, vessel, occ, ints, site_bmu, osteoid_block, max_nuclei, seeds):
    """Marrow cells where precursors can work (empty, or held by a precursor of that
    lineage), written to seeds[i] (n, 2): i = 0 cells next to an osteoclast that can take a
    nucleus (fusion), 1 bare surface activated by lining retraction (osteoclast precursors), 2 eroded, not yet
    refilled surface (osteoblast precursors). Returns the three counts."""
    rows, cols = matrix.shape
    n = np.zeros(3, dtype=np.int64)
    for r in range(rows):
        for c in range(cols):
            if vessel[r, c] or is_bone(osteoid, matrix, r, c):
                continue
            who = -1 if occ[r, c] == EMPTY else ints[I_KIND, occ[r, c]]
            if who == OC_PRECURSOR or who == -1:
                for k in range(8):
                    rr, cc = r + DR[k], c + DC[k]
                    if inside(rr, cc, rows, cols) and occ[rr, cc] >= 0:
                        o = occ[rr, cc]
                        if ints[I_KIND, o] == OSTEOCLAST and ints[I_NUCLEI, o] < max_nuclei:
                            seeds[0, n[0], 0] = r
                            seeds[0, n[0], 1] = c
                            n[0] += 1
                            break
                if site_bmu[r, c] == ACTIVATED and touches_resorbable(osteoid, matrix, r, c, osteoid_block):
                    seeds[1, n[1], 0] = r
                    seeds[1, n[1], 1] = c
                    n[1] += 1
            if (who == OB_PRECURSOR or who == -1) and site_bmu[r, c] >= 0 and \
                    touches_bone(osteoid, matrix, r, c):
                seeds[2, n[2], 0] = r
                seeds[2, n[2], 1] = c
                n[2] += 1
    return n


@rule
def expire_memory(day, memory, window, site_bmu, eroded_day):
    """Forget eroded surface that no osteoblast refilled within `memory` days, and activated
    surface no osteoclast took within `window` days (both become quiescent surface)."""
    rows, cols = site_bmu.shape
    for r in range(rows):
        for c in range(cols):
            b = site_bmu[r, c]
            if (b >= 0 and day - eroded_day[r, c] > memory) or \
                    (b == ACTIVATED and day - eroded_day[r, c] > window):
                site_bmu[r, c] = QUIESCENT


@rule
def marrow_sources(conc, fi, source, osteoid, matrix, prm):
    """IL-1, IL-6, TNF-alpha secreted by marrow immune/stromal cells (not agents) [pM/day per
    marrow grid cell], suppressed by estrogen: x (1 - e2_cytokine_suppression occ(ER))."""
    rows, cols = matrix.shape
    for r in range(rows):
        for c in range(cols):
            if is_bone(osteoid, matrix, r, c):
                continue
            er = hill(conc[fi[F_E2], r, c], prm[R.ER_EC50], 1.0)
            f = 1.0 - prm[R.MAR_E2_SUPP] * er
            source[fi[F_IL1], r, c] += prm[R.MAR_IL1] * f
            source[fi[F_IL6], r, c] += prm[R.MAR_IL6] * f
            source[fi[F_TNF], r, c] += prm[R.MAR_TNF] * f


@rule
def open_vessel_streams(seed, streams, clocks):
    """Set up the recruitment streams of the vessel cells from the run's `seed`: streams
    (n_vessels, 2, 2) int64 holds per lineage (0 osteoclast, 1 osteoblast precursors) the
    stream key and the precursors recruited so far; clocks (n_vessels, 2, 2) the expected
    recruits accumulated since the last one and the Exp(1) threshold of the next."""
    for v in range(streams.shape[0]):
        for lineage in range(2):
            key = hash2(hash2(seed, v), lineage)
            streams[v, lineage, 0] = key
            streams[v, lineage, 1] = 0
            clocks[v, lineage, 0] = 0.0
            clocks[v, lineage, 1] = exponential(hash2(key, 0), 0)


@inline_rule
def _inflammation_at(conc, fi, r, c, prm):
    """Inflammatory tone [0..1] at grid cell (r, c)."""
    return inflammation(conc[fi[F_IL1], r, c], conc[fi[F_IL6], r, c], conc[fi[F_TNF], r, c],
                        prm[R.IL1_EC50], prm[R.IL6_EC50], prm[R.TNF_EC50])


@inline_rule
def _pr_at(conc, fi, r, c, prm):
    """PR occupancy [0..1] by progesterone and MPA at grid cell (r, c)."""
    return competitive(conc[fi[F_P4], r, c], prm[R.PR_EC50_P4], conc[fi[F_MPA], r, c],
                       prm[R.PR_EC50_MPA], 1.0)


@rule
def _recruit(kind, vessel_cells, streams, clocks, rate, dt, conc, fi, prm, osteoid, matrix,
             occ, ints, flts, free, counters, events):
    """Precursors entering the marrow at vessel cells: a Poisson process per vessel cell with
    rate x signal per day (inflammation raises osteoclast-precursor supply; TGF-beta recruits
    osteoprogenitors; `rate` is per step of dt days). Each vessel integrates its expected
    recruits and releases one whenever they pass the next Exp(1) threshold of its stream, so the
    times of recruitment do not depend on dt, and a precursor's stream key is drawn from the
    vessel's.

    A recruit lives from its recruitment time on, not from a step boundary: it acts in the step
    it is recruited in (it is not stamped as born in it), and its age and lifespan clock start
    at its recruitment time measured from the step's end (the expected recruits past the
    threshold, over the step's mean, is the fraction of the step since then), minus the step
    the kernel adds. A life [a, a + T) is then the steps whose end lies in it: T/dt of them in
    expectation, whatever dt (Little's law: precursors present = recruitment rate x lifespan;
    starting every clock at a step end instead kept each precursor dt/2 too long, 6% more
    osteoclast precursors at dt = 1 day than at 0.5)."""
    lineage = 0 if kind == OC_PRECURSOR else 1
    for v in range(vessel_cells.shape[0]):
        r, c = vessel_cells[v, 0], vessel_cells[v, 1]
        if kind == OC_PRECURSOR:
            mean = rate * (1.0 + prm[R.OCP_INF_SUPPLY] * _inflammation_at(conc, fi, r, c, prm))
        else:
            basal = prm[R.OBP_RECRUIT_BASAL]
            mean = rate * (basal + (1.0 - basal) * hill(conc[fi[F_TGFB], r, c], prm[R.TGFBR_EC50], 1.0))
        clocks[v, lineage, 0] += mean
        while clocks[v, lineage, 0] >= clocks[v, lineage, 1]:
            clocks[v, lineage, 0] -= clocks[v, lineage, 1]
            key, j = streams[v, lineage, 0], streams[v, lineage, 1]
            h = hash2(key, j)
            streams[v, lineage, 1] = j + 1
            clocks[v, lineage, 1] = exponential(hash2(key, j + 1), 0)
            rr, cc = r, c
            if occ[r, c] != EMPTY:
                k = _free_neighbour(r, c, direction(h, 2), osteoid, matrix, occ)
                if k < 0:
                    continue
                rr, cc = r + DR[k], c + DC[k]
            slot = spawn(kind, rr, cc, -1, 0, hash2(h, 1), ints, flts, prm, occ, free, counters,
                         events)
            if slot >= 0:
                since = dt * clocks[v, lineage, 0] / mean     # days from recruitment to step end
                flts[X_AGE, slot] = since - dt
                flts[X_CLOCK, slot] = since - dt
                ints[I_STAMP, slot] = -1


@rule
def _renew(s, kind, r, c, gen, h, ints, flts, prm, occ, free, counters, events):
    """Cell s fires its repeating transition (the aux hazard: division, lining spreading) with
    decision hash h: a daughter of `kind` and generation `gen` at (r, c) (none if r < 0, no
    room), and s's next threshold. The hazard past the threshold, accumulated since the firing
    within the step, counts toward s's next event and is the daughter's start, so that a chain
    of daughters (a spreading front) advances at its rate whatever dt."""
    over = flts[X_AUX, s] - flts[X_AUX_THR, s]
    if r >= 0:
        d = spawn(kind, r, c, -1, gen, hash2(h, 1), ints, flts, prm, occ, free, counters, events)
        if d >= 0:
            flts[X_AUX, d] = over
    flts[X_AUX, s] = over
    flts[X_AUX_THR, s] = exponential(h, 2)


@rule
def _bmu_of_new_osteoclast(r, c, day, site_bmu, ints, occ, counters, bmu_stats, tally):
    """BMU id for an osteoclast formed at (r, c): that of eroded surface or an osteoclast
    next to it, else a new BMU (an activation event)."""
    rows, cols = site_bmu.shape
    if site_bmu[r, c] >= 0:
        return site_bmu[r, c]
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols):
            continue
        if site_bmu[rr, cc] >= 0:
            return site_bmu[rr, cc]
        o = occ[rr, cc]
        if o >= 0 and ints[I_KIND, o] == OSTEOCLAST and ints[I_BMU, o] >= 0:
            return ints[I_BMU, o]
    b = counters[C_NBMU]
    if b >= bmu_stats.shape[0]:
        return -1
    counters[C_NBMU] = b + 1
    bmu_stats[b, :] = -1.0
    bmu_stats[b, B_FOUNDED] = day
    bmu_stats[b, B_RESORBED] = 0.0
    bmu_stats[b, B_FORMED] = 0.0
    bmu_stats[b, B_OSTEOCLASTS] = 0.0
    bmu_stats[b, B_ERODED] = 0.0
    tally[T_FOUNDED] += 1.0
    return b


@rule
def _fusion_partner(r, c, occ, ints, max_nuclei):
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
def _next_to_osteoclast(r, c, occ, ints):
    rows, cols = occ.shape
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and occ[rr, cc] >= 0 and ints[I_KIND, occ[rr, cc]] == OSTEOCLAST:
            return True
    return False


@rule
def _lift_canopy(r, c, day, osteoid, matrix, site_bmu, eroded_day, occ, ints, free, counters,
                 events, osteoid_block):
    """An osteoclast lifts the lining off the quiescent bone around it: the surrounding
    surface cells become ACTIVATED (their lining cells retract), so the BMU's cutting front
    can recruit new osteoclasts there for the activation window (the BMU canopy, Andersen
    2009; lining retraction ahead of resorption, Everts 2002)."""
    rows, cols = matrix.shape
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if not inside(rr, cc, rows, cols) or site_bmu[rr, cc] == ACTIVATED or site_bmu[rr, cc] >= 0:
            continue
        if is_bone(osteoid, matrix, rr, cc) or not touches_resorbable(osteoid, matrix, rr, cc, osteoid_block):
            continue
        o = occ[rr, cc]
        if o >= 0:
            if ints[I_KIND, o] != LINING:
                continue
            kill(o, DEATH_RETRACTED, ints, occ, free, counters, events)
        site_bmu[rr, cc] = ACTIVATED
        eroded_day[rr, cc] = day


@rule
def _eroded_work(r, c, osteoid, matrix, site_bmu):
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


@rule
def _osteoblast_end(s, r, c, osteoid, matrix, occ, ints, flts, prm, free, counters, events, tally):
    """End of an osteoblast's working life: lining cell (if on a surface, with
    lining_fraction) or apoptosis."""
    tally[T_OB_ENDS] += 1.0
    tally[T_OB_LIFE_SUM] += flts[X_AGE, s]
    if touches_bone(osteoid, matrix, r, c) and not is_bone(osteoid, matrix, r, c) and \
            uniform(decision(ints, s, I_NLIFE), 0) < prm[R.OB_LINING]:
        ints[I_BMU, s] = -1
        become(s, LINING, ints, flts, prm, counters, events)
        tally[T_OB_TO_LINING] += 1.0
    else:
        kill(s, DEATH_APOPTOSIS, ints, occ, free, counters, events)
        tally[T_OB_APOPTOSIS] += 1.0


@rule
def place_cells(seed, kind, cells, random_age, prm, occ, ints, flts, free, counters, events):
    """Place resident cells of `kind` at the grid cells `cells` (n, 2) at set-up; with
    random_age their biological clocks start at a uniform share of their lifespans. The i-th
    cell's random-stream key is hash(seed, i)."""
    for i in range(cells.shape[0]):
        s = spawn(kind, cells[i, 0], cells[i, 1], -1, 0, hash2(seed, i), ints, flts, prm, occ,
                  free, counters, events)
        if random_age and s >= 0:
            flts[X_CLOCK, s] = uniform(decision(ints, s, I_NLIFE), 0) * flts[X_CLOCK_END, s]


@njit(cache=True)
def prepare_step(sysv, prm, fi, conc, source, osteoid, matrix, vessel, vessel_cells,
                 vessel_streams, vessel_clocks, site_bmu, eroded_day, occ, ints, flts, free,
                 counters, events, seeds, dist, queue):
    """The tissue-level part of a step, before the cells act: count the step, forget stale
    eroded surface, marrow cytokine sources, precursor recruitment at vessels (streams and
    clocks from `open_vessel_streams`), and the distance maps to the precursors' targets
    (dist[0] fusion sites, dist[1] bare quiescent surface, dist[2] eroded surface). Returns
    the step id."""
    counters[C_STEP] += 1
    dt, dx = sysv[S_DT], sysv[S_DX]
    expire_memory(sysv[S_DAY], prm[R.MAT_ERODED_MEMORY], prm[R.LIN_WINDOW], site_bmu, eroded_day)
    marrow_sources(conc, fi, source, osteoid, matrix, prm)
    for kind, rate in ((OC_PRECURSOR, sysv[S_OCP_RATE]), (OB_PRECURSOR, sysv[S_OBP_RATE])):
        _recruit(kind, vessel_cells, vessel_streams, vessel_clocks, rate * dt, dt, conc, fi,
                 prm, osteoid, matrix, occ, ints, flts, free, counters, events)
    n = targets(osteoid, matrix, vessel, occ, ints, site_bmu, sysv[S_OSTEOID_BLOCK],
                prm[R.OC_MAX_NUC], seeds)
    n_ocp, n_obp = 0, 0
    for s in range(counters[C_NHI]):
        n_ocp += ints[I_KIND, s] == OC_PRECURSOR
        n_obp += ints[I_KIND, s] == OB_PRECURSOR
    for i in range(3):
        if (i < 2 and n_ocp == 0) or (i == 2 and n_obp == 0):
            continue      # no precursor of that lineage to guide
        radius = prm[R.OBP_RADIUS] if i == 2 else prm[R.OCP_RADIUS]
        distance_map(seeds[i], n[i], radius / dx, osteoid, matrix, dist[i], queue)
    return counters[C_STEP]


@inline_rule
def step_cell(s, step_id, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid, matrix,
              mineral_p, mineral_s, vessel, site_bmu, eroded_day, occ, ints, flts, moved, free,
              counters, events, tally, bmu_stats, dist):
    """The rules of one cell (slot s) for one step: ageing, receptor occupancies at its grid
    cell, secretion, work (resorption, formation, migration) and transitions. Cells placed in
    this step (stamp == step_id) and free slots are skipped."""
    kind = ints[I_KIND, s]
    if kind < 0 or ints[I_STAMP, s] == step_id:
        return
    day, dt, dx = sysv[S_DAY], sysv[S_DT], sysv[S_DX]
    block = sysv[S_OSTEOID_BLOCK]
    mol_pm, patch = sysv[S_MOL_PM], sysv[S_PATCH]
    bp = sysv[S_BP]
    rows, cols = matrix.shape
    r, c = ints[I_ROW, s], ints[I_COL, s]
    flts[X_AGE, s] += dt
    if kind == OC_PRECURSOR:
        flts[X_CLOCK, s] += dt
        if flts[X_CLOCK, s] >= flts[X_CLOCK_END, s]:
            kill(s, DEATH_APOPTOSIS, ints, occ, free, counters, events)
            return
        target = 0 if dist[0, r, c] >= 0 else 1      # an osteoclast in range first
        if dist[target, r, c] != 0:
            migrate(s, dist[target], _hops(prm[R.OCP_SPEED], flts[X_AGE, s], dt, dx), osteoid,
                    matrix, occ, ints, moved)
            r, c = ints[I_ROW, s], ints[I_COL, s]
        partner = _fusion_partner(r, c, occ, ints, prm[R.OC_MAX_NUC])
        # a new osteoclast forms on bare bone that is either surface activated by lining-cell
        # retraction or the cutting front next to an osteoclast; eroded surface behind the
        # front is left to reversal and formation, other bare surface to the lining cells
        if partner < 0 and not (not is_bone(osteoid, matrix, r, c)
                                and touches_resorbable(osteoid, matrix, r, c, block)
                                and (site_bmu[r, c] == ACTIVATED
                                     or _next_to_osteoclast(r, c, occ, ints))):
            return
        infl = _inflammation_at(conc, fi, r, c, prm)
        pr = _pr_at(conc, fi, r, c, prm)
        hazard = osteoclasts.differentiation_hazard(rankl_free[r, c], conc[fi[F_TGFB], r, c],
                                                    infl, pr, prm)
        if partner >= 0:
            hazard *= prm[R.OCP_FUSION] / prm[R.OCP_DIFF]
        flts[X_TRANS, s] += dt * hazard
        if flts[X_TRANS, s] < flts[X_TRANS_THR, s]:
            return
        if partner >= 0:
            ints[I_NUCLEI, partner] += 1
            kill(s, DEATH_FUSED, ints, occ, free, counters, events)
            tally[T_FUSED] += 1.0
            return
        b = _bmu_of_new_osteoclast(r, c, day, site_bmu, ints, occ, counters, bmu_stats, tally)
        ints[I_BMU, s] = b
        ints[I_NUCLEI, s] = 1
        flts[X_HEADING, s] = osteoclasts.surface_tangent(r, c, osteoid, matrix,
                                                         decision(ints, s, I_NLIFE))
        if b >= 0:
            bmu_stats[b, B_OSTEOCLASTS] += 1.0
        become(s, OSTEOCLAST, ints, flts, prm, counters, events)
        return

    # the signals at the cell's grid cell, for the other kinds (an osteoclast precursor reads
    # the few it needs where its walk ends)
    pth_occ = hill(sysv[S_PTH], prm[R.PTH_EC50], 1.0)
    fr = rankl_free[r, c]
    tgfb = conc[fi[F_TGFB], r, c]
    er = hill(conc[fi[F_E2], r, c], prm[R.ER_EC50], 1.0)
    infl = _inflammation_at(conc, fi, r, c, prm)
    pr = _pr_at(conc, fi, r, c, prm)
    pr_ob = osteoblasts.pr_signal(pr, er, prm)        # PR signalling in the osteoblast lineage
    ar = hill(conc[fi[F_T], r, c], prm[R.AR_EC50], 1.0)
    igf = hill(conc[fi[F_IGF1], r, c], prm[R.IGF1R_EC50], 1.0)
    scl = hill(conc[fi[F_SCL], r, c], prm[R.SCL_EC50], 1.0)
    tg_occ = hill(tgfb, prm[R.TGFBR_EC50], 1.0)
    rankl_expr = ((1.0 - prm[R.EX_E2_RANKL] * er) * (1.0 + prm[R.EX_PTH_RANKL] * pth_occ)
                  * (1.0 + prm[R.EX_INF_RANKL] * infl))
    opg_expr = (1.0 + prm[R.EX_E2_OPG] * er) * (1.0 - prm[R.EX_PTH_OPG] * pth_occ)

    if kind == OSTEOCLAST:
        flts[X_CLOCK, s] += dt * osteoclasts.clock_rate(er, tgfb, fr, bp, prm)
        if flts[X_CLOCK, s] >= flts[X_CLOCK_END, s]:
            tally[T_OC_DEATHS] += 1.0
            tally[T_OC_LIFE_SUM] += flts[X_AGE, s]
            kill(s, DEATH_APOPTOSIS, ints, occ, free, counters, events)
            return
        _lift_canopy(r, c, day, osteoid, matrix, site_bmu, eroded_day, occ, ints, free,
                     counters, events, block)
        capacity = osteoclasts.resorption_capacity(ints[I_NUCLEI, s], fr, bp, prm, dt, dx)
        moves = _hops(prm[R.OC_SPEED], flts[X_AGE, s], dt, dx)
        for _ in range(64):
            capacity = osteoclasts.resorb(r, c, capacity, ints[I_BMU, s], day, dt, osteoid,
                                          matrix, mineral_p, mineral_s, site_bmu, eroded_day,
                                          occ, ints, free, counters, events, source,
                                          fi[F_TGFB], fi[F_IGF1], prm, block, tally, bmu_stats)
            if capacity <= 1e-12 or moves == 0:
                break
            k = osteoclasts.choose_move(r, c, flts[X_HEADING, s], osteoid, matrix, occ,
                                        vessel, prm, block, decision(ints, s, I_NMOVE))
            if k < 0:
                break
            _move(s, r, c, r + DR[k], c + DC[k], occ, ints, moved)
            r, c = r + DR[k], c + DC[k]
            flts[X_HEADING, s] = np.arctan2(DR[k], DC[k])
            moves -= 1

    elif kind == OB_PRECURSOR:
        flts[X_CLOCK, s] += dt
        if flts[X_CLOCK, s] >= flts[X_CLOCK_END, s]:
            kill(s, DEATH_APOPTOSIS, ints, occ, free, counters, events)
            return
        d = osteoblasts.drive(tg_occ, pr_ob, ar, igf, infl, scl, prm)
        source[fi[F_RANKL], r, c] += prm[R.OBP_RANKL] * rankl_expr * mol_pm * patch
        source[fi[F_OPG], r, c] += prm[R.OBP_OPG] * opg_expr * mol_pm * patch
        if ints[I_GEN, s] < prm[R.OBP_MAX_DIV] and 0 <= dist[2, r, c] <= 2:  # in the canopy
            flts[X_AUX, s] += dt * prm[R.OBP_DIV] * d
            if flts[X_AUX, s] >= flts[X_AUX_THR, s]:
                h = decision(ints, s, I_NLIFE)
                k = _free_neighbour(r, c, direction(h, 0), osteoid, matrix, occ)
                rr, cc = -1, -1
                if k >= 0:
                    ints[I_GEN, s] += 1
                    rr, cc = r + DR[k], c + DC[k]
                _renew(s, OB_PRECURSOR, rr, cc, ints[I_GEN, s], h, ints, flts, prm, occ, free,
                       counters, events)
        on_site = dist[2, r, c] == 0
        if not on_site:
            on_site = migrate(s, dist[2], _hops(prm[R.OBP_SPEED], flts[X_AGE, s], dt, dx),
                              osteoid, matrix, occ, ints, moved)
            r, c = ints[I_ROW, s], ints[I_COL, s]
        if not on_site:
            return
        flts[X_TRANS, s] += dt * prm[R.OBP_COMMIT] * d
        if flts[X_TRANS, s] >= flts[X_TRANS_THR, s]:
            ints[I_BMU, s] = site_bmu[r, c]
            tally[T_OBP_COMMITTED] += 1.0
            become(s, OSTEOBLAST, ints, flts, prm, counters, events)

    elif kind == OSTEOBLAST:
        source[fi[F_RANKL], r, c] += prm[R.OB_RANKL] * rankl_expr * mol_pm * patch
        source[fi[F_OPG], r, c] += prm[R.OB_OPG] * opg_expr * mol_pm * patch
        flts[X_CLOCK, s] += dt * osteoblasts.clock_rate(er, igf, infl, scl, prm)
        if flts[X_CLOCK, s] >= flts[X_CLOCK_END, s]:
            _osteoblast_end(s, r, c, osteoid, matrix, occ, ints, flts, prm, free, counters,
                            events, tally)
            return
        rate = prm[R.OB_MAR] * osteoblasts.vigor(pr_ob, ar, igf, infl, scl, prm) / dx   # cells/day
        if not _eroded_work(r, c, osteoid, matrix, site_bmu):
            flts[X_TRANS, s] += dt * prm[R.OB_RETIRE]
            if flts[X_TRANS, s] >= flts[X_TRANS_THR, s]:
                _osteoblast_end(s, r, c, osteoid, matrix, occ, ints, flts, prm, free,
                                counters, events, tally)
                return
        left = dt                 # days of work left in this step (carried to the next site)
        for _ in range(4):
            if not touches_bone(osteoid, matrix, r, c) and osteoid[r, c] + matrix[r, c] <= 0.0:
                return
            here = rate if _eroded_work(r, c, osteoid, matrix, site_bmu) else rate * prm[R.OB_FLAT]
            if here <= 0.0:
                return
            laid = osteoblasts.form(r, c, here * left, day, dt, osteoid, matrix, site_bmu, tally,
                                    bmu_stats)
            left -= laid / here
            if osteoid[r, c] + matrix[r, c] < 1.0 - 1e-9:
                return
            if flts[X_AUX, s] == 0.0 and \
                    uniform(decision(ints, s, I_NLIFE), 0) < sysv[S_EMBED]:    # once per site
                tally[T_OB_ENDS] += 1.0
                tally[T_OB_LIFE_SUM] += flts[X_AGE, s]
                tally[T_OB_TO_OSTEOCYTE] += 1.0
                ints[I_BMU, s] = -1
                become(s, OSTEOCYTE, ints, flts, prm, counters, events)
                return
            flts[X_AUX, s] = 1.0
            k = osteoblasts.next_site(r, c, osteoid, matrix, occ, vessel, site_bmu, True)
            if k < 0:
                k = osteoblasts.next_site(r, c, osteoid, matrix, occ, vessel, site_bmu, False)
            if k < 0:     # it waits, crowded, until a neighbour frees
                return
            _move(s, r, c, r + DR[k], c + DC[k], occ, ints, moved)
            r, c = r + DR[k], c + DC[k]
            flts[X_AUX, s] = 0.0
            if left <= 1e-12:
                return

    elif kind == OSTEOCYTE:
        stim = stimulus[r, c]
        flts[X_CLOCK, s] += dt * osteocytes.clock_rate(stim, er, prm)
        if flts[X_CLOCK, s] >= flts[X_CLOCK_END, s]:
            tally[T_OCY_DEATHS] += 1.0
            kill(s, DEATH_APOPTOSIS, ints, occ, free, counters, events)
            return
        u = osteocytes.disuse_factor(stim, prm)
        source[fi[F_SCL], r, c] += (prm[R.OCY_SCL] * u * (1.0 - prm[R.OCY_E2_SCL] * er)
                                    * mol_pm)
        source[fi[F_RANKL], r, c] += prm[R.OCY_RANKL] * u * rankl_expr * mol_pm
        source[fi[F_OPG], r, c] += prm[R.OCY_OPG] * opg_expr * mol_pm

    elif kind == LINING:
        if not touches_bone(osteoid, matrix, r, c):
            kill(s, DEATH_DETACHED, ints, occ, free, counters, events)
            return
        source[fi[F_RANKL], r, c] += prm[R.LIN_RANKL] * rankl_expr * mol_pm * patch
        source[fi[F_OPG], r, c] += prm[R.LIN_OPG] * opg_expr * mol_pm * patch
        flts[X_TRANS, s] += dt * lining.activation_hazard(fr, er, stimulus[r, c], pth_occ, patch, prm)
        if flts[X_TRANS, s] >= flts[X_TRANS_THR, s]:
            tally[T_ACTIVATED] += 1.0
            kill(s, DEATH_RETRACTED, ints, occ, free, counters, events)
            if site_bmu[r, c] == QUIESCENT:
                site_bmu[r, c] = ACTIVATED
                eroded_day[r, c] = day
            return
        # spread into bare quiescent surface next to it, looking first in a direction that
        # stays until it has spread
        start = direction(peek(ints, s, SPREAD, I_NLIFE), 0)
        for j in range(8):
            k = (start + j) % 8
            rr, cc = r + DR[k], c + DC[k]
            if inside(rr, cc, rows, cols) and occ[rr, cc] == EMPTY and not vessel[rr, cc] and \
                    site_bmu[rr, cc] == QUIESCENT and not is_bone(osteoid, matrix, rr, cc) and \
                    touches_resorbable(osteoid, matrix, rr, cc, block):
                flts[X_AUX, s] += dt * prm[R.LIN_SPREAD] / dx
                if flts[X_AUX, s] >= flts[X_AUX_THR, s]:
                    _renew(s, LINING, rr, cc, 0, decision(ints, s, I_NLIFE), ints, flts, prm,
                           occ, free, counters, events)
                break


@njit(cache=True)
def loop_cells(seed, step_id, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid,
               matrix, mineral_p, mineral_s, vessel, site_bmu, eroded_day, occ, ints, flts, moved,
               free, counters, events, tally, bmu_stats, dist):
    """`step_cell` for every slot, in a random order drawn from `seed`."""
    np.random.seed(seed)
    _loop_order(np.random.permutation(counters[C_NHI]), step_id, sysv, prm, fi, conc,
                rankl_free, stimulus, source, osteoid, matrix, mineral_p, mineral_s, vessel,
                site_bmu, eroded_day, occ, ints, flts, moved, free, counters, events, tally,
                bmu_stats, dist)


@rule
def _loop_order(order, step_id, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid,
                matrix, mineral_p, mineral_s, vessel, site_bmu, eroded_day, occ, ints, flts,
                moved, free, counters, events, tally, bmu_stats, dist):
    # the slots in `order`, step_cell inlined; a rule, so no array is reference-counted per
    # slot (agents/jit.py)
    for s in order:
        step_cell(s, step_id, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid, matrix,
                  mineral_p, mineral_s, vessel, site_bmu, eroded_day, occ, ints, flts, moved,
                  free, counters, events, tally, bmu_stats, dist)


@njit(cache=True)
def step_cells(seed, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid, matrix,
               mineral_p, mineral_s, vessel, vessel_cells, vessel_streams, vessel_clocks,
               site_bmu, eroded_day, occ, ints, flts, moved, free, counters, events, tally,
               bmu_stats, seeds, dist, queue):
    """Advance every cell one tissue step: `prepare_step`, then `loop_cells` (order drawn from
    `seed`). All arrays are updated in place: source [field units/day] (added to), the matrix
    pools, the eroded-surface memory, occupancy `occ`, the recruitment clocks, the cell state,
    events, tallies and BMU records. Work arrays: seeds (3, rows*cols, 2), dist (3, rows,
    cols), queue (rows*cols,) int64."""
    step_id = prepare_step(sysv, prm, fi, conc, source, osteoid, matrix, vessel, vessel_cells,
                           vessel_streams, vessel_clocks, site_bmu, eroded_day, occ, ints, flts,
                           free, counters, events, seeds, dist, queue)
    loop_cells(seed, step_id, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid,
               matrix, mineral_p, mineral_s, vessel, site_bmu, eroded_day, occ, ints, flts, moved,
               free, counters, events, tally, bmu_stats, dist)
