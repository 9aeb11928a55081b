"""Progesterone dose and route vs bone in anovulatory women (progesterone_dose.toml beside it).

    python experiments/sweeps/progesterone_dose.py [--out DIR] [--workers W] [--small]

Prints, per route and dose, the mean change of trabecular vBMD (QCT-like, what Prior 1990
measured in V4a) at the end of the year with its 95% interval over the replicate seeds, and the
mean luteal-phase serum progesterone that dose gives; response.png draws the curves.
"""

from pathlib import Path

from bonesim.experiments.sweep import run_example
from bonesim.experiments.validate import interval

if __name__ == "__main__":
    _, table, _ = run_example(Path(__file__).with_suffix(".toml"))
    done = table[table["status"] == "done"]
    print("route        dose     vBMD change, % [95% CI]      serum P4, ng/mL")
    for (arm, dose), runs in done.groupby(["arm", "protocol[0].dose"]):
        mean, low, high = interval(runs["vbmd_pct_trabecular"])
        print(f"{arm:<12} {dose:>4g} mg  {mean:+7.2f} [{low:+.2f}, {high:+.2f}]"
              f"        {runs['serum_p4_ng_ml'].mean():6.2f}")
