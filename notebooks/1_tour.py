# %% [markdown]
# # 1. A tour of bonesim
#
# A virtual woman reaches her final menstrual period (FMP) at 51. Her ovaries stop making
# estradiol, and her trabecular bone starts to remodel faster and to lose mass: more basic
# multicellular units (BMUs) are activated, osteoclasts live longer and dig deeper, and each
# BMU's osteoblast team refills less than was removed (docs/biology.md, section 1).
#
# This notebook builds that patient, runs her tissue, looks at the tissue, the signal fields and
# the cells on chosen days (snapshots), reads the clinical readouts, and then changes one
# parameter to see which mechanism carries the loss.
#
# **Setting.** `SMALL` (set by the test suite through `BONESIM_CI=1`) runs a 96 x 96 section
# (~1 mm on a side) for one year: enough to see every piece work, far too small for the
# numbers to mean much (a 128^2 section's 3-year BMD change has an SD of ~2 points between
# seeds, docs/design.md decision 9). Unset, it runs the built-in scenario's 256 x 256 section
# for 5 years (about 15 minutes per run on one core).

# %%
import os

SMALL = os.environ.get("BONESIM_CI") == "1"
SIZE, YEARS, EVERY = (96, 1.0, 120.0) if SMALL else (256, 5.0, 365.0)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from bonesim.experiments.cli import scenario_path
from bonesim.experiments.run import run_scenario
from bonesim.experiments.snapshots import draw, read_snapshots
from bonesim.model.scenario import load_scenario

# %% [markdown]
# ## The patient
#
# Scenario files are TOML; `load_scenario` validates one and takes overrides with the same
# keys. The built-in `default` scenario is our patient: 50 years old, ovulatory cycles, FMP at
# 51, no therapy. We follow one section of her spine (`bonesim run default` follows eight and
# prints the 95% confidence interval of their mean).

# %%
scenario = load_scenario(scenario_path("default"), {
    "tissue.size": [SIZE, SIZE], "simulation.duration": f"{YEARS} years",
    "simulation.replicates": 1})
print(scenario.description)
print(scenario.patient)

# %% [markdown]
# ## Run, with snapshots
#
# `run_scenario` is `bonesim run`: it spins the tissue up under her own hormones (400 days, so
# that BMUs and a remodeling space are there on day 0, and the months since her menopausal
# transition began), runs it, and writes a run directory:
# `run.json`, `timeseries.parquet`, `summary.png`, and with `snapshot_every` the field and cell
# snapshots (`bonesim run default --snapshots "365 d"` on the command line).

# %%
series = run_scenario(scenario, "tour", snapshot_every=EVERY)
snapshots = read_snapshots("tour")
print([s.day for s in snapshots])
# run_scenario drew summary.png with matplotlib's file backend: figures inline again
# %matplotlib inline

# %% [markdown]
# ## The tissue and its cells
#
# `snapshots.draw` shades bone grey by its mineral (pale: newly formed, still mineralizing;
# black: fully mineralized), osteoid (unmineralized new matrix) orange, marrow white, vessels
# red. Each dot is a cell: lining cells (yellow) cover quiescent surfaces, osteocytes (teal) sit
# in the matrix, osteoclasts (magenta, larger with more nuclei) resorb, osteoblasts (dark green)
# refill, precursors are the paler shades of their lineage. A black rim marks a cell working in
# a BMU. Look for the cavities with osteoclasts at one end and
# osteoblasts at the other: a BMU caught in the act.

# %%
first, last = snapshots[0], snapshots[-1]
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
draw(first, axes[0])
draw(last, axes[1])
fig.tight_layout()

# %%
cells = pd.DataFrame({f"day {s.day:.0f}": s.cells["kind"].value_counts() for s in snapshots})
cells

# %% [markdown]
# ## The signal fields
#
# The cells talk through fields that diffuse, decay and exchange with the vessels each day.
# RANKL (made by osteoblasts and osteocytes) drives osteoclast formation; OPG is its decoy, so
# what the precursors feel is *free* RANKL. TGF-beta is released from the matrix as osteoclasts
# resorb: it calls osteoblast precursors to the cavity (coupling). Estradiol comes from the
# blood; after the FMP its level falls everywhere at once. Look where free RANKL and TGF-beta
# peak: at the resorbing surfaces.

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 9))
for ax, layer in zip(axes.flat, ("rankl_free", "opg", "tgfb", "e2")):
    image = draw(last, ax, layer=layer, cells=False)
    units = "pM" if layer == "rankl_free" else dict(zip(last.arrays["field_names"],
                                                        last.arrays["field_units"]))[layer]
    fig.colorbar(image, ax=ax, label=units, shrink=0.8)
fig.tight_layout()

# %% [markdown]
# ## The readouts
#
# One row per output interval (`model/readouts.py` describes every column). Spine BMD is given
# as DXA sees it (`bmd_pct_spine`, the whole vertebra) and as QCT sees the trabecular
# compartment (`vbmd_pct_trabecular`). CTX and P1NP are the resorption and formation markers,
# relative to the baseline; after the FMP both rise (faster turnover), CTX first.

# %%
years = series["day"] / 365.25
fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
axes[0, 0].plot(years, series["bmd_pct_spine"], label="spine BMD (DXA-like)")
axes[0, 0].plot(years, series["vbmd_pct_trabecular"], label="trabecular vBMD (QCT-like)")
axes[0, 0].set_ylabel("% change")
axes[0, 1].plot(years, series["ctx_rel"], label="CTX")
axes[0, 1].plot(years, series["p1np_rel"], label="P1NP")
axes[0, 1].set_ylabel("relative to baseline")
axes[1, 0].plot(years, series["serum_e2_pmol_l"])
axes[1, 0].set_ylabel("serum E2 (pmol/L)")
axes[1, 1].plot(years, series["remodeling_space_pct"], label="remodeling space")
axes[1, 1].plot(years, series["bone_lost_pct"], label="bone lost for good")
axes[1, 1].set_ylabel("% of bone volume")
for ax in axes.flat:
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("years from the start (FMP at 1 year)")
fig.tight_layout()

# %% [markdown]
# ## Change a parameter and compare
#
# Which mechanism carries the loss? Estrogen shortens osteoclast lives (it raises their
# apoptosis, `cells.osteoclast.e2_apoptosis`, docs/biology.md section 1). Switch that one effect
# off and run the same patient with the same seed: the two runs share their random numbers
# (every cell draws from its own stream), so their difference is the effect of the mechanism,
# not of chance. `runner.parameters_set` sets a parameter for the models built in this process
# while its block runs, and puts the value back afterwards.

# %%
from bonesim.experiments.runner import parameters_set

KEY = "cells.osteoclast.e2_apoptosis"
with parameters_set({KEY: 0.0}):
    without = run_scenario(scenario, "tour_without_e2_apoptosis")

compare = pd.DataFrame({
    "as modelled": series.iloc[-1], f"{KEY} = 0": without.iloc[-1]}).loc[[
        "bmd_pct_spine", "vbmd_pct_trabecular", "ctx_rel", "p1np_rel", "n_osteoclasts",
        "remodeling_space_pct", "bone_lost_pct"]]
compare

# %% [markdown]
# Without estrogen's pull on osteoclast apoptosis, osteoclasts live before the FMP as long as
# they do after it: expect more osteoclasts and a higher resorption marker (CTX) over the
# whole run, with the menopause adding less on top. (The osteoclast lifespan was
# calibrated with the effect on, so this is a what-if, not a second calibration.) At the small
# setting one seed of a small section is noise-dominated: run the full setting, or several
# seeds (notebook 2 shows how), before reading a number from it.
