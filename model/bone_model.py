"""BoneModel: the tissue, its signal fields and its cells under a patient's serum course.

`BoneModel(scenario, rng=seed)` is a `mesa.Model`. It builds the section (model/tissue.py), a
`mesa.discrete_space.OrthogonalMooreGrid` carrying the fields as PropertyLayers (views into
the one field array, model/fields.py), the RANKL free to bind RANK (`rankl_free`, pM) and the
mechanical stimulus (`stimulus`, 1 = habitual load) that the cells read, and the matrix layers
`osteoid`, `matrix`, `mineral_p`, `mineral_s`, the FieldSolver, the SerumCourse
(model/endocrine.py) and the cells (agents/): a
lining cell on every quiescent surface face and osteocytes in the matrix at their density.
Osteoclasts, osteoblasts and their precursors are not placed by hand: before day 0 the model
runs a spin-up (`spinup_length`) under the patient's own preceding, untreated serum course,
so BMUs, the remodeling space and the mineralization profile of a living tissue are there
when the record starts, and the bone it left untouched is given the tissue ages of the
patient's own turnover (`_age_old_bone`). For a woman past the start of her menopausal
transition the spin-up lives through it and the years since (up to tissue.spinup.history_max):
she starts with the bone it cost her, sensed against the mechanostat set point of her
premenopausal skeleton, not as a premenopausal tissue meeting postmenopausal hormones. BMD and
the marker baselines are taken at its end. The spin-up draws its random numbers before the
scenario's own serum course, so the arms of a trial (one patient, tissue and seed, other
protocols) can share one spun-up tissue (`spinups`, keyed by `spinup_key`).

One `step()` = one tissue step of scenario.simulation.dt days:
  1. serum: the step's levels (receptor-exposure equivalents for E2, P4, MPA, T; means for the
     rest) become the vessels' blood levels and the systemic inputs (PTH1R agonism and its
     intermittent pulse, `pth_pulse`; the SERMs' ER occupancy ratios; bisphosphonate; load);
     the hormone fields E2, P4, MPA and T are the step's serum levels times their steady
     unit profiles, with the E2 that aromatase makes (SerumProfiles, model/fields.py);
  2. cells: the numba kernel (agents/kernel.py) ages every cell, writes secretion sources,
     resorbs, forms, migrates, and draws transitions, returning events;
  3. fields: FieldSolver.step over the other fields (diffusion, decay, vessel exchange, the
     cells' secretion of step 2);
  4. events: births, deaths, changes of type mirrored on the Mesa agents, moved agents placed;
  5. matrix: osteoid maturation and primary/secondary mineralization;
  6. readouts: every output interval a DataCollector row (model/readouts.py), and with
     agent_data=True each cell's kind, age in its type [day] and BMU id (-1: none).
`timeseries()` returns the rows as a DataFrame. `model.timing` holds the time of each part
[s] on `BoneModel.clock` (wall time). BMUs are not scripted: resorption, reversal and
formation follow from the cells.

Calibration (cells.toml entries marked "calibrated"), against V1 and two V2 quantities
(docs/targets.md): the osteoclast and osteoblast reference lifespans to the measured lifespans
(~2 weeks, ~3 months); lining.activation_rate with oc_precursor.recruitment (one factor) to
trabecular turnover ~25 %/yr; ob_precursor.recruitment with osteoblast.retire_rate to zero
BMD drift (the size and working life of each BMU's finite osteoblast team against its cavity);
lining.e2_basal_suppression to the doubling of activation after menopause (V2, Recker 2004);
ob_precursor.reversal_window to V2's late loss (the teams that refill the cavities). The
lifespans, the balance, the estrogen restraint and the reversal window were set by hand on
probe runs of V1, of V2 and of the postmenopausal PEPI placebo scenario (its ER occupancy,
not its BMD); the turnover factor by `experiments/calibrate.py --only V1.turnover` (the
re-runnable procedure for the V1 knobs); the parameter sources say which runs set each value.
"""

import io
import json
import pickle
import time
import zlib
from collections.abc import Callable, MutableMapping

import mesa
import numpy as np
import pandas as pd
from mesa.discrete_space import Cell, DiscreteSpace, OrthogonalMooreGrid

