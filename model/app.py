"""The browser view: watch a patient's bone remodel, live, in Mesa's SolaraViz.

    bonesim viz [SCENARIO.toml | name] [--host 127.0.0.1] [--port 8765]

or, in a Jupyter notebook, `from bonesim.model.app import page; page`. Mesa's app.py
convention (mesa/examples/*/app.py): `model_params`, `model`, `page = SolaraViz(...)`.

The page shows
  * the tissue: matrix shaded by its mineral (pale: newly mineralizing, dark: fully
    mineralized), osteoid orange, marrow, vessels red, and every cell as a dot coloured by its
    type, an osteoclast sized by its nuclei, a black rim on a cell working in a BMU;
  * one selectable layer of the grid as a heatmap on a fixed colour scale in its units
    (`LAYERS`), bone surfaces outlined;
  * the record as it grows: BMD change (spine as DXA sees it, trabecular vBMD), CTX and P1NP,
    RANKL/OPG, serum E2, P4 and T, cell counts; and the simulated date.
Controls (Reset applies them): patient (`PATIENTS`: the patients of experiments/scenarios/),
protocol (the [[protocol]] tables of experiments/scenarios/), seed (the run is replicate 0 of
`bonesim run` with that seed) and tissue size. Drawing takes the model's arrays directly
(matplotlib: the maps are imshows, the cells one scatter; docs/design.md, decision 10). As in Mesa's
examples, the page starts from the one module-level `model`: browser tabs opened on one server
share it until a Reset gives each its own.

Spin-up. A model spends its construction on the spin-up before day 0 (bone_model.spinup_length:
about a minute per 400 days at 256 x 256). `BoneView` keeps the last spun-up states
(`CACHE_SIZE`) in memory: Reset to a patient, size and seed spun up before in this process,
under any protocol, takes that state instead (a few seconds); a new one spins up, its progress
shown on the page and on the terminal.

Assets. The page's JavaScript and CSS come from the solara-assets package (installed under
<venv>/share/solara/cdn, which solara's server serves), never from a CDN; pyproject.toml pins
the solara, solara-assets, ipyvue and ipyvuetify versions that work together offline.
`bonesim viz` serves on 127.0.0.1 with Solara's telemetry off.
"""

import os
import sys
import tomllib
from collections import OrderedDict
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import solara
import solara.server.settings
from matplotlib.colors import LogNorm, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, ScalarFormatter
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from bonesim.agents.population import (
    I_BMU, I_COL, I_KIND, I_NUCLEI, I_ROW, KIND_NAMES, LINING, OB_PRECURSOR, OC_PRECURSOR,
    OSTEOBLAST, OSTEOCLAST, OSTEOCYTE,
)
from bonesim.model.bone_model import RANKL_FREE_LAYER, STIMULUS_LAYER, BoneModel
from bonesim.model.fields import FIELDS
from bonesim.model.readouts import COUNT_COLUMNS
from bonesim.model.scenario import Scenario, load_scenario
from bonesim.model.units import DAYS_PER_YEAR

solara.server.settings.telemetry.mixpanel_enable = False     # no telemetry (docs/design.md, decision 10)

# The scenario files (package data of bonesim.experiments, read as data: no code imported)
SCENARIO_DIR = Path(str(files("bonesim.experiments") / "scenarios"))
# Patients: a scenario file's patient, with its duration, time step and site (the controls
# set the protocol, seed and tissue size)
PATIENTS = {
    "premenopausal": "v1_premenopausal",
    "anovulatory cycles": "v4a_anovulatory",
    "disturbed cycles": "v4b_disturbed_cycles",
    "perimenopausal": "default",
    "early postmenopausal": "v5_postmeno_placebo",
    "late postmenopausal": "v7_progesterone_cream_3y",
    "hypogonadal man": "v6_ttrials_untreated",
}
NO_PROTOCOL = "none"
SIZES = (64, 128, 256, 512)     # grid cells per side offered by the size control
SEEDS = range(20)               # seeds offered by the seed control
CACHE_SIZE = 3                  # spun-up states kept in memory (~25 MB each at 256 x 256)


