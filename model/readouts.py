"""What a clinician or modeler reads off the simulated tissue (docs/biology.md section 5).

`Recorder` computes one row per output interval for the model's DataCollector:
  day                          end of the interval [day]
  bmd_pct_spine                spine areal BMD as DXA sees it, % change from day 0 (see below)
  vbmd_pct_trabecular          mineral of the trabecular compartment, % change from day 0 (what
                               QCT trabecular vBMD of the spine sees)
  bmd_pct_hip                  (site = hip) mineral of the whole section incl. the cortex, %
  bv_tv                        bone volume fraction of the trabecular compartment [-]
  ctx_rel, p1np_rel            resorbed mineral / formed osteoid per day over the interval,
                               relative to the end of the spin-up (CTX-like, P1NP-like)
  serum_e2_pmol_l, serum_p4_ng_ml, serum_t_ng_dl   interval means of the serum course
  n_oc_precursors ... n_lining cell counts by type at the end of the interval
  rankl_opg_ratio              mean total RANKL / mean total OPG in the marrow [-]
  activation_frequency_per_yr  bone surface newly eroded per year / bone surface [1/yr]
  remodeling_space_pct         eroded, not yet refilled volume, % of bone volume
  turnover_pct_per_yr          bone volume resorbed per year, % of bone volume
  bv_rs_tv                     bone volume plus remodeling space per tissue volume [-]: what
                               lowering turnover could give back is the remodeling space only
  bone_lost_pct                1 - (BV + RS) / (BV + RS at day 0), % : bone lost for good
  lost_perforation_pct, lost_arrested_pct   cavity volume since day 0 never to be refilled,
                               % of day-0 bone volume: the cells whose resorption cut through
                               a trabecula, and cavities whose osteoblast team was gone before
                               refilling them
  perforations_per_mm2         trabeculae cut through since day 0, per mm^2 of section
  bmus_completed, bmu_balance, wall_thickness_um, erosion_depth_um   the BMUs completed in the
                               interval (`completed_bmus`): their count, formed / resorbed
                               volume, and formed and resorbed area per eroded surface [um]
                               (W.Th and E.De of the section; W.Th / E.De = balance)
  tb_th_um, tb_n_per_mm        trabecular thickness 2 BV / BS [um] and number (BV/TV) / Tb.Th
                               [1/mm] (parallel-plate model, Parfitt 1983); BS is the Crofton
                               perimeter of the bone, since the count of faces between bone and
                               marrow cells overstates a curved boundary by ~4/pi
  euler_per_mm2                Euler number of the bone (pieces - enclosed marrow cavities,
                               8-connected bone) per mm^2 of section: falls as struts are cut
  nodes_per_mm2, free_ends_per_mm2   strut analysis of the skeletonized bone (Garrahan 1986;
                               Compston 1987): skeleton pixels with >= 3 and with 1 skeleton
                               neighbours, per mm^2; perforation turns nodes into free ends
  The structure measures (tb_th_um to free_ends_per_mm2) are taken without specks: enclosed
  marrow and pieces of bone smaller than tissue.architecture.speck_area (`despeckle`).

DXA projects the whole vertebra. A share f of its mineral (tissue.dxa.spine_trabecular_fraction)
is the trabecular core simulated here; the rest, cortical shell and posterior elements, is not
simulated and changes by r (tissue.dxa.cortical_turnover_ratio, cortical / trabecular turnover)
of the trabecular percent change, so bmd_pct_spine = vbmd_pct_trabecular x (f + (1 - f) r). At
site = hip the trabecular part of the section (its cortex left out) stands in for the vertebral
body's core by the same formula: bmd_pct_spine is the spine reading of the same trabecular
response there, not a hip measure (that is bmd_pct_hip).

`remodeling_summary(model)` gives the histomorphometry of the BMUs completed since day 0
(resorption, reversal, formation periods, balance, erosion), the cells' lifespans and the share
of their resorption capacity the osteoclasts used.
"""

import numpy as np
from skimage.measure import euler_number, perimeter_crofton
from skimage.morphology import skeletonize
from scipy import ndimage

