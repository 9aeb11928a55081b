"""Figures of a run: what a clinician looks at first."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PANELS = (
    ("BMD change (%)", ("bmd_pct_spine", "vbmd_pct_trabecular", "bmd_pct_hip")),
    ("turnover markers (x baseline)", ("ctx_rel", "p1np_rel")),
    ("serum E2 (pmol/L) and T (ng/dL)", ("serum_e2_pmol_l", "serum_t_ng_dl")),
    ("serum P4 (ng/mL)", ("serum_p4_ng_ml",)),
)
LABELS = {"bmd_pct_spine": "spine (DXA-like)", "vbmd_pct_trabecular": "trabecular vBMD (QCT-like)",
          "bmd_pct_hip": "hip", "ctx_rel": "CTX (resorption)", "p1np_rel": "P1NP (formation)",
          "serum_e2_pmol_l": "E2", "serum_t_ng_dl": "T", "serum_p4_ng_ml": "P4"}


def summary_figure(series: pd.DataFrame, title: str) -> plt.Figure:
    """Four stacked panels over years: BMD change (spine DXA-like, trabecular vBMD, and hip
    at site = hip), CTX/P1NP, E2 and T, P4.

    With several replicates, each line is the replicate mean and the band spans min..max.
    """
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(8, 10), sharex=True)
    years = series["day"] / 365.25
    for ax, (ylabel, columns) in zip(axes, PANELS):
        for column in columns:
            if column not in series:
                continue
            by_time = series.assign(years=years).groupby("years")[column]
            mean = by_time.mean()
            line, = ax.plot(mean.index, mean.values, label=LABELS[column], lw=1.4)
            if series["replicate"].nunique() > 1:
                ax.fill_between(mean.index, by_time.min().values, by_time.max().values,
                                color=line.get_color(), alpha=0.2, lw=0)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[0].axhline(0.0, color="k", lw=0.6)
    axes[-1].set_xlabel("years from start")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
