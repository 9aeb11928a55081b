"""Grid-cell predicates and neighbourhoods shared by the cell rules (numba).

A grid cell is *bone* when its bone fraction (osteoid + matrix) is >= 1/2, *marrow* otherwise.
A bone cell is *resorbable* when it is mostly mature matrix: its osteoid is below
`osteoid_block` of its bone (osteoclasts do not resorb unmineralized osteoid). A marrow cell
is a *surface* cell when one of its 4 neighbours is bone. `occ` holds the slot of the cell
occupying a grid cell (-1 empty). The surface memory `site_bmu` of a grid cell is the id
(>= 0) of the BMU that eroded it and has not yet refilled it, QUIESCENT, or ACTIVATED: bare
surface exposed by a retracting lining cell, open to osteoclast precursors for a while.
"""

import numpy as np

from bonesim.agents.jit import inline_rule, rule

# 4-neighbourhood first, then the diagonals: DR[:4], DC[:4] are the faces
DR = np.array([-1, 1, 0, 0, -1, -1, 1, 1], dtype=np.int64)
DC = np.array([0, 0, -1, 1, -1, 1, -1, 1], dtype=np.int64)
EMPTY = -1
QUIESCENT = -1
ACTIVATED = -2


@inline_rule
def inside(r, c, rows, cols):
    return 0 <= r < rows and 0 <= c < cols


@inline_rule
def is_bone(osteoid, matrix, r, c):
    return osteoid[r, c] + matrix[r, c] >= 0.5


@inline_rule
def resorbable(osteoid, matrix, r, c, osteoid_block):
    """Grid cell (r, c) holds matrix an osteoclast can resorb."""
    b = osteoid[r, c] + matrix[r, c]
    return b > 1e-12 and matrix[r, c] > 0.0 and osteoid[r, c] < osteoid_block * b


@rule
def touches_bone(osteoid, matrix, r, c):
    """A face neighbour of (r, c) is bone."""
    rows, cols = matrix.shape
    for k in range(4):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and is_bone(osteoid, matrix, rr, cc):
            return True
    return False


@rule
def touches_resorbable(osteoid, matrix, r, c, osteoid_block):
    """A face neighbour of (r, c) is resorbable bone."""
    rows, cols = matrix.shape
    for k in range(4):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and is_bone(osteoid, matrix, rr, cc) and \
                resorbable(osteoid, matrix, rr, cc, osteoid_block):
            return True
    return False


@rule
def exposed(osteoid, matrix, r, c):
    """A face neighbour of (r, c) is marrow (not bone; cells outside the grid are not)."""
    rows, cols = matrix.shape
    for k in range(4):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and not is_bone(osteoid, matrix, rr, cc):
            return True
    return False


@rule
def bone_neighbours(osteoid, matrix, r, c):
    """Number of bone cells among the 8 neighbours (a concavity measure)."""
    rows, cols = matrix.shape
    n = 0
    for k in range(8):
        rr, cc = r + DR[k], c + DC[k]
        if inside(rr, cc, rows, cols) and is_bone(osteoid, matrix, rr, cc):
            n += 1
    return n


@rule
def free_marrow(osteoid, matrix, occ, r, c):
    """(r, c) is an empty marrow cell."""
    return occ[r, c] == EMPTY and not is_bone(osteoid, matrix, r, c)


# the 8 neighbours in cyclic order E, NE, N, NW, W, SW, S, SE (for bone_components)
_CR = np.array([0, -1, -1, -1, 0, 1, 1, 1], dtype=np.int64)
_CC = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)


@inline_rule
def _marrow_at(osteoid, matrix, r, c, rows, cols):
    return 1 if not inside(r, c, rows, cols) or not is_bone(osteoid, matrix, r, c) else 0


@rule
def bone_components(osteoid, matrix, r, c):
    """Separate pieces of bone among the 8 neighbours of (r, c) that touch it (8-connected
    bone, Yokoi's connectivity number; cells outside the grid are marrow). 1: (r, c) joins one
    piece, so turning it to bone or to marrow keeps the topology; >= 2: it is a bridge between
    pieces (resorbing it cuts a trabecula, filling it would join two); 0: no bone around it,
    or none of its faces is marrow."""
    rows, cols = matrix.shape
    n = 0
    for k in range(0, 8, 2):
        a = _marrow_at(osteoid, matrix, r + _CR[k], c + _CC[k], rows, cols)
        b = _marrow_at(osteoid, matrix, r + _CR[k + 1], c + _CC[k + 1], rows, cols)
        d = _marrow_at(osteoid, matrix, r + _CR[(k + 2) % 8], c + _CC[(k + 2) % 8], rows, cols)
        n += a - a * b * d
    return n



@rule
def cuts_trabecula(osteoid, matrix, r, c, reach, queue, mark):
    """With (r, c) turned to marrow, do two of the bone pieces around it stay apart within
    `reach` grid steps of it, each running on to that distance? Then resorbing (r, c) has
    cut a trabecula (a strut broken, a plate perforated, as a section shows it; a piece that
    reaches the section's edge runs on beyond it). A notch whose pieces meet again nearby, or
    a small fragment broken off (it ends within reach), is not.
    Flood fills 8-connected bone within the square of half-width `reach` around (r, c),
    skipping it. Work space: queue (>= (2 reach + 1)^2,) int64; mark (rows, cols) int64, zero
    on entry and on return."""
    rows, cols = matrix.shape
    n_far = 0
    label = 0
    for k0 in range(8):
        r0, c0 = r + _CR[k0], c + _CC[k0]
        if not inside(r0, c0, rows, cols) or not is_bone(osteoid, matrix, r0, c0) or mark[r0, c0] > 0:
            continue
        label += 1
        mark[r0, c0] = label
        head, tail = 0, 1
        queue[0] = r0 * cols + c0
        far = False
        while head < tail:
            v = queue[head]
            head += 1
            rr, cc = v // cols, v % cols
            far = far or max(abs(rr - r), abs(cc - c)) >= reach or rr == 0 or cc == 0 or \
                rr == rows - 1 or cc == cols - 1
            for k in range(8):
                r2, c2 = rr + DR[k], cc + DC[k]
                if (r2 == r and c2 == c) or not inside(r2, c2, rows, cols) or \
                        max(abs(r2 - r), abs(c2 - c)) > reach or mark[r2, c2] > 0 or \
                        not is_bone(osteoid, matrix, r2, c2):
                    continue
                mark[r2, c2] = label
                queue[tail] = r2 * cols + c2
                tail += 1
        n_far += far
    for rr in range(max(0, r - reach), min(rows, r + reach + 1)):
        for cc in range(max(0, c - reach), min(cols, c + reach + 1)):
            mark[rr, cc] = 0
    return n_far >= 2
