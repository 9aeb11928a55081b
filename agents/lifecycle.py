"""Births, deaths and changes of type on the structure-of-arrays state (numba).

Each function updates the state, the occupancy map and the free-slot stack at once and writes
one event for `apply_events` to mirror on the Mesa side. Random draws come from the cell's own
stream (agents/streams.py): reproducible for a seed, and coupled between runs of one seed.
"""

import numpy as np

from bonesim.agents import rates as R
from bonesim.agents.jit import inline_rule, rule
from bonesim.agents.neighborhood import EMPTY
from bonesim.agents.population import (
    C_NEV, C_NFREE, C_NHI, C_STEP, EV_BECOME, EV_DIE, EV_SPAWN, FREE, I_BMU, I_COL,
    I_EMBED_DRAWN, I_GEN, I_KEY, I_KIND, I_NLIFE, I_NMOVE, I_NUCLEI, I_ROW, I_STAMP, OB_PRECURSOR,
    OC_PRECURSOR, OSTEOBLAST, OSTEOCLAST, OSTEOCYTE, X_AGE, X_AUX, X_AUX_THR, X_CLOCK, X_CLOCK_END,
    X_HEADING, X_TRANS, X_TRANS_THR, X_TRAVEL,
)
from bonesim.agents.streams import decision, exponential, gamma, hash2
from bonesim.agents.world import S_DT


@rule
def emit(events, counters, code, slot, a, b):
    """Append one event (code, slot, a, b); the buffer is sized by the model per step."""
    n = counters[C_NEV]
    if n < events.shape[0]:
        events[n, 0] = code
        events[n, 1] = slot
        events[n, 2] = a
        events[n, 3] = b
        counters[C_NEV] = n + 1


@rule
def draw_lifespan(kind, prm, h):
    """Lifespan [day] of a cell entering `kind`, from its decision hash h: gamma distributed
    (shape >= 1 from cells.toml) around the type's mean lifespan, exponential for precursors
    and osteocytes; lining cells do not age out."""
    if kind == OC_PRECURSOR:
        return prm[R.OCP_LIFE] * exponential(h, 0)
    if kind == OSTEOCLAST:
        k = prm[R.OC_SHAPE]
        return gamma(h, 0, k, prm[R.OC_LIFE] / k)
    if kind == OB_PRECURSOR:
        return prm[R.OBP_LIFE] * exponential(h, 0)
    if kind == OSTEOBLAST:
        k = prm[R.OB_SHAPE]
        return gamma(h, 0, k, prm[R.OB_LIFE] / k)
    if kind == OSTEOCYTE:
        return prm[R.OCY_LIFE] * exponential(h, 0)
    return np.inf


@rule
def enter(slot, kind, start, ints, flts, prm):
    """Reset the clocks of `slot` for its new type `kind` (one life decision: the lifespan
    and the Exp(1) thresholds of its two hazards); its biological clock starts at 0, its age
    at `start` [day] (negative for a cell whose life began within the step under way: see
    `outlived`)."""
    h = decision(ints, slot, I_NLIFE)
    ints[I_KIND, slot] = kind
    ints[I_EMBED_DRAWN, slot] = 0
    flts[X_AGE, slot] = start
    flts[X_CLOCK, slot] = 0.0
    flts[X_CLOCK_END, slot] = draw_lifespan(kind, prm, h)
    flts[X_TRANS, slot] = 0.0
    flts[X_TRANS_THR, slot] = exponential(h, 1)
    flts[X_AUX, slot] = 0.0
    flts[X_AUX_THR, slot] = exponential(h, 2)
    flts[X_TRAVEL, slot] = 0.0


@rule
def kill(slot, cause, ints, occ, free, counters, events):
    """The cell in `slot` dies: it leaves its grid cell and its slot is freed."""
    r, c = ints[I_ROW, slot], ints[I_COL, slot]
    if occ[r, c] == slot:
        occ[r, c] = EMPTY
    ints[I_KIND, slot] = FREE
    ints[I_BMU, slot] = -1
    free[counters[C_NFREE]] = slot
    counters[C_NFREE] += 1
    emit(events, counters, EV_DIE, slot, cause, 0)


