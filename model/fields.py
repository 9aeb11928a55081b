"""The signal fields on the tissue grid: registry, Mesa property layers, and the solver.

Registry. `FIELDS` lists every diffusing signal, in the order of the first axis of the one
field array `conc` (n_fields, rows, cols) float64, C-contiguous; `FIELD_INDEX` maps a name to
its index. Each `FieldSpec` is read from model/parameters/fields.toml (values, ranges and
sources there). Cytokines are in pM; hormones in serum units (e2 pmol/L, p4 and mpa ng/mL,
t ng/dL, igf1 ng/mL), so a tissue level can be read against the serum level directly.

Mesa. `property_layers(conc)` wraps each field as a `mesa.discrete_space.PropertyLayer` whose
`.data` is a view of `conc[f]` (no copy): a cell reads `cell.rankl`, a kernel writes `conc`.

Solver. `FieldSolver(shape, spacing_um, dt_day)` advances all fields one tissue step by
backward Euler, unsplit by default (`method="implicit"`: multigrid-preconditioned conjugate
gradients, accurate at day-long steps) or split (`method="lod"`: Thomas sweeps along rows then
columns, ~10-50x cheaper per step but with an O(1) splitting error around point sources once
dt D / h^2 >> 1: accurate only for steps of seconds at 10 um spacing). Both are
unconditionally stable, conservative and positive; see `bonesim.model.diffusion` for the
numerics and the measured errors. Two modelling choices, and why:

* Vessels exchange through a permeability term, not a Dirichlet value. A vessel cell gains
  P (4/h) (serum - c) per unit time (P the wall permeability [um/s], 4/h the wall area per
  volume of a vessel filling its cell). A Dirichlet node would pin the vessel cell to the
  blood level whatever the solute and however fast the tissue drains it. With permeabilities
  (Michel & Curry 1999) the vessel delivers what its wall lets through: lipid-soluble
  steroids (P ~1 um/s, 3.5e4/day per vessel cell at 10 um) keep the tissue within a few % of
  serum at 0.5% vessel cells against their ~5/day local metabolism (tested), while proteins
  (P ~0.01 um/s) cross ~100x more slowly. Dirichlet is the limit P -> infinity (tested). The
  term is implicit (in the diagonal of the backward-Euler system), so even the stiff
  exchange costs nothing in stability. Fields without a blood level (serum NaN or 0) see the
  blood as a sink: the vessel washes them out, as circulation does.
* Bone matrix is a low-D region, not an obstacle. Mineralized matrix is crossed by the
  lacunar-canalicular system, where small proteins still diffuse at 55-80% of their free
  rate (Li 2009) within ~1-2% porosity; osteocytes inside the matrix secrete sclerostin and
  RANKL and sense hormones, which an obstacle would cut off. Each field has its matrix factor
  (D_matrix / D, 0.002-0.02, fields.toml), faces between cells take the harmonic mean of the
  two D's (exact series conductance, continuous flux). An obstacle is the limit factor -> 0,
  which the same code handles.

Hormones (`SerumProfiles`, docs/design.md, decision 1): estradiol, progesterone, MPA and
testosterone enter from vessels and leave by linear clearance, with no cell source. They
equilibrate within minutes (vessel exchange ~3.5e4/day; diffusion across the ~100 um between
vessels at D ~300 um^2/s takes seconds), so each day's field is the steady state at that day's
serum level: a stored profile per unit serum, recomputed only when the tissue maps are
(matrix map, aromatase inhibition), times the serum level. Aromatization of testosterone to
estradiol where aromatase is, inhibited by anastrozole, is a profile of its own (the steady E2
made from the unit T profile). RANKL-OPG (and denosumab)
binding is fast (minutes) against the day step, so the fields carry total RANKL and OPG and
`free_rankl` gives the equilibrium partition: the RANKL free to bind RANK.
"""

from dataclasses import dataclass, replace
from functools import cache

import numba
import numpy as np

from bonesim.agents.world import FIELD_ORDER
from bonesim.model import diffusion
from bonesim.model.parameters import table, value

