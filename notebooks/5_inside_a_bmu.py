# %% [markdown]
# # 5. Inside a BMU
#
# Bone is renewed by basic multicellular units (BMUs). A lining cell retracts and exposes
# mineralized bone (activation); osteoclast precursors home to it and fuse into osteoclasts that
# dig a cavity (resorption, 2-4 weeks); resorbed matrix releases TGF-beta, which calls
# osteoblast precursors; after a pause (reversal) a finite team of osteoblasts lays osteoid in
# the cavity, which then mineralizes (formation, 3-5 months). The team is recruited in a
# reversal window: what it leaves unfilled stays unfilled (docs/biology.md, section 1).
#
# This notebook follows one BMU of a healthy premenopausal woman (targets.md, V1) from its
# activation to its refilling, as pictures of its cells and fields over time, then measures it
# the way a histomorphometrist would: erosion depth, wall thickness, and its balance (formed /
# resorbed).
#
# **Setting.** `SMALL` (the test suite, `BONESIM_CI=1`): a 96 x 96 section for 240 days.
# Unset: 128 x 128 for a year, so more BMUs finish.

# %%
import os

SMALL = os.environ.get("BONESIM_CI") == "1"
SIZE, DAYS, EVERY = (96, 240, 4) if SMALL else (128, 365, 4)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bonesim.agents.population import BMU_COLUMNS, C_NBMU
from bonesim.experiments.cli import scenario_path
from bonesim.experiments.snapshots import draw, take_snapshot
from bonesim.model.bone_model import BoneModel
from bonesim.model.readouts import bmu_histomorphometry, completed_bmus, remodeling_summary
from bonesim.model.scenario import load_scenario

# %% [markdown]
# ## Run and keep a snapshot every few days
#
# `take_snapshot(model)` copies the fields, the matrix and every cell of a running model (the
# same content `bonesim run --snapshots` writes to disk).

# %%
scenario = load_scenario(scenario_path("v1_premenopausal"), {
    "tissue.size": [SIZE, SIZE], "simulation.duration": f"{DAYS} d", "simulation.replicates": 1})
model = BoneModel(scenario, rng=1)
frames = [take_snapshot(model)]
for _ in range(model.n_steps):
    model.step()
    if round(model.day) % EVERY == 0:
        frames.append(take_snapshot(model))
print(f"{len(frames)} snapshots, days {frames[0].day:.0f}-{frames[-1].day:.0f}")

# %% [markdown]
# ## Choose a BMU
#
# `model.bmu_stats` keeps one record per BMU: when it was founded, its first and last day of
# resorption and of formation, the volume it resorbed and formed (grid-cell volumes), its
# eroded surface (faces), its osteoclasts and its osteoblast team. We take a BMU founded after
# day 0 that finished (no osteoblast left at work and quiet for 60 days), else the one that
# has formed most so far.

# %%
records = pd.DataFrame(model.bmu_stats[: model.population.counters[C_NBMU]], columns=BMU_COLUMNS)
records["completed"] = completed_bmus(records[list(BMU_COLUMNS)].to_numpy(), model.day)
candidates = records[(records["founded"] >= 0) & (records["resorbed"] > 0)]
candidates = candidates.sort_values(["completed", "formed"], ascending=False)
bmu = int(candidates.index[0])
record = records.loc[bmu]
record

# %% [markdown]
# ## Where it is
#
# Its cavity is the set of grid cells it eroded and has not yet refilled (`site_bmu` of the
# snapshots), and its cells carry its id. We frame the picture around every place either was.

# %%
rows, cols = [], []
for s in frames:
    r, c = np.nonzero(s.field("site_bmu") == bmu)
    cells = s.cells[s.cells["bmu"] == bmu]
    rows += [*r, *cells["row"]]
    cols += [*c, *cells["col"]]
mm = model.dx / 1000.0
pad = 8
box = (max(min(cols) - pad, 0) * mm, min(max(cols) + pad, SIZE) * mm,
       min(max(rows) + pad, SIZE) * mm, max(min(rows) - pad, 0) * mm)