@dataclass(frozen=True)
class Layer:
    """A grid layer shown as a heatmap: its property layer on model.grid and a fixed colour
    scale [lo, hi] in the layer's units (log unless log=False)."""

    name: str
    lo: float
    hi: float
    log: bool = True
    cmap: str = "viridis"


# Scales span what the tissue holds across patients and therapy: cytokines a few pM in marrow
# to hundreds next to their sources; hormones their serum ranges (E2 ~20 pmol/L after
# menopause to ~1,500 at mid-cycle, P4 < 1 to ~20 ng/mL luteal, T ~20 ng/dL in women to
# ~1,000 in men on therapy); the mechanical stimulus around its set point 1.
LAYERS = {
    "RANKL": Layer("rankl", 1.0, 1e3),
    "free RANKL": Layer("rankl_free", 1.0, 1e3),
    "OPG": Layer("opg", 10.0, 1e4),
    "TGF-beta": Layer("tgfb", 0.01, 10.0),
    "IL-6": Layer("il6", 0.1, 100.0),
    "E2": Layer("e2", 5.0, 5e3, cmap="magma"),
    "P4": Layer("p4", 0.05, 50.0, cmap="magma"),
    "T": Layer("t", 5.0, 5e3, cmap="magma"),
    "IGF-1": Layer("igf1", 0.3, 300.0),
    "sclerostin": Layer("sclerostin", 1.0, 1e3),
    "mechanical stimulus": Layer("stimulus", 0.0, 2.0, log=False, cmap="RdBu_r"),
}
UNITS = {spec.name: spec.units for spec in (*FIELDS, *RANKL_FREE_LAYER, *STIMULUS_LAYER)}

# tissue colours (RGB): marrow, vessel lumen, osteoid, matrix just mineralizing, fully mineral
MARROW, VESSEL, OSTEOID = to_rgb("#f6ead8"), to_rgb("#b2182b"), to_rgb("#f28e2b")
MINERAL_LOW, MINERAL_HIGH = to_rgb("#b9c7d8"), to_rgb("#2b3a55")
# cell type -> (label, colour); osteoclast dot area grows with its nuclei
CELL_STYLE = {
    OC_PRECURSOR: ("osteoclast precursor", "#c77dd0"),
    OSTEOCLAST: ("osteoclast", "#e7298a"),
    OB_PRECURSOR: ("osteoblast precursor", "#a6dba0"),
    OSTEOBLAST: ("osteoblast", "#1b7837"),
    OSTEOCYTE: ("osteocyte", "#80cdc1"),
    LINING: ("lining cell", "#fdd835"),
}
# figure sizes: 504 x 315 and 504 x 378 pixels, to fit SolaraViz's grid items (390 px high)
DPI, MAP_INCHES, RECORD_INCHES = 90, (5.6, 3.5), (5.6, 4.2)
NOTE_STYLE = {"font-size": "13px", "line-height": "1.3"}     # the date and record lines
DOT_AREA = 6.0          # points^2 of a mononuclear cell's dot
NUCLEUS_AREA = 4.0      # points^2 added per osteoclast nucleus


# ---------------------------------------------------------------------------- the model
def _scenario_path(name: str) -> Path:
    return SCENARIO_DIR / f"{name}.toml"


def _protocol_presets() -> dict:
    """Protocol name -> scenario file whose [[protocol]] tables it is ('none': no therapy)."""
    presets = {NO_PROTOCOL: None}
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        with open(path, "rb") as f:
            if tomllib.load(f).get("protocol"):
                presets[path.stem] = path
    return presets


PROTOCOLS = _protocol_presets()
# the scenario `bonesim viz` was started with (a file path), offered as patient and protocol
LAUNCHED = Path(os.environ.get("BONESIM_VIZ_SCENARIO", _scenario_path("default")))


