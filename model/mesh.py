"""The field mesh and its transfer to and from the cell lattice.

Cells live on the lattice of the tissue: a grid cell of side dx is the place of one cell, so dx
is a cell's size, a biological quantity (refining it makes smaller cells, not a finer
numerical solution). The fields are solved on the lattice itself, or, for a convergence check
of the field numerics, on a mesh r times finer (spacing dx / r) with the same geometry: each
lattice cell is split into r x r mesh cells that share its bone state, vessel and sources.

* `refine` carries lattice data to the mesh: every mesh cell takes its lattice cell's value.
  Applied to sources [field units/day] it conserves the mass secreted. Vessels are the
  exception (`vessel_weights`): a vessel's wall per volume must stay that of its lattice cell.
* `coarsen` carries mesh fields back to the lattice: the mean over each r x r block, the
  concentration a cell filling its lattice cell sees.

(Coarser meshes than the lattice were measured and rejected, docs/design.md: at 20 um the mean RANKL, OPG and
TGF-beta levels in the marrow were 3-5% off and local peaks next to cells 17-50%, because the
fields vary sharply at bone surfaces, where the cells are.)
"""

import numpy as np


def mesh_shape(shape: tuple[int, int], r: int) -> tuple[int, int]:
    """Shape of the field mesh r times finer than a lattice of `shape`."""
    return shape[0] * r, shape[1] * r


def refine(lattice: np.ndarray, r: int, out: np.ndarray | None = None) -> np.ndarray:
    """out (n, rows r, cols r) = lattice (n, rows, cols), each value copied to its r x r block
    (a new array of the lattice's dtype if out is None)."""
    n, rows, cols = lattice.shape
    if out is None:
        out = np.empty((n, *mesh_shape((rows, cols), r)), dtype=lattice.dtype)
    out.reshape(n, rows, r, cols, r)[:] = lattice[:, :, None, :, None]
    return out


def vessel_weights(vessel: np.ndarray, r: int) -> np.ndarray:
    """The vessel map (rows, cols) bool as FieldSolver.step takes it on the mesh: the map
    itself for r = 1, else weight 1 / r in each mesh cell of a vessel (its r x r cells then
    carry the wall of the one lattice cell: 4 dx over an area dx^2, as before)."""
    return vessel if r == 1 else refine(vessel[None] / r, r)[0]


def coarsen(fine: np.ndarray, r: int, out: np.ndarray) -> np.ndarray:
    """out (n, rows, cols) = mean of fine (n, rows r, cols r) over each r x r block."""
    n, rows, cols = out.shape
    out[:] = fine.reshape(n, rows, r, cols, r).mean(axis=(2, 4))
    return out
