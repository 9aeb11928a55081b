"""The cell population: Mesa agents for identity, structure-of-arrays state for the work.

Every cell is a Mesa `CellAgent` (a subclass of `BoneCell`) on the model's
`mesa.discrete_space` grid, so `model.agents`, `model.agents_by_type[Osteoclast]`, AgentSet
queries, the DataCollector and SolaraViz all see it. Its state is column `slot` of the arrays
of `Population`, which the numba kernel (agents/kernel.py) advances for all cells at once.
The kernel reports discrete events (birth, death, change of type) in an event buffer;
`apply_events` mirrors them on the Mesa side and `sync_moves` moves the agents of the cells
that changed grid cell. Python work per step grows with events, not cells (docs/design.md, decision 2).

A cell is one agent for its whole life: when it differentiates (precursor to osteoclast,
osteoblast to lining cell or osteocyte) the same Python object, with the same `unique_id`,
takes the class of its new type and moves to that type's AgentSet; a reference a user holds
stays valid until the cell dies. The kernel owns births, deaths and moves, so `agent.remove()`
and assigning `agent.cell` (or `move_to`, `move_relative`) raise `KernelOwnedError`: done from
Python they would desynchronize the agents from the arrays.

State (row of `ints` / `flts`, per slot):
  kind     cell type code (OC_PRECURSOR ... LINING), FREE = -1 for an unused slot
  row, col grid cell
  nuclei   osteoclast nuclei (fused precursors)
  gen      divisions in the osteoblast-precursor lineage
  bmu      id of the BMU the cell works in (-1: none)
  stamp    step at which the cell was placed (a cell is not advanced in its birth step,
           except a recruit from a vessel, which lives from its recruitment time within it)
  key, nlife, nmove   its random stream: key, and the life decisions and moves drawn so far
           (agents/streams.py)
  age      [day] time in the present type
  clock, clock_end   [day] biological age, advanced at a rate set by survival signals, and the
           lifespan drawn on entering the type: the cell dies when clock >= clock_end
  trans, trans_thr   integrated hazard [-] of the type's main transition, Exp(1) threshold
  aux, aux_thr       the same for a second, repeating transition (division, lining
           spreading): after each, the hazard past the threshold counts toward the next
  heading  [rad] osteoclast direction of travel
  travel   [grid steps, 0-1] osteoclast: how far it has come toward its next grid cell
  embed_drawn  osteoblast: 1 once its burial as an osteocyte was drawn at its present grid cell
"""

import numpy as np
from mesa import Agent
from mesa.discrete_space import CellAgent

from bonesim.agents.names import check_indices

# cell type codes
KIND_NAMES = ("oc_precursor", "osteoclast", "ob_precursor", "osteoblast", "osteocyte", "lining")
OC_PRECURSOR, OSTEOCLAST, OB_PRECURSOR, OSTEOBLAST, OSTEOCYTE, LINING = range(len(KIND_NAMES))
FREE = -1

# rows of the integer and float state (see the module doc)
INT_ROWS = ("kind", "row", "col", "nuclei", "gen", "bmu", "stamp", "key", "nlife", "nmove",
            "embed_drawn")
(I_KIND, I_ROW, I_COL, I_NUCLEI, I_GEN, I_BMU, I_STAMP, I_KEY, I_NLIFE, I_NMOVE,
 I_EMBED_DRAWN) = range(len(INT_ROWS))
FLOAT_ROWS = ("age", "clock", "clock_end", "trans", "trans_thr", "aux", "aux_thr", "heading",
              "travel")
(X_AGE, X_CLOCK, X_CLOCK_END, X_TRANS, X_TRANS_THR, X_AUX, X_AUX_THR, X_HEADING,
 X_TRAVEL) = range(len(FLOAT_ROWS))
N_INT, N_FLT = len(INT_ROWS), len(FLOAT_ROWS)

# counters: free-stack size, high-water slot, events written, BMUs founded, step id
COUNTERS = ("nfree", "nhi", "nev", "nbmu", "step")
C_NFREE, C_NHI, C_NEV, C_NBMU, C_STEP = range(len(COUNTERS))

# running tallies (model.tally), in grid-cell volumes unless noted (T_NEW_ERODED: quiescent
# bone-surface faces turned into eroded surface, a count; T_PERFORATIONS: a count; T_RELEASED:
# eroded volume of perforating cavities, never refilled; T_ARRESTED: eroded volume left
# unfilled when its BMU's team was gone; T_OC_CAPACITY: the volume the osteoclasts could have
# resorbed, their resorption capacity summed over their steps)
TALLIES = ("resorbed", "resorbed_mineral", "formed", "new_eroded", "founded", "fused",
           "activated", "oc_deaths", "oc_life_sum", "ob_ends", "ob_life_sum", "ob_to_osteocyte",
           "ob_to_lining", "ob_apoptosis", "ocy_deaths", "obp_committed", "perforations",
           "released", "arrested", "oc_capacity")
