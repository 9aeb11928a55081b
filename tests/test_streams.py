"""Random streams (agents/streams.py): their distributions, and the coupling they exist for.

The distribution checks use fixed keys, so they are deterministic; each bound is ~4 standard
errors of its statistic, which a wrong transform (or a correlated hash) would miss by far.
"""

import numpy as np
from test_cells import World      # the small hand-built tissue

from bonesim.agents import kernel as K
from bonesim.agents import streams as S
from bonesim.agents import world as W
from bonesim.agents.movement import hops
from bonesim.agents.neighborhood import ACTIVATED
from bonesim.agents.osteoclasts import clock_rate as oc_clock_rate
from bonesim.agents.osteoclasts import resorption_capacity
from bonesim.agents.population import (
    EV_BECOME, EV_SPAWN, I_COL, I_KIND, I_ROW, LINING, OB_PRECURSOR, OC_PRECURSOR, OSTEOCLAST,
    T_OC_CAPACITY, X_CLOCK_END, X_TRANS_THR,
)
from bonesim.model.parameters import value

N = 40_000


def draws(fn, *args):
    return np.array([fn(S.hash2(12345, n), *args) for n in range(N)])


def test_uniform_is_uniform_and_uncorrelated():
    u = draws(S.uniform, 0)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / N)
    ks = np.abs(np.sort(u) - (np.arange(N) + 0.5) / N).max()
    assert ks < 1.95 / np.sqrt(N)                       # Kolmogorov-Smirnov, p ~ 0.001
    v = draws(S.uniform, 1)                              # another sub-draw of the same hashes
    assert abs(np.corrcoef(u, v)[0, 1]) < 4 / np.sqrt(N)
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4 / np.sqrt(N)   # successive counters


def test_exponential_normal_gamma_moments():
    e = draws(S.exponential, 0)
    assert e.min() >= 0.0
    assert abs(e.mean() - 1.0) < 4 / np.sqrt(N) and abs(e.var() - 1.0) < 0.1
    z = draws(S.normal, 0)
    assert abs(z.mean()) < 4 / np.sqrt(N) and abs(z.var() - 1.0) < 0.03
    assert abs(np.mean(z**4) - 3.0) < 0.2                 # kurtosis of a normal
    for shape in (1.0, 3.0, 4.0):
        g = draws(S.gamma, 0, shape, 2.0)
        mean, var = shape * 2.0, shape * 4.0
        assert g.min() > 0.0
        assert abs(g.mean() - mean) < 4 * np.sqrt(var / N)
        assert abs(g.var() / var - 1.0) < 0.06


def test_direction_covers_the_eight_neighbours_evenly():
    counts = np.bincount(draws(S.direction, 0), minlength=8)
    assert counts.size == 8
    chi2 = ((counts - N / 8) ** 2 / (N / 8)).sum()
    assert chi2 < 26.1                                   # chi-square, 7 dof, p = 0.0005


def test_hops_add_up_to_the_path_whatever_dt():
    """A cell's grid steps over 10 days are its path length / dx, for any step size."""
    speed, dx = 37.0, 10.0
    for dt in (1.0, 0.5, 0.1, 0.7):
        n = round(10.0 / dt)
        total = sum(hops(speed, (i + 1) * dt, dt, dx) for i in range(n))
        assert total == int(speed * n * dt / dx)


# ------------------------------------------------------------------------------- coupling


def walk(world, slots, days):
    """(row, col) of the cells in `slots` after each day (None once dead)."""
    path = []
    for _ in range(days):
        world.step()
        ints = world.pop.ints
        path.append([(int(ints[I_ROW, s]), int(ints[I_COL, s])) if ints[I_KIND, s] >= 0 else None
                     for s in slots])
    return path