def _patient_path(patient: str) -> Path:
    if patient == LAUNCHED.stem:
        return LAUNCHED
    if patient not in PATIENTS:
        raise ValueError(f"patient {patient!r}: no such preset (allowed: {', '.join(PATIENTS)})")
    return _scenario_path(PATIENTS[patient])


def _protocol_tables(protocol: str) -> list:
    if protocol == LAUNCHED.stem:
        path = LAUNCHED
    elif protocol in PROTOCOLS:
        path = PROTOCOLS[protocol]
    else:
        raise ValueError(f"protocol {protocol!r}: no such preset (allowed: {', '.join(PROTOCOLS)})")
    if path is None:
        return []
    with open(path, "rb") as f:
        return tomllib.load(f).get("protocol", [])


def parse_size(size: str) -> list[int]:
    """'ROWS x COLS' (the size control's text) -> [rows, cols]."""
    try:
        rows, cols = (int(part) for part in str(size).lower().split("x"))
    except ValueError:
        raise ValueError(f"tissue size {size!r}: expected 'ROWS x COLS', e.g. '256 x 256'") from None
    return [rows, cols]


def view_scenario(patient: str, protocol: str, seed: int, size: str) -> Scenario:
    """The scenario of the controls: the patient's scenario file with the protocol's tables,
    the seed and the tissue size; validated like any scenario (ScenarioError if not valid)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed {seed!r}: expected a whole number >= 0")
    overrides = {"protocol": _protocol_tables(protocol), "simulation.seed": seed,
                 "simulation.replicates": 1, "tissue.size": parse_size(size)}
    return load_scenario(_patient_path(patient), overrides)


spinup_status = solara.reactive("")


class SpinupProgress:
    """Spin-up progress: every percent on the page (`spinup_status`), every tenth on the
    terminal."""

    def __init__(self):
        self.percent = -1

    def __call__(self, days_done: float, days_total: float) -> None:
        percent = int(100 * days_done / days_total)
        if percent == self.percent:
            return
        text = f"spin-up before day 0: {days_done:.0f} of {days_total:.0f} days"
        spinup_status.value = text
        if percent // 10 != self.percent // 10:
            print(f"bonesim viz: {text}", file=sys.stderr, flush=True)
        self.percent = percent


class RecentSpinups(OrderedDict):
    """The last CACHE_SIZE spun-up states (BoneModel's `spinups`), the most recently used last."""

    def __getitem__(self, key: str) -> bytes:
        self.move_to_end(key)
        return super().__getitem__(key)

    def __setitem__(self, key: str, state: bytes) -> None:
        super().__setitem__(key, state)
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)


_spun_up = RecentSpinups()


class BoneView(BoneModel):
    """A BoneModel built from the viewer's controls, with agent data collected.

    SolaraViz's Reset rebuilds the model as `type(model)(**model_params)` and passes a Mesa
    `scenario` to a model whose __init__ takes one, so BoneView takes the controls' values
    and no `scenario`. The run is replicate 0 of `bonesim run` of the same scenario and seed
    (experiments/run.py replicate_seeds). A spin-up done before in this process (the same
    patient, size and seed, whatever the protocol) is taken from `_spun_up` instead of spun up
    again; either way the same arguments give the same model.
    """

    def __init__(self, patient: str = "perimenopausal", protocol: str = NO_PROTOCOL,
                 seed: int = 0, size: str = "256 x 256"):
        scenario = view_scenario(patient, protocol, seed, size)
        rng = np.random.SeedSequence(scenario.simulation.seed).spawn(1)[0]
        super().__init__(scenario, rng=rng, agent_data=True, progress=SpinupProgress(),
                         spinups=_spun_up)
        spinup_status.value = ""
        self.running = self.steps_done < self.n_steps

    def step(self) -> None:
        super().step()
        self.running = self.steps_done < self.n_steps


