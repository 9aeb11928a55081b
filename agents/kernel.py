"""The per-step cell kernel: every cell's rules for one tissue step, over arrays, in numba.

`step_cells` advances all cells by dt: the tissue-level preparation (`prepare_step`: stale
surface memory, marrow cytokines, recruitment of precursors at vessels, the precursors'
distance maps), then each cell in a random order. `step_cell` dispatches a cell to the rule of
its kind, which lives with its lineage as Mesa keeps behaviour with the agent:
osteoclasts.precursor_step, osteoclasts.osteoclast_step, osteoblasts.precursor_step,
osteoblasts.osteoblast_step, osteocytes.osteocyte_step, lining.lining_step. Every rule takes the
cell's slot and the `World` of arrays (agents/world.py). Discrete events (births, deaths,
changes of type) are written to the event buffer through agents/lifecycle.py; moves set the
`moved` flag. Every cell and every vessel's recruitment draws from its own random stream
(agents/streams.py); only the loop order comes from the step's seed. Parameters come in `prm`
(agents/rates.py).

Conventions. A grid cell of side dx [um] stands for a slice `section_thickness` thick.
Point-like cells (precursors' nuclei, osteoclasts, osteocytes) secrete molecules/day, which
become a concentration rate in their grid cell through S_MOL_PM [pM per molecule]. Surface
cells (osteoblasts, lining cells, and osteoblast precursors, which become osteoblasts) each
cover one grid face: their rates are given per `patch_width` of surface and scaled by
S_PATCH = dx / patch_width, and osteoblast precursors are recruited in proportion to the
faces they will cover. These keep rates per um of surface, but a grid cell is still the place
of one cell (an osteoclast resorbs its face neighbours, an osteoblast fills its grid cell and
then moves), so dx is a cell's size and results depend on it (measured at 5 and 10 um in
docs/design.md, Numerics and resolution). The parameters are calibrated at dx = 10 um =
patch_width; the fields' numerical resolution is checked apart (simulation.field_refinement).
"""


import numpy as np
from numba import njit

from bonesim.agents import lining, osteoblasts, osteoclasts, osteocytes
from bonesim.agents import rates as R
from bonesim.agents import signals as sig
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.lifecycle import spawn
from bonesim.agents.movement import distance_map, free_neighbour
from bonesim.agents.neighborhood import (
    ACTIVATED, DC, DR, EMPTY, QUIESCENT, inside, is_bone, touches_bone, touches_resorbable,
)
from bonesim.agents.population import (
    B_TEAM, C_NHI, C_STEP, I_KIND, I_NLIFE, I_NUCLEI, I_STAMP, LINING, OB_PRECURSOR, OC_PRECURSOR,
    OSTEOBLAST, OSTEOCLAST, OSTEOCYTE, T_ARRESTED, X_AGE, X_CLOCK, X_CLOCK_END,
)
from bonesim.agents.streams import decision, direction, exponential, hash2, uniform
from bonesim.agents.world import (
    F_IL1, F_IL6, F_TGFB, F_TNF, S_DAY, S_DT, S_DX, S_OBP_RATE, S_OCP_RATE, S_OSTEOID_BLOCK,
    World,
)


# the most rules a cell runs in one step: an osteoblast precursor that commits, is buried in
# the cell it fills and acts on as an osteocyte (lifecycle.become)
MAX_TYPES_PER_STEP = 3


@njit(cache=True)
def targets(w):
    """Marrow cells where precursors can work (empty, or held by a precursor of that
    lineage), written to w.seeds[i] (n, 2): i = 0 cells next to an osteoclast that can take a
    nucleus (fusion), 1 bare surface activated by lining retraction (osteoclast precursors),
    2 eroded, not yet refilled surface at rest for the reversal delay (`at_rest`) and within
    the reversal window that follows it (osteoblast precursors). Returns the three counts."""
    osteoid, matrix, vessel, occ, ints = w.osteoid, w.matrix, w.vessel, w.occ, w.ints
    site_bmu, seeds = w.site_bmu, w.seeds
    osteoid_block, max_nuclei = w.sysv[S_OSTEOID_BLOCK], w.prm[R.OC_MAX_NUC]
    rested_since = w.sysv[S_DAY] - w.prm[R.OBP_DELAY]
    opened_since = rested_since - w.prm[R.OBP_WINDOW]
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
                    w.eroded_day[r, c] >= opened_since and \
                    touches_bone(osteoid, matrix, r, c) and at_rest(r, c, rested_since, w):
                seeds[2, n[2], 0] = r
                seeds[2, n[2], 1] = c
                n[2] += 1
    return n


