"""Numba kernels of the field engine: implicit diffusion-decay-exchange and local reactions.

Every field f obeys, on a uniform grid of square cells of side h [um] with zero-flux outer walls,

    dc/dt = div(D_f(x) grad c) - (k_f + u_f(x) + v_f(x)) c + s_f(x) + v_f(x) * serum_f

c [field units], D_f [um^2/day], k_f decay [1/day], u_f first-order uptake by cells [1/day],
s_f secretion [field units/day], v_f vessel exchange rate [1/day] (non-zero only in vessel cells).

Discretization (finite volumes, cell-centred). The flux through the face between two cells is
D_face (c_b - c_a) / h^2 with D_face the harmonic mean of the two cells' D: the exact series
conductance of two half-cells, so a flux never jumps across the bone-matrix interface and the
operator stays symmetric (mass conserving). Walls have no face (zero flux).

Time stepping: backward-Euler locally one-dimensional (LOD) splitting, BioFVM's scheme
(Ghaffarizadeh 2016), rows then columns:

    sweep 1 (along rows, x):    (I - dt A_x) c* = c^n
    sweep 2 (along columns, y): (I - dt A_y + dt K) c^{n+1} = c* + dt (s + v serum)

K = k + u + v. All the zeroth-order terms (decay, uptake, vessel exchange, source) sit in ONE
sweep, so a uniform field decays by exactly 1/(1 + k dt) per step, as backward Euler does
(splitting them over both sweeps would give 1/(1 + k dt/2)^2, a different factor). Each sweep
is a set of independent tridiagonal, strictly diagonally dominant M-matrix systems, solved by
the Thomas algorithm: unconditionally stable, positivity preserving (the inverse of an M-matrix
is non-negative), and conservative (the columns of I - dt A sum to one, so the total of a field
changes only by its sources and sinks). The error is first order in dt (backward Euler plus the
O(dt) splitting error) and second order in h.

Layout and speed: all fields are advanced in one parallel region (numba prange over fields, a
field's two sweeps back to back while it is in cache). Sweep 1 copies tiles of TILE rows
transposed into a contiguous buffer, so its Thomas recurrence runs along the row while the
tile's rows fill the SIMD lanes; it is pure diffusion, so its pivots are precomputed
(`x_pivots`) and refreshed only when the bone-matrix map (or dt) changes. Sweep 2 runs down the
columns in place with whole rows as the SIMD direction and carries the per-step terms, so it
computes its pivots (one division per cell). Face coefficients are stored as one int8 face-type
map per direction (0: two free cells, 1: free|matrix, 2: matrix|matrix, 3: wall) plus a 4-entry
weight table per field, so variable D costs no extra memory traffic. All loops run on 1-D
contiguous rows so that LLVM vectorizes them.
"""

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
                          sink0, dt, vsink, vgain):
    for k in range(x.shape[0]):
        wl = _weight(t_lo[k], w0, w1, w2)
        wr = _weight(t_hi[k], w0, w1, w2)
        v = vessel[k]
        sink = sink0 + dt * upt[k] + (vsink if v else 0.0)
        m = 1.0 / (1.0 + wl + wr + sink - wl * wl * piv_prev[k])
        piv[k] = m
        x[k] = (x[k] + dt * src[k] + (vgain if v else 0.0) + wl * prev[k]) * m


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


