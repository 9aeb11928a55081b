"""A virtual cohort of early-postmenopausal women, CEE vs placebo (cohort_cee.toml beside it).

    python experiments/sweeps/cohort_cee.py [--out DIR] [--workers W] [--small]

Prints the spine BMD change at the end per arm over the virtual patients (mean with 95%
interval, and the spread), then each woman's paired CEE - placebo difference: its mean with
95% interval, and how many women gained bone on CEE relative to placebo; cohort.png draws them.
"""

from pathlib import Path

from bonesim.experiments.sweep import run_example
from bonesim.experiments.validate import interval

if __name__ == "__main__":
    _, table, _ = run_example(Path(__file__).with_suffix(".toml"))
    bmd = table[table["status"] == "done"].groupby(["point", "arm"])["bmd_pct_spine"].mean()
    per_woman = bmd.unstack("arm").dropna()
    for arm in ("placebo", "cee"):
        mean, low, high = interval(per_woman[arm])
        print(f"{arm:<8} spine BMD {mean:+.2f}% [{low:+.2f}, {high:+.2f}], "
              f"range {per_woman[arm].min():+.2f} to {per_woman[arm].max():+.2f}")
    difference = per_woman["cee"] - per_woman["placebo"]
    mean, low, high = interval(difference)
    print(f"CEE - placebo, paired: {mean:+.2f} points [{low:+.2f}, {high:+.2f}]; "
          f"{int((difference > 0).sum())} of {len(difference)} women better on CEE")