@rule
def at_rest(r, c, since, w):
    """Eroded marrow cell (r, c) and the eroded bone on its faces were last resorbed on or
    before day `since`: the resorption there is over, and after the reversal delay
    (ob_precursor.reversal_delay) osteoblast precursors may commit on it."""
    if w.eroded_day[r, c] > since:
        return False
    rows, cols = w.matrix.shape
    for k in range(4):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and w.site_bmu[rr, cc] >= 0 and \
                w.eroded_day[rr, cc] > since:
            return False
    return True


@rule
def expire_memory(w):
    """Close the surface memory: activated surface no osteoclast took within the activation
    window becomes quiescent; eroded surface past the reversal delay and window after its
    erosion whose BMU has no osteoblast at work any more is an arrested cavity, left unfilled
    (its unfilled volume is tallied), as is eroded surface not refilled within eroded_memory."""
    site_bmu, eroded_day, prm = w.site_bmu, w.eroded_day, w.prm
    day = w.sysv[S_DAY]
    closes_after = prm[R.OBP_DELAY] + prm[R.OBP_WINDOW]
    rows, cols = site_bmu.shape
    for r in range(rows):
        for c in range(cols):
            b = site_bmu[r, c]
            if b == ACTIVATED and day - eroded_day[r, c] > prm[R.LIN_WINDOW]:
                site_bmu[r, c] = QUIESCENT
            elif b >= 0 and day - eroded_day[r, c] > closes_after and \
                    (w.bmu_stats[b, B_TEAM] <= 0.0
                     or day - eroded_day[r, c] > prm[R.MAT_ERODED_MEMORY]):
                site_bmu[r, c] = QUIESCENT
                w.tally[T_ARRESTED] += max(0.0, 1.0 - w.osteoid[r, c] - w.matrix[r, c])


@rule
def marrow_sources(w):
    """IL-1, IL-6, TNF-alpha secreted by marrow immune/stromal cells (not agents) [pM/day per
    marrow grid cell], suppressed by estrogen: x (1 - e2_cytokine_suppression occ(ER))."""
    prm, source, fi = w.prm, w.source, w.fi
    rows, cols = w.matrix.shape
    for r in range(rows):
        for c in range(cols):
            if is_bone(w.osteoid, w.matrix, r, c):
                continue
            f = 1.0 - prm[R.MAR_E2_SUPP] * sig.er(w, r, c)
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


@rule
def recruit(kind, rate, w):
    """Precursors entering the marrow at vessel cells: a Poisson process per vessel cell with
    rate x signal per day (inflammation raises osteoclast-precursor supply; TGF-beta recruits
    osteoprogenitors; `rate` is per step of dt days). Each vessel integrates its expected
    recruits and releases one whenever they pass the next Exp(1) threshold of its stream, so the
    times of recruitment do not depend on dt, and a precursor's stream key is drawn from the
    vessel's.

    A recruit lives from its recruitment time on, not from a step boundary: it acts in the step
    it is recruited in (it is not stamped as born in it), and its age starts at its recruitment
    time measured from the step's end (the expected recruits past the threshold, over the
    step's mean, is the fraction of the step since then), minus the step the kernel adds; its
    lifespan clock runs from then (lifecycle.outlived). A life [a, a + T) is then the steps
    whose end lies in it: T/dt of them in expectation, whatever dt (Little's law: precursors
    present = recruitment rate x lifespan; docs/design.md, Numerics and resolution)."""
    lineage = 0 if kind == OC_PRECURSOR else 1
    streams, clocks = w.vessel_streams, w.vessel_clocks
    prm, ints, flts, occ = w.prm, w.ints, w.flts, w.occ
    dt = w.sysv[S_DT]
    vessel_cells = w.vessel_cells
    for v in range(vessel_cells.shape[0]):
        r, c = vessel_cells[v, 0], vessel_cells[v, 1]
        if kind == OC_PRECURSOR:
            mean = rate * (1.0 + prm[R.OCP_INF_SUPPLY] * sig.inflammation_at(w, r, c))
        else:
            basal = prm[R.OBP_RECRUIT_BASAL]
            tgfb = sig.occupancy(w, F_TGFB, R.TGFBR_EC50, r, c)
            mean = rate * (basal + (1.0 - basal) * tgfb)
        clocks[v, lineage, 0] += mean
        while clocks[v, lineage, 0] >= clocks[v, lineage, 1]:
            clocks[v, lineage, 0] -= clocks[v, lineage, 1]
            key, j = streams[v, lineage, 0], streams[v, lineage, 1]
            h = hash2(key, j)
            streams[v, lineage, 1] = j + 1
            clocks[v, lineage, 1] = exponential(hash2(key, j + 1), 0)
            rr, cc = r, c
            if occ[r, c] != EMPTY:
                k = free_neighbour(r, c, direction(h, 2), w.osteoid, w.matrix, occ)
                if k < 0:
                    continue
                rr, cc = r + DR[k], c + DC[k]
            slot = spawn(kind, rr, cc, -1, 0, hash2(h, 1), ints, flts, prm, occ, w.free,
                         w.counters, w.events)
            if slot >= 0:
                since = dt * clocks[v, lineage, 0] / mean     # days from recruitment to step end
                flts[X_AGE, slot] = since - dt
                ints[I_STAMP, slot] = -1


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
def prepare_step(w):
    """The tissue-level part of a step, before the cells act: count the step, forget stale
    eroded surface, marrow cytokine sources, precursor recruitment at vessels (streams and
    clocks from `open_vessel_streams`), and the distance maps to the precursors' targets
    (dist[0] fusion sites, dist[1] bare activated surface, dist[2] eroded surface). The
    osteoclasts add the fusion sites and activated surface they open within the step to their
    maps as they open them (osteoclasts.open_to_precursors)."""
    prm, sysv, ints, counters = w.prm, w.sysv, w.ints, w.counters
    osteoid, matrix = w.osteoid, w.matrix
    counters[C_STEP] += 1
    dx = sysv[S_DX]
    expire_memory(w)
    marrow_sources(w)
    recruit(OC_PRECURSOR, sysv[S_OCP_RATE] * sysv[S_DT], w)
    recruit(OB_PRECURSOR, sysv[S_OBP_RATE] * sysv[S_DT], w)
    n = targets(w)
    n_ocp, n_obp = 0, 0
    for s in range(counters[C_NHI]):
        n_ocp += ints[I_KIND, s] == OC_PRECURSOR
        n_obp += ints[I_KIND, s] == OB_PRECURSOR
    for i in range(3):
        if (i < 2 and n_ocp == 0) or (i == 2 and n_obp == 0):
            continue      # no precursor of that lineage to guide
        radius = prm[R.OBP_RADIUS] if i == 2 else prm[R.OCP_RADIUS]
        distance_map(w.seeds[i], n[i], radius / dx, osteoid, matrix, w.dist[i], w.queue)