# ---------------------------------------------------------------------------- drawing
def tissue_rgb(tissue) -> np.ndarray:
    """(rows, cols, 3) colours of the section: marrow, vessels, osteoid, and mineralized
    matrix shaded from MINERAL_LOW to MINERAL_HIGH by its mineral per matrix volume, each
    grid cell mixed by its volume fractions."""
    osteoid = np.clip(tissue.osteoid, 0.0, 1.0)[..., None]
    matrix = np.clip(tissue.matrix, 0.0, 1.0 - osteoid[..., 0])[..., None]
    degree = np.clip(tissue.mineral / np.maximum(tissue.matrix, 1e-9), 0.0, 1.0)[..., None]
    low, high = np.array(MINERAL_LOW), np.array(MINERAL_HIGH)
    rgb = ((1.0 - osteoid - matrix) * np.array(MARROW) + osteoid * np.array(OSTEOID)
           + matrix * (low + degree * (high - low)))
    rgb[tissue.vessel] = VESSEL
    return rgb


def cell_dots(model: BoneModel) -> dict:
    """The living cells as scatter data: x, y [mm] (grid-cell centres), colours, dot areas
    [points^2] and edge colours (black: working in a BMU), straight from the kernel's arrays."""
    pop = model.population
    ints = pop.ints[:, : pop.n_hi]
    alive = np.flatnonzero(ints[I_KIND] >= 0)
    kind = ints[I_KIND, alive]
    mm = model.dx / 1000.0
    colours = np.array([to_rgb(CELL_STYLE[k][1]) for k in range(len(KIND_NAMES))])
    area = np.full(len(alive), DOT_AREA)
    oc = kind == OSTEOCLAST
    area[oc] = NUCLEUS_AREA * ints[I_NUCLEI, alive][oc] + DOT_AREA
    edge = np.zeros((len(alive), 4))
    edge[ints[I_BMU, alive] >= 0, 3] = 1.0
    return {"x": (ints[I_COL, alive] + 0.5) * mm, "y": (ints[I_ROW, alive] + 0.5) * mm,
            "c": colours[kind], "s": area, "edgecolors": edge, "kind": kind}


def _extent(model: BoneModel) -> tuple:
    rows, cols = model.tissue.shape
    mm = model.dx / 1000.0
    return (0.0, cols * mm, rows * mm, 0.0)


def _map_figure() -> tuple[Figure, object]:
    """A figure for a map of the section, with fixed axes (no layout pass: faster)."""
    fig = Figure(figsize=MAP_INCHES, dpi=DPI)
    return fig, fig.add_axes((0.08, 0.12, 0.55, 0.8))


def draw_tissue(model: BoneModel) -> Figure:
    """The section with its cells (see the module doc)."""
    fig, ax = _map_figure()
    ax.imshow(tissue_rgb(model.tissue), extent=_extent(model), interpolation="nearest")
    dots = cell_dots(model)
    ax.scatter(dots["x"], dots["y"], c=dots["c"], s=dots["s"], edgecolors=dots["edgecolors"],
               linewidths=0.6)
    handles = [Line2D([], [], ls="", marker="o", color=colour, label=label)
               for label, colour in CELL_STYLE.values()]
    handles += [Line2D([], [], ls="", marker="s", color=c, label=label)
                for label, c in (("osteoid", OSTEOID), ("new mineral", MINERAL_LOW),
                                 ("full mineral", MINERAL_HIGH), ("vessel", VESSEL))]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.64, 0.52), fontsize=7,
               frameon=False)
    ax.set_xlabel("mm", labelpad=1)
    ax.set_title(f"tissue and cells, day {model.day:.0f}", fontsize=10)
    return fig


def layer_norm(layer: Layer):
    return LogNorm(layer.lo, layer.hi, clip=True) if layer.log else Normalize(layer.lo, layer.hi, clip=True)


def surface_mask(bone: np.ndarray) -> np.ndarray:
    """Grid cells of bone (fraction >= 1/2) with a marrow neighbour across a face."""
    solid = bone >= 0.5
    inner = solid.copy()
    inner[1:] &= solid[:-1]
    inner[:-1] &= solid[1:]
    inner[:, 1:] &= solid[:, :-1]
    inner[:, :-1] &= solid[:, 1:]
    return solid & ~inner


