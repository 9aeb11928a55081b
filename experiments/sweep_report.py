"""What a finished sweep shows: sensitivity indices (sobol, morris), dose-response curves
(grid) and the distribution of responses in a virtual cohort, as tables and figures.

Each design point's output is the mean over its replicates (per arm); intervals are 95%: for
Sobol and Morris indices SALib's bootstrap, for means the t interval over runs
(`validate.interval`).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from bonesim.experiments.files import atomic_path, write_parquet
from bonesim.experiments.sweep_spec import Sweep
from bonesim.experiments.validate import interval


def sensitivity(sweep: Sweep, table: pd.DataFrame) -> pd.DataFrame:
    """Indices of every output in every arm (rows: arm, output, input, then the index columns
    of `Design.indices`). Empty if a run failed (the design would be incomplete)."""
    from bonesim.experiments.sweep import design, points

    if (table["status"] != "done").any():
        return pd.DataFrame()
    layout, at = design(sweep), points(sweep)
    frames = []
    for arm, runs in table.groupby("arm", sort=False):
        means = runs.groupby("point")[list(sweep.outputs)].mean().sort_index()
        for output in sweep.outputs:
            frame = layout.indices([tuple(p.values()) for p in at], means[output].to_numpy())
            frames.append(frame.assign(arm=arm, output=output))
    result = pd.concat(frames, ignore_index=True)
    return result[["arm", "output", *[c for c in result.columns if c not in ("arm", "output")]]]


def _g(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3g}"


def sensitivity_text(sweep: Sweep, indices: pd.DataFrame, failed: int) -> str:
    """sensitivity.md: one table per output and arm."""
    lines = [f"# Sensitivity: {sweep.name}", "",
             f"{sweep.design} design, {sweep.samples} {'N' if sweep.design == 'sobol' else 'trajectories'}, "
             f"{sweep.replicates} replicate(s) per point (mean over replicates), seed {sweep.seed}; "
             "outputs at the end of each run; 95% bootstrap intervals.", ""]
    if indices.empty:
        return "\n".join(lines + [f"{failed} run(s) failed: no indices (run the sweep again to "
                                  "retry them; `bonesim sweep --status` lists their errors).", ""])
    sobol = sweep.design == "sobol"
    for (arm, output), rows in indices.groupby(["arm", "output"], sort=False):
        lines += [f"## {output}" + (f" ({arm})" if arm else ""), ""]
        if sobol:
            lines += ["| input | S1 [95% CI] | ST [95% CI] |", "|---|---|---|"]
            lines += [f"| {r.input} | {_g(r.S1)} [{_g(r.S1_lo)}, {_g(r.S1_hi)}] | "
                      f"{_g(r.ST)} [{_g(r.ST_lo)}, {_g(r.ST_hi)}] |" for r in rows.itertuples()]
        else:
            lines += ["| input | mu* [95% CI] | mu | sigma |", "|---|---|---|---|"]
            lines += [f"| {r.input} | {_g(r.mu_star)} [{_g(r.mu_star_lo)}, {_g(r.mu_star_hi)}] | "
                      f"{_g(r.mu)} | {_g(r.sigma)} |"
                      for r in rows.sort_values("mu_star", ascending=False).itertuples()]
        lines.append("")
    return "\n".join(lines)


def _figure(n_panels: int, width: float = 4.6, height: float = 3.4):
    """A figure of `n_panels` axes, 3 a row (a plain Figure: no pyplot state, any backend)."""
    from matplotlib.figure import Figure

    ncols = min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def sensitivity_figure(sweep: Sweep, indices: pd.DataFrame):
    """Sobol: S1 and ST bars with 95% CIs per input; Morris: mu* against sigma per input."""
    groups = list(indices.groupby(["arm", "output"], sort=False))
    fig, axes = _figure(len(groups))
    for ax, ((arm, output), rows) in zip(axes, groups):
        if sweep.design == "sobol":
            x = np.arange(len(rows))
            for shift, name in ((-0.2, "S1"), (0.2, "ST")):
                ax.bar(x + shift, rows[name], 0.4, label=name,
                       yerr=[rows[name] - rows[f"{name}_lo"], rows[f"{name}_hi"] - rows[name]],
                       capsize=3)
            ax.set_xticks(x, rows["input"], rotation=60, ha="right", fontsize=7)
            ax.set_ylabel("Sobol index")
            ax.legend(fontsize=7)
        else:
            ax.errorbar(rows["mu_star"], rows["sigma"],
                        xerr=[rows["mu_star"] - rows["mu_star_lo"],
                              rows["mu_star_hi"] - rows["mu_star"]], fmt="o", capsize=3)
            for r in rows.itertuples():
                ax.annotate(r.input.split(".", 1)[-1], (r.mu_star, r.sigma), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
            ax.set_xlim(left=min(0.0, rows["mu_star_lo"].min()))
            ax.set_ylim(bottom=0.0)
            ax.set_xlabel(f"mu* ({output} units)")
            ax.set_ylabel("sigma")
        ax.set_title(output + (f" ({arm})" if arm else ""), fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{sweep.name}: {sweep.design} sensitivity (95% CIs)")
    fig.tight_layout()
    return fig


def _level(value):
    """A grid level as a label pandas can group by: a list value (a section size [64, 64])
    reads "64 x 64"; numbers and strings stay as they are."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return " x ".join(str(v) for v in value)
    return value