from bonesim.agents.population import (
    B_ERODED, B_FIRST_FORM, B_FIRST_RES, B_FORMED, B_FOUNDED, B_LAST_FORM, B_LAST_RES,
    B_OSTEOCLASTS, B_PERFORATIONS, B_RESORBED, B_TEAM, B_TEAM_SIZE, C_NBMU, I_NUCLEI, KIND_NAMES,
    LINING, OB_PRECURSOR, OC_PRECURSOR, OSTEOBLAST, OSTEOCLAST, OSTEOCYTE, T_ARRESTED, T_FORMED,
    T_NEW_ERODED, T_OB_APOPTOSIS, T_OB_ENDS, T_OB_LIFE_SUM, T_OB_TO_LINING, T_OB_TO_OSTEOCYTE,
    T_OC_CAPACITY, T_OC_DEATHS, T_OC_LIFE_SUM, T_PERFORATIONS, T_RELEASED, T_RESORBED,
    T_RESORBED_MINERAL,
)
from bonesim.model.fields import FIELD_INDEX
from bonesim.model.parameters import value
from bonesim.model.units import DAYS_PER_YEAR

COUNT_COLUMNS = {"n_oc_precursors": OC_PRECURSOR, "n_osteoclasts": OSTEOCLAST,
                 "n_ob_precursors": OB_PRECURSOR, "n_osteoblasts": OSTEOBLAST,
                 "n_osteocytes": OSTEOCYTE, "n_lining": LINING}
SERUM_COLUMNS = {"serum_e2_pmol_l": "e2_pmol_l", "serum_p4_ng_ml": "p4_ng_ml",
                 "serum_t_ng_dl": "t_ng_dl"}
BASELINE_DAYS = 182.0   # marker baselines: the last half year of the spin-up
SETTLE_DAYS = 60.0      # a BMU with no resorption or formation for this long is completed


def surface_faces(bone: np.ndarray) -> int:
    """Number of faces between a bone and a marrow grid cell (bone perimeter / dx)."""
    return int(np.count_nonzero(bone[1:] != bone[:-1]) + np.count_nonzero(bone[:, 1:] != bone[:, :-1]))


def completed_bmus(bmu_stats: np.ndarray, day: float, settle_days: float = SETTLE_DAYS) -> np.ndarray:
    """Mask of the BMU records (rows of bmu_stats) completed by `day`: they resorbed, have no
    osteoblast at work, and neither resorbed nor formed in the last `settle_days`. A BMU whose
    cavity was never refilled (no team came) completes with what it formed."""
    b = bmu_stats
    last = np.maximum(b[:, B_LAST_RES], b[:, B_LAST_FORM])
    return ((b[:, B_FOUNDED] >= 0) & (b[:, B_RESORBED] > 0) & (b[:, B_TEAM] <= 0)
            & (day - last > settle_days))


def bmu_histomorphometry(b: np.ndarray, dx: float) -> dict:
    """Balance (formed / resorbed volume), wall thickness and erosion depth [um] (formed and
    resorbed area per eroded surface) of the BMU records `b` (rows of bmu_stats)."""
    resorbed, formed, eroded = b[:, B_RESORBED].sum(), b[:, B_FORMED].sum(), b[:, B_ERODED].sum()
    return {"bmus_completed": float(len(b)),
            "bmu_balance": formed / resorbed if resorbed > 0 else np.nan,
            "wall_thickness_um": formed / eroded * dx if eroded > 0 else np.nan,
            "erosion_depth_um": resorbed / eroded * dx if eroded > 0 else np.nan}