def draw_layer(model: BoneModel, label: str) -> Figure:
    """Grid layer `label` (a key of LAYERS) on its fixed colour scale, bone surfaces in white."""
    layer = LAYERS[label]
    values = getattr(model.grid, layer.name).data
    fig, ax = _map_figure()
    image = ax.imshow(values, cmap=layer.cmap, norm=layer_norm(layer), extent=_extent(model),
                      interpolation="nearest")
    outline = np.zeros((*values.shape, 4))
    outline[surface_mask(model.tissue.bone)] = (1.0, 1.0, 1.0, 0.8)
    ax.imshow(outline, extent=_extent(model), interpolation="nearest")
    fig.colorbar(image, cax=fig.add_axes((0.66, 0.12, 0.03, 0.8)),
                 label=f"{label} [{UNITS[layer.name]}]")
    ax.set_xlabel("mm", labelpad=1)
    ax.set_title(f"{label}, day {model.day:.0f}", fontsize=10)
    return fig


def _record_figure(panels: int, years: float) -> tuple[Figure, list]:
    """Panels stacked over a shared time axis from 0 to `years`."""
    fig = Figure(figsize=RECORD_INCHES, dpi=DPI)
    axes = fig.subplots(panels, 1, sharex=True)
    fig.subplots_adjust(left=0.16, right=0.97, top=0.97, bottom=0.1, hspace=0.08)
    axes[-1].set_xlim(0.0, years)
    axes[-1].set_xlabel("years", labelpad=1)
    return fig, axes


def record_span(frame, run_years: float) -> float:
    """End of the record plots' time axis [years]: the record so far, at least a quarter year
    (or the whole run if shorter)."""
    return max(float(_years(frame)[-1]), min(0.25, run_years))


def _years(frame) -> np.ndarray:
    return frame["day"].to_numpy() / DAYS_PER_YEAR


def _plain_log(ax) -> None:
    """Log y axis labelled with plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def draw_bone_record(frame, years: float) -> Figure:
    """BMD change, the turnover markers and RANKL/OPG of a timeseries frame over `years`."""
    fig, (bmd, markers, ratio) = _record_figure(3, years)
    t = _years(frame)
    bmd.plot(t, frame["bmd_pct_spine"], label="spine (DXA)")
    bmd.plot(t, frame["vbmd_pct_trabecular"], label="trabecular (QCT)")
    bmd.axhline(0.0, color="0.6", lw=0.6)
    bmd.set_ylabel("BMD change [%]")
    markers.plot(t, frame["ctx_rel"], label="CTX", color="tab:red")
    markers.plot(t, frame["p1np_rel"], label="P1NP", color="tab:green")
    markers.set_ylabel("marker / day 0")
    ratio.plot(t, frame["rankl_opg_ratio"], color="tab:purple")
    ratio.set_ylabel("RANKL / OPG")
    for ax in (bmd, markers):
        ax.legend(fontsize=7, loc="upper left")
    return fig


def draw_body_record(frame, years: float) -> Figure:
    """Serum E2, P4, T and the cell counts of a timeseries frame over `years`."""
    fig, (serum, counts) = _record_figure(2, years)
    t = _years(frame)
    for column, label in (("serum_e2_pmol_l", "E2 [pmol/L]"), ("serum_p4_ng_ml", "P4 [ng/mL]"),
                          ("serum_t_ng_dl", "T [ng/dL]")):
        serum.plot(t, frame[column], label=label)
    _plain_log(serum)
    serum.set_ylabel("serum, interval mean")
    serum.legend(fontsize=7, loc="upper left")
    for column, kind in COUNT_COLUMNS.items():
        label, colour = CELL_STYLE[kind]
        counts.plot(t, frame[column], label=label, color=colour)
    _plain_log(counts)
    counts.set_ylabel("cells")
    counts.legend(fontsize=7, loc="upper left", ncols=2)
    return fig


def date_text(model: BoneModel) -> str:
    """The simulated date: day of the record, in years and days, and the patient's age."""
    years, days = divmod(int(round(model.day)), int(DAYS_PER_YEAR))
    age = model.spec.patient.age + model.day / DAYS_PER_YEAR
    return f"day {model.day:.0f} = year {years}, day {days} · age {age:.1f} years"


