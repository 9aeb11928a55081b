"""Which cell parameters move 3-year BMD after menopause? (morris_cells.toml beside it).

    python experiments/sweeps/morris_cells.py [--out DIR] [--workers W] [--small]

Prints the cell parameters ranked by Morris mu* on spine BMD (% change at the end of the run
per move across a parameter's documented range), with sigma; sensitivity.md and
sensitivity.png hold every output.
"""

from pathlib import Path

import pandas as pd

from bonesim.experiments.sweep import run_example

if __name__ == "__main__":
    sweep, table, out = run_example(Path(__file__).with_suffix(".toml"))
    indices = pd.read_parquet(out / "sensitivity.parquet")
    ranked = indices[indices["output"] == "bmd_pct_spine"].sort_values("mu_star", ascending=False)
    print("parameter                              mu* [95% CI], % BMD        sigma")
    for r in ranked.itertuples():
        print(f"{r.input:<38} {r.mu_star:6.2f} [{r.mu_star_lo:.2f}, {r.mu_star_hi:.2f}]"
              f"        {r.sigma:6.2f}")