(T_RESORBED, T_RESORBED_MINERAL, T_FORMED, T_NEW_ERODED, T_FOUNDED, T_FUSED, T_ACTIVATED,
 T_OC_DEATHS, T_OC_LIFE_SUM, T_OB_ENDS, T_OB_LIFE_SUM, T_OB_TO_OSTEOCYTE, T_OB_TO_LINING,
 T_OB_APOPTOSIS, T_OCY_DEATHS, T_OBP_COMMITTED, T_PERFORATIONS, T_RELEASED,
 T_ARRESTED, T_OC_CAPACITY) = range(len(TALLIES))
N_TALLY = len(TALLIES)

# BMU record columns (model.bmu_stats): days, areas in grid-cell volumes, B_ERODED in faces,
# B_TEAM the osteoblasts of its team at work now, B_TEAM_SIZE all it ever had, B_PERFORATIONS
# the trabeculae it cut through (counts)
BMU_COLUMNS = ("founded", "first_res", "last_res", "resorbed", "first_form", "last_form",
               "formed", "osteoclasts", "eroded", "team", "team_size", "perforations")
(B_FOUNDED, B_FIRST_RES, B_LAST_RES, B_RESORBED, B_FIRST_FORM, B_LAST_FORM, B_FORMED,
 B_OSTEOCLASTS, B_ERODED, B_TEAM, B_TEAM_SIZE, B_PERFORATIONS) = range(len(BMU_COLUMNS))
N_BMU_COLS = len(BMU_COLUMNS)

# event codes written by the kernel, rows (code, slot, a, b)
EV_DIE, EV_BECOME, EV_SPAWN = 1, 2, 3
# causes of death (a of EV_DIE)
DEATHS = ("apoptosis", "fused", "resorbed", "retracted", "detached")
DEATH_APOPTOSIS, DEATH_FUSED, DEATH_RESORBED, DEATH_RETRACTED, DEATH_DETACHED = range(len(DEATHS))

for _prefix, _names in (("I_", INT_ROWS), ("X_", FLOAT_ROWS), ("C_", COUNTERS), ("T_", TALLIES),
                        ("B_", BMU_COLUMNS), ("DEATH_", DEATHS)):
    check_indices(_prefix, _names, globals())


class KernelOwnedError(RuntimeError):
    """A change to a bone cell that only the cell kernel may make (birth, death, move)."""


_set_cell = CellAgent.cell.fset     # Mesa's move: leave the old grid cell, join the new one


class BoneCell(CellAgent):
    """A bone cell: a Mesa CellAgent whose state is column `slot` of model.population.

    A dead cell leaves the grid and every AgentSet. Its birth, death, moves and changes of
    type come from the kernel (see the module doc).
    """

    KIND = FREE

    def __init__(self, model, slot: int, cell):
        super().__init__(model)
        self.slot = int(slot)
        _set_cell(self, cell)

    @property
    def cell(self):
        """The grid cell the bone cell is on (None once dead). Set by the kernel only."""
        return self._mesa_cell

    @cell.setter
    def cell(self, cell) -> None:
        raise KernelOwnedError(
            f"{type(self).__name__} {self.unique_id} moves in the cell kernel (agents/kernel.py), "
            "not through Mesa: assigning agent.cell would put the agent where the kernel's "
            "arrays do not have it. Change how cells move in the kernel's rules.")

    def remove(self) -> None:
        raise KernelOwnedError(
            f"{type(self).__name__} {self.unique_id} dies in the cell kernel (agents/kernel.py), "
            "not through Mesa: agent.remove() would leave its state in the kernel's arrays and "
            "the kernel would later remove it again. Change when cells die in the kernel's rules.")

    @property
    def kind(self) -> str:
        """Cell type: oc_precursor, osteoclast, ob_precursor, osteoblast, osteocyte, lining."""
        return KIND_NAMES[self.KIND]

    def step(self) -> None:
        """This cell's rules for one step, run from Python (the plain Mesa path that
        BoneModel.cell_phase(per_agent=True) and the benchmark use; production runs the same
        rules for all cells in one numba call)."""
        from bonesim.agents.kernel import step_one_cell   # kernel imports this module
        step_one_cell(self.slot, *self.model.world)

    @property
    def age(self) -> float:
        """Days since the cell entered its present type."""
        return float(self.model.population.flts[X_AGE, self.slot])

    @property
    def bmu(self) -> int:
        """Id of the BMU the cell works in (-1: none)."""
        return int(self.model.population.ints[I_BMU, self.slot])

    @property
    def position(self) -> tuple[int, int]:
        """(row, col) of its grid cell."""
        pop = self.model.population
        return int(pop.ints[I_ROW, self.slot]), int(pop.ints[I_COL, self.slot])