def _small_regions(mask: np.ndarray, max_area_um2: float, dx: float,
                   structure: np.ndarray | None) -> np.ndarray:
    """Cells of the connected regions of `mask` with area below max_area_um2 [um^2] at spacing
    dx [um] that do not touch the section's edge (beyond which a region runs on)."""
    labels, n = ndimage.label(mask, structure)
    small = np.bincount(labels.ravel(), minlength=n + 1) * dx * dx < max_area_um2
    small[0] = False
    small[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    return small[labels]


def despeckle(bone: np.ndarray, max_area_um2: float, dx: float) -> np.ndarray:
    """The bone mask `bone` (rows, cols) at spacing dx [um] with its specks removed: enclosed
    marrow (4-connected) and pieces of bone (8-connected) of area below max_area_um2 [um^2],
    away from the section's edge, take the phase around them."""
    bone = bone | _small_regions(~bone, max_area_um2, dx, None)
    return bone & ~_small_regions(bone, max_area_um2, dx, np.ones((3, 3), bool))


def architecture(bone: np.ndarray, dx: float) -> dict:
    """2D trabecular architecture of the bone mask `bone` (rows, cols) at spacing dx [um]:
    thickness, number, Euler number and strut analysis of the mask without its specks
    (`despeckle`; see the module doc)."""
    bone = despeckle(bone, value("tissue.architecture.speck_area"), dx)
    area_mm2 = bone.size * (dx / 1000.0) ** 2
    bv = float(bone.sum())
    bs_um = perimeter_crofton(bone, directions=4) * dx
    tb_th = 2.0 * bv * dx * dx / bs_um if bs_um > 0 else np.nan
    skeleton = skeletonize(bone)
    neighbours = ndimage.convolve(skeleton.astype(np.int64), np.ones((3, 3), dtype=np.int64),
                                  mode="constant") - skeleton
    return {"tb_th_um": tb_th,
            "tb_n_per_mm": bv / bone.size / tb_th * 1000.0 if tb_th > 0 else np.nan,
            "euler_per_mm2": euler_number(bone, connectivity=2) / area_mm2,
            "nodes_per_mm2": np.count_nonzero(skeleton & (neighbours >= 3)) / area_mm2,
            "free_ends_per_mm2": np.count_nonzero(skeleton & (neighbours == 1)) / area_mm2}


def remodeling_space(tissue) -> float:
    """Eroded, not yet refilled volume [grid-cell volumes]."""
    eroded = tissue.site_bmu >= 0
    return float((1.0 - tissue.bone[eroded]).clip(0).sum())


class Recorder:
    """Interval bookkeeping and the readout row of a BoneModel (see the module doc)."""

    def __init__(self, model):
        tissue = model.tissue
        self.hip = tissue.site == "hip"
        self.trabecular = ~tissue.cortical
        # bmd_pct_spine = dxa_scale x vbmd_pct_trabecular (see the module doc)
        f = value("tissue.dxa.spine_trabecular_fraction")
        self.dxa_scale = f + (1.0 - f) * value("tissue.dxa.cortical_turnover_ratio")
        bmd = ["bmd_pct_spine", "vbmd_pct_trabecular"] + (["bmd_pct_hip"] if self.hip else [])
        self.columns = ["day", *bmd, "bv_tv", "ctx_rel", "p1np_rel", *SERUM_COLUMNS,
                        *COUNT_COLUMNS, "rankl_opg_ratio", "activation_frequency_per_yr",
                        "remodeling_space_pct", "turnover_pct_per_yr", "bv_rs_tv",
                        "bone_lost_pct", "lost_perforation_pct", "lost_arrested_pct",
                        "perforations_per_mm2", "bmus_completed", "bmu_balance",
                        "wall_thickness_um", "erosion_depth_um", "tb_th_um", "tb_n_per_mm",
                        "euler_per_mm2", "nodes_per_mm2", "free_ends_per_mm2"]
        self.row: dict[str, float] = {}

    def reporters(self) -> dict:
        return {name: (lambda m, name=name: m.recorder.row[name]) for name in self.columns}

    def start(self, model) -> None:
        """Baselines at day 0 (the end of the spin-up) and the day-0 row."""
        tissue = model.tissue
        mineral = tissue.mineral
        self.mineral0_trab = float(mineral[self.trabecular].sum()) or np.nan   # no trabecular part
        self.mineral0_all = float(mineral.sum())
        mark = getattr(model, "baseline_mark", None)
        if mark is not None and model.day - mark[0] > 0:
            days = model.day - mark[0]
            delta = model.tally - mark[1]
            # a section too small to hold a BMU during the baseline window has no marker
            # baseline: its relative markers are undefined (NaN), not infinite
            self.ctx0 = delta[T_RESORBED_MINERAL] / days or np.nan
            self.p1np0 = delta[T_FORMED] / days or np.nan
        else:
            self.ctx0 = self.p1np0 = np.nan
        self.tally0 = model.tally.copy()
        trab = self.trabecular
        self.bone0 = float(tissue.bone[trab].sum())
        self.bv_rs0 = self.bone0 + remodeling_space(tissue)
        self.counted = completed_bmus(model.bmu_stats, model.day)
        self.last_tally = model.tally.copy()
        self.last_day = model.day
        self.next_output = model.day + model.output_every
        self.serum_sum = {k: 0.0 for k in SERUM_COLUMNS}
        self.serum_n = 0
        self._row(model, serum={k: model.course.mean[v][0] for k, v in SERUM_COLUMNS.items()},
                  interval=None)

    def accumulate(self, model, i: int) -> None:
        """Add step i's serum levels to the interval means."""
        for k, v in SERUM_COLUMNS.items():
            self.serum_sum[k] += model.course.mean[v][i]
        self.serum_n += 1

    def due(self, model) -> bool:
        """If an output interval ended with this step, compute its row and return True."""
        if model.day < self.next_output - 1e-9 and model.steps_done < model.n_steps:
            return False
        n = max(self.serum_n, 1)
        self._row(model, serum={k: s / n for k, s in self.serum_sum.items()},
                  interval=model.day - self.last_day)
        self.last_tally = model.tally.copy()
        self.last_day = model.day
        self.next_output += model.output_every
        self.serum_sum = {k: 0.0 for k in SERUM_COLUMNS}
        self.serum_n = 0
        return True

    def _row(self, model, serum: dict, interval: float | None) -> None:
        tissue = model.tissue
        bone = tissue.bone
        mineral = tissue.mineral
        trab = self.trabecular
        bone_volume = float(bone[trab].sum())
        trabecular_pct = 100.0 * (mineral[trab].sum() / self.mineral0_trab - 1.0)
        row = {"day": model.day, "bmd_pct_spine": self.dxa_scale * trabecular_pct,
               "vbmd_pct_trabecular": trabecular_pct}
        if self.hip:
            row["bmd_pct_hip"] = 100.0 * (mineral.sum() / self.mineral0_all - 1.0)
        row["bv_tv"] = bone_volume / max(1, int(trab.sum()))
        if interval:
            delta = model.tally - self.last_tally
            years = interval / DAYS_PER_YEAR
            row["ctx_rel"] = delta[T_RESORBED_MINERAL] / interval / self.ctx0
            row["p1np_rel"] = delta[T_FORMED] / interval / self.p1np0
            row["activation_frequency_per_yr"] = delta[T_NEW_ERODED] / max(1, surface_faces(bone >= 0.5)) / years
            row["turnover_pct_per_yr"] = 100.0 * delta[T_RESORBED] / years / bone.sum()
        else:
            row["ctx_rel"] = row["p1np_rel"] = 1.0
            row["activation_frequency_per_yr"] = row["turnover_pct_per_yr"] = np.nan
        row.update(serum)
        pop = model.population
        for name, kind in COUNT_COLUMNS.items():
            row[name] = pop.count(kind)
        marrow = bone < 0.5
        row["rankl_opg_ratio"] = (model.conc[FIELD_INDEX["rankl"]][marrow].mean()
                                  / max(model.conc[FIELD_INDEX["opg"]][marrow].mean(), 1e-30))
        rs = remodeling_space(tissue)
        row["remodeling_space_pct"] = 100.0 * rs / bone.sum()
        row["bv_rs_tv"] = (bone_volume + rs) / max(1, int(trab.sum()))
        row["bone_lost_pct"] = 100.0 * (1.0 - (bone_volume + rs) / self.bv_rs0)
        since = model.tally - self.tally0
        row["lost_perforation_pct"] = 100.0 * since[T_RELEASED] / self.bone0
        row["lost_arrested_pct"] = 100.0 * since[T_ARRESTED] / self.bone0
        area_mm2 = trab.size * (model.dx / 1000.0) ** 2
        row["perforations_per_mm2"] = since[T_PERFORATIONS] / area_mm2
        n = int(model.population.counters[C_NBMU])
        if len(self.counted) < n:
            self.counted = np.concatenate([self.counted, np.zeros(n - len(self.counted), bool)])
        done = completed_bmus(model.bmu_stats[:n], model.day)
        row.update(bmu_histomorphometry(model.bmu_stats[:n][done & ~self.counted[:n]], model.dx))
        self.counted[:n] |= done
        row.update(architecture((bone >= 0.5) & trab, model.dx))
        self.row = {k: float(row[k]) for k in self.columns}


def remodeling_summary(model, settle_days: float = SETTLE_DAYS) -> dict:
    """Histomorphometry since day 0 of the record.

    BMUs founded on or after day 0 and completed (`completed_bmus`). Periods are medians [day]
    over those that formed bone: resorption (first to last resorption), reversal (last
    resorption to first formation; negative when formation starts before the last
    resorption), formation (first to last formation). Over all completed BMUs, those never
    refilled included: balance = formed / resorbed volume, wall thickness and erosion depth
    [um] (`bmu_histomorphometry`), resorbed area per BMU [um^2] (median), osteoclasts and
    osteoblasts (team size) per BMU (means), the share that perforated a trabecula. Lifespans
    are mean ages at the end of the type [day]; osteoclast_capacity_used is the bone the
    osteoclasts resorbed / what their resorption capacity allowed (1 = never idle).
    """
    n = int(model.population.counters[C_NBMU])
    b = model.bmu_stats[:n]
    d = b[completed_bmus(b, model.day, settle_days)]
    f = d[d[:, B_FIRST_FORM] >= 0]     # the phases of BMUs that formed bone
    delta = model.tally - model.recorder.tally0
    ob_ends = max(delta[T_OB_ENDS], 1.0)
    oc = model.population.slots(OSTEOCLAST)

    def median(x):
        return float(np.median(x)) if len(x) else np.nan

    def mean(x):
        return float(np.mean(x)) if len(x) else np.nan

    summary = {
        "bmus_founded": int(np.count_nonzero(b[:, B_FOUNDED] >= 0)),
        **bmu_histomorphometry(d, model.dx),
        "resorption_days": median(f[:, B_LAST_RES] - f[:, B_FIRST_RES]),
        "reversal_days": median(f[:, B_FIRST_FORM] - f[:, B_LAST_RES]),
        "formation_days": median(f[:, B_LAST_FORM] - f[:, B_FIRST_FORM]),
        "resorbed_area_um2": median(d[:, B_RESORBED]) * model.dx**2,
        "osteoclasts_per_bmu": mean(d[:, B_OSTEOCLASTS]),
        "osteoblasts_per_bmu": mean(d[:, B_TEAM_SIZE]),
        "bmus_perforating": mean(d[:, B_PERFORATIONS] > 0),
        "osteoclast_lifespan_days": float(delta[T_OC_LIFE_SUM] / max(delta[T_OC_DEATHS], 1.0)),
        "osteoclast_capacity_used": float(delta[T_RESORBED] / delta[T_OC_CAPACITY])
        if delta[T_OC_CAPACITY] > 0 else np.nan,
        "osteoblast_lifespan_days": float(delta[T_OB_LIFE_SUM] / ob_ends),
        "osteoblast_fate_osteocyte": float(delta[T_OB_TO_OSTEOCYTE] / ob_ends),
        "osteoblast_fate_lining": float(delta[T_OB_TO_LINING] / ob_ends),
        "osteoblast_fate_apoptosis": float(delta[T_OB_APOPTOSIS] / ob_ends),
        "nuclei_per_osteoclast": float(model.population.ints[I_NUCLEI, oc].mean()) if len(oc) else np.nan,
    }
    summary["bmus_completed"] = int(summary["bmus_completed"])
    summary.update({f"n_{name}": model.population.count(k) for k, name in enumerate(KIND_NAMES)})
    return summary