@inline_rule
def step_cell(s, w):
    """The rules of one cell (slot s) for one step: its age advances by dt and the rule of its
    kind runs. A cell that changes type in its rule runs the rule of its new type in the same
    step (lifecycle.become), up to MAX_TYPES_PER_STEP rules. Free slots and cells placed in this
    step are skipped."""
    kind = w.ints[I_KIND, s]
    for _ in range(MAX_TYPES_PER_STEP):
        if kind < 0 or w.ints[I_STAMP, s] == w.counters[C_STEP]:
            return
        w.flts[X_AGE, s] += w.sysv[S_DT]
        if kind == OC_PRECURSOR:
            osteoclasts.precursor_step(s, w)
        elif kind == OSTEOCLAST:
            osteoclasts.osteoclast_step(s, w)
        elif kind == OB_PRECURSOR:
            osteoblasts.precursor_step(s, w)
        elif kind == OSTEOBLAST:
            osteoblasts.osteoblast_step(s, w)
        elif kind == OSTEOCYTE:
            osteocytes.osteocyte_step(s, w)
        elif kind == LINING:
            lining.lining_step(s, w)
        if w.ints[I_KIND, s] == kind:
            return
        kind = w.ints[I_KIND, s]


@rule
def _loop_order(order, w):
    # the slots in `order`, step_cell inlined; a rule, so no array is reference-counted per
    # slot (agents/jit.py)
    for s in order:
        step_cell(s, w)


@njit(cache=True)
def loop_cells(seed, w):
    """`step_cell` for every slot, in a random order drawn from `seed`."""
    np.random.seed(seed)
    _loop_order(np.random.permutation(w.counters[C_NHI]), w)


@njit(cache=True)
def step_cells(seed, w):
    """Advance every cell one tissue step: `prepare_step`, then `loop_cells` (order drawn from
    `seed`). All arrays of the World are updated in place: source [field units/day] (added
    to), the matrix pools, the surface memory, occupancy, the recruitment clocks, the cell
    state, events, tallies and BMU records."""
    prepare_step(w)
    loop_cells(seed, w)


@rule
def step_one_cell(s, sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid, matrix,
                  mineral_p, mineral_s, vessel, vessel_cells, vessel_streams, vessel_clocks,
                  site_bmu, eroded_day, occ, ints, flts, moved, free, counters, events, tally,
                  bmu_stats, seeds, dist, queue, mark):
    """`step_cell` for the one cell in slot s, from the World's arrays one by one: the entry of
    a Mesa agent's own `step()` (the plain per-agent path). Its arrays cross from Python one
    by one because a whole World costs ~4 us more per call to unpack."""
    step_cell(s, World(sysv, prm, fi, conc, rankl_free, stimulus, source, osteoid, matrix,
                       mineral_p, mineral_s, vessel, vessel_cells, vessel_streams, vessel_clocks,
                       site_bmu, eroded_day, occ, ints, flts, moved, free, counters, events,
                       tally, bmu_stats, seeds, dist, queue, mark))
