"""Field and cell snapshots of a run: what the tissue looked like on chosen days.

`bonesim run SCENARIO --snapshots EVERY` (EVERY a time, "90 d", or a number of days) writes one
file per replicate and snapshot day:

    RUN_DIR/snapshots/rep_000/day_00000.npz, day_00090.npz, ...

Each file is a compressed NumPy archive (`numpy.load` reads it; no pickle), written
atomically (temporary file, then rename). Arrays, for a section of R x C grid cells of side
`spacing_um`:

| array | shape, dtype | contents |
|---|---|---|
| day | (), float64 | simulated day of the snapshot (0 = end of the spin-up) |
| spacing_um | (), float64 | side of a grid cell [um] |
| field_names | (F,), str | names of the diffusing fields (model/fields.py `FIELDS`) |
| field_units | (F,), str | their units (cytokines pM; hormones in serum units) |
| fields | (F, R, C), float32 | field concentrations [field units] |
| rankl_free | (R, C), float32 | RANKL free to bind RANK [pM] |
| stimulus | (R, C), float32 | mechanical stimulus [1 = habitual load] |
| osteoid, matrix | (R, C), float32 | volume fractions of the grid cell [0..1] |
| mineral | (R, C), float32 | mineral in units of a fully mineralized cell [0..1] |
| vessel | (R, C), bool | marrow vessels |
| site_bmu | (R, C), int32 | BMU that eroded the grid cell and has not refilled it (-1: none) |
| cell_id | (N,), int64 | the cell's Mesa `unique_id` (the same cell keeps it through its changes of type) |
| cell_kind | (N,), int8 | cell type code, an index into `kind_names` |
| kind_names | (6,), str | oc_precursor, osteoclast, ob_precursor, osteoblast, osteocyte, lining |
| cell_row, cell_col | (N,), int32 | grid cell of each cell |
| cell_bmu | (N,), int32 | BMU the cell works in (-1: none) |
| cell_age | (N,), float32 | days since the cell entered its present type |
| cell_nuclei | (N,), int16 | osteoclast nuclei (0 for other types) |

Floats are stored in single precision: ~1-3 MB a snapshot at 256 x 256.

`read_snapshot(path)` gives a `Snapshot` (the arrays, and the cells as a DataFrame);
`read_snapshots(run_dir, replicate)` all snapshots of a replicate, in day order;
`take_snapshot(model)` the same from a live `BoneModel` (notebooks), `write_snapshot` writes
one, and `SnapshotWriter` is the hook the run uses (`experiments/run.py`). `draw(snapshot, ax)`
draws the section and its cells, or a field layer.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bonesim.agents.population import FREE, I_BMU, I_COL, I_KIND, I_NUCLEI, I_ROW, KIND_NAMES, X_AGE
from bonesim.experiments.files import atomic_path
from bonesim.model.fields import FIELDS

CELL_COLUMNS = ("cell_id", "cell_kind", "cell_row", "cell_col", "cell_bmu", "cell_age",
                "cell_nuclei")


@dataclass
class Snapshot:
    """The tissue on one day: `arrays` as in the module table; `cells` one row per cell
    (columns id, kind (name), row, col, bmu, age_days, nuclei)."""

    arrays: dict[str, np.ndarray]

    @property
    def day(self) -> float:
        return float(self.arrays["day"])

    def field(self, name: str) -> np.ndarray:
        """The (R, C) map of field `name` [its units], or of rankl_free, stimulus, osteoid,
        matrix, mineral, site_bmu, vessel."""
        if name in self.arrays and self.arrays[name].ndim == 2:
            return self.arrays[name]
        names = list(self.arrays["field_names"])
        if name not in names:
            raise KeyError(f"no field '{name}' (fields: {', '.join(names)})")
        return self.arrays["fields"][names.index(name)]

    # the matrix maps by name
    osteoid = property(lambda self: self.arrays["osteoid"])
    matrix = property(lambda self: self.arrays["matrix"])
    mineral = property(lambda self: self.arrays["mineral"])
    vessel = property(lambda self: self.arrays["vessel"])

    @property
    def cells(self) -> pd.DataFrame:
        a = self.arrays
        return pd.DataFrame({"id": a["cell_id"], "kind": a["kind_names"][a["cell_kind"]],
                             "row": a["cell_row"], "col": a["cell_col"], "bmu": a["cell_bmu"],
                             "age_days": a["cell_age"], "nuclei": a["cell_nuclei"]})


def take_snapshot(model) -> Snapshot:
    """The fields, matrix and cells of `model` (a BoneModel) now, as a Snapshot."""
    pop, tissue = model.population, model.tissue
    slots = np.flatnonzero(pop.ints[I_KIND, : pop.n_hi] != FREE)
    f32 = np.float32
    arrays = {
        "day": np.float64(model.day), "spacing_um": np.float64(model.dx),
        "field_names": np.array([f.name for f in FIELDS]),
        "field_units": np.array([f.units for f in FIELDS]),
        "fields": model.conc.astype(f32), "rankl_free": model.rankl_free.astype(f32),
        "stimulus": model.stimulus.astype(f32), "osteoid": tissue.osteoid.astype(f32),
        "matrix": tissue.matrix.astype(f32), "mineral": tissue.mineral.astype(f32),
        "vessel": tissue.vessel.astype(bool), "site_bmu": tissue.site_bmu.astype(np.int32),
        "cell_id": np.array([pop.agents[s].unique_id for s in slots], dtype=np.int64),
        "cell_kind": pop.ints[I_KIND, slots].astype(np.int8),
        "kind_names": np.array(KIND_NAMES),
        "cell_row": pop.ints[I_ROW, slots].astype(np.int32),
        "cell_col": pop.ints[I_COL, slots].astype(np.int32),
        "cell_bmu": pop.ints[I_BMU, slots].astype(np.int32),
        "cell_age": pop.flts[X_AGE, slots].astype(f32),
        "cell_nuclei": pop.ints[I_NUCLEI, slots].astype(np.int16),
    }
    return Snapshot(arrays)


def snapshot_name(day: float) -> str:
    """File name of the snapshot of `day`: day_00090.npz."""
    return f"day_{int(round(day)):05d}.npz"


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    """Write `snapshot` as a compressed .npz, atomically."""
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **snapshot.arrays)


def read_snapshot(path: Path) -> Snapshot:
    """The snapshot in the .npz file `path`."""
    with np.load(path, allow_pickle=False) as data:
        return Snapshot({name: data[name] for name in data.files})


def read_snapshots(run_dir: Path, replicate: int = 0) -> list[Snapshot]:
    """Every snapshot of `replicate` in the run directory `run_dir`, in day order."""
    folder = Path(run_dir) / "snapshots" / f"rep_{replicate:03d}"
    return [read_snapshot(p) for p in sorted(folder.glob("day_*.npz"))]


@dataclass
class SnapshotWriter:
    """Writes a snapshot of the model into `folder` on day 0 and whenever another `every`
    days [day] have passed (the first step at or past each multiple)."""

    folder: Path
    every: float
    next_day: float = 0.0

    def __call__(self, model) -> None:
        if model.day + 1e-9 >= self.next_day:
            write_snapshot(Path(self.folder) / snapshot_name(model.day), take_snapshot(model))
            self.next_day = (np.floor(model.day / self.every + 1e-9) + 1.0) * self.every


# colours of the cell types (order of kind_names) and of osteoid, for `draw`
KIND_COLOURS = ("#c77dd0", "#e7298a", "#a6dba0", "#1b7837", "#80cdc1", "#fdd835")
OSTEOID_RGB = np.array([0.96, 0.6, 0.2])


def draw(snapshot: Snapshot, ax, layer: str | None = None, cells: bool = True):
    """Draw `snapshot` on the matplotlib axes `ax`, in mm. Without `layer`: the mineral of each
    grid cell in grey (white: none, black: a fully mineralized cell), osteoid orange, vessels
    red; with `layer`: that field or map (`Snapshot.field`) as a heat map with the bone
    outlined. With `cells`, every cell as a dot coloured by its type (KIND_COLOURS), an
    osteoclast larger by its nuclei, a black rim on a cell working in a BMU. Returns the image
    (for a colour bar)."""
    mm = float(snapshot.arrays["spacing_um"]) / 1000.0
    rows, cols = snapshot.matrix.shape
    extent = (0.0, cols * mm, rows * mm, 0.0)
    if layer is None:
        grey = 1.0 - np.clip(snapshot.mineral, 0.0, 1.0)[..., None]
        osteoid = np.clip(snapshot.osteoid, 0.0, 1.0)[..., None]
        rgb = grey * (1.0 - osteoid) + OSTEOID_RGB * osteoid
        rgb[snapshot.vessel] = (0.85, 0.1, 0.1)
        image = ax.imshow(rgb, extent=extent, interpolation="nearest")
    else:
        image = ax.imshow(snapshot.field(layer), extent=extent, interpolation="nearest",
                          cmap="viridis")
        ax.contour(snapshot.osteoid + snapshot.matrix, levels=[0.5], colors="w",
                   linewidths=0.6, extent=(0.0, cols * mm, 0.0, rows * mm), origin="upper")
    if cells:
        a = snapshot.arrays
        colours = np.array(KIND_COLOURS)[a["cell_kind"].astype(int)]
        edges = np.where((a["cell_bmu"] >= 0)[:, None], (0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, 0.0))
        ax.scatter((a["cell_col"] + 0.5) * mm, (a["cell_row"] + 0.5) * mm, c=colours,
                   s=6.0 + 4.0 * a["cell_nuclei"], edgecolors=edges, linewidths=0.5)
    ax.set_xlim(0.0, cols * mm)
    ax.set_ylim(rows * mm, 0.0)
    ax.set_xlabel("mm")
    ax.set_title(f"day {snapshot.day:.0f}" + (f": {layer}" if layer else ""), fontsize=10)
    return image