def response_figure(sweep: Sweep, table: pd.DataFrame):
    """Grid: each output against each varied input (mean over the other inputs and the
    replicates, with its 95% t interval), one line per arm."""
    done = table[table["status"] == "done"]
    panels = [(f, o) for o in sweep.outputs for f in sweep.factors]
    fig, axes = _figure(len(panels))
    for ax, (factor, output) in zip(axes, panels):
        for arm, runs in done.groupby("arm", sort=False):
            level = runs[factor.path].map(_level)
            stats = runs.groupby(level, sort=False)[output].apply(
                lambda v: pd.Series(interval(v), index=["mean", "lo", "hi"])).unstack()
            x = np.arange(len(stats)) if stats.index.dtype == object else stats.index
            line, = ax.plot(x, stats["mean"], "o-", label=arm or None)
            ax.fill_between(x, stats["lo"], stats["hi"], color=line.get_color(), alpha=0.2)
            if stats.index.dtype == object:
                ax.set_xticks(x, stats.index, fontsize=7)
        ax.set_xlabel(factor.path + (f" ({factor.units})" if factor.units else ""), fontsize=8)
        ax.set_ylabel(output, fontsize=8)
        ax.grid(alpha=0.3)
        if sweep.arms:
            ax.legend(fontsize=7)
    fig.suptitle(f"{sweep.name}: response at the end of the run (mean, 95% CI)")
    fig.tight_layout()
    return fig


def cohort_figure(sweep: Sweep, table: pd.DataFrame):
    """Cohort: each output per arm over the virtual patients (box and points, mean with 95%
    CI), and with two arms or more each arm's paired difference to the first arm."""
    done = table[table["status"] == "done"]
    arms = list(dict.fromkeys(done["arm"]))
    fig, axes = _figure(len(sweep.outputs))
    for ax, output in zip(axes, sweep.outputs):
        per_patient = done.groupby(["arm", "point"])[output].mean().unstack("arm")[arms]
        groups = [per_patient[a].dropna().to_numpy() for a in arms]
        labels = [a or "all" for a in arms]
        if len(arms) > 1:
            diffs = [(per_patient[a] - per_patient[arms[0]]).dropna().to_numpy() for a in arms[1:]]
            groups += diffs
            labels += [f"{a} - {arms[0]}" for a in arms[1:]]
        ax.boxplot(groups, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right", fontsize=7)
        for i, values in enumerate(groups, start=1):
            ax.plot(np.full(len(values), i) + np.linspace(-0.1, 0.1, len(values)), values, ".",
                    color="0.4", ms=3)
            mean, lo, hi = interval(values)
            ax.errorbar([i + 0.25], [mean], yerr=[[mean - lo], [hi - mean]], fmt="D",
                        color="C3", capsize=3, ms=4)
        ax.set_ylabel(output, fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{sweep.name}: {len(per_patient)} virtual patients (box: spread; red: mean, "
                 "95% CI)")
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def write(sweep: Sweep, table: pd.DataFrame, out: Path) -> None:
    """The design's tables and figures into `out` (see `sweep`'s module doc)."""
    if sweep.design in ("sobol", "morris"):
        indices = sensitivity(sweep, table)
        failed = int((table["status"] != "done").sum())
        with atomic_path(out / "sensitivity.md") as tmp:
            tmp.write_text(sensitivity_text(sweep, indices, failed))
        if not indices.empty:
            write_parquet(out / "sensitivity.parquet", indices)
            _save(sensitivity_figure(sweep, indices), out / "sensitivity.png")
    elif (table["status"] == "done").any():
        if sweep.design == "grid":
            _save(response_figure(sweep, table), out / "response.png")
        elif sweep.design == "cohort":
            _save(cohort_figure(sweep, table), out / "cohort.png")
