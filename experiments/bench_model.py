"""Benchmark of the whole model (docs/design.md, decision 9): lattice site-days per second.

    python -m bonesim.experiments.bench_model [--sizes 512 768] [--years 0.25]
                                              [--spinup-days 400] [--floor 10] [--seed 1]

For each section size, a postmenopausal patient (the V5 placebo scenario: 54 years old, final
menstrual period at 51) is built, spun up and run for `--years`, all timed together: the work
is size^2 sites x (spin-up days + simulated days), the throughput that work over the wall
time. Fields, cells, events, matrix and readouts are all in it, and so is the set-up (tissue
generation, serum courses, placing the resident cells), the time outside the per-step split.
Printed per size: the wall time, the throughput, the per-step split [CPU ms] and
the field solver's mean CG iterations per step; with `--floor STEPS`, the end state is
stepped on as is, with no CG iteration and with no field solve (bench_cells.floor: lower
bounds of the wall time, whose fields are wrong).

The last line is one JSON object; its `site_days_per_s` is the figure of the first size
(512^2 by default).
"""

import argparse
import json
import time

import numpy as np

from bonesim.experiments.bench_cells import floor
from bonesim.experiments.files import PACKAGE_ROOT
from bonesim.model.bone_model import BoneModel
from bonesim.model.parameters import value
from bonesim.model.scenario import load_scenario
from bonesim.model.units import DAYS_PER_YEAR

SCENARIO = PACKAGE_ROOT / "experiments" / "scenarios" / "v5_postmeno_placebo.toml"


def whole_run(size: int, years: float, spinup_days: float, seed: int, then: int = 0) -> tuple[dict, BoneModel]:
    """A size x size postmenopausal section: set-up, spin-up and `years` timed as one; the
    model at the end with `then` steps of its scenario still to run."""
    dt = load_scenario(SCENARIO).simulation.dt
    days = years * DAYS_PER_YEAR + then * dt
    sc = load_scenario(SCENARIO, {"tissue.size": [size, size],
                                  "simulation.duration": f"{days / DAYS_PER_YEAR!r} years"})
    t0, c0 = time.perf_counter(), time.process_time()
    model = BoneModel(sc, rng=seed, spinup_days=spinup_days)
    iterations = np.zeros(model.solver.n_fields)
    for _ in range(model.n_steps - then):
        model.step()
        iterations += model.solver.iterations
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = model.steps_total
    site_days = size * size * steps * model.dt
    split = {k: v / steps * 1e3 for k, v in model.timing.items()}
    split["set-up"] = (cpu - sum(model.timing.values())) / steps * 1e3
    return {"size": size, "spinup_days": spinup_days, "years": years, "steps": steps,
            "wall_s": wall, "site_days_per_s": site_days / wall, "cpu_s": cpu,
            "site_days_per_cpu_s": site_days / cpu,
            "ms_per_step": {k: round(v, 3) for k, v in split.items()},
            "cg_iterations_per_step": {spec.name: round(n / model.steps_done, 2) for spec, n
                                       in zip(model.solver.fields, iterations)},
            "cells_at_end": len(model.agents)}, model


def report(size: int, args) -> dict:
    """One size's run, printed, with its floor variants if asked for (CPU ms per step)."""
    row, model = whole_run(size, args.years, args.spinup_days, args.seed, then=3 * args.floor)
    print(f"{size}x{size}, {row['spinup_days']:g} spin-up days + {args.years:g} years "
          f"({row['steps']} steps): {row['wall_s']:.1f} s, "
          f"{row['site_days_per_s'] / 1e6:.2f} M site-days/s; CPU {row['cpu_s']:.1f} s, "
          f"{row['site_days_per_cpu_s'] / 1e6:.2f} M site-days per CPU second; "
          f"{row['cells_at_end']} cells")
    print("  per step [ms]: " + ", ".join(f"{k} {v:.2f}" for k, v in row["ms_per_step"].items()))
    print("  CG iterations per step: " + ", ".join(
        f"{k} {v:.1f}" for k, v in row["cg_iterations_per_step"].items()))
    if args.floor > 0:
        row["floor"] = floor(model, args.floor)
        for b in row["floor"]:
            print(f"  {b['variant']:<24} {b['wall_ms_per_step']:7.1f} wall ms/step; " + ", ".join(
                f"{k} {v:.2f}" for k, v in b["ms_per_step"].items()))
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bonesim.experiments.bench_model",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 768])
    parser.add_argument("--years", type=float, default=0.25, help="simulated years after the spin-up")
    parser.add_argument("--spinup-days", type=float, default=None,
                        help="spin-up days (default: tissue.spinup.days, without the years since "
                             "the patient's menopausal transition that a run would add)")
    parser.add_argument("--floor", type=int, default=0, metavar="STEPS",
                        help="after the run, STEPS steps each as is, with no CG iteration and "
                             "with no field solve (lower bounds; 0: none)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.spinup_days is None:
        args.spinup_days = value("tissue.spinup.days")
    BoneModel(load_scenario(SCENARIO, {"tissue.size": [32, 32]}), rng=0, spinup_days=2).step()
    BoneModel.clock = staticmethod(time.process_time)
    try:
        rows = [report(size, args) for size in args.sizes]
    finally:
        BoneModel.clock = staticmethod(time.perf_counter)
    summary = {"site_days_per_s": rows[0]["site_days_per_s"], "runs": rows}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
