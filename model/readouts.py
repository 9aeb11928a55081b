"""What a clinician or modeler reads off the simulated tissue (BIOLOGY.md section 5).

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

DXA projects the whole vertebra. A share f of its mineral (tissue.dxa.spine_trabecular_fraction)
is the trabecular core simulated here; the rest, cortical shell and posterior elements, is not
simulated and changes by r (tissue.dxa.cortical_turnover_ratio, cortical / trabecular turnover)
of the trabecular percent change, so bmd_pct_spine = vbmd_pct_trabecular x (f + (1 - f) r). At
site = hip the trabecular part of the section (its cortex left out) stands in for the vertebral
body's core by the same formula: bmd_pct_spine is the spine reading of the same trabecular
response there, not a hip measure (that is bmd_pct_hip).

`remodeling_summary(model)` gives the histomorphometry of the BMUs completed since day 0
(resorption, reversal, formation periods, balance, erosion) and the cells' lifespans.
"""

import numpy as np

from bonesim.agents.population import (
    B_ERODED, B_FIRST_FORM, B_FIRST_RES, B_FORMED, B_FOUNDED, B_LAST_FORM, B_LAST_RES,
    B_OSTEOCLASTS, B_RESORBED, C_NBMU, I_NUCLEI, KIND_NAMES, LINING, OB_PRECURSOR, OC_PRECURSOR, OSTEOBLAST,
    OSTEOCLAST, OSTEOCYTE, T_FORMED, T_NEW_ERODED, T_OB_APOPTOSIS, T_OB_ENDS, T_OB_LIFE_SUM,
    T_OB_TO_LINING, T_OB_TO_OSTEOCYTE, T_OC_DEATHS, T_OC_LIFE_SUM, T_RESORBED,
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


def surface_faces(bone: np.ndarray) -> int:
    """Number of faces between a bone and a marrow grid cell (bone perimeter / dx)."""
    return int(np.count_nonzero(bone[1:] != bone[:-1]) + np.count_nonzero(bone[:, 1:] != bone[:, :-1]))


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
                        "remodeling_space_pct", "turnover_pct_per_yr"]
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
        eroded = tissue.site_bmu >= 0
        row["remodeling_space_pct"] = 100.0 * float((1.0 - bone[eroded]).clip(0).sum()) / bone.sum()
        self.row = {k: float(row[k]) for k in self.columns}


def remodeling_summary(model, settle_days: float = 60.0) -> dict:
    """Histomorphometry since day 0 of the record.

    BMUs count as completed when founded on or after day 0, with formation, and no
    resorption or formation in the last `settle_days`. Periods are medians [day]: resorption
    (first to last resorption), reversal (last resorption to first formation), formation
    (first to last formation); balance = formed / resorbed volume over completed BMUs;
    resorbed area per BMU [um^2] (median); erosion depth [um] = resorbed area / eroded surface
    (the quiescent surface the BMU turned into eroded surface) summed over completed BMUs, the
    mean depth of their cavities (histomorphometric E.De). Lifespans are mean ages at the end
    of the type [day].
    """
    n = int(model.population.counters[C_NBMU])
    b = model.bmu_stats[:n]
    day = model.day
    done = ((b[:, B_FOUNDED] >= 0) & (b[:, B_FIRST_FORM] >= 0) & (b[:, B_RESORBED] > 0)
            & (day - b[:, B_LAST_FORM] > settle_days) & (day - b[:, B_LAST_RES] > settle_days))
    d = b[done]
    delta = model.tally - model.recorder.tally0
    ob_ends = max(delta[T_OB_ENDS], 1.0)
    oc = model.population.slots(OSTEOCLAST)
    summary = {
        "bmus_completed": int(done.sum()),
        "bmus_founded": int(np.count_nonzero(b[:, B_FOUNDED] >= 0)),
        "resorption_days": float(np.median(d[:, B_LAST_RES] - d[:, B_FIRST_RES])) if len(d) else np.nan,
        "reversal_days": float(np.median(d[:, B_FIRST_FORM] - d[:, B_LAST_RES])) if len(d) else np.nan,
        "formation_days": float(np.median(d[:, B_LAST_FORM] - d[:, B_FIRST_FORM])) if len(d) else np.nan,
        "bmu_balance": float(d[:, B_FORMED].sum() / d[:, B_RESORBED].sum()) if len(d) else np.nan,
        "resorbed_area_um2": float(np.median(d[:, B_RESORBED])) * model.dx**2 if len(d) else np.nan,
        "erosion_depth_um": (float(d[:, B_RESORBED].sum() / d[:, B_ERODED].sum()) * model.dx
                             if len(d) and d[:, B_ERODED].sum() > 0 else np.nan),
        "osteoclasts_per_bmu": float(np.mean(d[:, B_OSTEOCLASTS])) if len(d) else np.nan,
        "osteoclast_lifespan_days": float(delta[T_OC_LIFE_SUM] / max(delta[T_OC_DEATHS], 1.0)),
        "osteoblast_lifespan_days": float(delta[T_OB_LIFE_SUM] / ob_ends),
        "osteoblast_fate_osteocyte": float(delta[T_OB_TO_OSTEOCYTE] / ob_ends),
        "osteoblast_fate_lining": float(delta[T_OB_TO_LINING] / ob_ends),
        "osteoblast_fate_apoptosis": float(delta[T_OB_APOPTOSIS] / ob_ends),
        "nuclei_per_osteoclast": float(model.population.ints[I_NUCLEI, oc].mean()) if len(oc) else np.nan,
    }
    summary.update({f"n_{name}": model.population.count(k) for k, name in enumerate(KIND_NAMES)})
    return summary