# the registry is the fields the cells read, in their order (agents/world.py)
FIELD_NAMES = FIELD_ORDER


@dataclass(frozen=True)
class FieldSpec:
    """One diffusing signal: its units and transport parameters (see fields.toml)."""

    name: str
    units: str                  # concentration units of the field
    diffusion_um2_s: float      # D in the interstitium [um^2/s]
    decay_per_day: float        # first-order tissue loss [1/day]
    permeability_um_s: float    # vessel-wall permeability [um/s]
    matrix_factor: float        # D in mineralized matrix / D [-]
    description: str = ""


def _spec(name: str) -> FieldSpec:
    entry = table("fields")[name]
    return FieldSpec(name=name, units=entry["field_units"],
                     diffusion_um2_s=value(f"fields.{name}.diffusion"),
                     decay_per_day=value(f"fields.{name}.decay"),
                     permeability_um_s=value(f"fields.{name}.permeability"),
                     matrix_factor=value(f"fields.{name}.matrix_factor"),
                     description=entry["description"])


FIELDS: tuple[FieldSpec, ...] = tuple(_spec(name) for name in FIELD_NAMES)
# below this many field-cells a step runs on one thread: starting a parallel region costs more
# than it saves, and on a busy machine waiting for a descheduled worker costs milliseconds
SERIAL_BELOW = 100_000
FIELD_INDEX: dict[str, int] = {spec.name: i for i, spec in enumerate(FIELDS)}
# the hormones that blood supplies and the tissue clears linearly, with no cell source: their
# fields are steady profiles per unit serum level (SerumProfiles); the others are transported
# step by step (FieldSolver over TRANSPORTED). They close the registry, so that both parts of
# the field array are contiguous views.
PROFILED = ("e2", "p4", "mpa", "t")
N_TRANSPORTED = len(FIELDS) - len(PROFILED)
if FIELD_NAMES[N_TRANSPORTED:] != PROFILED:
    raise ImportError("the profiled hormones must close the field registry (agents/world.py)")
TRANSPORTED = FIELDS[:N_TRANSPORTED]
# a backward-Euler step this long [day] from any start is the steady state to within
# 1/(clearance x step) ~ 2e-7, and from the steady state it is exactly that state
STEADY_STEP_DAY = 1e6


def new_conc(shape: tuple[int, int], fields: tuple[FieldSpec, ...] = FIELDS) -> np.ndarray:
    """A zeroed field array (n_fields, rows, cols) float64, C-contiguous."""
    return np.zeros((len(fields), *shape))


# Mesa releases whose PropertyLayer keeps its array in the private `_data`, which FieldLayer
# sets to share the field array (tested: mesa 3.5.x, the pin in pyproject.toml)
MESA_LAYER_SERIES = ((3, 5),)


def check_mesa_version(version: str) -> None:
    """Refuse a Mesa release FieldLayer was not tested with (it writes PropertyLayer._data)."""
    series = tuple(int(part) for part in version.split(".")[:2])
    if series not in MESA_LAYER_SERIES:
        tested = ", ".join(f"{major}.{minor}.x" for major, minor in MESA_LAYER_SERIES)
        raise RuntimeError(
            f"bonesim shares its field arrays with Mesa's property layers by setting the private "
            f"PropertyLayer._data, tested with Mesa {tested}; this is Mesa {version}. Install the "
            f"Mesa that pyproject.toml pins, or check that Mesa {version}'s PropertyLayer still "
            f"reads its values from _data and add {series} to MESA_LAYER_SERIES (model/fields.py).")


@cache
def _field_layer_class():
    # mesa (and the pandas it imports) is loaded only when layers are asked for: it would
    # otherwise triple the start-up time of every process that solves fields
    import mesa
    from mesa.discrete_space import PropertyLayer

    check_mesa_version(mesa.__version__)

    class FieldLayer(PropertyLayer):
        """A Mesa PropertyLayer whose data is a view of one field of `conc` (no copy)."""

        def __init__(self, name: str, view: np.ndarray, dimensions=None):
            self.name = name
            self.dimensions = tuple(view.shape) if dimensions is None else dimensions
            self._data = view

    return FieldLayer


