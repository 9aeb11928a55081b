"""`bonesim pk SCENARIO.toml [--out DIR] [--seed N] [--years Y]`: a protocol's serum curves.

Computes the systemic course of a scenario (`model.endocrine.serum_course`) without running
the tissue and writes, atomically, to DIR (default runs/<name>-pk):
- `serum.parquet`: the sub-hour course, column 'day' and one column per level (units in names),
  the feedback axes included (model/endocrine.py SerumCourse: lh_drive, t_endogenous_ng_dl,
  t_exogenous_ng_dl, pituitary_response, gh_rel, ...);
- `serum.png`: E2, P4 and MPA, T (total, endogenous, exogenous), the axes' drives (LH, the
  pituitary's response to GnRH, GH secretion), IGF-1 and PTH, and the other levels over time.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bonesim.experiments.files import atomic_path, write_parquet  # noqa: E402
from bonesim.model.endocrine import serum_course  # noqa: E402
from bonesim.model.scenario import Scenario  # noqa: E402

PANELS = (
    ("estradiol [pmol/L]", ("e2_pmol_l",)),
    ("progestins [ng/mL]", ("p4_ng_ml", "mpa_ng_ml")),
    ("testosterone [ng/dL]", ("t_ng_dl", "t_endogenous_ng_dl", "t_exogenous_ng_dl")),
    ("axes: drive / normal [1]", ("lh_drive", "pituitary_response", "gh_rel")),
    ("IGF-1 [ng/mL], PTH [pg/mL], 25(OH)D [ng/mL]", ("igf1_ng_ml", "pth_pg_ml", "pth_total_pg_ml", "vitd_ng_ml")),
    ("relative levels [1]", ("aromatase_inhibition", "calcium_rel", "load_rel", "bisphosphonate_rel")),
    ("SERM ER occupancy ratios [1]", ("serm_er_load", "serm_er_agonism")),
    ("denosumab [ng/mL]", ("denosumab_ng_ml",)),
)


def serum_figure(fine: pd.DataFrame, title: str) -> plt.Figure:
    """One panel per group of levels against time (days, or years beyond two years)."""
    years = fine["day"].iloc[-1] > 730
    x = fine["day"] / 365.25 if years else fine["day"]
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(10, 2.2 * len(PANELS)), sharex=True)
    for ax, (label, columns) in zip(axes, PANELS):
        for column in columns:
            ax.plot(x, fine[column], lw=0.8, label=column)
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("years" if years else "days")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_pk(scenario: Scenario, out: Path, seed: int | None = None) -> dict[str, Path]:
    """Compute the serum course of `scenario` (seed: override of simulation.seed) and write
    serum.parquet and serum.png into `out`; returns their paths."""
    seed = scenario.simulation.seed if seed is None else seed
    course = serum_course(scenario, np.random.default_rng(seed))
    out = Path(out)
    paths = {"parquet": out / "serum.parquet", "png": out / "serum.png"}
    write_parquet(paths["parquet"], course.fine)
    fig = serum_figure(course.fine, f"{scenario.name}: serum levels (seed {seed})")
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return paths