@njit(parallel=True, cache=True, error_model="numpy")
def lod_step(conc, source, uptake, vessel, vessel_dt, serum, decay_dt, dt,
             fx_tiles, wx, piv_x, fy, wy):
    """Advance every field one backward-Euler LOD step of dt [day], in place.

    conc (n_fields, rows, cols) [field units]; source (same shape) [units/day]; uptake (same
    shape) [1/day]; vessel (rows, cols) bool; vessel_dt (n_fields,) = dt x exchange rate [-];
    serum (n_fields,) blood level [units] (0 where the blood is a pure sink); decay_dt
    (n_fields,) = dt x decay [-]; fx_tiles (`x_face_tiles`) and fy (rows + 1, cols) face
    types, wx, wy (n_fields, 4) weight tables (`face_weights`); piv_x the sweep-1 pivots
    from `x_pivots`.

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
        piv = np.empty((rows, cols))
        zero = np.zeros(cols)
        for t in range(n_tiles):
            r0 = t * TILE
            lanes = min(TILE, rows - r0)
            # sweep 1 on the tile's rows: pure diffusion, precomputed pivots
            px = piv_x[f, t]
            ft = fx_tiles[t]
            _gather_tile(tile, c, r0, lanes)
            _forward_row(tile[0], tile[0], px[0], ft[0], 0.0, 0.0, 0.0)
            for j in range(1, cols):
                _forward_row(tile[j], tile[j - 1], px[j], ft[j], w0, w1, w2)
            for j in range(cols - 2, -1, -1):
                _backward_row(tile[j], tile[j + 1], px[j], ft[j + 1], w0, w1, w2)
            _scatter_tile(tile, c, r0, lanes)
            # sweep 2 forward elimination down these rows while they are in cache (it needs
            # only rows above, which sweep 1 has finished)
            for i in range(r0, r0 + lanes):
                if i == 0:
                    _forward_row_reacting(c[0], zero, piv[0], zero, s[0], u[0], vessel[0],
                                          fy[0], fy[1], v0, v1, v2, sink, dt, vsink, vgain)
                else:
                    _forward_row_reacting(c[i], c[i - 1], piv[i], piv[i - 1], s[i], u[i],
                                          vessel[i], fy[i], fy[i + 1], v0, v1, v2, sink, dt,
                                          vsink, vgain)
        # sweep 2 back substitution, bottom to top
        for i in range(rows - 2, -1, -1):
            _backward_row(c[i], c[i + 1], piv[i], fy[i + 1], v0, v1, v2)


@njit(parallel=True, cache=True, error_model="numpy")
def aromatize(conc, i_t, i_e2, aromatase, inhibition, rate, dt):
    """Testosterone -> estradiol in place over dt [day], exact for the linear rate law.

    Local first-order conversion at rate [1/day] x aromatase activity (rows, cols) [0..1] x
    (1 - inhibition) (rows, cols) [0..1, anastrozole]: T falls by the factor exp(-r dt) and every
    mole lost appears as estradiol (T in ng/dL, E2 in pmol/L).
    """
    rows, cols = aromatase.shape
    for i in prange(rows):
        for j in range(cols):
            r = rate * aromatase[i, j] * (1.0 - inhibition[i, j])
            t_old = conc[i_t, i, j]
            t_new = t_old * np.exp(-r * dt)
            conc[i_t, i, j] = t_new
            conc[i_e2, i, j] += (t_old - t_new) * T_NG_DL_TO_PMOL_L


@njit(parallel=True, cache=True, error_model="numpy")
def free_ligand(total, decoy1, k1, decoy2, k2, out):
    """Free ligand at binding equilibrium with two 1:1 decoys, out (rows, cols) in place.

    total, decoy1, decoy2 (rows, cols) total concentrations [pM]; k1, k2 association constants
    [1/pM]. Solves L = L_tot / (1 + k1 O/(1 + k1 L) + k2 P/(1 + k2 L)) (mass action, each decoy
    free = total / (1 + k L)) by Newton's method from the lower bound L_tot/(1 + k1 O + k2 P);
    the function is concave and increasing, so the iterates rise monotonically to the root.
    """
    rows, cols = total.shape
    for i in prange(rows):
        for j in range(cols):
            lt = total[i, j]
            o = decoy1[i, j]
            p = decoy2[i, j]
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


def explicit_reference(conc, source, uptake, vessel, vessel_rate, serum, decay, d_um2_day,
                       matrix_factor, matrix, spacing_um, duration, safety=0.9):
    """Forward-Euler reference of the same semi-discrete equations, in numpy (verification only).

    Advances `conc` in place over `duration` [day] with, per field, the largest stable step
    times `safety`; returns the number of sub-steps taken per field. Arguments as in
    `lod_step`, but with rates (vessel_rate, decay [1/day]) instead of rates x dt.
    """
    fx, fy = face_types(matrix)
    weights = face_weights(d_um2_day, matrix_factor, 1.0, spacing_um)   # rates [1/day]
    steps = np.zeros(conc.shape[0], dtype=np.int64)
    for f in range(conc.shape[0]):
        wx = weights[f][fx]
        wy = weights[f][fy]
        sink = decay[f] + uptake[f] + np.where(vessel, vessel_rate[f], 0.0)
        gain = source[f] + np.where(vessel, vessel_rate[f] * serum[f], 0.0)
        rate_max = (wx[:, :-1] + wx[:, 1:] + wy[:-1] + wy[1:] + sink).max()
        # forward Euler is stable and positive for h <= 1 / max diagonal (Gershgorin)
        n = max(1, int(np.ceil(duration * rate_max / safety)))
        h = duration / n
        c = conc[f]
        for _ in range(n):
            fxl = wx[:, 1:-1] * (c[:, 1:] - c[:, :-1])
            fyl = wy[1:-1] * (c[1:] - c[:-1])
            dc = gain - sink * c
            dc[:, :-1] += fxl
            dc[:, 1:] -= fxl
            dc[:-1] += fyl
            dc[1:] -= fyl
            c += h * dc
        steps[f] = n
    return steps