def record_text(model: BoneModel) -> str:
    """The last row of the record: spine BMD change and the interval's serum levels."""
    row = {name: values[-1] for name, values in model.datacollector.model_vars.items()}
    return (f"day {row['day']:.0f}: spine BMD {row['bmd_pct_spine']:+.2f} % · E2 "
            f"{row['serum_e2_pmol_l']:.0f} pmol/L · P4 {row['serum_p4_ng_ml']:.2f} ng/mL · "
            f"T {row['serum_t_ng_dl']:.0f} ng/dL")


def run_years(model: BoneModel) -> float:
    """Length of the run [years]."""
    return model.n_steps * model.dt / DAYS_PER_YEAR


# ---------------------------------------------------------------------------- components
@solara.component
def SpinupNote():
    """The spin-up's progress while a Reset builds a new model (re-rendered alone)."""
    solara.Text(spinup_status.value, classes=["bonesim-spinup"])


@solara.component
def TissueView(model):
    update_counter.get()
    with solara.Column(gap="0px", style=NOTE_STYLE):
        solara.Text(date_text(model), classes=["bonesim-date"])
        solara.Text(record_text(model), classes=["bonesim-record"])
        SpinupNote()
    solara.FigureMatplotlib(draw_tissue(model), format="png")


@solara.component
def LayerView(model):
    update_counter.get()
    label, set_label = solara.use_state("free RANKL")
    solara.Select("layer", value=label, values=list(LAYERS), on_value=set_label)
    solara.FigureMatplotlib(draw_layer(model, label), format="png")


def _record(model: BoneModel) -> tuple:
    frame = model.timeseries()
    return frame, record_span(frame, run_years(model))


@solara.component
def BoneRecord(model):
    update_counter.get()
    rows = len(model.datacollector.model_vars["day"])     # redrawn when a row is added
    figure = solara.use_memo(lambda: draw_bone_record(*_record(model)), [model, rows])
    solara.FigureMatplotlib(figure, dependencies=[model, rows], format="png")


@solara.component
def BodyRecord(model):
    update_counter.get()
    rows = len(model.datacollector.model_vars["day"])
    figure = solara.use_memo(lambda: draw_body_record(*_record(model)), [model, rows])
    solara.FigureMatplotlib(figure, dependencies=[model, rows], format="png")


# ---------------------------------------------------------------------------- the page
def _initial() -> dict:
    """Control values of the launched scenario."""
    spec = load_scenario(LAUNCHED)
    rows, cols = spec.tissue.size
    return {"patient": LAUNCHED.stem, "protocol": LAUNCHED.stem,
            "seed": spec.simulation.seed, "size": f"{rows} x {cols}"}


START = _initial()
model_params = {
    "patient": {"type": "Select", "value": START["patient"], "label": "patient",
                "values": list(dict.fromkeys([LAUNCHED.stem, *PATIENTS]))},
    "protocol": {"type": "Select", "value": START["protocol"], "label": "protocol",
                 "values": list(dict.fromkeys([LAUNCHED.stem, *PROTOCOLS]))},
    "seed": {"type": "Select", "value": START["seed"], "label": "seed",
             "values": sorted({START["seed"], *SEEDS})},
    "size": {"type": "Select", "value": START["size"], "label": "tissue (grid cells)",
             "values": list(dict.fromkeys([START["size"], *(f"{n} x {n}" for n in SIZES)]))},
}

model = BoneView(**START)
page = SolaraViz(model, components=[TissueView, LayerView, BoneRecord, BodyRecord],
                 model_params=model_params, name="bonesim")
page  # noqa: B018
