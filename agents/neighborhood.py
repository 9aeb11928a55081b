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