from bonesim.agents import kernel
from bonesim.agents.lining import LiningCell
from bonesim.agents.neighborhood import EMPTY
from bonesim.agents.osteoblasts import Osteoblast, OsteoblastPrecursor
from bonesim.agents.osteoclasts import Osteoclast, OsteoclastPrecursor
from bonesim.agents.osteocytes import Osteocyte
from bonesim.agents.population import (
    C_NBMU, KIND_NAMES, LINING, N_BMU_COLS, N_TALLY, OSTEOCYTE, T_RESORBED, Population,
    apply_events, place_agents, sync_moves,
)
from bonesim.agents.rates import KEYS
from bonesim.agents.receptors import hill
from bonesim.agents.world import (
    FIELD_ORDER, N_SYS, S_BP, S_DAY, S_DT, S_DX, S_EMBED, S_LOAD, S_MOL_PM, S_OBP_RATE, S_OCP_RATE,
    S_OSTEOID_BLOCK, S_PATCH, S_PTH, S_PTH_PULSE, S_SERM_AGONISM, S_SERM_LOAD, World,
)
from bonesim.model import mesh, readouts
from bonesim.model.endocrine import serum_course, transition_history_days
from bonesim.model.fields import (
    FIELD_INDEX, FIELDS, N_TRANSPORTED, TRANSPORTED, FieldSolver, FieldSpec, SerumProfiles,
    free_rankl, new_conc, property_layers,
)
from bonesim.model.parameters import all_parameters, value
from bonesim.model.scenario import Scenario
from bonesim.model.tissue import POOLS, build_tissue, mineral_supply
from bonesim.model.units import DAYS_PER_YEAR

# the agent class of each cell type code
CELL_CLASSES = tuple(sorted((OsteoclastPrecursor, Osteoclast, OsteoblastPrecursor, Osteoblast,
                             Osteocyte, LiningCell), key=lambda cls: cls.KIND))
if [cls.KIND for cls in CELL_CLASSES] != list(range(len(KIND_NAMES))):
    raise ImportError("CELL_CLASSES must hold one agent class per cell type code")
# blood levels the vessels exchange with: field -> serum name (exposure-equivalent levels)
SERUM_OF_FIELD = {"e2": "e2_pmol_l", "p4": "p4_ng_ml", "mpa": "mpa_ng_ml", "t": "t_ng_dl",
                  "igf1": "igf1_ng_ml"}
# the matrix pools shown as (non-diffusing) grid layers, for AgentSet queries and SolaraViz
POOL_LAYERS = tuple(FieldSpec(name, "grid-cell volume fraction", 0.0, 0.0, 0.0, 0.0,
                              "bone matrix pool (model/tissue.py)") for name in POOLS)
# what the cells read besides the fields, as grid layers (each array is updated in place)
RANKL_FREE_LAYER = (FieldSpec("rankl_free", "pM", 0.0, 0.0, 0.0, 0.0,
                              "RANKL free to bind RANK after OPG and denosumab (fields.free_rankl)"),)
STIMULUS_LAYER = (FieldSpec("stimulus", "1 = habitual load", 0.0, 0.0, 0.0, 0.0,
                            "local mechanical stimulus (BoneModel._mechanics)"),)
# what the DataCollector records of every cell with agent_data=True (agents/population.py)
AGENT_REPORTERS = {"kind": "kind", "age_days": "age", "bmu": "bmu"}
MOLECULES_PER_PMOL = 6.02214076e11          # Avogadro / 1e12 (unit conversion)
UM3_PER_LITRE = 1e15


def pth_pulse(peak_pg_ml: float, mean_pg_ml: float, hours_above: float) -> float:
    """PTH1R occupancy [0..1] of a step's PTH peak above that of its mean, when the peak is an
    intermittent pulse (hours above pth.intermittent_threshold, model/endocrine.py): the
    anabolic signal of daily teriparatide; 0 for a steady exposure, whatever its level, which
    acts through its mean (RANKL, OPG, activation)."""
    if hours_above <= 0.0:
        return 0.0
    ec50 = value("cells.receptors.pth1r_ec50")
    return max(0.0, hill(peak_pg_ml, ec50, 1.0) - hill(mean_pg_ml, ec50, 1.0))