@rule
def since_threshold(s, flts, hazard):
    """Days since cell s's transition hazard, accumulated at `hazard` [1/day] over the step,
    passed its Exp(1) threshold (call once it has: the time to pass to `become`)."""
    return (flts[X_TRANS, s] - flts[X_TRANS_THR, s]) / hazard


@rule
def become(slot, kind, since, w):
    """The cell in `slot` changes type (keeps its grid cell, BMU and lineage counters); the
    change happened `since` days before the step's end (at most dt). Its life in the new type
    runs from then: kernel.step_cell runs the new type's rule in this same step, at whose end
    its age is `since` and its clock has run `since` days at the new type's rate (`outlived`).
    As for a recruit, a life [a, a + T) is then the steps whose end lies in it, T / dt of them
    in expectation whatever dt; started at the step's end instead, the cell would act dt/2
    less on average (tests/test_streams.py)."""
    enter(slot, kind, min(since, w.sysv[S_DT]) - w.sysv[S_DT], w.ints, w.flts, w.prm)
    emit(w.events, w.counters, EV_BECOME, slot, kind, 0)


@rule
def spawn(kind, r, c, bmu, gen, key, ints, flts, prm, occ, free, counters, events):
    """Place a new cell of `kind` with random-stream key `key` in the empty grid cell (r, c);
    returns its slot (-1: no free slot, nothing placed)."""
    if counters[C_NFREE] == 0:
        return -1
    counters[C_NFREE] -= 1
    slot = free[counters[C_NFREE]]
    if slot + 1 > counters[C_NHI]:
        counters[C_NHI] = slot + 1
    ints[I_ROW, slot] = r
    ints[I_COL, slot] = c
    ints[I_NUCLEI, slot] = 1 if kind == OSTEOCLAST else 0
    ints[I_GEN, slot] = gen
    ints[I_BMU, slot] = bmu
    ints[I_STAMP, slot] = counters[C_STEP]
    ints[I_KEY, slot] = key
    ints[I_NLIFE, slot] = 0
    ints[I_NMOVE, slot] = 0
    flts[X_HEADING, slot] = 0.0
    enter(slot, kind, 0.0, ints, flts, prm)
    occ[r, c] = slot
    emit(events, counters, EV_SPAWN, slot, kind, 0)
    return slot



@inline_rule
def outlived(s, w, rate):
    """Advance cell s's biological clock over the step at `rate` [-] (1 = its reference
    lifespan); True when it has reached the end of its life. A cell whose life began within
    the step (a recruit, or a change of type: its age, counted to the step's end, is then
    less than dt) ages only over that part of the step."""
    w.flts[X_CLOCK, s] += min(w.sysv[S_DT], w.flts[X_AGE, s]) * rate
    return w.flts[X_CLOCK, s] >= w.flts[X_CLOCK_END, s]


@rule
def renew(s, kind, r, c, gen, h, w):
    """Cell s fires its repeating transition (the aux hazard: division, lining spreading) with
    decision hash h: a daughter of `kind` and generation `gen` at (r, c) (none if r < 0, no
    room), and s's next threshold. The hazard past the threshold, accumulated since the firing
    within the step, counts toward s's next event and is the daughter's start, so that a chain
    of daughters (a spreading front) advances at its rate whatever dt."""
    flts = w.flts
    over = flts[X_AUX, s] - flts[X_AUX_THR, s]
    if r >= 0:
        d = spawn(kind, r, c, -1, gen, hash2(h, 1), w.ints, flts, w.prm, w.occ, w.free,
                  w.counters, w.events)
        if d >= 0:
            flts[X_AUX, d] = over
    flts[X_AUX, s] = over
    flts[X_AUX_THR, s] = exponential(h, 2)
