# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which cell parameters decide bone loss after menopause? A Morris screen
#
# After the final menstrual period, estradiol falls to a tenth of its premenopausal level.
# Without estrogen, osteoclasts live longer (estrogen drives their apoptosis), lining cells
# activate new remodeling units more often, and each unit's osteoblast team refills less of the
# cavity it is given: the spine loses 2-3 % of its BMD a year in the first years (docs/targets.md V2).
# Every step of that chain is a parameter of the model, known within a range
# (`model/parameters/cells.toml`, each with its `range` and `source`). Which of them decide
# how much bone a woman loses in three years?
#
# A **Morris screen** answers that cheaply. Each trajectory starts at a random point of the
# parameter box and moves one parameter at a time by a fixed step; the change of the output per
# step is that parameter's *elementary effect* there. Over trajectories:
# - **mu\*** (mean absolute elementary effect, in % BMD per full range) ranks how much a
#   parameter matters;
# - **sigma** (their spread) is large against mu\* when the parameter acts nonlinearly or
#   through interactions with others.
#
# What to look at: parameters with a large mu\* are the ones a calibration must pin down (and
# whose uncertainty the model's predictions inherit); parameters near zero can stay at their
# literature values. A parameter with a large sigma needs a Sobol analysis
# (`design = "sobol"`) to separate its own effect from its interactions.
#
# The screen runs through the sweep API (`bonesim.experiments.sweep`), the same as
# `bonesim sweep`: runs are kept in the output folder, so an interrupted screen resumes.

# %%
import os
from pathlib import Path

# One setting sizes the whole notebook: BONESIM_CI=1 (continuous integration) runs a tiny
# screen in a minute or two, on a 40x40 section (a few trabeculae, a handful of remodeling
# units) for 60 days: the machinery, not the biology.
# Without it: 8 parameters, 10 trajectories (90 runs), 96x96 sections over 3 years: hours on
# a laptop, minutes on a cluster (`--scheduler`).
CI = os.environ.get("BONESIM_CI") == "1"
SETTING = (dict(size=40, duration="60 d", spinup=200, trajectories=2, workers=2,
                factors=["cells.osteoclast.lifespan", "cells.osteoblast.lifespan",
                         "cells.lining.activation_rate"])
           if CI else
           dict(size=96, duration="3 years", spinup=400, trajectories=10, workers=os.cpu_count(),
                factors=["cells.osteoclast.lifespan", "cells.osteoclast.resorption_rate",
                         "cells.osteoclast.e2_apoptosis", "cells.oc_precursor.recruitment",
                         "cells.ob_precursor.recruitment", "cells.ob_precursor.reversal_window",
                         "cells.osteoblast.lifespan", "cells.lining.activation_rate"]))
OUT = Path("..", "runs", "notebooks", "03_sensitivity" + ("_ci" if CI else ""))
SETTING

# %% [markdown]
# ## The screen
#
# The patient is the V2 woman of the validation (`experiments/scenarios/v2_menopause.toml`),
# followed through her menopause. Every factor runs over its documented plausible range (the
# default bounds of a model parameter in a sweep file); the output is spine BMD as DXA sees it
# (`bmd_pct_spine`, % change from the start) at the end of the run, with the resorption and
# formation markers and the bone lost for good beside it.

# %%
from bonesim.experiments.sweep import load_sweep, run_sweep

text = f"""
[sweep]
scenario = "v2_menopause"
design = "morris"
samples = {SETTING["trajectories"]}
levels = 4
seed = 0
outputs = ["bmd_pct_spine", "ctx_rel", "p1np_rel", "bone_lost_pct"]

[set]
"tissue.size" = [{SETTING["size"]}, {SETTING["size"]}]
"simulation.duration" = "{SETTING["duration"]}"
"tissue.spinup.days" = {SETTING["spinup"]}
""" + "".join(f'[vary."{name}"]\n' for name in SETTING["factors"])
OUT.mkdir(parents=True, exist_ok=True)
(OUT / "morris_menopause.toml").write_text(text)
sweep = load_sweep(OUT / "morris_menopause.toml")
results = run_sweep(sweep, OUT, workers=SETTING["workers"], show_progress=False)
print(f"{(results['status'] == 'done').sum()} of {len(results)} runs done")
results.head()

# %% [markdown]
# ## Elementary effects: mu\* and sigma
#
# One table per output; mu\* with its 95% bootstrap interval, in the output's units per move
# across a factor's whole range.

# %%
import pandas as pd
from IPython.display import Image

indices = pd.read_parquet(OUT / "sensitivity.parquet")
indices[indices["output"] == "bmd_pct_spine"].sort_values("mu_star", ascending=False)

# %% [markdown]
# The sweep drew them in `sensitivity.png`: mu\* against sigma, one panel per output, with
# the 95% interval of mu\*.

# %%
Image(filename=str(OUT / "sensitivity.png"))

# %% [markdown]
# ## The runs behind the indices
#
# Each point is one run: BMD at the end against each factor's value. A factor with a large mu\*
# shows a trend here; a cloud without one, next to a large sigma, points at interactions.

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, len(SETTING["factors"]), figsize=(3.2 * len(SETTING["factors"]), 3),
                         sharey=True, squeeze=False)
for ax, name in zip(axes[0], SETTING["factors"]):
    ax.plot(results[name], results["bmd_pct_spine"], "o", alpha=0.7)
    ax.set_xlabel(name.removeprefix("cells."), fontsize=8)
    ax.grid(alpha=0.3)
axes[0][0].set_ylabel("spine BMD change at the end (%)")
fig.tight_layout()

# %% [markdown]
# ## Reading it
#
# At the CI setting the runs are far too short for the biology (two months, on a section of a
# few trabeculae, one seed): the numbers only show that the screen runs. At the full setting, expect the
# osteoclast's lifespan and the activation rate of lining cells, which set how much is resorbed
# after estrogen is gone, and the osteoblast team's size and lifespan, which set how much of
# it is refilled, to lead; the spin-up and section size matter for the noise, not the ranking
# (each trajectory's runs share their seeds: common random numbers).
