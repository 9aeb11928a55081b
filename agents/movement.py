"""How cells move on the grid: precursors' walks and chemotaxis, and the distance maps that
guide them (numba).

A precursor walks through empty marrow: down the distance map to its nearest target when one
is within its search radius (chemotaxis), an unbiased random walk otherwise. The maps are
built at the step's start (`distance_map`); a target that appears within the step joins them
when it appears (`add_target`). `hops` turns a migration speed into the grid steps of one
tissue step so that their sum over any span is the same whatever dt.
"""

import numpy as np

from bonesim.agents.jit import rule
from bonesim.agents.neighborhood import DC, DR, EMPTY, inside, is_bone
from bonesim.agents.population import I_COL, I_NMOVE, I_ROW
from bonesim.agents.streams import DIRECTIONS_PER_HASH, decision, hash2


@rule
def move(s, r, c, nr, nc, occ, ints, moved):
    """Move cell s from (r, c) to the empty grid cell (nr, nc)."""
    occ[r, c] = EMPTY
    occ[nr, nc] = s
    ints[I_ROW, s] = nr
    ints[I_COL, s] = nc
    moved[s] = True


@rule
def free_neighbour(r, c, start, osteoid, matrix, occ):
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
    bits each (and is rehashed for every further 21). Returns the grid steps it walked
    (`time_left` turns them into the time it has left on its target)."""
    rows, cols = matrix.shape
    r0, c0 = ints[I_ROW, s], ints[I_COL, s]
    if hops <= 0 or dist[r0, c0] == 0:
        return 0
    h = decision(ints, s, I_NMOVE)
    r, c = r0, c0
    occ[r, c] = EMPTY         # left during the walk (never its own neighbour), moved on arrival
    walked = 0
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
            best_k = free_neighbour(r, c, start, osteoid, matrix, occ)
        if best_k < 0:
            break
        r, c = r + DR[best_k], c + DC[best_k]
        walked += 1
    occ[r0, c0] = s
    if r != r0 or c != c0:
        move(s, r0, c0, r, c, occ, ints, moved)
    return walked


@rule
def distance_map(seeds, n_seeds, radius, osteoid, matrix, dist, queue):
    """Breadth-first grid distance (8-neighbour steps through marrow) from the seed cells,
    up to `radius` steps; dist (rows, cols) int64 is overwritten, -1 beyond the radius."""
    cols = matrix.shape[1]
    dist[:] = -1
    tail = 0
    for i in range(n_seeds):
        r, c = seeds[i, 0], seeds[i, 1]
        if dist[r, c] < 0:
            dist[r, c] = 0
            queue[tail] = r * cols + c
            tail += 1
    spread(tail, radius, osteoid, matrix, dist, queue)


@rule
def add_target(dist, r, c, radius, osteoid, matrix, queue):
    """Make marrow cell (r, c) a target of the distance map `dist` (built by `distance_map`,
    up to `radius` steps) within the step, as a target that appeared since the map was built:
    the breadth-first distances from (r, c) lower the map wherever they are shorter, so the map
    is the one `distance_map` would build with (r, c) among its seeds."""
    if dist[r, c] == 0:
        return
    dist[r, c] = 0
    queue[0] = r * matrix.shape[1] + c
    spread(1, radius, osteoid, matrix, dist, queue)


@rule
def spread(tail, radius, osteoid, matrix, dist, queue):
    """Breadth-first through marrow from the `tail` cells queued in `queue` (flat indices,
    all at distance 0 in `dist`), up to `radius` steps: every cell reached in fewer steps than
    `dist` holds (or not reached before, -1) takes the shorter distance."""
    rows, cols = matrix.shape
    head = 0
    while head < tail:
        v = queue[head]
        head += 1
        r, c = v // cols, v % cols
        d = dist[r, c]
        if d >= radius:
            continue
        for k in range(8):
            rr, cc = r + DR[k], c + DC[k]
            if inside(rr, cc, rows, cols) and not is_bone(osteoid, matrix, rr, cc) and \
                    (dist[rr, cc] < 0 or dist[rr, cc] > d + 1):
                dist[rr, cc] = d + 1
                queue[tail] = rr * cols + cc
                tail += 1


@rule
def hops(speed, age, dt, dx):
    """Grid steps in this tissue step for a migration speed [um/day] of a cell `age` days in
    its type (age counted to the end of the step; a recruit or a cell that changed type may have
    begun within the step): the whole grid steps that its path speed x age crosses in the step.
    Their sum over any span is the same whatever dt."""
    before = max(age - dt, 0.0)
    return int(np.floor(speed * age / dx + 1e-9) - np.floor(speed * before / dx + 1e-9))


@rule
def time_left(speed, age, dt, dx, walked):
    """Days of this tissue step left to a cell `age` days in its type (counted to the step's
    end, as in `hops`) after the first `walked` of its grid steps in the step: the time it
    stands where its walk ended, so that what it does there (differentiate, fuse, commit) runs
    from its arrival, not from the step's start, whatever dt. With no grid step walked, its
    time in the step, min(age, dt)."""
    if walked <= 0:
        return min(age, dt)
    before = max(age - dt, 0.0)
    arrived = (np.floor(speed * before / dx + 1e-9) + walked) * dx / speed
    return max(0.0, age - arrived)