def property_layers(conc: np.ndarray, fields: tuple[FieldSpec, ...] = FIELDS,
                    dimensions=None) -> list:
    """One mesa PropertyLayer per field, named as the field, each a view into `conc`.

    `dimensions` is stored as the layers' `dimensions` (pass the grid's own value, since Mesa
    compares them with `!=`); default: the tuple (rows, cols).
    """
    if conc.shape[0] != len(fields):
        raise ValueError(f"conc has {conc.shape[0]} fields, the registry {len(fields)}")
    layer = _field_layer_class()
    return [layer(spec.name, conc[i], dimensions) for i, spec in enumerate(fields)]


def free_rankl(conc: np.ndarray, denosumab_ng_ml: float = 0.0,
               out: np.ndarray | None = None) -> np.ndarray:
    """RANKL free to bind RANK [pM] (rows, cols), after OPG and denosumab binding at equilibrium.

    conc: the field array (total RANKL and OPG in pM); denosumab_ng_ml: tissue denosumab
    [ng/mL], uniform (an antibody equilibrates with the interstitium). Affinities: Pivonka 2008
    (OPG), Kostenuik 2009 (denosumab), fields.toml.
    """
    rankl = conc[FIELD_INDEX["rankl"]]
    if out is None:
        out = np.empty_like(rankl)
    denosumab = np.full_like(rankl, denosumab_ng_ml * diffusion.DENOSUMAB_NG_ML_TO_PM)
    diffusion.free_ligand(rankl, conc[FIELD_INDEX["opg"]],
                          value("fields.reactions.rankl_opg_affinity"), denosumab,
                          value("fields.reactions.denosumab_rankl_affinity"), out)
    return out


