# %% [markdown]
# # 4. The progesterone question
#
# Does progesterone build bone? Clinical data disagree by setting. In premenopausal women with
# ovulatory disturbances (normal estrogen, too little luteal progesterone) trabecular spine
# bone is lost, and a cyclic progestin prevents it (Prior 1990, 1994; docs/targets.md V4).
# After menopause, progesterone alone does not prevent loss (Seifert-Klauss & Prior 2010;
# V5), while a progestin added to estrogen gains a little more than estrogen alone (PEPI;
# Prior 2017, V3f).
#
# In the model, progesterone acts on bone through PR in the osteoblast lineage: it raises
# the proliferation of osteoblast precursors (`cells.ob_precursor.pr_drive`), so each BMU's
# finite team is larger, and the vigor of each osteoblast (`cells.osteoblast.pr_vigor`). It
# acts on how well each BMU refills, not on how many BMUs open. And PR expression in the
# osteoblast lineage is largely induced by estrogen (`cells.receptors.pr_er_independent`):
# without estrogen there is little PR for progesterone to act on. Estrogen, by contrast, acts
# on turnover: fewer BMUs activated, shorter-lived osteoclasts, more OPG and less RANKL
# (docs/biology.md, sections 1 and 2).
#
# So the model's answer should depend on the setting: with estrogen present (premenopausal
# anovulation, or estrogen therapy) progesterone improves the balance per BMU; with estrogen
# absent it has little to act on, and turnover stays high. Here we run progesterone alone,
# estrogen alone and both, in the two settings, and look at why.
#
# **Setting.** `SMALL` (the test suite, `BONESIM_CI=1`): one seed of a 48 x 48 section for one
# year at a 3-day step: the machinery only. Unset: 6 seeds of 192 x 192 for one year at the
# scenario's 1-day step (about two hours on 2 cores).

# %%
import os

SMALL = os.environ.get("BONESIM_CI") == "1"
SEEDS, SIZE, DT = (1, 48, 3.0) if SMALL else (6, 192, 1.0)
WORKERS = 2

# %%
import tomllib

import matplotlib.pyplot as plt
import pandas as pd

from bonesim.experiments import validate as v
from bonesim.experiments.cli import scenario_path
from bonesim.model.scenario import load_scenario

# %% [markdown]
# ## The patients and the arms
#
# Two women from the validation scenarios: a 33-year-old whose cycles are all anovulatory
# (normal estradiol, no luteal progesterone; V4a), and a 54-year-old three years past her final
# menstrual period on calcium (the V5 placebo arm). Each gets four arms for one year: nothing,
# oral micronized progesterone 300 mg nightly (as in V5), conjugated estrogens 0.625 mg daily
# (as in PEPI), and both. The arms of one woman share her tissue and seeds (common random
# numbers), so their differences are paired.

# %%
PATIENTS = {"anovulatory": "v4a_anovulatory", "postmenopausal": "v5_postmeno_placebo"}
PROGESTERONE = {"drug": "progesterone", "route": "oral", "dose": "300 mg", "schedule": "nightly"}
ESTROGEN = {"drug": "cee", "route": "oral", "dose": "0.625 mg", "schedule": "daily"}
ARMS = {"none": [], "progesterone": [PROGESTERONE], "estrogen": [ESTROGEN],
        "both": [ESTROGEN, PROGESTERONE]}

scenarios = {}
for patient, base in PATIENTS.items():
    with open(scenario_path(base), "rb") as f:
        own = tomllib.load(f).get("protocol", [])       # the patient's own tables (calcium)
    for arm, drugs in ARMS.items():
        scenarios[f"{patient}/{arm}"] = load_scenario(scenario_path(base), {
            "name": f"{patient}-{arm}", "protocol": own + drugs,
            "tissue.size": [SIZE, SIZE], "simulation.dt": f"{DT} d",
            "simulation.replicates": SEEDS})
list(scenarios)

# %% [markdown]
# ## Run
#
# `validate.run_arms` simulates every (arm, seed) over local processes; `validate.evaluate`
# (here with no targets) gives each arm's readouts per seed and their means with 95% intervals.

# %%
settings = v.Settings({name.replace("/", "_"): s for name, s in scenarios.items()}, SEEDS, False)
results = v.run_arms(settings, "progesterone", workers=WORKERS, show_progress=False)
table = v.summary(v.evaluate((), settings, results))


def readout(quantity: str) -> pd.DataFrame:
    """One readout of every arm: patient x arm, mean over seeds."""
    rows = table[table["quantity"] == quantity].set_index("id")["mean"]
    return pd.DataFrame({arm: {p: rows[f"{p}_{arm}"] for p in PATIENTS} for arm in ARMS})


# %% [markdown]
# ## What happened to bone
#
# Trabecular vBMD (as QCT sees it, the measure of Prior's studies) after one year.

# %%
readout("vbmd_pct_trabecular (end)").round(2)

# %%
series = v.series_table(settings, results)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, patient in zip(axes, PATIENTS):
    for arm in ARMS:
        mean = series[series["arm"] == f"{patient}_{arm}"].groupby("day")["vbmd_pct_trabecular"].mean()
        ax.plot(mean.index / 365.25, mean.values, label=arm)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(patient)
    ax.set_xlabel("years")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("trabecular vBMD, % change")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# ## Why: the hormones the tissue saw
#
# Serum means over the year. Oral progesterone raises P4 to luteal levels in both women; at
# 300 mg nightly it also damps the anovulatory woman's follicular estradiol a little (progestins
# suppress the ovary, dose-dependently). CEE raises E2-equivalent exposure.

# %%
pd.concat({"E2 (pmol/L)": readout("serum_e2_pmol_l (mean)"),
           "P4 (ng/mL)": readout("serum_p4_ng_ml (mean)")}).round(1)

# %% [markdown]
# ## Why: turnover (RANKL/OPG, activation) against balance per BMU
#
# Estrogen works on the left-hand side: RANKL/OPG falls, fewer BMUs are activated, turnover
# falls. Progesterone works on the right-hand side: the osteoblast team per BMU and the balance
# (formed / resorbed) of the BMUs completed in the year, and their wall thickness against their
# erosion depth. Where estrogen is present its PR induction lets progesterone act; where it is
# absent, the team barely changes. (The inflammatory cytokines IL-1, IL-6 and TNF-alpha, which
# estrogen suppresses, act in the same direction as RANKL; they are fields of the snapshots,
# see notebook 1.)

# %%
why = pd.concat({
    "RANKL/OPG": readout("rankl_opg_ratio (mean)"),
    "activation (1/yr)": readout("activation_frequency_per_yr (mean)"),
    "turnover (%/yr)": readout("turnover_pct_per_yr (mean)"),
    "osteoblasts per BMU": readout("osteoblasts_per_bmu (summary)"),
    "BMU balance": readout("bmu_balance (summary)"),
    "wall thickness (um)": readout("wall_thickness_um (summary)"),
    "erosion depth (um)": readout("erosion_depth_um (summary)"),
})
why.round(2)

# %% [markdown]
# **What to look at.** Compare the progesterone column with the none column in each patient:
# the team size and balance should rise more in the anovulatory woman (estrogen present, PR
# induced) than after menopause, while RANKL/OPG and activation barely move. Then compare
# estrogen with both: the progestin's added gain rides on estrogen, as in PEPI. At the small
# setting one seed of a tiny section decides nothing; the full setting gives intervals.