def spinup_length(scenario: Scenario) -> float:
    """Days of spin-up [day]: tissue.spinup.days to a steady state, plus, for a woman whose
    menopausal transition has begun, the days since it began (at most
    tissue.spinup.history_max), so that her tissue has lived through her own transition and the
    years since (the bone lost, the overload the mechanostat senses, the turnover) instead of
    meeting her postmenopausal hormones with the tissue of her reproductive years."""
    history = min(transition_history_days(scenario.patient), value("tissue.spinup.history_max"))
    return value("tissue.spinup.days") + history


def spinup_scenario(scenario: Scenario, days: float) -> Scenario:
    """The patient over the `days` before the simulation starts, without therapy."""
    years = days / DAYS_PER_YEAR
    patient = scenario.patient.model_copy(update={"age": max(18.0, scenario.patient.age - years)})
    simulation = scenario.simulation.model_copy(update={"duration": years})
    return scenario.model_copy(update={"patient": patient, "protocol": [], "simulation": simulation})


def spinup_key(scenario: Scenario, seed, spin: float) -> str:
    """What a spin-up of `spin` days from `seed` (an int or a numpy SeedSequence) depends on,
    as text: the patient as the spin-up sees her, the tissue, the time step and field mesh,
    the seed and every model parameter's value; not the protocol, the duration or the output
    interval, so the arms of one trial share it."""
    if isinstance(seed, np.random.SeedSequence):
        seed = {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
    elif not isinstance(seed, int):
        raise TypeError(f"a shared spin-up needs a seed (int or SeedSequence), not {seed!r}")
    simulation = scenario.simulation
    return json.dumps({"patient": spinup_scenario(scenario, spin).patient.model_dump(mode="json"),
                       "tissue": scenario.tissue.model_dump(mode="json"), "dt": simulation.dt,
                       "field_refinement": simulation.field_refinement, "spinup_days": spin,
                       "seed": seed,
                       "parameters": {k: p.value for k, p in all_parameters().items()}},
                      sort_keys=True)


class _StatePickler(pickle.Pickler):
    """Pickles a model's attributes with the model itself as a reference and without the Mesa
    grid and its cells."""

    def __init__(self, file, model):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.model = model

    def persistent_id(self, obj):
        if obj is self.model:
            return "model"
        return "grid" if isinstance(obj, (Cell, DiscreteSpace)) else None


class _StateUnpickler(pickle.Unpickler):
    """Reads what `_StatePickler` wrote into `model` (the grid and cells as None)."""

    def __init__(self, file, model):
        super().__init__(file)
        self.model = model

    def persistent_load(self, pid):
        return self.model if pid == "model" else None


class BoneModel(mesa.Model):
    """Agent-based bone remodeling of one tissue section under one patient's serum course."""

    # the clock `timing` reads [s]: wall time; a benchmark on a shared machine may set
    # time.process_time (the CPU time of the process, all its threads) before building a model
    clock = staticmethod(time.perf_counter)

    def __init__(self, scenario: Scenario, rng=None, spinup_days: float | None = None,
                 agent_data: bool = False, progress: Callable[[float, float], None] | None = None,
                 spinups: MutableMapping[str, bytes] | None = None):
        """agent_data: the DataCollector also records every cell at each output interval
        (AGENT_REPORTERS); progress(days_done, days_total) is called after each spin-up step.
        spinups: spun-up tissues by `spinup_key` (rng must then be a seed): this model's is
        taken from there when it is in, else put there after its spin-up, so that the arms of a
        trial (one patient, tissue and seed under different protocols) spin up once. Either way
        the model is the same: the spin-up draws its random numbers before the arm's."""
        super().__init__(rng=rng)
        spin = spinup_length(scenario) if spinup_days is None else float(spinup_days)
        key = None if spinups is None else spinup_key(scenario, rng, spin)
        if key is not None and key in spinups:
            self._restore(spinups[key])
        else:
            self._build(scenario)
            self._spin_up(scenario, spin, progress)
            if key is not None:
                spinups[key] = self._spun_up_state()
        self._begin(scenario, spin, agent_data)

    # ------------------------------------------------------------------ set-up
    def _build(self, scenario: Scenario) -> None:
        """The section, its fields, grid and resident cells (lining cells, osteocytes)."""
        tissue_spec = scenario.tissue
        self.dt = float(scenario.simulation.dt)
        self.dx = float(tissue_spec.spacing)
        self.day = 0.0
        self.steps_done = 0      # steps of the record (after the spin-up)
        self.steps_total = 0     # all steps, spin-up included
        # steps between refreshes of the slow tissue maps (matrix map, mechanical stimulus)
        self.refresh_steps = max(1, round(value("tissue.numerics.refresh_days") / self.dt))
        self.load_days = np.zeros(2)     # load x days and days since the last refresh
        self.timing = {"fields": 0.0, "cells": 0.0, "events": 0.0, "matrix": 0.0, "readouts": 0.0}

        self.tissue = build_tissue(tissue_spec.size, self.dx, tissue_spec.site, tissue_spec.geometry_seed)
        shape = self.tissue.shape
        self.conc = new_conc(shape)
        self.rankl_free = np.zeros(shape)
        self.stimulus = np.ones(shape)
        self.build_grid()
        self.source = np.zeros_like(self.conc)
        self.vessel_cells = np.argwhere(self.tissue.vessel).astype(np.int64)
        self._field_mesh(scenario.simulation.field_refinement)
        self.serum_index = np.array([FIELD_INDEX[name] for name in SERUM_OF_FIELD], dtype=np.int64)
        self.fi = np.array([FIELD_INDEX[name] for name in FIELD_ORDER], dtype=np.int64)
        self.prm = np.array([value(key) for key in KEYS])
        self.sysv = np.zeros(N_SYS)
        self.occ = np.full(shape, EMPTY, dtype=np.int64)
        n_cells = shape[0] * shape[1]
        self._seeds = np.zeros((3, n_cells, 2), dtype=np.int64)
        self._dist = np.zeros((3, *shape), dtype=np.int64)
        self._queue = np.zeros(n_cells, dtype=np.int64)
        self._mark = np.zeros(shape, dtype=np.int64)
        self.population = Population()
        self.tally = np.zeros(N_TALLY)
        self.bmu_stats = np.zeros((4096, N_BMU_COLS))
        self._place_resident_cells()
        self.vessel_streams = np.zeros((len(self.vessel_cells), 2, 2), dtype=np.int64)
        self.vessel_clocks = np.zeros((len(self.vessel_cells), 2, 2))
        kernel.open_vessel_streams(int(self.rng.integers(2**62)), self.vessel_streams,
                                   self.vessel_clocks)

    def _spin_up(self, scenario: Scenario, spin: float,
                 progress: Callable[[float, float], None] | None) -> None:
        """`spin` days before day 0 under the patient's own preceding, untreated serum course
        (`spinup_scenario`); then the untouched bone is given her turnover's ages."""
        if spin <= 0:
            return
        pre = serum_course(spinup_scenario(scenario, spin), self.rng, self.dt)
        self.baseline_mark = None
        matrix0 = self.tissue.matrix.copy()
        for i in range(len(pre.day)):
            spin_day = pre.day[i] - spin
            if self.baseline_mark is None and spin_day >= -readouts.BASELINE_DAYS:
                self.baseline_mark = (spin_day, self.tally.copy())
            self._advance(pre, i, spin_day=spin_day)
            if progress is not None:
                progress(pre.day[i] + self.dt, spin)
        self._age_old_bone(matrix0, spin)

    def _begin(self, scenario: Scenario, spin: float, agent_data: bool) -> None:
        """Day 0 of `scenario` on the spun-up tissue: its serum course (drawn after the
        spin-up's random numbers), the record and its baselines."""
        self.spec = scenario
        self.output_every = float(scenario.simulation.output_every)
        self.course = serum_course(scenario, self.rng, self.dt)
        self.n_steps = len(self.course.day)
        if spin <= 0:
            self._hormones(self.course, 0, refresh=True)
        self.recorder = readouts.Recorder(self)
        self.datacollector = mesa.DataCollector(model_reporters=self.recorder.reporters(),
                                                agent_reporters=AGENT_REPORTERS if agent_data else None)
        self.recorder.start(self)
        self.datacollector.collect(self)

    def _spun_up_state(self) -> bytes:
        """This model's state after its spin-up, compressed: every attribute but the Mesa grid
        (rebuilt from the arrays by `_restore`, faster than stored)."""
        state = {name: item for name, item in self.__dict__.items()
                 if getattr(item, "__self__", None) is not self}   # Mesa's step wrapper
        buffer = io.BytesIO()
        _StatePickler(buffer, self).dump(state)
        return zlib.compress(buffer.getvalue(), 1)

    def _restore(self, state: bytes) -> None:
        """Take on a spun-up state of `_spun_up_state` (its agents become this model's)."""
        self.__dict__.update(_StateUnpickler(io.BytesIO(zlib.decompress(state)), self).load())
        self.build_grid()
        place_agents(self)

    def _age_old_bone(self, matrix0: np.ndarray, spin_days: float) -> None:
        """The tissue-age distribution of the patient's own steady state: the bone the spin-up
        left untouched (neither resorbed nor formed) is given the mineral of bone older than the
        spin-up at the turnover measured over its last half year, instead of the age its
        generator assumed (tissue.matrix.initial_turnover). The remodeling space and the young
        bone are the spin-up's own."""
        day, tally = self.baseline_mark
        bone = self.tissue.bone.sum()
        resorbed = (self.tally - tally)[T_RESORBED]
        if resorbed <= 0 or bone <= 0:
            return      # no remodeling seen (a section too small): keep the generator's ages
        turnover = resorbed / bone / (-day) * DAYS_PER_YEAR
        untouched = (self.tissue.matrix == matrix0) & (self.tissue.osteoid == 0) & (matrix0 > 0)
        self.tissue.set_age(untouched, turnover, spin_days)

    def build_grid(self) -> None:
        """The Mesa grid over the tissue, with the fields, `rankl_free`, `stimulus` and the
        matrix pools as property layers that are views of the model's arrays (no copies)."""
        self.grid = OrthogonalMooreGrid(self.tissue.shape, torus=False, random=self.random)
        dims = self.grid.dimensions
        layers = (*property_layers(self.conc, dimensions=dims),
                  *property_layers(self.rankl_free[None], RANKL_FREE_LAYER, dims),
                  *property_layers(self.stimulus[None], STIMULUS_LAYER, dims),
                  *property_layers(self.tissue.pools, POOL_LAYERS, dims))
        for layer in layers:
            self.grid.add_property_layer(layer)

    def _place_resident_cells(self) -> None:
        """Lining cells on every quiescent surface face; osteocytes in the matrix with the
        probability that a grid cell's volume holds one (osteocyte density x volume), of all
        ages (their clocks start at a uniform share of their lifespans)."""
        bone = self.tissue.matrix_mask()
        touch = np.zeros_like(bone)
        touch[1:] |= bone[:-1]
        touch[:-1] |= bone[1:]
        touch[:, 1:] |= bone[:, :-1]
        touch[:, :-1] |= bone[:, 1:]
        lining = np.argwhere(~bone & touch & ~self.tissue.vessel)
        osteocytes = np.argwhere(bone & (self.rng.random(bone.shape) < self.embed_probability()))
        pop = self.population
        for kind, cells in ((LINING, lining), (OSTEOCYTE, osteocytes)):
            pop.reserve(len(cells) + 1)
            need = len(cells) + 1
            if pop.events.shape[0] < need:
                pop.events = np.zeros((need, 4), dtype=np.int64)
            kernel.place_cells(int(self.rng.integers(2**62)), kind, cells.astype(np.int64),
                               kind == OSTEOCYTE, self.prm, self.occ, pop.ints, pop.flts,
                               pop.free, pop.counters, pop.events)
            apply_events(self, CELL_CLASSES)

    def embed_probability(self) -> float:
        """Probability that a grid cell of bone holds an osteocyte (density x cell volume)."""
        volume_mm3 = self.dx**2 * value("cells.geometry.section_thickness") * 1e-9
        return value("cells.osteocyte.density") * volume_mm3

    def _field_mesh(self, r: int) -> None:
        """The solver on the field mesh, r times finer than the lattice (model/mesh.py). With
        r = 1 (production) the mesh is the lattice and `field_conc` is `conc`; otherwise the
        mesh carries its own field state, takes the cells' sources, vessels (each mesh cell of
        a vessel with weight 1 / r: the same wall per volume) and bone map from the lattice,
        and `conc`, which cells and Mesa read, is the mean over each lattice cell's block."""
        self.field_refinement = r
        shape = mesh.mesh_shape(self.tissue.shape, r)
        self.solver = FieldSolver(shape, self.dx / r, self.dt, TRANSPORTED)
        self.profiles = SerumProfiles(shape, self.dx / r)
        self.aromatase = np.full(shape, value("tissue.aromatase.relative_activity"))
        self.field_vessel = mesh.vessel_weights(self.tissue.vessel, r)
        if r == 1:
            self.field_conc, self.field_source = self.conc, self.source
        else:
            self.field_conc, self.field_source = new_conc(shape), new_conc(shape)
        self.solver.set_matrix(self._matrix_mask())

    def _matrix_mask(self) -> np.ndarray:
        """Bone for transport (bone fraction >= 1/2) on the field mesh."""
        mask = self.tissue.matrix_mask()
        r = self.field_refinement
        return mask if r == 1 else mesh.refine(mask[None], r)[0]

    def _hormones(self, course, i: int, refresh: bool) -> None:
        """The PROFILED hormone fields at the serum of step i of `course` (model/fields.py);
        at a tissue refresh their unit profiles are recomputed first."""
        inhibition = course.mean["aromatase_inhibition"][i]
        if refresh:
            self.profiles.refresh(self._matrix_mask(), self.field_vessel, self.aromatase,
                                  inhibition)
        hormones = self.field_conc[N_TRANSPORTED:]
        self.profiles.compose(hormones, self._serum_vector(course, i)[N_TRANSPORTED:],
                              inhibition)
        if self.field_refinement > 1:
            mesh.coarsen(hormones, self.field_refinement, self.conc[N_TRANSPORTED:])

    # ------------------------------------------------------------------ one step
    def _serum_vector(self, course, i: int) -> np.ndarray:
        serum = np.full(len(FIELDS), np.nan)
        for f, name in zip(self.serum_index, SERUM_OF_FIELD.values()):
            serum[f] = course.exposure[name][i]
        return serum

    def _systemic(self, course, i: int, day: float) -> None:
        t = self.tissue
        area_mm2 = t.shape[0] * t.shape[1] * (self.dx / 1000) ** 2
        n_vessel = max(1, len(self.vessel_cells))
        patch = self.dx / value("cells.geometry.patch_width")
        volume_l = self.dx**2 * value("cells.geometry.section_thickness") / UM3_PER_LITRE
        s = self.sysv
        s[S_DAY] = day
        s[S_DT] = self.dt
        s[S_DX] = self.dx
        s[S_LOAD] = course.mean["load_rel"][i]
        s[S_PTH] = course.mean["pth_total_pg_ml"][i]
        s[S_PTH_PULSE] = pth_pulse(course.mean["pth_peak_pg_ml"][i], s[S_PTH],
                                   course.mean["pth_hours_above"][i])
        s[S_SERM_LOAD] = course.mean["serm_er_load"][i]
        s[S_SERM_AGONISM] = course.mean["serm_er_agonism"][i]
        s[S_BP] = course.mean["bisphosphonate_rel"][i]
        s[S_OCP_RATE] = value("cells.oc_precursor.recruitment") * area_mm2 / n_vessel
        s[S_OBP_RATE] = value("cells.ob_precursor.recruitment") * area_mm2 / n_vessel / patch
        s[S_MOL_PM] = 1.0 / (MOLECULES_PER_PMOL * volume_l)
        s[S_PATCH] = patch
        s[S_EMBED] = self.embed_probability()
        s[S_OSTEOID_BLOCK] = value("tissue.matrix.osteoid_block")

    def _mechanics(self) -> None:
        """Local mechanical stimulus s = load x (set point density / density now)^n, with the
        mean load since the last refresh (so that a session on any day counts); the set point
        is the local density of the section as built (Tissue.density0)."""
        load = self.load_days[0] / self.load_days[1]
        density = np.maximum(self.tissue.local_density(), 1e-3)
        self.stimulus[:] = load * (self.tissue.density0 / density) ** value("tissue.mechanics.strain_exponent")
        self.load_days[:] = 0.0

    def _advance(self, course, i: int, spin_day: float | None = None) -> None:
        """One tissue step with the serum of step i of `course` (spin_day: day before 0)."""
        day = self.day if spin_day is None else spin_day
        t0 = self.clock()
        pop = self.population
        pop.reserve(4096)
        if pop.counters[C_NBMU] > self.bmu_stats.shape[0] - 512:
            self.bmu_stats = np.concatenate([self.bmu_stats, np.zeros_like(self.bmu_stats)])
        need = 8 * pop.n_hi + 4096
        if pop.events.shape[0] < need:
            pop.events = np.zeros((2 * need, 4), dtype=np.int64)
        self._systemic(course, i, day)
        refresh = self.steps_total % self.refresh_steps == 0
        self.load_days += (self.sysv[S_LOAD] * self.dt, self.dt)
        if refresh:
            self._mechanics()
        th = self.clock()
        self._hormones(course, i, refresh)
        th = self.clock() - th
        self.source[:] = 0.0
        free_rankl(self.conc, course.mean["denosumab_ng_ml"][i], out=self.rankl_free)
        seed = int(self.rng.integers(2**62))
        t1 = self.clock()
        self.cell_phase(seed)
        t2 = self.clock()
        n, r = N_TRANSPORTED, self.field_refinement
        if r > 1:
            mesh.refine(self.source[:n], r, self.field_source[:n])
        self.solver.step(self.field_conc[:n], self.field_source[:n], None, self.field_vessel,
                         self._serum_vector(course, i)[:n])
        if r > 1:
            mesh.coarsen(self.field_conc[:n], r, self.conc[:n])
        t3 = self.clock()
        apply_events(self, CELL_CLASSES)
        sync_moves(self)
        t4 = self.clock()
        self.tissue.mineralize(self.dt, mineral_supply(course.mean["calcium_rel"][i],
                                                       course.mean["vitd_ng_ml"][i]))
        if refresh:
            self.solver.set_matrix(self._matrix_mask())
        t5 = self.clock()
        self.timing["cells"] += (t2 - t1) + (t1 - t0) - th
        self.timing["fields"] += t3 - t2 + th
        self.timing["events"] += t4 - t3
        self.timing["matrix"] += t5 - t4
        self.steps_total += 1

    def cell_phase(self, seed: int, per_agent: bool = False) -> float:
        """The cells' part of a step: the tissue-level preparation (kernel.prepare_step:
        recruitment, marrow sources, targets), then every cell's rules. Production: one numba
        call over all cells (kernel.loop_cells). per_agent=True: the same rules as a plain Mesa
        loop, each agent's `step()` applying them to itself (the benchmark's reference path).
        Returns the seconds spent in the per-cell part."""
        self.world = self.cell_world()
        kernel.prepare_step(self.world)
        start = time.perf_counter()
        if per_agent:
            self.agents.shuffle_do("step")
        else:
            kernel.loop_cells(seed + 1, self.world)
        return time.perf_counter() - start

    def cell_world(self) -> World:
        """The arrays the cell rules act on (agents/world.py), as they are now (the population
        and the BMU records may have been reallocated since the last step)."""
        pop = self.population
        t = self.tissue
        return World(self.sysv, self.prm, self.fi, self.conc, self.rankl_free, self.stimulus,
                     self.source, t.osteoid, t.matrix, t.mineral_p, t.mineral_s, t.vessel,
                     self.vessel_cells, self.vessel_streams, self.vessel_clocks, t.site_bmu,
                     t.eroded_day, self.occ, pop.ints, pop.flts, pop.moved, pop.free,
                     pop.counters, pop.events, self.tally, self.bmu_stats, self._seeds,
                     self._dist, self._queue, self._mark)

    def step(self) -> None:
        """Advance one tissue step of dt days; collect a row at each output interval."""
        i = min(self.steps_done, self.n_steps - 1)
        self._advance(self.course, i)
        self.steps_done += 1
        self.day = self.steps_done * self.dt
        t0 = self.clock()
        self.recorder.accumulate(self, i)
        if self.recorder.due(self):
            self.datacollector.collect(self)
        self.timing["readouts"] += self.clock() - t0

    def timeseries(self) -> pd.DataFrame:
        """One row per output interval (and day 0), snake_case columns with units."""
        return self.datacollector.get_model_vars_dataframe().reset_index(drop=True)

