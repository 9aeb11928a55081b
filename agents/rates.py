"""Names of the cell parameters the kernels read, in the order of the `prm` vector.

The model fills `prm[i] = value(KEYS[i])`: cell parameters are in model/parameters/cells.toml
(value, units, range and source of each; key "cells." + name), and the hormone receptors' EC50s
are those the endocrinology uses for receptor exposure (endocrine.toml [receptors]), so there
is one value for each. `agents` never imports `model`. Kernels index `prm` with the constants
below; occupancies of hormone receptors are C / (C + EC50), the form the serum exposure is
defined for.
"""

RATES = (
    # receptors: EC50 in the field's units; the share of osteoblast-lineage PR made without ER
    "receptors.rank_ec50", "receptors.igf1r_ec50", "receptors.tgfbr_ec50", "receptors.il1_ec50", "receptors.il6_ec50",
    "receptors.tnf_ec50", "receptors.sclerostin_ec50", "receptors.pth1r_ec50",
    "receptors.pr_er_independent",
    # osteoclast precursors
    "oc_precursor.recruitment", "oc_precursor.inflammation_supply", "oc_precursor.lifespan",
    "oc_precursor.speed", "oc_precursor.search_radius", "oc_precursor.differentiation_rate",
    "oc_precursor.fusion_rate",
    "oc_precursor.inflammation_gain", "oc_precursor.tgfb_inhibition",
    "oc_precursor.pr_inhibition",
    # osteoclasts
    "osteoclast.lifespan", "osteoclast.lifespan_shape", "osteoclast.e2_apoptosis",
    "osteoclast.tgfb_apoptosis", "osteoclast.rankl_survival",
    "osteoclast.bisphosphonate_apoptosis", "osteoclast.bisphosphonate_inhibition",
    "osteoclast.resorption_rate",
    "osteoclast.rankl_activity_floor", "osteoclast.max_nuclei", "osteoclast.speed",
    "osteoclast.turn_noise", "osteoclast.depth_preference", "osteoclast.cut_reach",
    "osteoclast.footprint_radius",
    # osteoblast precursors
    "ob_precursor.recruitment", "ob_precursor.recruitment_basal", "ob_precursor.reversal_window",
    "ob_precursor.reversal_delay", "ob_precursor.lifespan", "ob_precursor.speed",
    "ob_precursor.search_radius", "ob_precursor.division_rate",
    "ob_precursor.max_divisions", "ob_precursor.commitment_rate", "ob_precursor.basal_drive",
    "ob_precursor.tgfb_drive", "ob_precursor.pr_drive", "ob_precursor.ar_drive",
    "ob_precursor.igf1_drive", "ob_precursor.inflammation_inhibition",
    "ob_precursor.sclerostin_inhibition", "ob_precursor.rankl_secretion",
    "ob_precursor.opg_secretion",
    # osteoblasts
    "osteoblast.apposition_rate", "osteoblast.pr_vigor", "osteoblast.ar_vigor",
    "osteoblast.igf1_vigor", "osteoblast.sclerostin_inhibition",
    "osteoblast.inflammation_inhibition", "osteoblast.lifespan", "osteoblast.lifespan_shape",
    "osteoblast.e2_survival", "osteoblast.igf1_survival", "osteoblast.pth_pulse_survival", "osteoblast.inflammation_apoptosis",
    "osteoblast.sclerostin_apoptosis", "osteoblast.flat_formation", "osteoblast.retire_rate",
    "osteoblast.lining_fraction", "osteoblast.rankl_secretion", "osteoblast.opg_secretion",
    # regulation of RANKL / OPG expression in the osteoblast lineage and osteocytes
    "expression.e2_rankl_suppression", "expression.e2_opg_induction",
    "expression.pth_rankl_induction", "expression.pth_opg_suppression",
    "expression.inflammation_rankl_induction",
    # osteocytes
    "osteocyte.density", "osteocyte.lifespan", "osteocyte.disuse_apoptosis",
    "osteocyte.e2_survival", "osteocyte.sclerostin_secretion", "osteocyte.rankl_secretion",
    "osteocyte.opg_secretion", "osteocyte.mechano_hill", "osteocyte.e2_sclerostin_suppression",
    # lining cells
    "lining.activation_rate", "lining.activation_basal", "lining.e2_basal_suppression",
    "lining.disuse_gain", "lining.pth_gain", "lining.bisphosphonate_suppression",
    "lining.spread_speed", "lining.activation_window", "lining.rankl_secretion",
    "lining.opg_secretion",
    # marrow (non-agent immune and stromal cells)
    "marrow.il1_secretion", "marrow.il6_secretion", "marrow.tnf_secretion",
    "marrow.e2_cytokine_suppression",
    # matrix-bound signals and the reversal-surface memory
    "matrix.tgfb_content", "matrix.tgfb_activation", "matrix.igf1_content",
    "matrix.eroded_memory",
    # representation of cells on the grid
    "geometry.section_thickness", "geometry.patch_width",
)

