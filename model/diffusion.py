"""Numba kernels of the field engine: implicit diffusion-decay-exchange and local reactions.

Every field f obeys, on a uniform grid of square cells of side h [um] with zero-flux outer walls,

    dc/dt = div(D_f(x) grad c) - (k_f + u_f(x) + v_f(x)) c + s_f(x) + v_f(x) * serum_f

c [field units], D_f [um^2/day], k_f decay [1/day], u_f first-order uptake by cells [1/day],
s_f secretion [field units/day], v_f vessel exchange rate [1/day] (non-zero only in vessel cells).

Discretization (finite volumes, cell-centred). The flux through the face between two cells is
D_face (c_b - c_a) / h^2 with D_face the harmonic mean of the two cells' D: the exact series
conductance of two half-cells, so a flux never jumps across the bone-matrix interface and the
operator stays symmetric (mass conserving). Walls have no face (zero flux).

Two time steppers share this discretization.

1. Unsplit backward Euler (`implicit_step`, the default of FieldSolver):

       (I + dt K - dt A) c^{n+1} = c^n + dt (s + v serum),   K = k + u + v,

   solved by conjugate gradients preconditioned with an aggregation-multigrid V-cycle (the
   system is a symmetric M-matrix). It is what day-long steps need: every field is then far
   past the explicit limit (dt D / h^2 ~ 1e4-3e5 at 10 um) and settles into its quasi-steady
   profile (docs/biology.md: minutes to hours), which backward Euler reproduces without splitting
   error. Measured against a fine explicit reference (tests/test_fields.py): RANKL secreted
   from point sources over one day is within 7% (one step) and 0.4% (four steps) of it.

2. Backward-Euler LOD splitting (`lod_step`, BioFVM's scheme, Ghaffarizadeh 2016), rows then
   columns:

       sweep 1 (along rows, x):    (I - dt A_x) c* = c^n
       sweep 2 (along columns, y): (I - dt A_y + dt K) c^{n+1} = c* + dt (s + v serum)

   All the zeroth-order terms sit in ONE sweep, so a uniform field decays by exactly
   1/(1 + k dt) per step (splitting them over both sweeps would give 1/(1 + k dt/2)^2). Each
   sweep is a set of tridiagonal, strictly diagonally dominant M-matrix systems solved by the
   Thomas algorithm: unconditionally stable, positivity preserving, conservative (each sweep
   then rescales every line to its exact total, removing the O(eps dt D / h^2) rounding of the
   solve). First order in dt, second order in h. Its splitting error, however, is O(1) once
   dt D / h^2 >> 1 around localized sources and sinks: a secreting cell's output spreads along
   the column sweep within the step it is released, and the quasi-steady profile is lost
   (at dt = 1/4 day, RANKL from point sources is off by >100% of its peak, see the tests;
   sub-stepping down to dt D / h^2 ~ 1 cures it, at ~1e4 steps per day). Use it only for
   steps of that size; it is kept for them, for the benchmark, and as a reference scheme.

Layout and speed (LOD): all fields are advanced in one parallel region (numba prange over
fields, a field's two sweeps back to back while it is in cache). Sweep 1 copies tiles of TILE
rows transposed into a contiguous buffer, so its Thomas recurrence runs along the row while
the tile's rows fill the SIMD lanes; it is pure diffusion, so its pivots are precomputed
(`x_pivots`) and refreshed only when the bone-matrix map (or dt) changes. Sweep 2 runs down the
columns in place with whole rows as the SIMD direction and carries the per-step terms, so it
computes its pivots (one division per cell); its forward elimination runs on each tile's rows
right after sweep 1 wrote them. Face coefficients are stored as one int8 face-type map per
direction (0: two free cells, 1: free|matrix, 2: matrix|matrix, 3: wall) plus a 4-entry weight
table per field. All loops run on 1-D contiguous rows so that LLVM vectorizes them.

Layout and speed (implicit): fields are solved in parallel, one field per worker at a time
(`balanced_schedule`). A 256^2 field is larger than a core's L2 cache, so a pass over it is
paid in memory traffic (~2 ns per cell); the V-cycle's smoothers and the conjugate-gradient
direction update are therefore fused into single passes over the rows (`_smooth_down`,
`_smooth_up`, `_direction_apply_dot`), keeping the rows they reuse in small rings. The fusion
does the same floating-point operations in the same order as separate passes (bit-identical
results) in fewer passes over memory (docs/design.md, decision 1, gives the measured gain).
"""

import numba
import numpy as np
from numba import njit, prange

SECONDS_PER_DAY = 86400.0
TILE = 64          # rows per sweep-1 tile (the SIMD direction of its Thomas recurrence)
WALL = 3           # face type of the zero-flux outer boundary
# Molar conversion of testosterone (ng/dL) into estradiol (pmol/L), 1:1 stoichiometry of
# aromatization: 1 ng/dL = 10 ng/L / 288.42 g/mol = 34.671 pmol/L (pure unit conversion).
T_NG_DL_TO_PMOL_L = 10.0 / 288.42 * 1000.0
# Denosumab (IgG2, 147 kDa): 1 ng/mL = 1e-6 g/L / 147000 g/mol = 6.80 pM (pure unit conversion).
DENOSUMAB_NG_ML_TO_PM = 1e-6 / 147000.0 * 1e12


