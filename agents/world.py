"""The world a cell acts in: every array the cell rules read and write in one tissue step.

`World` is a namedtuple of arrays that numba passes whole, so a rule takes `(s, w)` (the cell's
slot and the world) and reads `w.osteoid`, `w.occ`, ... The model owns the arrays and builds
its World once (model/bone_model.py); tests build small ones.

  sysv (N_SYS,)           systemic and per-run inputs of the step, indexed by S_* (below)
  prm (n,)                cell parameters, indexed by agents/rates.py
  fi (len(FIELD_ORDER),)  index in `conc` of each field the cells read, indexed by F_*
  conc (n_fields, rows, cols)   field concentrations [field units]
  rankl_free (rows, cols) RANKL free to bind RANK [pM]
  stimulus (rows, cols)   mechanical stimulus [-] (1 = habitual)
  source (n_fields, rows, cols) secretion of the step [field units/day], added to
  osteoid, matrix, mineral_p, mineral_s (rows, cols)   matrix pools (model/tissue.py)
  vessel (rows, cols) bool; vessel_cells (n_vessels, 2); vessel_streams, vessel_clocks
                          (n_vessels, 2, 2) recruitment streams (kernel.open_vessel_streams)
  site_bmu (rows, cols)   surface memory (agents/neighborhood.py); eroded_day [day]
  occ (rows, cols)        slot of the cell in each grid cell, -1 empty
  ints, flts, moved, free, counters, events   the cell state (agents/population.py)
  tally (N_TALLY,), bmu_stats (n_bmus, N_BMU_COLS)   bookkeeping for the readouts
  seeds (3, rows*cols, 2), dist (3, rows, cols), queue (rows*cols,)   work arrays of the
                          precursors' distance maps (queue also of the flood fills)
  mark (rows, cols) int64 work array of `neighborhood.cuts_trabecula`, zero between uses
"""

from collections import namedtuple

from bonesim.agents.names import check_indices

# the fields a cell reads: the model's field registry is this list (model/fields.py)
FIELD_ORDER = ("rankl", "opg", "il1", "il6", "tnf", "tgfb", "igf1", "sclerostin", "e2", "p4",
               "mpa", "t")
(F_RANKL, F_OPG, F_IL1, F_IL6, F_TNF, F_TGFB, F_IGF1, F_SCLEROSTIN, F_E2, F_P4, F_MPA,
 F_T) = range(len(FIELD_ORDER))

# the systemic / per-run vector `sysv`: day [day], dt [day], dx [um], load [-], pth (PTH1R
# agonism, intact-PTH equivalents, the step's mean) [pg/mL], pth_pulse (PTH1R occupancy of the
# step's peak above its mean, when the peak is a pulse: teriparatide) [0..1], bp
# (bisphosphonate skeletal effect) [0..1], serm_load and serm_agonism (the SERMs' ER occupancy
# ratios, model/endocrine.py) [-], ocp_rate and obp_rate (precursor recruitment per vessel cell
# [1/day]), mol_pm [pM per molecule in a grid cell], patch (dx / patch_width), embed
# (probability that a grid cell of bone holds an osteocyte), osteoid_block [-]
SYSTEMIC = ("day", "dt", "dx", "load", "pth", "pth_pulse", "bp", "serm_load", "serm_agonism",
            "ocp_rate", "obp_rate", "mol_pm", "patch", "embed", "osteoid_block")
(S_DAY, S_DT, S_DX, S_LOAD, S_PTH, S_PTH_PULSE, S_BP, S_SERM_LOAD, S_SERM_AGONISM, S_OCP_RATE,
 S_OBP_RATE, S_MOL_PM, S_PATCH, S_EMBED, S_OSTEOID_BLOCK) = range(len(SYSTEMIC))
N_SYS = len(SYSTEMIC)

check_indices("F_", FIELD_ORDER, globals())
check_indices("S_", SYSTEMIC, globals())

World = namedtuple("World", (
    "sysv", "prm", "fi", "conc", "rankl_free", "stimulus", "source",
    "osteoid", "matrix", "mineral_p", "mineral_s",
    "vessel", "vessel_cells", "vessel_streams", "vessel_clocks", "site_bmu", "eroded_day",
    "occ", "ints", "flts", "moved", "free", "counters", "events", "tally", "bmu_stats",
    "seeds", "dist", "queue", "mark",
))