# %% [markdown]
# ## From activation to refilling
#
# Up to six moments of its life, in time order: the frames nearest its founding, the middle and
# end of resorption, the start, middle and end of formation (formation can start on one side
# of the cavity before resorption ends on the other). Osteoclasts are magenta
# (larger with more nuclei), osteoblasts dark green, lining cells yellow, osteocytes teal; a
# black rim marks this BMU's cells (and any other BMU's). Watch the cavity open, stand empty
# through reversal, and fill with orange osteoid that turns pale grey, then darker, as it
# mineralizes.

# %%
last_day = frames[-1].day
moments = [record["founded"], (record["first_res"] + record["last_res"]) / 2, record["last_res"]]
if record["first_form"] >= 0:
    moments += [record["first_form"], (record["first_form"] + record["last_form"]) / 2,
                record["last_form"]]
moments = [min(max(day, 0.0), last_day) for day in moments]
days = np.array([s.day for s in frames])


def nearest(day):
    """The snapshot nearest `day`."""
    return frames[int(np.argmin(abs(days - day)))]


chosen = sorted({id(nearest(day)): nearest(day) for day in moments}.values(), key=lambda s: s.day)

fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for ax, s in zip(axes.flat, chosen):
    draw(s, ax)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
for ax in axes.flat[len(chosen):]:
    ax.set_visible(False)
fig.tight_layout()

# %% [markdown]
# ## The signals around it
#
# Free RANKL (what drives osteoclast formation once OPG has bound its share) and active TGF-beta
# (released by resorption: the coupling signal that recruits osteoblast precursors), at the
# height of resorption and at the start of formation.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, s, layer in zip(axes, (nearest(moments[1]), nearest(moments[-1] if len(moments) < 4 else moments[3])),
                        ("rankl_free", "tgfb")):
    image = draw(s, ax, layer=layer, cells=False)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    fig.colorbar(image, ax=ax, label="pM", shrink=0.8)
fig.tight_layout()

# %% [markdown]
# ## Its cells and its cavity over time
#
# The number of its osteoclasts, its osteoblasts and the open cavity (eroded grid cells not yet
# refilled) in each snapshot: resorption, a reversal gap, then a team that appears at once
# (recruited in the window) and dwindles as its members are buried as osteocytes, become lining
# cells or die.

# %%
timeline = pd.DataFrame({
    "day": days,
    "osteoclasts": [((s.cells["bmu"] == bmu) & (s.cells["kind"] == "osteoclast")).sum() for s in frames],
    "osteoblasts": [((s.cells["bmu"] == bmu) & (s.cells["kind"] == "osteoblast")).sum() for s in frames],
    "open cavity (grid cells)": [(s.field("site_bmu") == bmu).sum() for s in frames],
}).set_index("day")
timeline.plot(figsize=(9, 3.5), grid=True, title=f"BMU {bmu}")

# %% [markdown]
# ## Its histomorphometry
#
# Erosion depth is the resorbed area per eroded surface, wall thickness the formed area per
# eroded surface; their ratio is the BMU's balance. The section's values (every BMU completed
# since day 0) are beside it; normal adult trabecular bone has wall thickness ~40-60 um and a
# balance near 1 before menopause. The phases are in days.

# %%
one = bmu_histomorphometry(record[list(BMU_COLUMNS)].to_numpy(dtype=float)[None], model.dx)
section = remodeling_summary(model)
phases = {"resorption_days": record["last_res"] - record["first_res"],
          "reversal_days": record["first_form"] - record["last_res"] if record["first_form"] >= 0 else np.nan,
          "formation_days": record["last_form"] - record["first_form"] if record["first_form"] >= 0 else np.nan}
pd.DataFrame({f"BMU {bmu}": {**one, **phases},
              "section": {k: section[k] for k in (*one, *phases)}}).round(2)
