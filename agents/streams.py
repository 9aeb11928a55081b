"""Counter-based random streams: each cell, and each vessel's recruitment, draws from its own.

A draw is a hash of (a stream key, a purpose, a counter), not the next number of one shared
generator. So a change in one cell's fate (a death a day earlier, a move elsewhere, a birth
that does not happen) does not shift the random numbers of every other cell: two runs of the
same seed that differ a little (a finer field mesh, a halved dt, a drug arm and its placebo)
stay coupled, the same cells meeting the same lifespans, thresholds, turns and recruitments.
This is the common-random-numbers design of simulation experiments (Law, Simulation Modeling
and Analysis, 5th ed. 2015, sec. 11.2); it makes paired differences (convergence, treatment
minus placebo) precise with few seeds. The draws are still independent between cells and
decisions, and every distribution is the same as before.

Keys. A resident cell placed at set-up: hash(set-up seed, its index). A precursor recruited at
a vessel: drawn from that vessel's stream of its lineage (`recruit` in agents/kernel.py). A
daughter (osteoblast-precursor division, lining-cell spreading): drawn from its parent's
stream. A cell keeps its key when it changes type.

Counters (rows of the cell state): I_NLIFE counts life decisions (entering a type: lifespan
and hazard thresholds; a division; the fate at the end of work; embedding; the heading of a
new osteoclast), I_NMOVE counts move decisions (a precursor's walk in a step, an osteoclast's
move to its next site). A decision takes one 64-bit hash `h` and reads its numbers as
sub-draws (`uniform(h, i)`, `normal(h, i)`, ..., or its bits: 3 per hop of a walk), so it
consumes one counter value however many numbers it needs (a rejection loop, a turning noise
per candidate site, the hops of a walk).

The hash is splitmix64's finaliser (Steele, Lea & Flood 2014), chained.
"""

import numpy as np

from bonesim.agents.jit import rule
from bonesim.agents.population import I_KEY

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_UNIT = 2.0**-53

SPREAD = 100    # purpose of the lining cell's spreading direction (read, not counted)
DIRECTIONS_PER_HASH = 21    # 3-bit neighbour directions read from one 64-bit hash


@rule
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@rule
def hash2(key, a):
    """A 64-bit hash (int64 bits) of the stream key `key` and the integer `a`."""
    return np.int64(_mix(np.uint64(key) + (np.uint64(a) + np.uint64(1)) * _GOLDEN))


@rule
def uniform(h, i):
    """The i-th uniform number in [0, 1) of the decision hash h."""
    return np.float64(np.uint64(hash2(h, i)) >> np.uint64(11)) * _UNIT


@rule
def exponential(h, i):
    """The i-th Exp(1) number of h."""
    return -np.log1p(-uniform(h, i))


@rule
def normal(h, i):
    """The i-th standard normal number of h (Box-Muller)."""
    g = hash2(h, i)
    return np.sqrt(-2.0 * np.log1p(-uniform(g, 0))) * np.cos(2.0 * np.pi * uniform(g, 1))


@rule
def gamma(h, i, shape, scale):
    """The i-th Gamma(shape >= 1, scale) number of h (Marsaglia & Tsang 2000)."""
    g = hash2(h, i)
    d = shape - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    for j in range(1000):
        x = normal(g, 2 * j)
        v = (1.0 + c * x) ** 3
        if v > 0.0 and np.log(uniform(g, 2 * j + 1)) < 0.5 * x * x + d - d * v + d * np.log(v):
            return d * v * scale
    return d * scale      # not reached (acceptance ~0.95 per trial)


@rule
def direction(h, i):
    """The i-th uniform neighbour index 0..7 of h."""
    return int(uniform(h, i) * 8.0)


@rule
def peek(ints, s, purpose, row):
    """A hash for `purpose` that stays the same until cell s's counter `row` moves on."""
    return hash2(hash2(ints[I_KEY, s], purpose), ints[row, s])


@rule
def decision(ints, s, row):
    """The hash of cell s's next decision counted in state row `row` (I_NLIFE or I_NMOVE)."""
    h = peek(ints, s, row, row)
    ints[row, s] += 1
    return h