HORMONE_RECEPTORS = ("endocrine.receptors.er_ec50_e2", "endocrine.receptors.pr_ec50_p4",
                     "endocrine.receptors.pr_ec50_mpa", "endocrine.receptors.ar_ec50_t")
KEYS = tuple("cells." + name for name in RATES) + HORMONE_RECEPTORS
INDEX = {key.removeprefix("cells."): i for i, key in enumerate(KEYS)}

RANK_EC50 = INDEX["receptors.rank_ec50"]
ER_EC50 = INDEX["endocrine.receptors.er_ec50_e2"]
PR_EC50_P4 = INDEX["endocrine.receptors.pr_ec50_p4"]
PR_EC50_MPA = INDEX["endocrine.receptors.pr_ec50_mpa"]
AR_EC50 = INDEX["endocrine.receptors.ar_ec50_t"]
IGF1R_EC50 = INDEX["receptors.igf1r_ec50"]
TGFBR_EC50 = INDEX["receptors.tgfbr_ec50"]
IL1_EC50 = INDEX["receptors.il1_ec50"]
IL6_EC50 = INDEX["receptors.il6_ec50"]
TNF_EC50 = INDEX["receptors.tnf_ec50"]
SCL_EC50 = INDEX["receptors.sclerostin_ec50"]
PTH_EC50 = INDEX["receptors.pth1r_ec50"]
PR_ER_INDEP = INDEX["receptors.pr_er_independent"]

OCP_RECRUIT = INDEX["oc_precursor.recruitment"]
OCP_INF_SUPPLY = INDEX["oc_precursor.inflammation_supply"]
OCP_LIFE = INDEX["oc_precursor.lifespan"]
OCP_SPEED = INDEX["oc_precursor.speed"]
OCP_RADIUS = INDEX["oc_precursor.search_radius"]
OCP_DIFF = INDEX["oc_precursor.differentiation_rate"]
OCP_FUSION = INDEX["oc_precursor.fusion_rate"]
OCP_INF_GAIN = INDEX["oc_precursor.inflammation_gain"]
OCP_TGFB_INH = INDEX["oc_precursor.tgfb_inhibition"]
OCP_PR_INH = INDEX["oc_precursor.pr_inhibition"]

OC_LIFE = INDEX["osteoclast.lifespan"]
OC_SHAPE = INDEX["osteoclast.lifespan_shape"]
OC_E2_APOP = INDEX["osteoclast.e2_apoptosis"]
OC_TGFB_APOP = INDEX["osteoclast.tgfb_apoptosis"]
OC_RANKL_SURV = INDEX["osteoclast.rankl_survival"]
OC_BP_APOP = INDEX["osteoclast.bisphosphonate_apoptosis"]
OC_BP_INH = INDEX["osteoclast.bisphosphonate_inhibition"]
OC_RES_RATE = INDEX["osteoclast.resorption_rate"]
OC_ACT_FLOOR = INDEX["osteoclast.rankl_activity_floor"]
OC_MAX_NUC = INDEX["osteoclast.max_nuclei"]
OC_SPEED = INDEX["osteoclast.speed"]
OC_TURN = INDEX["osteoclast.turn_noise"]
OC_DEPTH = INDEX["osteoclast.depth_preference"]
OC_CUT_REACH = INDEX["osteoclast.cut_reach"]
OC_FOOTPRINT = INDEX["osteoclast.footprint_radius"]

OBP_RECRUIT = INDEX["ob_precursor.recruitment"]
OBP_RECRUIT_BASAL = INDEX["ob_precursor.recruitment_basal"]
OBP_WINDOW = INDEX["ob_precursor.reversal_window"]
OBP_DELAY = INDEX["ob_precursor.reversal_delay"]
OBP_LIFE = INDEX["ob_precursor.lifespan"]
OBP_SPEED = INDEX["ob_precursor.speed"]
OBP_RADIUS = INDEX["ob_precursor.search_radius"]
OBP_DIV = INDEX["ob_precursor.division_rate"]
OBP_MAX_DIV = INDEX["ob_precursor.max_divisions"]
OBP_COMMIT = INDEX["ob_precursor.commitment_rate"]
OBP_BASAL = INDEX["ob_precursor.basal_drive"]
OBP_TGFB = INDEX["ob_precursor.tgfb_drive"]
OBP_PR = INDEX["ob_precursor.pr_drive"]
OBP_AR = INDEX["ob_precursor.ar_drive"]
OBP_IGF = INDEX["ob_precursor.igf1_drive"]
OBP_INF_INH = INDEX["ob_precursor.inflammation_inhibition"]
OBP_SCL_INH = INDEX["ob_precursor.sclerostin_inhibition"]
OBP_RANKL = INDEX["ob_precursor.rankl_secretion"]
OBP_OPG = INDEX["ob_precursor.opg_secretion"]