def test_a_cells_draws_do_not_depend_on_other_cells():
    """The same four precursors in two tissues, one with two more cells far away (and so many
    more draws in each step): they live the same lives, walk the same paths, draw the same
    thresholds. With one shared generator the other cells would shift all of them."""
    alone, crowded = World(rows=16, cols=96), World(rows=16, cols=96)
    a = [alone.add(OC_PRECURSOR, 12, c) for c in (4, 24, 44, 64)]
    b = [crowded.add(OC_PRECURSOR, 12, c) for c in (4, 24, 44, 64)]
    crowded.add(OB_PRECURSOR, 12, 92)
    crowded.add(OC_PRECURSOR, 14, 88)
    for field in (X_CLOCK_END, X_TRANS_THR):
        assert np.array_equal(alone.pop.flts[field, a], crowded.pop.flts[field, b])
    path = walk(alone, a, 5)
    assert len({place for day in path for place in day if place is not None}) > 4   # they moved
    assert walk(crowded, b, 5) == path


def vessel_world(dt, rate):
    """World with a row of 16 vessel cells recruiting osteoclast precursors at `rate`/day each
    (zero cytokines), stepping dt days."""
    world = World(rows=16, cols=16)
    world.vessel_cells = np.array([[15, c] for c in range(16)], dtype=np.int64)
    world.vessel_streams = np.zeros((16, 2, 2), dtype=np.int64)
    world.vessel_clocks = np.zeros((16, 2, 2))
    K.open_vessel_streams(7, world.vessel_streams, world.vessel_clocks)
    world.sysv[W.S_DT] = dt
    world.sysv[W.S_OCP_RATE] = rate
    return world


def recruits(dt, days, rate=0.1):
    """Precursors recruited per vessel cell in `days` at steps of dt (zero cytokines, so the
    osteoclast-precursor rate is `rate`/day per vessel cell)."""
    world = vessel_world(dt, rate)
    world.step(round(days / dt))
    spawned = [e for e in world.events if e[0] == EV_SPAWN and e[2] == OC_PRECURSOR]
    assert len(spawned) > 0
    return world.vessel_streams[:, 0, 1].copy()


def test_recruitment_is_poisson_and_independent_of_dt():
    """Each vessel cell recruits as a Poisson process: mean = variance = rate x time over the
    vessels; and the recruitments up to a day are the same at dt = 1 and dt = 0.5 days."""
    days, rate = 200, 0.1
    counts = recruits(1.0, days, rate)
    assert abs(counts.mean() - rate * days) < 4 * np.sqrt(rate * days / counts.size)
    assert 0.3 < counts.var(ddof=1) / counts.mean() < 2.0     # 15 dof: a wide chi-square band
    assert np.array_equal(recruits(0.5, days, rate), counts)


def precursor_days(dt, days=300, rate=0.1):
    """(cell-days of osteoclast precursors counted at the step ends, sum of the lifespans they
    drew): recruitment for `days`, then none until the last has died. Without RANKL they only
    walk and die, so each lives exactly its drawn lifespan."""
    world = vessel_world(dt, rate)
    present, lifespans = 0.0, 0.0
    for i in range(round(2 * days / dt)):
        if i * dt >= days:
            world.sysv[W.S_OCP_RATE] = 0.0
        n_events = len(world.events)
        world.step()
        lifespans += sum(world.pop.flts[X_CLOCK_END, e[1]] for e in world.events[n_events:]
                         if e[0] == EV_SPAWN)
        present += world.count(OC_PRECURSOR) * dt
    assert world.count(OC_PRECURSOR) == 0 and lifespans > 1000.0
    return present, lifespans


def test_precursors_present_add_up_to_their_lifespans_whatever_dt():
    """Little's law on the step grid: the precursors counted at the step ends, times dt, add up
    to the lifespans they drew, at any dt. A clock started at the step end after recruitment
    instead of at the recruitment time would count each precursor dt/2 too long (+12% at
    dt = 1 day for the 4-day lifespan). The per-cell rounding is zero-mean, < dt each."""
    for dt in (1.0, 0.5, 0.25):
        present, lifespans = precursor_days(dt)
        assert abs(present - lifespans) < 0.02 * lifespans, (dt, present, lifespans)