def face_types(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-type maps of a bone-matrix mask (rows, cols) bool.

    Returns (fx, fy): fx (rows, cols + 1) int8, fx[i, j] the face between cells (i, j-1) and
    (i, j); fy (rows + 1, cols) int8, fy[i, j] the face between (i-1, j) and (i, j). Value = the
    number of matrix cells on the two sides (0, 1, 2), or WALL on the outer boundary.
    """
    m = matrix.astype(np.int8)
    rows, cols = m.shape
    fx = np.full((rows, cols + 1), WALL, dtype=np.int8)
    fy = np.full((rows + 1, cols), WALL, dtype=np.int8)
    fx[:, 1:cols] = m[:, :-1] + m[:, 1:]
    fy[1:rows, :] = m[:-1, :] + m[1:, :]
    return fx, fy


def face_weights(d_um2_day: np.ndarray, matrix_factor: np.ndarray, dt: float,
                 spacing_um: float) -> np.ndarray:
    """Per-field table (n_fields, 4) of dt * D_face / h^2 [-] for face types 0, 1, 2, WALL.

    D_face is the harmonic mean of the two cells' D: D for free|free, 2 D a / (1 + a) for
    free|matrix, D a for matrix|matrix (a = the field's matrix factor), 0 at a wall.
    """
    d = np.asarray(d_um2_day, dtype=np.float64)
    a = np.asarray(matrix_factor, dtype=np.float64)
    base = dt * d / spacing_um**2
    table = np.zeros((d.size, 4))
    table[:, 0] = base
    table[:, 1] = base * 2.0 * a / (1.0 + a)
    table[:, 2] = base * a
    return table


@njit(cache=True, inline="always", error_model="numpy")
def _weight(t, w0, w1, w2):
    # select chain instead of an indexed table load, so LLVM vectorizes it with blends
    return w0 if t == 0 else (w1 if t == 1 else (w2 if t == 2 else 0.0))


# Row kernels on 1-D contiguous views: LLVM vectorizes these (with runtime alias checks); the
# same loops written on 2-D indices inside the parallel loop stay scalar (measured 15x slower).

@njit(cache=True, error_model="numpy")
def _pivot_row(out, prev, t_lo, t_hi, w0, w1, w2):
    for k in range(out.shape[0]):
        wl = _weight(t_lo[k], w0, w1, w2)
        wr = _weight(t_hi[k], w0, w1, w2)
        out[k] = 1.0 / (1.0 + wl + wr - wl * wl * prev[k])


@njit(cache=True, error_model="numpy")
def _forward_row(x, prev, piv, t, w0, w1, w2):
    for k in range(x.shape[0]):
        x[k] = (x[k] + _weight(t[k], w0, w1, w2) * prev[k]) * piv[k]


@njit(cache=True, error_model="numpy")
def _backward_row(x, nxt, piv, t, w0, w1, w2):
    for k in range(x.shape[0]):
        x[k] += _weight(t[k], w0, w1, w2) * piv[k] * nxt[k]


@njit(cache=True, error_model="numpy")
def _forward_row_reacting(x, prev, piv, piv_prev, src, upt, vessel, t_lo, t_hi, w0, w1, w2,
                          sink0, dt, vsink, vgain, rhs_sum):
    for k in range(x.shape[0]):
        wl = _weight(t_lo[k], w0, w1, w2)
        wr = _weight(t_hi[k], w0, w1, w2)
        v = vessel[k]
        sink = sink0 + dt * upt[k] + (vsink if v else 0.0)
        m = 1.0 / (1.0 + wl + wr + sink - wl * wl * piv_prev[k])
        piv[k] = m
        rhs = x[k] + dt * src[k] + (vgain if v else 0.0)
        rhs_sum[k] += rhs
        x[k] = (rhs + wl * prev[k]) * m


@njit(cache=True, error_model="numpy")
def _backward_row_reacting(x, nxt, piv, t, w0, w1, w2, upt, vessel, sink0, dt, vsink,
                           mass_sum):
    # back substitution, accumulating (1 + dt K) x: the column totals sweep 2 must reproduce
    for k in range(x.shape[0]):
        v = x[k] + _weight(t[k], w0, w1, w2) * piv[k] * nxt[k]
        x[k] = v
        mass_sum[k] += (1.0 + sink0 + dt * upt[k] + (vsink if vessel[k] else 0.0)) * v


@njit(cache=True, error_model="numpy")
def _add_row(acc, x):
    for k in range(acc.shape[0]):
        acc[k] += x[k]


@njit(cache=True, error_model="numpy")
def _scale_row(x, f):
    for k in range(x.shape[0]):
        x[k] *= f[k]


@njit(cache=True, error_model="numpy")
def _conserve_tile(tile, before):
    """Rescale each lane (row) of a solved sweep-1 tile to the total it had before the solve.

    Pure diffusion conserves each row's total exactly; the Thomas solve does so only up to
    rounding of order eps dt D / h^2 (~1e-12 at dt D / h^2 ~ 1e4). A proportional rescale by
    1 + O(1e-12) restores the total to summation rounding and keeps zeros and signs.
    """
    after = np.zeros(tile.shape[1])
    for j in range(tile.shape[0]):
        _add_row(after, tile[j])
    for l in range(after.shape[0]):
        after[l] = before[l] / after[l] if after[l] != 0.0 else 1.0
    for j in range(tile.shape[0]):
        _scale_row(tile[j], after)


@njit(cache=True, error_model="numpy")
def _gather_tile(tile, field, r0, lanes):
    # tile[j, l] = field[r0 + l, j], in blocks of 8 columns so that the lines read and written
    # stay in L1; lanes past the last row are zero (their faces are walls)
    cols = field.shape[1]
    for j0 in range(0, cols, 8):
        j1 = min(j0 + 8, cols)
        for l in range(lanes):
            row = field[r0 + l]
            for j in range(j0, j1):
                tile[j, l] = row[j]
        for l in range(lanes, TILE):
            for j in range(j0, j1):
                tile[j, l] = 0.0


@njit(cache=True, error_model="numpy")
def _scatter_tile(tile, field, r0, lanes):
    cols = field.shape[1]
    for j0 in range(0, cols, 8):
        j1 = min(j0 + 8, cols)
        for l in range(lanes):
            row = field[r0 + l]
            for j in range(j0, j1):
                row[j] = tile[j, l]


def x_face_tiles(fx: np.ndarray) -> np.ndarray:
    """The x face types (rows, cols + 1) rearranged tile-major: (n_tiles, cols + 1, TILE) int8.

    out[t, j, l] is the face left of cell (t TILE + l, j); rows past the grid are walls.
    """
    rows, faces = fx.shape
    n_tiles = -(-rows // TILE)
    padded = np.full((n_tiles * TILE, faces), WALL, dtype=np.int8)
    padded[:rows] = fx
    return np.ascontiguousarray(padded.reshape(n_tiles, TILE, faces).transpose(0, 2, 1))


@njit(parallel=True, cache=True, error_model="numpy")
def x_pivots(fx_tiles, wx, out):
    """Reciprocal Thomas pivots of sweep 1 (rows, pure diffusion), in place.

    fx_tiles (n_tiles, cols + 1, TILE) int8 from `x_face_tiles`; wx (n_fields, 4) weights; out
    (n_fields, n_tiles, cols, TILE) [-], tile-major like the tiles that use them:
    p_j = 1 / (b_j - w_j^2 p_{j-1}), b_j = 1 + w_j + w_{j+1}, w_j the face left of cell j.
    Depends only on the matrix map, D and dt.
    """
    n_fields, n_tiles, cols, _ = out.shape
    zero = np.zeros(TILE)
    for k in prange(n_fields * n_tiles):
        f = k // n_tiles
        t = k % n_tiles
        w0, w1, w2 = wx[f, 0], wx[f, 1], wx[f, 2]
        p = out[f, t]
        ft = fx_tiles[t]
        _pivot_row(p[0], zero, ft[0], ft[1], w0, w1, w2)
        for j in range(1, cols):
            _pivot_row(p[j], p[j - 1], ft[j], ft[j + 1], w0, w1, w2)


def lod_work(shape: tuple[int, int]) -> np.ndarray:
    """Sweep-2 pivot buffers of `lod_step`, one per worker thread, reused between steps."""
    return np.empty((numba.config.NUMBA_NUM_THREADS, shape[0], shape[1]))


@njit(parallel=True, cache=True, error_model="numpy")
def lod_step(conc, source, uptake, vessel, vessel_dt, serum, decay_dt, dt,
             fx_tiles, wx, piv_x, fy, wy, work):
    """Advance every field one backward-Euler LOD step of dt [day], in place.

    conc (n_fields, rows, cols) [field units]; source (same shape) [units/day]; uptake (same
    shape) [1/day]; vessel (rows, cols) bool; vessel_dt (n_fields,) = dt x exchange rate [-];
    serum (n_fields,) blood level [units] (0 where the blood is a pure sink); decay_dt
    (n_fields,) = dt x decay [-]; fx_tiles (`x_face_tiles`) and fy (rows + 1, cols) face
    types, wx, wy (n_fields, 4) weight tables (`face_weights`); piv_x the sweep-1 pivots
    from `x_pivots`; work the buffers from `lod_work`.

    Sweep 1 (along rows) is pure diffusion: tiles of TILE rows are copied transposed into a
    cache-resident buffer, solved with the precomputed pivots (vectorized across the tile's
    rows), and copied back. Sweep 2 (along columns) carries decay, uptake, vessel exchange and
    sources; its pivots change every step (uptake does), so it computes them. Its forward
    elimination runs down each tile's rows as soon as sweep 1 has written them back (it needs
    only the rows above), while they are still in cache; its back substitution follows.
    """
    n_fields, rows, cols = conc.shape
    n_tiles = fx_tiles.shape[0]
    for f in prange(n_fields):
        c = conc[f]
        s = source[f]
        u = uptake[f]
        w0, w1, w2 = wx[f, 0], wx[f, 1], wx[f, 2]
        v0, v1, v2 = wy[f, 0], wy[f, 1], wy[f, 2]
        sink = decay_dt[f]
        vsink = vessel_dt[f]
        vgain = vessel_dt[f] * serum[f]
        tile = np.empty((cols, TILE))
        before = np.empty(TILE)
        piv = work[numba.get_thread_id()]
        zero = np.zeros(cols)
        rhs_sum = np.zeros(cols)
        mass_sum = np.zeros(cols)
        for t in range(n_tiles):
            r0 = t * TILE
            lanes = min(TILE, rows - r0)
            # sweep 1 on the tile's rows: pure diffusion, precomputed pivots
            px = piv_x[f, t]
            ft = fx_tiles[t]
            _gather_tile(tile, c, r0, lanes)
            before[:] = 0.0
            for j in range(cols):
                _add_row(before, tile[j])
            _forward_row(tile[0], tile[0], px[0], ft[0], 0.0, 0.0, 0.0)
            for j in range(1, cols):
                _forward_row(tile[j], tile[j - 1], px[j], ft[j], w0, w1, w2)
            for j in range(cols - 2, -1, -1):
                _backward_row(tile[j], tile[j + 1], px[j], ft[j + 1], w0, w1, w2)
            _conserve_tile(tile, before)
            _scatter_tile(tile, c, r0, lanes)
            # sweep 2 forward elimination down these rows while they are in cache (it needs
            # only rows above, which sweep 1 has finished)
            for i in range(r0, r0 + lanes):
                if i == 0:
                    _forward_row_reacting(c[0], zero, piv[0], zero, s[0], u[0], vessel[0],
                                          fy[0], fy[1], v0, v1, v2, sink, dt, vsink, vgain,
                                          rhs_sum)
                else:
                    _forward_row_reacting(c[i], c[i - 1], piv[i], piv[i - 1], s[i], u[i],
                                          vessel[i], fy[i], fy[i + 1], v0, v1, v2, sink, dt,
                                          vsink, vgain, rhs_sum)
        # sweep 2 back substitution, bottom to top
        last = rows - 1
        _backward_row_reacting(c[last], c[last], piv[last], fy[rows], 0.0, 0.0, 0.0, u[last],
                               vessel[last], sink, dt, vsink, mass_sum)
        for i in range(rows - 2, -1, -1):
            _backward_row_reacting(c[i], c[i + 1], piv[i], fy[i + 1], v0, v1, v2, u[i],
                                   vessel[i], sink, dt, vsink, mass_sum)
        # conservative correction of rounding, as in sweep 1: each column's sum of
        # (1 + dt K) c must equal the sum of its right-hand side exactly
        for j in range(cols):
            mass_sum[j] = rhs_sum[j] / mass_sum[j] if mass_sum[j] != 0.0 else 1.0
        for i in range(rows):
            _scale_row(c[i], mass_sum)


@njit(parallel=True, cache=True, error_model="numpy")
def free_ligand(total, decoy1, k1, decoy2, k2, out):
    """Free ligand at binding equilibrium with two 1:1 decoys, out (rows, cols) in place.

    total, decoy1, decoy2 (rows, cols) total concentrations [pM]; k1, k2 association constants
    [1/pM]. Solves L = L_tot / (1 + k1 O/(1 + k1 L) + k2 P/(1 + k2 L)) (mass action, each decoy
    free = total / (1 + k L)). With one decoy (P = 0) that is the quadratic
    k1 L^2 + (1 + k1 (O - L_tot)) L - L_tot = 0, solved in closed form (its positive root, in
    the form without cancellation); with two, by Newton's method from the lower bound
    L_tot/(1 + k1 O + k2 P): the function is concave and increasing, so the iterates rise
    monotonically to the root.
    """
    rows, cols = total.shape
    for i in prange(rows):
        for j in range(cols):
            lt = total[i, j]
            o = decoy1[i, j]
            p = decoy2[i, j]
            if p == 0.0:
                lin = 1.0 + k1 * (o - lt)    # the quadratic's linear coefficient
                root = np.sqrt(lin * lin + 4.0 * k1 * lt)
                x = 2.0 * lt / (lin + root) if lin >= 0.0 else (root - lin) / (2.0 * k1)
            else:
                x = lt / (1.0 + k1 * o + k2 * p)
                for _ in range(60):
                    a = 1.0 + k1 * x
                    b = 1.0 + k2 * x
                    g = x * (1.0 + k1 * o / a + k2 * p / b) - lt
                    dg = 1.0 + k1 * o / (a * a) + k2 * p / (b * b)
                    step = g / dg
                    x -= step
                    if -step <= 1e-15 * x:
                        break
            out[i, j] = min(max(x, 0.0), lt)


def explicit_substeps(uptake, vessel, vessel_rate, decay, d_um2_day, matrix_factor, matrix,
                      spacing_um, duration, safety=0.9):
    """Forward-Euler sub-steps per field that `explicit_reference` takes over `duration` [day]:
    stable and positive for a step <= 1 / max diagonal rate (Gershgorin), times `safety`."""
    fx, fy = face_types(matrix)
    weights = face_weights(d_um2_day, matrix_factor, 1.0, spacing_um)   # rates [1/day]
    steps = np.zeros(len(decay), dtype=np.int64)
    for f in range(len(decay)):
        wx = weights[f][fx]
        wy = weights[f][fy]
        sink = decay[f] + uptake[f] + np.where(vessel, vessel_rate[f], 0.0)
        rate_max = (wx[:, :-1] + wx[:, 1:] + wy[:-1] + wy[1:] + sink).max()
        steps[f] = max(1, int(np.ceil(duration * rate_max / safety)))
    return steps


def explicit_reference(conc, source, uptake, vessel, vessel_rate, serum, decay, d_um2_day,
                       matrix_factor, matrix, spacing_um, duration, safety=0.9):
    """Forward-Euler reference of the same semi-discrete equations, in numpy (verification only).

    Advances `conc` in place over `duration` [day] with `explicit_substeps` steps per field;
    returns them. Arguments as in `lod_step`, but with rates (vessel_rate, decay [1/day])
    instead of rates x dt.
    """
    fx, fy = face_types(matrix)
    weights = face_weights(d_um2_day, matrix_factor, 1.0, spacing_um)   # rates [1/day]
    steps = explicit_substeps(uptake, vessel, vessel_rate, decay, d_um2_day, matrix_factor,
                              matrix, spacing_um, duration, safety)
    for f in range(conc.shape[0]):
        wx = weights[f][fx]
        wy = weights[f][fy]
        sink = decay[f] + uptake[f] + np.where(vessel, vessel_rate[f], 0.0)
        gain = source[f] + np.where(vessel, vessel_rate[f] * serum[f], 0.0)
        h = duration / steps[f]
        c = conc[f]
        for _ in range(steps[f]):
            fxl = wx[:, 1:-1] * (c[:, 1:] - c[:, :-1])
            fyl = wy[1:-1] * (c[1:] - c[:-1])
            dc = gain - sink * c
            dc[:, :-1] += fxl
            dc[:, 1:] -= fxl
            dc[:-1] += fyl
            dc[1:] -= fyl
            c += h * dc
    return steps


# ---------------------------------------------------------------------------------------------
# Unsplit backward Euler: (I + dt K - dt A) c^{n+1} = c^n + dt (s + v serum), solved by
# conjugate gradients preconditioned with one multigrid V-cycle: 2 x 2 aggregation, coarse
# operators with the summed masses of the four fine cells and half the summed conductances of
# the fine faces a coarse face covers (the 2h rediscretization; the plain Galerkin sum is twice
# too stiff and would need an over-corrected update instead, measured 1.2-1.5x more
# iterations), damped-Jacobi smoothing (vectorizes; Gauss-Seidel on the coarsest level). The
# V-cycle is symmetric positive definite, as conjugate gradients need; it runs in single
# precision (PRECONDITIONER). The previous field is the initial guess: fields change little
# from one day to the next.
# ---------------------------------------------------------------------------------------------

COARSEST = 8       # stop coarsening when a side is at most this many cells
COARSE_SWEEPS = 20 # symmetric Gauss-Seidel sweeps that solve the coarsest level
# the V-cycle runs in single precision: it only preconditions the double-precision conjugate
# gradients, whose residual, iterates and stopping rule stay float64; float32 halves the memory
# the smoothers stream (field solves 1.29x faster at 256^2, where the levels outgrow the cache,
# with the same iteration counts: docs/design.md, decision 1)
PRECONDITIONER = np.float32
# damping of the Jacobi smoother (the optimum 4/5 for the 5-point stencil), in its precision
JACOBI = PRECONDITIONER(0.8)


def mg_levels(shape: tuple[int, int]) -> np.ndarray:
    """Level table (n_levels, 5) int64: rows, cols, and offsets of the cell, x-face and y-face
    arrays of each level inside the flat per-field buffers."""
    rows, cols = shape
    out = []
    cell = xface = yface = 0
    while True:
        out.append((rows, cols, cell, xface, yface))
        cell += rows * cols
        xface += rows * (cols + 1)
        yface += (rows + 1) * cols
        if rows <= COARSEST or cols <= COARSEST:
            break
        rows, cols = (rows + 1) // 2, (cols + 1) // 2
    out.append((0, 0, cell, xface, yface))   # totals
    return np.array(out, dtype=np.int64)


@njit(cache=True, error_model="numpy")
def _coarsen_faces(gx, gy, gxc, gyc):
    # coarse face = half the sum of the two fine faces it covers: the conductance of the 2h
    # rediscretization (Galerkin with piecewise-constant P would give the full sum, twice too
    # stiff against the mass term, the classic weakness of plain aggregation)
    rows, cols = gx.shape[0], gy.shape[1]
    rc, cc = gxc.shape[0], gyc.shape[1]
    gxc[:] = 0.0
    gyc[:] = 0.0
    for i in range(rows):
        for jc in range(cc + 1):
            j = 2 * jc
            if j <= cols:
                gxc[i // 2, jc] += 0.5 * gx[i, j]
    for ic in range(rc + 1):
        i = 2 * ic
        if i <= rows:
            for j in range(cols):
                gyc[ic, j // 2] += 0.5 * gy[i, j]


@njit(parallel=True, cache=True, error_model="numpy")
def mg_conductances(fx, fy, weights, levels, gx_all, gy_all):
    """Face conductances dt D_face / h^2 [-] of every level, per field, in place.

    fx, fy face types of the fine grid; weights (n_fields, 4); levels from `mg_levels`;
    gx_all, gy_all (n_fields, total faces) flat buffers.
    """
    n_fields = weights.shape[0]
    n_lev = levels.shape[0] - 1
    for f in prange(n_fields):
        rows, cols = levels[0, 0], levels[0, 1]
        gx = gx_all[f, levels[0, 3]:levels[0, 3] + rows * (cols + 1)].reshape(rows, cols + 1)
        gy = gy_all[f, levels[0, 4]:levels[0, 4] + (rows + 1) * cols].reshape(rows + 1, cols)
        w0, w1, w2 = weights[f, 0], weights[f, 1], weights[f, 2]
        for i in range(rows):
            _weight_row(gx[i], fx[i], w0, w1, w2)
        for i in range(rows + 1):
            _weight_row(gy[i], fy[i], w0, w1, w2)
        for lv in range(1, n_lev):
            r, c = levels[lv, 0], levels[lv, 1]
            gxc = gx_all[f, levels[lv, 3]:levels[lv, 3] + r * (c + 1)].reshape(r, c + 1)
            gyc = gy_all[f, levels[lv, 4]:levels[lv, 4] + (r + 1) * c].reshape(r + 1, c)
            _coarsen_faces(gx, gy, gxc, gyc)
            gx, gy = gxc, gyc


@njit(cache=True, error_model="numpy")
def _weight_row(out, t, w0, w1, w2):
    for k in range(out.shape[0]):
        out[k] = _weight(t[k], w0, w1, w2)


@njit(cache=True, inline="always", error_model="numpy")
def _bx(x, xu, xd, m, gx, gu, gd, k, n):
    # (B x)[k] on one row; xu, xd the rows above and below (the row itself at a wall, where gu
    # or gd is zero); the branches are on k only, so interior loops stay vectorizable
    v = x[k]
    acc = m[k] * v + gu[k] * (v - xu[k]) + gd[k] * (v - xd[k])
    if k > 0:
        acc += gx[k] * (v - x[k - 1])
    if k < n - 1:
        acc += gx[k + 1] * (v - x[k + 1])
    return acc


@njit(cache=True, inline="always", error_model="numpy")
def _apply_row(out, x, xu, xd, m, gx, gu, gd):
    n = x.shape[0]
    out[0] = _bx(x, xu, xd, m, gx, gu, gd, 0, n)
    for k in range(1, n - 1):
        v = x[k]
        out[k] = (m[k] * v + gx[k] * (v - x[k - 1]) + gx[k + 1] * (v - x[k + 1])
                  + gu[k] * (v - xu[k]) + gd[k] * (v - xd[k]))
    if n > 1:
        out[n - 1] = _bx(x, xu, xd, m, gx, gu, gd, n - 1, n)


@njit(cache=True, inline="always", error_model="numpy")
def _residual_row(r, x, xu, xd, b, m, gx, gu, gd):
    # r = b - B x on one row
    n = x.shape[0]
    r[0] = b[0] - _bx(x, xu, xd, m, gx, gu, gd, 0, n)
    for k in range(1, n - 1):
        v = x[k]
        r[k] = b[k] - (m[k] * v + gx[k] * (v - x[k - 1]) + gx[k + 1] * (v - x[k + 1])
                       + gu[k] * (v - xu[k]) + gd[k] * (v - xd[k]))
    if n > 1:
        r[n - 1] = b[n - 1] - _bx(x, xu, xd, m, gx, gu, gd, n - 1, n)


@njit(cache=True, inline="always", error_model="numpy")
def _jacobi_row(out, x, xu, xd, b, m, gx, gu, gd, d):
    # out = x + JACOBI d (b - B x) on one row (out must not alias x, xu, xd)
    n = x.shape[0]
    out[0] = x[0] + JACOBI * d[0] * (b[0] - _bx(x, xu, xd, m, gx, gu, gd, 0, n))
    for k in range(1, n - 1):
        v = x[k]
        out[k] = v + JACOBI * d[k] * (b[k] - (m[k] * v + gx[k] * (v - x[k - 1])
                                              + gx[k + 1] * (v - x[k + 1])
                                              + gu[k] * (v - xu[k]) + gd[k] * (v - xd[k])))
    if n > 1:
        out[n - 1] = x[n - 1] + JACOBI * d[n - 1] * (
            b[n - 1] - _bx(x, xu, xd, m, gx, gu, gd, n - 1, n))


@njit(cache=True, error_model="numpy")
def _direction_apply_dot(p, z, beta, mass, gx, gy, q):
    """The conjugate-gradient direction p = z + beta p (beta = 0: p = z, whatever p held), then
    q = B p, in one pass over the rows (q one row behind p); returns p . q, each row's dot
    taken while the row is in cache."""
    rows = p.shape[0]
    s = 0.0
    for i in range(rows + 1):
        if i < rows:
            if beta == 0.0:
                p[i, :] = z[i]
            else:
                _axpby_row(p[i], z[i], beta)
        k = i - 1
        if k >= 0:
            _apply_row(q[k], p[k], p[k - 1] if k > 0 else p[k],
                       p[k + 1] if k < rows - 1 else p[k], mass[k], gx[k], gy[k], gy[k + 1])
            s += _dot_row(p[k], q[k])
    return s


@njit(cache=True, error_model="numpy")
def _residual(x, b, mass, gx, gy, r):
    # r = b - B x
    rows = x.shape[0]
    for i in range(rows):
        _residual_row(r[i], x[i], x[i - 1] if i > 0 else x[i],
                      x[i + 1] if i < rows - 1 else x[i], b[i], mass[i], gx[i], gy[i],
                      gy[i + 1])


@njit(cache=True, inline="always", error_model="numpy")
def _axpby_row(y, x, a):
    # y = x + a y
    for k in range(y.shape[0]):
        y[k] = x[k] + a * y[k]


@njit(cache=True, inline="always", error_model="numpy")
def _scaled_row(out, b, d):
    # out = JACOBI d b: a damped Jacobi sweep from zero, on one row
    for k in range(out.shape[0]):
        out[k] = JACOBI * d[k] * b[k]


@njit(cache=True, inline="always", error_model="numpy")
def _prolonged_row(out, x, coarse):
    # out = x + the coarse row under it (piecewise-constant prolongation), on one row
    for k in range(out.shape[0]):
        out[k] = x[k] + coarse[k // 2]


@njit(cache=True, inline="always", error_model="numpy")
def _restrict_row(coarse, r):
    # coarse += r summed over pairs of cells (one fine row of the 2x2 restriction)
    half = r.shape[0] // 2
    for jc in range(half):
        coarse[jc] = coarse[jc] + r[2 * jc] + r[2 * jc + 1]
    if r.shape[0] % 2:
        coarse[half] += r[2 * half]


@njit(cache=True, error_model="numpy")
def _smooth_down(x, b, mass, gx, gy, inv_diag, rows_buf, coarse):
    """Pre-smoothing of a V-cycle level in one pass over the rows: x = two damped Jacobi
    sweeps from zero on B x = b, and coarse = the residual b - B x summed over 2 x 2 blocks.
    Sweep 1 is pointwise (x1 = JACOBI d b), so its rows are made one row ahead in a ring of
    three (rows_buf[0:3]); sweep 2 writes x; the residual of a row (into rows_buf[3]) follows
    one row behind. The arithmetic is that of separate sweeps, to the bit."""
    rows = x.shape[0]
    coarse[:] = 0.0
    ring = rows_buf[0:3]
    res = rows_buf[3]
    _scaled_row(ring[0], b[0], inv_diag[0])
    for i in range(rows + 1):
        if i < rows:
            if i + 1 < rows:
                _scaled_row(ring[(i + 1) % 3], b[i + 1], inv_diag[i + 1])
            here = ring[i % 3]
            _jacobi_row(x[i], here, ring[(i - 1) % 3] if i > 0 else here,
                        ring[(i + 1) % 3] if i < rows - 1 else here, b[i], mass[i], gx[i],
                        gy[i], gy[i + 1], inv_diag[i])
        k = i - 1
        if k >= 0:
            _residual_row(res, x[k], x[k - 1] if k > 0 else x[k],
                          x[k + 1] if k < rows - 1 else x[k], b[k], mass[k], gx[k], gy[k],
                          gy[k + 1])
            _restrict_row(coarse[k // 2], res)


@njit(cache=True, error_model="numpy")
def _smooth_up(x, coarse, b, mass, gx, gy, inv_diag, rows_buf):
    """Coarse correction and post-smoothing of a V-cycle level in one pass over the rows:
    x += the coarse solution under each cell, then two damped Jacobi sweeps on B x = b. The
    corrected rows are made one row ahead (ring rows_buf[0:3]), sweep 1 follows (ring
    rows_buf[3:6]) and sweep 2 writes x one row behind it, after x's row was last read.
    The arithmetic is that of separate passes, to the bit."""
    rows = x.shape[0]
    xp = rows_buf[0:3]
    y = rows_buf[3:6]
    _prolonged_row(xp[0], x[0], coarse[0])
    for i in range(rows + 1):
        if i < rows:
            if i + 1 < rows:
                _prolonged_row(xp[(i + 1) % 3], x[i + 1], coarse[(i + 1) // 2])
            here = xp[i % 3]
            _jacobi_row(y[i % 3], here, xp[(i - 1) % 3] if i > 0 else here,
                        xp[(i + 1) % 3] if i < rows - 1 else here, b[i], mass[i], gx[i],
                        gy[i], gy[i + 1], inv_diag[i])
        k = i - 1
        if k >= 0:
            here = y[k % 3]
            _jacobi_row(x[k], here, y[(k - 1) % 3] if k > 0 else here,
                        y[(k + 1) % 3] if k < rows - 1 else here, b[k], mass[k], gx[k],
                        gy[k], gy[k + 1], inv_diag[k])


@njit(cache=True, error_model="numpy")
def _relax_row(x, xu, xd, b, gx, gu, gd, d, start):
    # Gauss-Seidel update of the cells start, start + 2, ... of one row (one colour)
    n = x.shape[0]
    k0 = start
    if start == 0:
        acc = b[0] + gu[0] * xu[0] + gd[0] * xd[0]
        if n > 1:
            acc += gx[1] * x[1]
        x[0] = acc * d[0]
        k0 = 2
    for k in range(k0, n - 1, 2):
        x[k] = (b[k] + gx[k] * x[k - 1] + gx[k + 1] * x[k + 1] + gu[k] * xu[k]
                + gd[k] * xd[k]) * d[k]
    last = n - 1
    if last > 0 and (last - start) % 2 == 0:
        x[last] = (b[last] + gx[last] * x[last - 1] + gu[last] * xu[last]
                   + gd[last] * xd[last]) * d[last]


@njit(cache=True, error_model="numpy")
def _gauss_seidel(x, b, gx, gy, inv_diag, forward):
    # red-black Gauss-Seidel: red then black forward, black then red backward, so that a
    # forward sweep followed by a backward one is symmetric (as conjugate gradients need)
    rows = x.shape[0]
    for colour in range(2):
        c = colour if forward else 1 - colour
        for i in range(rows):
            _relax_row(x[i], x[i - 1] if i > 0 else x[i], x[i + 1] if i < rows - 1 else x[i],
                       b[i], gx[i], gy[i], gy[i + 1], inv_diag[i], (i + c) % 2)


@njit(cache=True, error_model="numpy")
def _restrict(fine, coarse):
    coarse[:] = 0.0
    rows, cols = fine.shape
    for i in range(rows):
        for j in range(cols):
            coarse[i // 2, j // 2] += fine[i, j]


@njit(cache=True, error_model="numpy")
def _level(buf, levels, lv):
    r, c, off = levels[lv, 0], levels[lv, 1], levels[lv, 2]
    return buf[off:off + r * c].reshape(r, c)


@njit(cache=True, error_model="numpy")
def _rings(rows_buf, levels, lv):
    # the smoothers' six row buffers, sized to level lv's rows
    c = levels[lv, 1]
    return rows_buf[:6 * c].reshape(6, c)


@njit(cache=True, error_model="numpy")
def _faces(gx_f, gy_f, levels, lv):
    r, c = levels[lv, 0], levels[lv, 1]
    gx = gx_f[levels[lv, 3]:levels[lv, 3] + r * (c + 1)].reshape(r, c + 1)
    gy = gy_f[levels[lv, 4]:levels[lv, 4] + (r + 1) * c].reshape(r + 1, c)
    return gx, gy


@njit(cache=True, error_model="numpy")
def _vcycle(rhs, out, mass, inv_diag, xs, bs, rows_buf, gx_f, gy_f, levels):
    """out = M^{-1} rhs: one symmetric V-cycle (two damped Jacobi sweeps before and after
    each coarse correction, `_smooth_down` and `_smooth_up`). Level 0 works directly on rhs
    and out; the coarser levels' unknowns and right-hand sides live in xs and bs; rows_buf
    (6 x cols of level 0) holds the smoothers' row rings."""
    n_lev = levels.shape[0] - 1
    for lv in range(n_lev):
        x = out if lv == 0 else _level(xs, levels, lv)
        b = rhs if lv == 0 else _level(bs, levels, lv)
        gx, gy = _faces(gx_f, gy_f, levels, lv)
        d = _level(inv_diag, levels, lv)
        if lv == n_lev - 1:
            x[:] = 0.0
            for _ in range(COARSE_SWEEPS):
                _gauss_seidel(x, b, gx, gy, d, True)
                _gauss_seidel(x, b, gx, gy, d, False)
        else:
            _smooth_down(x, b, _level(mass, levels, lv), gx, gy, d, _rings(rows_buf, levels, lv),
                         _level(bs, levels, lv + 1))
    for lv in range(n_lev - 2, -1, -1):
        x = out if lv == 0 else _level(xs, levels, lv)
        b = rhs if lv == 0 else _level(bs, levels, lv)
        gx, gy = _faces(gx_f, gy_f, levels, lv)
        _smooth_up(x, _level(xs, levels, lv + 1), b, _level(mass, levels, lv), gx, gy,
                   _level(inv_diag, levels, lv), _rings(rows_buf, levels, lv))


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _dot_row(a, b):
    # reassociation lets LLVM vectorize the sum (deterministic for a given build)
    s = 0.0
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s


@njit(cache=True, error_model="numpy")
def _dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += _dot_row(a[i], b[i])
    return s


@njit(cache=True, error_model="numpy")
def _cg_update_row(c, r, p, q, alpha):
    # c += alpha p, r -= alpha q; returns (max |c|, sum r^2) of the row
    cmax = 0.0
    rr = 0.0
    for k in range(c.shape[0]):
        c[k] += alpha * p[k]
        r[k] -= alpha * q[k]
        cmax = max(cmax, abs(c[k]))
        rr += r[k] * r[k]
    return cmax, rr


@njit(cache=True, error_model="numpy")
def _dot_max(r, z):
    # (r . z, max |z|)
    s = 0.0
    zmax = 0.0
    for i in range(r.shape[0]):
        s += _dot_row(r[i], z[i])
        for k in range(z.shape[1]):
            zmax = max(zmax, abs(z[i, k]))
    return s, zmax


def implicit_work(shape: tuple[int, int], levels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Work buffers of `implicit_step`, one set per worker thread (reused from step to step:
    allocating them afresh costs ~20% of a step in page faults): the multigrid levels' mass,
    inverse diagonal, unknowns and right-hand sides (float32, PRECONDITIONER); five float64
    grids of conjugate gradients (right-hand side, residual, direction, its image, the mass);
    the float32 residual and preconditioned residual; six float32 rows for the smoothers'
    rings."""
    threads = numba.config.NUMBA_NUM_THREADS
    return (np.empty((threads, 4, int(levels[-1, 2])), dtype=PRECONDITIONER),
            np.empty((threads, 5, shape[0], shape[1])),
            np.empty((threads, 2, shape[0], shape[1]), dtype=PRECONDITIONER),
            np.empty((threads, 6 * shape[1]), dtype=PRECONDITIONER))


def balanced_schedule(costs: np.ndarray, n_threads: int) -> np.ndarray:
    """Fields per worker thread (n_threads, k) int64, padded with -1, so that the threads'
    summed costs are as even as longest-processing-time-first makes them (Graham 1969).

    costs (n_fields,): the expected work of each field (its last CG iteration count + 1). The
    plain parallel loop over fields hands each thread a contiguous block, and the slow
    fields (OPG, TGF-beta, RANKL) sit together at the start of the registry.
    """
    bins = [[] for _ in range(max(1, n_threads))]
    loads = np.zeros(len(bins))
    for f in np.argsort(-np.asarray(costs, dtype=float), kind="stable"):
        t = int(np.argmin(loads))
        bins[t].append(f)
        loads[t] += costs[f]
    out = np.full((len(bins), max(len(b) for b in bins)), -1, dtype=np.int64)
    for t, fields in enumerate(bins):
        out[t, :len(fields)] = fields
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def implicit_step(conc, source, uptake, vessel, vessel_dt, serum, decay_dt, dt,
                  gx_all, gy_all, gx32_all, gy32_all, levels, tol, max_iter, iterations,
                  work_levels, work_grid, work_grid32, work_rows, schedule):
    """One unsplit backward-Euler step of dt [day] for every field, in place.

    Arguments as in `lod_step`, except that vessel may also be a float64 weight per cell (the
    cell's vessel wall relative to a vessel filling the cell; bool True = 1), plus gx_all,
    gy_all and levels from `mg_conductances` and `mg_levels`, gx32_all and gy32_all the same
    conductances in PRECONDITIONER precision (the V-cycle's); conjugate gradients stop when
    ||b - B c||_2 <= tol ||b||_2 (this bounds the mass error) and max |z| <= tol max |c|, z the
    multigrid-preconditioned residual (this bounds the pointwise error: z approximates
    B^-1 (b - B c), the error of c, in smooth modes too, which the residual divided by the
    diagonal underestimates by ~1/(D dt / h^2) and vessel exchange hides in ||b||: a
    pointwise r / diag rule left steroid fields 1% off at tol 1e-3); max_iter their limit;
    iterations (n_fields,) int64 receives the count per field; work_levels, work_grid,
    work_grid32, work_rows the buffers from `implicit_work`; schedule (n_threads, k) int64 the
    fields each parallel worker solves in turn, -1 for none (`balanced_schedule`).
    Values below zero left by the finite tolerance (of order tol x max) are set to zero.
    Each field is solved in units of its own largest value, so the result scales exactly
    with the data (a field of 1e-200 is solved like one of 1).
    """
    for w in prange(schedule.shape[0]):
        tid = numba.get_thread_id()
        for k in range(schedule.shape[1]):
            f = schedule[w, k]
            if f >= 0:
                _implicit_field(conc, f, source, uptake, vessel, vessel_dt, serum, decay_dt,
                                dt, gx_all[f], gy_all[f], gx32_all[f], gy32_all[f], levels,
                                tol, max_iter, iterations, work_levels[tid], work_grid[tid],
                                work_grid32[tid], work_rows[tid])


@njit(cache=True, error_model="numpy")
def _implicit_field(conc, f, source, uptake, vessel, vessel_dt, serum, decay_dt, dt, gx_f,
                    gy_f, gx32_f, gy32_f, levels, tol, max_iter, iterations, work_levels,
                    work_grid, work_grid32, work_rows):
    # one field of `implicit_step`, with the work buffers of the thread that solves it
    _, rows, cols = conc.shape
    n_lev = levels.shape[0] - 1
    mass = work_levels[0]
    inv_diag = work_levels[1]
    xs = work_levels[2]
    bs = work_levels[3]
    c = conc[f]
    m0 = work_grid[4]
    b = work_grid[0]
    scale = 0.0
    cmax = 0.0
    for i in range(rows):
        for j in range(cols):
            v = vessel_dt[f] * vessel[i, j]
            m0[i, j] = 1.0 + decay_dt[f] + dt * uptake[f, i, j] + v
            b[i, j] = c[i, j] + dt * source[f, i, j] + v * serum[f]
            cmax = max(cmax, abs(c[i, j]))
            scale = max(scale, abs(b[i, j]), cmax)
    iterations[f] = 0
    if scale == 0.0:
        return    # nothing in the field and nothing entering it: it stays zero
    # solve for c / scale: the dot products of conjugate gradients square the values and
    # would underflow for fields below ~1e-150 (a cytokine long without a source)
    for i in range(rows):
        for j in range(cols):
            b[i, j] /= scale
            c[i, j] /= scale
    _level(mass, levels, 0)[:] = m0
    for lv in range(n_lev):
        if lv > 0:
            _restrict(_level(mass, levels, lv - 1), _level(mass, levels, lv))
        gx, gy = _faces(gx32_f, gy32_f, levels, lv)
        m = _level(mass, levels, lv)
        d = _level(inv_diag, levels, lv)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                d[i, j] = 1.0 / (m[i, j] + gx[i, j] + gx[i, j + 1] + gy[i, j] + gy[i + 1, j])
    gx, gy = _faces(gx_f, gy_f, levels, 0)
    r = work_grid[1]
    q = work_grid[2]
    p = work_grid[3]
    r32 = work_grid32[0]
    z = work_grid32[1]
    _residual(c, b, m0, gx, gy, r)
    bnorm = np.sqrt(_dot(b, b))
    rr = _dot(r, r)
    cmax /= scale    # max |c| of the scaled field (division is monotone: exact)
    r32[:] = r
    _vcycle(r32, z, mass, inv_diag, xs, bs, work_rows, gx32_f, gy32_f, levels)
    rz, zmax = _dot_max(r, z)
    it = 0
    if not (np.sqrt(rr) <= tol * bnorm and zmax <= tol * cmax):
        beta = 0.0    # the first direction is z itself
        while it < max_iter:
            it += 1
            alpha = rz / _direction_apply_dot(p, z, beta, m0, gx, gy, q)
            cmax = 0.0
            rr = 0.0
            for i in range(rows):
                cm, rs_ = _cg_update_row(c[i], r[i], p[i], q[i], alpha)
                cmax = max(cmax, cm)
                rr += rs_
            r32[:] = r
            _vcycle(r32, z, mass, inv_diag, xs, bs, work_rows, gx32_f, gy32_f, levels)
            rz_new, zmax = _dot_max(r, z)
            if np.sqrt(rr) <= tol * bnorm and zmax <= tol * cmax:
                break
            beta = rz_new / rz
            rz = rz_new
    # conservative correction: the exact solution has sum (mass x c) = sum b (the flux
    # terms cancel); the iterate misses it by O(tol). One factor 1 + O(tol) restores it,
    # after clipping the O(tol x max) undershoots below zero.
    total_b = 0.0
    total_mc = 0.0
    for i in range(rows):
        for j in range(cols):
            if c[i, j] < 0.0:
                c[i, j] = 0.0
            total_b += b[i, j]
            total_mc += m0[i, j] * c[i, j]
    if total_mc > 0.0:
        scale *= total_b / total_mc
    for i in range(rows):
        for j in range(cols):
            c[i, j] *= scale
    iterations[f] = it