class Population:
    """Structure-of-arrays state of all cells (see the module doc) and a free-slot stack."""

    def __init__(self, capacity: int = 4096, max_events: int = 65536):
        self.capacity = 0
        self.ints = np.zeros((N_INT, 0), dtype=np.int64)
        self.flts = np.zeros((N_FLT, 0))
        self.moved = np.zeros(0, dtype=np.bool_)
        self.free = np.zeros(0, dtype=np.int64)
        self.counters = np.zeros(len(COUNTERS), dtype=np.int64)
        self.events = np.zeros((max_events, 4), dtype=np.int64)
        self.agents: list = []
        self.grow(capacity)

    @property
    def kind(self) -> np.ndarray:
        return self.ints[I_KIND]

    @property
    def n_hi(self) -> int:
        """Slots at and above n_hi have never been used."""
        return int(self.counters[C_NHI])

    def grow(self, capacity: int) -> None:
        """Enlarge to `capacity` slots, keeping the state of used slots."""
        old = self.capacity
        if capacity <= old:
            return
        ints = np.zeros((N_INT, capacity), dtype=np.int64)
        ints[:, :old] = self.ints
        ints[I_KIND, old:] = FREE
        ints[I_BMU, old:] = -1
        flts = np.zeros((N_FLT, capacity))
        flts[:, :old] = self.flts
        moved = np.zeros(capacity, dtype=np.bool_)
        moved[:old] = self.moved
        n = int(self.counters[C_NFREE])
        free = np.zeros(capacity, dtype=np.int64)
        free[:n] = self.free[:n]
        free[n:n + capacity - old] = np.arange(capacity - 1, old - 1, -1)  # lowest popped first
        self.ints, self.flts, self.moved, self.free = ints, flts, moved, free
        self.counters[C_NFREE] = n + capacity - old
        self.agents.extend([None] * (capacity - old))
        self.capacity = capacity

    def reserve(self, n: int) -> None:
        """Make sure at least n free slots exist (the kernel places new cells in free slots)."""
        if self.counters[C_NFREE] < n:
            self.grow(max(2 * self.capacity, self.capacity + n))

    def count(self, kind: int) -> int:
        """Number of living cells of `kind`."""
        return int(np.count_nonzero(self.ints[I_KIND, : self.n_hi] == kind))

    def slots(self, kind: int) -> np.ndarray:
        """Slots of the living cells of `kind`."""
        return np.flatnonzero(self.ints[I_KIND, : self.n_hi] == kind)


def _die(agent: BoneCell) -> None:
    """The agent leaves the model's AgentSets and the grid (Mesa's CellAgent.remove)."""
    Agent.remove(agent)
    _set_cell(agent, None)


def _become(agent: BoneCell, cls: type) -> None:
    """The agent takes the class of its new type, in place: same object, same unique_id,
    moved from its old type's AgentSet to the new one's."""
    model = agent.model
    by_type = model.agents_by_type
    by_type[type(agent)].remove(agent)
    agent.__class__ = cls
    if cls in by_type:
        by_type[cls].add(agent)
    else:
        by_type[cls] = type(model.agents)([agent], random=model.random)


def apply_events(model, classes: tuple) -> int:
    """Mirror the kernel's events on the Mesa side, in the order they happened; returns their
    number. EV_DIE removes the slot's agent (it leaves the grid and the AgentSets), EV_BECOME
    gives the slot's agent the class of its new type (the same agent), EV_SPAWN creates the
    agent of a newly placed cell. classes[kind] is the agent class of each type."""
    pop = model.population
    grid = model.grid
    agents = pop.agents
    n = int(pop.counters[C_NEV])
    for code, slot, a, _ in pop.events[:n].tolist():     # Python ints: no numpy scalars
        if code == EV_DIE:
            _die(agents[slot])
            agents[slot] = None
        elif code == EV_BECOME:
            _become(agents[slot], classes[a])
        else:
            agents[slot] = classes[a](model, slot,
                                      grid[(int(pop.ints[I_ROW, slot]), int(pop.ints[I_COL, slot]))])
    pop.counters[C_NEV] = 0
    return n


def place_agents(model) -> None:
    """Put every agent on the grid cell of its slot: on a rebuilt `model.grid`, the agents
    coming from a spun-up state stored without its grid (they are on no grid cell)."""
    for agent in model.agents:
        _set_cell(agent, model.grid[agent.position])


def sync_moves(model) -> int:
    """Put the Mesa agents of cells the kernel moved on their new grid cell; returns how many."""
    pop = model.population
    grid = model.grid
    moved = np.flatnonzero(pop.moved[: pop.n_hi])
    places = zip(moved.tolist(), pop.ints[I_ROW, moved].tolist(), pop.ints[I_COL, moved].tolist())
    for slot, row, col in places:
        agent = pop.agents[slot]
        if agent is not None:
            _set_cell(agent, grid[(row, col)])
    pop.moved[moved] = False
    return len(moved)
