# %% [markdown]
# # 2. A virtual trial: PEPI
#
# The Postmenopausal Estrogen/Progestin Interventions trial (PEPI, JAMA 1996) randomized
# women 1-10 years past menopause to placebo, conjugated equine estrogens (CEE 0.625 mg/day)
# alone, or CEE with a progestogen: medroxyprogesterone acetate (MPA) continuous 2.5 mg/day or
# cyclic 10 mg on days 1-12, or oral micronized progesterone 200 mg on days 1-12. After 3 years
# spine BMD had fallen 1.8% on placebo and risen 3.5-5% on the hormone arms (docs/targets.md,
# rows V3a-V3f).
#
# In the model, estrogen acts on bone through ER: fewer BMUs activated, osteoclasts shorter-
# lived, more OPG and less RANKL, osteoblasts longer-lived; so turnover falls and the
# remodeling space refills, which is most of the early BMD gain. A progestin adds PR signalling
# to the osteoblast lineage (larger teams, more vigorous osteoblasts; docs/biology.md, section
# 1), which the trial's E+P minus E difference (V3f, +0.68%/yr in a meta-analysis) measures.
#
# The arms run on common random numbers: arm k of seed s has the same tissue and the same
# cell-level random streams as every other arm of seed s, so arm differences are paired.
#
# **Setting.** `SMALL` (the test suite, `BONESIM_CI=1`): 2 seeds of a 48 x 48 section for one
# year at a 3-day step: the machinery, not the answer. Unset: the validation setting, 8 seeds
# of 256 x 256 for the 3 years of the trial (hours on a laptop; `bonesim validate --only V3a V3b V3c V3d V3e V3f`
# is the same computation from the command line).

# %%
import os

SMALL = os.environ.get("BONESIM_CI") == "1"
SEEDS, SIZE, DT, YEARS = (2, 48, 3.0, 1.0) if SMALL else (8, None, None, None)
WORKERS = 2

# %%
import matplotlib.pyplot as plt
import numpy as np

from bonesim.experiments import targets as tg
from bonesim.experiments import validate as v

# %% [markdown]
# ## The arms
#
# `validate.arm_scenarios` loads the five arm files of `experiments/scenarios/` with the
# replicate seeds (and the small setting's tissue and step). Each arm's protocol is a list of
# `[[protocol]]` tables.

# %%
settings = v.arm_scenarios(tg.PEPI, SEEDS, quick=False, size=SIZE, dt=DT)
if YEARS is not None:
    settings = v.Settings({arm: s.model_copy(update={"simulation": s.simulation.model_copy(
        update={"duration": YEARS})}) for arm, s in settings.scenarios.items()}, SEEDS, False)
for arm, s in settings.scenarios.items():
    drugs = ", ".join(f"{p.drug} {p.route} {p.dose} {p.schedule}" for p in s.protocol) or "none"
    print(f"{arm:32s} {drugs}")

# %% [markdown]
# ## Run
#
# `validate.run_arms` simulates every (arm, seed) over local processes and keeps finished runs
# in `trial/.partial`, so an interrupted trial resumes.

# %%
results = v.run_arms(settings, "trial", workers=WORKERS, show_progress=False)
series = v.series_table(settings, results)
series["years"] = series["day"] / 365.25

# %% [markdown]
# ## BMD trajectories with 95% confidence bands
#
# For each arm, the mean spine BMD (as DXA sees it) over seeds with the t-based 95% interval of
# that mean at each output; the diamonds are PEPI's 3-year results with the bands the model must
# land in. The hormone arms should climb over the first year as the remodeling space refills
# (fewer BMUs open at any time), then keep a slower gain; placebo loses steadily.

# %%
fig, ax = plt.subplots(figsize=(9, 5))
for arm in tg.PEPI:
    block = series[series["arm"] == arm]
    stats = block.groupby("years")["bmd_pct_spine"].apply(lambda x: v.interval(x))
    t = stats.index.to_numpy()
    mean, lo, hi = (np.array([s[i] for s in stats]) for i in range(3))
    line, = ax.plot(t, mean, label=arm)
    ax.fill_between(t, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    for mark in (m for m in tg.MARKS if m.arm == arm):
        ax.errorbar([mark.years], [mark.value], yerr=[[mark.value - mark.lo], [mark.hi - mark.value]],
                    fmt="D", color=line.get_color(), capsize=4)
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("years from randomization")
ax.set_ylabel("spine BMD, % change (DXA-like)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)

# %% [markdown]
# ## The end points against the published ones
#
# `validate.evaluate` computes each target's statistic per seed (here at the end of the arms)
# and its mean with a 95% interval; a target passes when the mean lies inside the band. At the
# small setting the arms are shorter than the trial, so this table shows the machinery only.

# %%
table = v.evaluate(tg.select(["V3a", "V3b", "V3c", "V3d", "V3e", "V3f"]), settings, results)
targets = v.summary(table).query("level == 'target'")
targets[["id", "mean", "ci95_lo", "ci95_hi", "band_lo", "band_hi", "passed"]].round(2)

# %%
fig, ax = plt.subplots(figsize=(9, 3.5))
y = np.arange(len(targets))
low, high = targets["band_lo"].fillna(-10.0), targets["band_hi"].fillna(10.0)   # open sides
ax.barh(y, high - low, left=low, height=0.5, color="tab:green", alpha=0.3, label="band")
ax.errorbar(targets["mean"], y, xerr=[targets["mean"] - targets["ci95_lo"],
                                      targets["ci95_hi"] - targets["mean"]], fmt="o", capsize=3,
            color="k", label="simulated mean, 95% CI")
ax.set_yticks(y, targets["id"])
ax.set_xlabel("statistic (each target's units: % , %/yr or points)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)

# %% [markdown]
# ## Turnover markers
#
# CTX (resorption) and P1NP (formation), relative to each woman's own baseline. Estrogen
# lowers both within months: fewer BMUs are activated, so less bone is resorbed and, a
# remodeling period later, less is formed. The gap between the fall of CTX and the later fall
# of P1NP is the window in which BMD rises (formation still refilling cavities dug before
# therapy). Progestins should change the markers little; their effect is per BMU.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, marker in zip(axes, ("ctx_rel", "p1np_rel")):
    for arm in tg.PEPI:
        mean = series[series["arm"] == arm].groupby("years")[marker].mean()
        ax.plot(mean.index, mean.values, label=arm)
    ax.set_title(marker.split("_")[0].upper())
    ax.set_xlabel("years")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("relative to baseline (mean over seeds)")
axes[1].legend(fontsize=7)
fig.tight_layout()