class FieldSolver:
    """Backward-Euler solver of all fields on a (rows, cols) grid of spacing_um [um].

    dt_day [day] is the tissue step. `fields` defaults to the registry; any tuple of FieldSpec
    may be given (tests, benchmarks). method: "implicit" (unsplit, default) or "lod" (split);
    tol, max_iter: stopping rule of the implicit solve (relative residual, and preconditioned
    residual against the field's maximum, see `diffusion.implicit_step`; tol defaults to
    fields.solver.tolerance); `iterations` holds the last step's count per field. Call
    `set_matrix` whenever the bone-matrix map may have changed (coefficients are rebuilt only
    if it did), `step` once per tissue step, and `react` for the local reactions.
    """

    def __init__(self, shape: tuple[int, int], spacing_um: float, dt_day: float,
                 fields: tuple[FieldSpec, ...] = FIELDS, method: str = "implicit",
                 tol: float | None = None, max_iter: int = 200):
        if dt_day <= 0 or spacing_um <= 0:
            raise ValueError("dt_day and spacing_um must be positive")
        if method not in ("implicit", "lod"):
            raise ValueError("method must be 'implicit' or 'lod'")
        self.method = method
        self.tol = value("fields.solver.tolerance") if tol is None else float(tol)
        self.max_iter = int(max_iter)
        self.shape = (int(shape[0]), int(shape[1]))
        self.spacing_um = float(spacing_um)
        self.dt_day = float(dt_day)
        self.fields = tuple(fields)
        self.n_fields = len(self.fields)
        self.d_um2_day = (np.array([s.diffusion_um2_s for s in self.fields])
                          * diffusion.SECONDS_PER_DAY)
        self.decay = np.array([s.decay_per_day for s in self.fields])
        self.matrix_factor = np.array([s.matrix_factor for s in self.fields])
        # vessel exchange rate [1/day]: P [um/s] x wall area per volume 4/h [1/um] x s/day
        self.vessel_rate = (np.array([s.permeability_um_s for s in self.fields])
                            * 4.0 / self.spacing_um * diffusion.SECONDS_PER_DAY)
        self._weights = diffusion.face_weights(self.d_um2_day, self.matrix_factor,
                                               self.dt_day, self.spacing_um)
        n_tiles = -(-self.shape[0] // diffusion.TILE)
        self._pivots_x = np.empty((self.n_fields, n_tiles, self.shape[1], diffusion.TILE))
        self._levels = diffusion.mg_levels(self.shape)
        self._gx = np.empty((self.n_fields, self._levels[-1, 3]))
        self._gy = np.empty((self.n_fields, self._levels[-1, 4]))
        self._work = (diffusion.implicit_work(self.shape, self._levels) if method == "implicit"
                      else (diffusion.lod_work(self.shape),))
        self.iterations = np.zeros(self.n_fields, dtype=np.int64)
        self._zeros = None
        self.matrix = None
        self.refreshes = 0
        self.set_matrix(np.zeros(self.shape, dtype=bool))

    def set_matrix(self, matrix_mask: np.ndarray) -> bool:
        """Set the bone-matrix map (rows, cols) bool; returns True if coefficients were rebuilt."""
        mask = np.asarray(matrix_mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"matrix mask shape {mask.shape} != grid {self.shape}")
        if self.matrix is not None and np.array_equal(mask, self.matrix):
            return False
        self.matrix = mask.copy()
        fx, self._fy = diffusion.face_types(self.matrix)
        if self.method == "lod":
            self._fx_tiles = diffusion.x_face_tiles(fx)
            diffusion.x_pivots(self._fx_tiles, self._weights, self._pivots_x)
        else:
            diffusion.mg_conductances(fx, self._fy, self._weights, self._levels, self._gx,
                                      self._gy)
            self._gx32 = self._gx.astype(diffusion.PRECONDITIONER)
            self._gy32 = self._gy.astype(diffusion.PRECONDITIONER)
        self.refreshes += 1
        return True

    def _check(self, name: str, array: np.ndarray, shape: tuple) -> None:
        if array.shape != shape or array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous float64 array of shape {shape}, "
                             f"got {array.dtype} {array.shape}")

    def step(self, conc: np.ndarray, source: np.ndarray | None = None,
             uptake: np.ndarray | None = None, vessel_mask: np.ndarray | None = None,
             serum: np.ndarray | None = None) -> None:
        """Advance `conc` one step of dt_day, in place.

        source (n_fields, rows, cols) [field units/day] secretion; uptake (same) [1/day]
        first-order uptake by cells; vessel_mask (rows, cols) bool, or for the implicit method
        also float: the vessel wall in each cell relative to that of a vessel filling the cell
        (each mesh cell of a vessel lattice cell, on a mesh r times finer: 1 / r); serum
        (n_fields,) [field units] the blood level at vessels (NaN or 0: none, the blood is a
        sink). None = zero.
        """
        full = (self.n_fields, *self.shape)
        self._check("conc", conc, full)
        if (source is None or uptake is None) and self._zeros is None:
            self._zeros = np.zeros(full)
        source = self._zeros if source is None else source
        uptake = self._zeros if uptake is None else uptake
        self._check("source", source, full)
        self._check("uptake", uptake, full)
        vessel = (np.zeros(self.shape, dtype=bool) if vessel_mask is None
                  else np.ascontiguousarray(vessel_mask))
        if vessel.dtype != bool:
            if self.method == "lod":
                raise ValueError("the LOD method takes a bool vessel_mask")
            if vessel.min() < 0:
                raise ValueError("vessel weights must be >= 0")
            vessel = vessel.astype(np.float64, copy=False)
        if vessel.shape != self.shape:
            raise ValueError(f"vessel_mask shape {vessel.shape} != grid {self.shape}")
        blood = np.zeros(self.n_fields) if serum is None else np.array(serum, dtype=np.float64)
        if blood.shape != (self.n_fields,):
            raise ValueError(f"serum must have shape ({self.n_fields},)")
        blood = np.nan_to_num(blood, nan=0.0)
        dt = self.dt_day
        threads = numba.get_num_threads()
        if conc.size < SERIAL_BELOW:
            numba.set_num_threads(1)
        try:
            self._advance(conc, source, uptake, vessel, blood, dt)
        finally:
            numba.set_num_threads(threads)

    def _advance(self, conc, source, uptake, vessel, blood, dt):
        if self.method == "lod":
            diffusion.lod_step(conc, source, uptake, vessel, dt * self.vessel_rate, blood,
                               dt * self.decay, dt, self._fx_tiles, self._weights,
                               self._pivots_x, self._fy, self._weights, *self._work)
        else:
            diffusion.implicit_step(conc, source, uptake, vessel, dt * self.vessel_rate, blood,
                                    dt * self.decay, dt, self._gx, self._gy, self._gx32,
                                    self._gy32, self._levels, self.tol, self.max_iter,
                                    self.iterations, *self._work,
                                    diffusion.balanced_schedule(self.iterations + 1,
                                                                numba.get_num_threads()))
            if self.iterations.max() >= self.max_iter:
                stuck = np.flatnonzero(self.iterations >= self.max_iter)
                raise RuntimeError(f"field solver did not converge in {self.max_iter} "
                                   f"iterations (fields {stuck})")