def osteoclast_days(dt, n=120):
    """(days the osteoclasts worked: the capacity they were given over one osteoclast's capacity
    per day; the lifespans they drew, in days at their constant ageing rate). n precursors on
    activated bare bone at constant RANKL differentiate (one nucleus each: no fusion) and are
    followed until every osteoclast has died."""
    world = World(rows=24, cols=n, surface=12, **{"osteoclast.max_nuclei": 1.0,
                                                 "osteoclast.lifespan": 5.0})
    world.sysv[W.S_DT] = dt
    world.site_bmu[12] = ACTIVATED
    for c in range(n):
        world.add(OC_PRECURSOR, 12, c)
    fr = 10 * value("cells.receptors.rank_ec50")
    world.rankl_free[:] = fr
    rate = oc_clock_rate(0.0, 0.0, fr, 0.0, world.prm)
    lifespans = 0.0
    for _ in range(round(60 / dt)):
        n_events = len(world.events)
        world.step()
        formed = [e[1] for e in world.events[n_events:] if e[0] == EV_BECOME and e[2] == OSTEOCLAST]
        lifespans += sum(world.pop.flts[X_CLOCK_END, slot] / rate for slot in formed)
    assert world.count(OSTEOCLAST) == 0 and world.count(OC_PRECURSOR) == 0 and lifespans > 200
    per_day = resorption_capacity(1, fr, 0.0, world.prm, 1.0, world.sysv[W.S_DX])
    return world.tally[T_OC_CAPACITY] / per_day, lifespans


def test_osteoclasts_work_their_lifespans_whatever_dt():
    """Little's law for a change of type: an osteoclast works in the step it forms in
    (lifecycle.become), so the days osteoclasts work add up to the lifespans they drew at any
    dt. Begun at the end of that step, each would work dt/2 less on average (-7% at dt = 1 day
    for the ~7-day lives here). The per-cell rounding is zero-mean, < dt each."""
    for dt in (1.0, 0.5, 0.25):
        worked, lifespans = osteoclast_days(dt)
        assert abs(worked - lifespans) < 0.02 * lifespans, (dt, worked, lifespans)


def test_streams_differ_between_keys_and_purposes():
    h = [S.hash2(S.hash2(key, row), 0) for key in (1, 2) for row in (8, 9)]
    assert len(set(h)) == 4
    assert S.hash2(1, 0) != S.hash2(0, 1)
    assert S.uniform(5, 0) == S.uniform(5, 0)            # a draw is a function, not a state


def lining_spread(dt, days=30):
    """Lining cells on a 64-long row of bare quiescent surface after `days` at steps of dt,
    grown from one cell at its left end (activation off, so none retracts)."""
    world = World(rows=12, cols=64, **{"lining.activation_rate": 0.0})
    world.sysv[W.S_DT] = dt
    world.add(LINING, 8, 0)
    world.step(round(days / dt))
    return world.count(LINING)


def test_lining_spreads_at_its_speed_once_steps_resolve_it():
    """Spreading is a repeating hazard: after each daughter the hazard past the threshold counts
    toward the parent's next one, and the daughter starts with it (it was born that long ago).
    The same thresholds are drawn at every dt, so the front advances ~1 cell/day (10 um/day)
    at dt = 0.5 and 0.25 alike. Resetting the hazard to zero instead slows it to
    rate / (1 + rate dt / 2) per generation. At dt = 1 day (rate x dt = 1) it is still slower:
    a front cell places at most one daughter per step, and a daughter acts from the next step."""
    counts = [lining_spread(dt) for dt in (1.0, 0.5, 0.25)]
    assert counts[1] >= 27 and abs(counts[1] - counts[2]) <= 2, counts