OB_MAR = INDEX["osteoblast.apposition_rate"]
OB_PR_VIGOR = INDEX["osteoblast.pr_vigor"]
OB_AR_VIGOR = INDEX["osteoblast.ar_vigor"]
OB_IGF_VIGOR = INDEX["osteoblast.igf1_vigor"]
OB_SCL_INH = INDEX["osteoblast.sclerostin_inhibition"]
OB_INF_INH = INDEX["osteoblast.inflammation_inhibition"]
OB_LIFE = INDEX["osteoblast.lifespan"]
OB_SHAPE = INDEX["osteoblast.lifespan_shape"]
OB_E2_SURV = INDEX["osteoblast.e2_survival"]
OB_IGF_SURV = INDEX["osteoblast.igf1_survival"]
OB_PTH_SURV = INDEX["osteoblast.pth_pulse_survival"]
OB_INF_APOP = INDEX["osteoblast.inflammation_apoptosis"]
OB_SCL_APOP = INDEX["osteoblast.sclerostin_apoptosis"]
OB_FLAT = INDEX["osteoblast.flat_formation"]
OB_RETIRE = INDEX["osteoblast.retire_rate"]
OB_LINING = INDEX["osteoblast.lining_fraction"]
OB_RANKL = INDEX["osteoblast.rankl_secretion"]
OB_OPG = INDEX["osteoblast.opg_secretion"]

EX_E2_RANKL = INDEX["expression.e2_rankl_suppression"]
EX_E2_OPG = INDEX["expression.e2_opg_induction"]
EX_PTH_RANKL = INDEX["expression.pth_rankl_induction"]
EX_PTH_OPG = INDEX["expression.pth_opg_suppression"]
EX_INF_RANKL = INDEX["expression.inflammation_rankl_induction"]

OCY_DENSITY = INDEX["osteocyte.density"]
OCY_LIFE = INDEX["osteocyte.lifespan"]
OCY_DISUSE_APOP = INDEX["osteocyte.disuse_apoptosis"]
OCY_E2_SURV = INDEX["osteocyte.e2_survival"]
OCY_SCL = INDEX["osteocyte.sclerostin_secretion"]
OCY_RANKL = INDEX["osteocyte.rankl_secretion"]
OCY_OPG = INDEX["osteocyte.opg_secretion"]
OCY_MECH_HILL = INDEX["osteocyte.mechano_hill"]
OCY_E2_SCL = INDEX["osteocyte.e2_sclerostin_suppression"]

LIN_ACT = INDEX["lining.activation_rate"]
LIN_ACT_BASAL = INDEX["lining.activation_basal"]
LIN_E2_BASAL = INDEX["lining.e2_basal_suppression"]
LIN_DISUSE = INDEX["lining.disuse_gain"]
LIN_PTH = INDEX["lining.pth_gain"]
LIN_BP = INDEX["lining.bisphosphonate_suppression"]
LIN_SPREAD = INDEX["lining.spread_speed"]
LIN_WINDOW = INDEX["lining.activation_window"]
LIN_RANKL = INDEX["lining.rankl_secretion"]
LIN_OPG = INDEX["lining.opg_secretion"]

MAR_IL1 = INDEX["marrow.il1_secretion"]
MAR_IL6 = INDEX["marrow.il6_secretion"]
MAR_TNF = INDEX["marrow.tnf_secretion"]
MAR_E2_SUPP = INDEX["marrow.e2_cytokine_suppression"]

MAT_TGFB = INDEX["matrix.tgfb_content"]
MAT_TGFB_ACT = INDEX["matrix.tgfb_activation"]
MAT_IGF1 = INDEX["matrix.igf1_content"]
MAT_ERODED_MEMORY = INDEX["matrix.eroded_memory"]

SECTION_THICKNESS = INDEX["geometry.section_thickness"]
PATCH_WIDTH = INDEX["geometry.patch_width"]


def _check_one_constant_per_parameter() -> None:
    """Every parameter of KEYS has exactly one index constant above, and every constant one
    parameter: a parameter added to RATES without its constant, or two constants for one name,
    fail at import."""
    indices = sorted(v for k, v in globals().items()
                     if k.isupper() and isinstance(v, int) and not isinstance(v, bool))
    if indices != list(range(len(KEYS))):
        missing = sorted(set(range(len(KEYS))) - set(indices))
        raise ImportError(f"rates.py: parameters without one index constant: "
                          f"{[KEYS[i] for i in missing]}; repeated indices: "
                          f"{sorted(i for i in set(indices) if indices.count(i) > 1)}")


_check_one_constant_per_parameter()