class SerumProfiles:
    """The PROFILED hormone fields on a (rows, cols) grid of spacing_um [um], as steady
    profiles per unit serum level times the day's serum level.

    `unit` (len(PROFILED) + 1, rows, cols) holds, per PROFILED field, its steady field at
    serum level 1 [field units per field unit of serum]; its last row the steady estradiol
    [pmol/L] that aromatization of the unit testosterone profile makes, per ng/dL of serum T
    and per unit of aromatase left uninhibited. `refresh` recomputes them (at tissue
    refreshes: matrix map, vessels, aromatase); `compose` writes a day's fields. Testosterone's
    own loss to aromatase (fields.reactions.aromatization_rate, 0.1/day against its 5/day
    clearance) is taken at the inhibition of the last refresh. tol: stopping rule of the
    steady solves (see FieldSolver; default the transported fields' own, fields.solver.tolerance:
    each refresh starts from the last profiles, so at 128^2 it takes 1-3 CG iterations instead
    of the 5-11 of a 1e-6 tolerance, half the refresh time).
    """

    def __init__(self, shape: tuple[int, int], spacing_um: float, tol: float | None = None):
        e2 = FIELDS[FIELD_INDEX["e2"]]
        specs = FIELDS[N_TRANSPORTED:] + (replace(e2, name="e2_aromatized"),)
        self.solver = FieldSolver(shape, spacing_um, STEADY_STEP_DAY, specs, tol=tol, max_iter=2000)
        self.unit = new_conc(shape, specs)
        self._source = np.zeros_like(self.unit)
        self._uptake = np.zeros_like(self.unit)
        self._serum = np.array([1.0] * len(PROFILED) + [0.0])

    def refresh(self, matrix_mask: np.ndarray, vessel: np.ndarray, aromatase: np.ndarray,
                inhibition: float) -> None:
        """Recompute the unit profiles: matrix_mask, vessel as FieldSolver.set_matrix and
        FieldSolver.step take them; aromatase (rows, cols) relative activity [0..1];
        inhibition [0..1] of aromatase by anastrozole now."""
        self.solver.set_matrix(matrix_mask)
        rate = value("fields.reactions.aromatization_rate") * np.asarray(aromatase)
        t = PROFILED.index("t")
        self._uptake[t] = rate * (1.0 - inhibition)
        # the T the aromatase converts per day appears as E2 (the moles it loses): solved with
        # the T profile before the refresh, then again with the new one
        for _ in range(2):
            self._source[-1] = rate * self.unit[t] * diffusion.T_NG_DL_TO_PMOL_L
            self.solver.step(self.unit, self._source, self._uptake, vessel, self._serum)

    def compose(self, conc: np.ndarray, serum: np.ndarray, inhibition: float) -> None:
        """conc (len(PROFILED), rows, cols) = the hormone fields at the serum levels `serum`
        (len(PROFILED),) [field units; NaN: none] with aromatase inhibited by `inhibition`
        [0..1], in place."""
        serum = np.nan_to_num(np.asarray(serum, dtype=np.float64), nan=0.0)
        for k in range(len(PROFILED)):
            np.multiply(self.unit[k], serum[k], out=conc[k])
        made = serum[PROFILED.index("t")] * (1.0 - inhibition)
        conc[PROFILED.index("e2")] += made * self.unit[-1]
