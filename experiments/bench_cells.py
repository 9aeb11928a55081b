"""Benchmark of the cells (docs/design.md, decision 2): plain Mesa per-agent step() vs the numba path.

    python -m bonesim.experiments.bench_cells [--steps 5] [--years 10] [--sizes 1000 10000 100000]
                                              [--floor 40]

1. The same rules, two ways, at 10^3, 10^4 and 10^5 cells: each population is a BoneModel
   section (lining cells, osteocytes and whatever the spin-up made) topped up with osteoclast
   and osteoblast precursors in the marrow to the wanted number of cells. Two identical models
   (same seed) then advance their cells `--steps` steps, taking turns step by step (so that
   the load of this shared machine weighs on both alike): one through
   `model.agents.shuffle_do` (`BoneCell.step`, the rules of one cell called from Python per
   agent), one through `kernel.step_cells` (one numba call for all cells). Both mirror events
   on the Mesa agents the same way. Reported: agent-steps per second of the per-cell rules
   in each path and their ratio, and the wall time of the whole cell phase per step (plus
   the shared tissue-level preparation: recruitment, marrow sources, precursor target maps;
   and events).
2. `--years` simulated years of the default scenario on a 256 x 256 section (warm JIT cache),
   wall time and the per-step split: fields, cells, events, matrix, readouts.
3. `--floor STEPS`: from the long run's end state, STEPS more steps three ways, to show what
   bounds the wall time: as is; each field solve stopped before its first CG iteration (what
   a solve costs at the least: its set-up passes, i.e. right-hand side, level diagonals and
   residual, one multigrid V-cycle and the conservation pass); and
   no field solve at all (the cells, the Mesa mirroring, the matrix and the readouts alone).
   The last two give wrong fields; they are lower bounds of the time, not runs to read.
The last line is one JSON object with the headline figures.
"""

import argparse
import json
import time

import numpy as np

from bonesim.agents import kernel
from bonesim.agents.population import OB_PRECURSOR, OC_PRECURSOR, apply_events, sync_moves
from bonesim.model.bone_model import CELL_CLASSES, BoneModel
from bonesim.model.fields import free_rankl
from bonesim.model.scenario import load_scenario
from bonesim.experiments.files import PACKAGE_ROOT

SCENARIO = PACKAGE_ROOT / "experiments" / "scenarios" / "default.toml"


def populated_model(n_cells: int, seed: int = 0) -> BoneModel:
    """A BoneModel whose section holds `n_cells` cells (precursors fill up the marrow)."""
    side = int(max(64, np.ceil(np.sqrt(n_cells / 0.35))))
    base = load_scenario(SCENARIO)
    sc = base.model_copy(update={"tissue": base.tissue.model_copy(update={"size": (side, side)})})
    model = BoneModel(sc, rng=seed, spinup_days=30)
    missing = n_cells - len(model.agents)
    if missing > 0:
        free = np.argwhere((model.occ < 0) & (model.tissue.bone < 0.5))
        rng = np.random.default_rng(seed)
        cells = free[rng.choice(len(free), size=min(missing, len(free)), replace=False)]
        pop = model.population
        for kind, part in ((OC_PRECURSOR, cells[::2]), (OB_PRECURSOR, cells[1::2])):
            pop.reserve(len(part) + 1)
            if pop.events.shape[0] < len(part) + 1:
                pop.events = np.zeros((len(part) + 1, 4), dtype=np.int64)
            kernel.place_cells(seed + kind, kind, part.astype(np.int64), False, model.prm,
                               model.occ, pop.ints, pop.flts, pop.free, pop.counters, pop.events)
            apply_events(model, CELL_CLASSES)
    return model


def time_cells(model: BoneModel, i: int, per_agent: bool) -> dict:
    """Wall time of the cell phase of step i: the per-cell rules alone, and the whole phase
    (with the tissue-level preparation and the Mesa mirroring of events and moves)."""
    pop = model.population
    model._systemic(model.course, i, float(i))
    model.source[:] = 0.0
    free_rankl(model.conc, 0.0, out=model.rankl_free)
    pop.reserve(4096)
    need = 8 * pop.n_hi + 4096
    if pop.events.shape[0] < need:
        pop.events = np.zeros((2 * need, 4), dtype=np.int64)
    alive = len(model.agents)
    t0 = time.perf_counter()
    rules = model.cell_phase(1000 + 2 * i, per_agent=per_agent)
    apply_events(model, CELL_CLASSES)
    sync_moves(model)
    return {"agent_steps": alive, "rules_s": rules, "whole_s": time.perf_counter() - t0}


def compare(n_cells: int, steps: int) -> dict:
    fast, slow = populated_model(n_cells), populated_model(n_cells)
    time_cells(fast, 0, per_agent=False)          # JIT warm-up (cached kernels load here)
    time_cells(slow, 0, per_agent=True)
    f = {"agent_steps": 0, "rules_s": 0.0, "whole_s": 0.0}
    m = dict(f)
    for i in range(1, steps + 1):
        for totals, model, per_agent in ((f, fast, False), (m, slow, True)):
            for key, v in time_cells(model, i, per_agent).items():
                totals[key] += v
    return {"cells": round(f["agent_steps"] / steps),   # mean alive per timed step
            "numba_agent_steps_per_s": f["agent_steps"] / f["rules_s"],
            "mesa_agent_steps_per_s": m["agent_steps"] / m["rules_s"],
            "ratio": (f["agent_steps"] / f["rules_s"]) / (m["agent_steps"] / m["rules_s"]),
            "numba_ms_per_step_whole_phase": 1e3 * f["whole_s"] / steps,
            "mesa_ms_per_step_whole_phase": 1e3 * m["whole_s"] / steps}


def long_run(years: float, then: int = 0) -> tuple[dict, BoneModel]:
    """`years` of the default scenario on a 256 x 256 section: the wall time, set-up and the
    per-step split [ms]; and the model at the end, with `then` steps of its scenario still to
    run."""
    base = load_scenario(SCENARIO)
    days = years * 365.25 + then * base.simulation.dt
    sc = base.model_copy(update={
        "tissue": base.tissue.model_copy(update={"size": (256, 256)}),
        "simulation": base.simulation.model_copy(update={"duration": days / 365.25})})
    t0 = time.perf_counter()
    model = BoneModel(sc, rng=0)
    t_init = time.perf_counter() - t0
    spinup = dict(model.timing)
    n = model.n_steps - then
    t0 = time.perf_counter()
    for _ in range(n):
        model.step()
    wall = time.perf_counter() - t0
    split = {k: (model.timing[k] - spinup.get(k, 0.0)) / n * 1e3 for k in model.timing}
    return {"years": years, "steps": n, "wall_s": wall, "setup_and_spinup_s": t_init,
            "ms_per_step": {k: round(v, 3) for k, v in split.items()},
            "cells_at_end": len(model.agents)}, model


def floor(model: BoneModel, steps: int) -> list[dict]:
    """`steps` steps of `model` as is, then with each field solve stopped before its first CG
    iteration, then with no field solve: per variant the wall time per step [ms], its split
    and the wall time 10 years of such steps would take [s]. Leaves the model's fields wrong.
    The model's scenario should have 3 x `steps` steps left (past its end, every step writes
    an output row)."""
    def timed(label: str) -> dict:
        before = dict(model.timing)
        t0 = time.perf_counter()
        for _ in range(steps):
            model.step()
        ms = (time.perf_counter() - t0) / steps * 1e3
        return {"variant": label, "wall_ms_per_step": ms,
                "ms_per_step": {k: round((model.timing[k] - before[k]) / steps * 1e3, 3)
                                for k in model.timing},
                "ten_year_s": ms * 1e-3 * 10 * 365.25 / model.dt}
    rows = [timed("as is")]
    model.solver.tol = 1e300            # stop at the first convergence test: no CG iteration
    rows.append(timed("fields: no CG iteration"))
    model.solver.step = lambda *args, **kwargs: None
    rows.append(timed("fields: not solved"))
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bonesim.experiments.bench_cells",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per population")
    parser.add_argument("--years", type=float, default=10.0,
                        help="simulated years of the long run (0: no long run)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--floor", type=int, default=0, metavar="STEPS",
                        help="after the long run, STEPS steps with the field solve cut short "
                             "and skipped (lower bounds of the wall time; 0: none)")
    args = parser.parse_args(argv)
    rows = []
    print("cell rules per agent-step, and the whole cell phase per step (with recruitment,\n"
          "target maps and the Mesa mirroring of events, which both paths share):")
    print(f"{'cells':>8} {'plain Mesa agent-steps/s':>25} {'numba agent-steps/s':>20} {'ratio':>7}"
          f" {'Mesa phase ms':>14} {'numba phase ms':>15}")
    for n in args.sizes:
        row = compare(n, args.steps)
        rows.append(row)
        print(f"{row['cells']:>8} {row['mesa_agent_steps_per_s']:>25,.0f} "
              f"{row['numba_agent_steps_per_s']:>20,.0f} {row['ratio']:>7.1f} "
              f"{row['mesa_ms_per_step_whole_phase']:>14.1f} {row['numba_ms_per_step_whole_phase']:>15.1f}")
    run, bounds = None, None
    if args.years > 0:
        run, model = long_run(args.years, then=3 * args.floor)
        print(f"{args.years:g} simulated years of the default 256x256 section: "
              f"{run['wall_s']:.1f} s ({run['steps']} steps; set-up and spin-up "
              f"{run['setup_and_spinup_s']:.1f} s)")
        print("per step [ms]: " + ", ".join(f"{k} {v:.2f}" for k, v in run["ms_per_step"].items()))
        if args.floor > 0:
            bounds = floor(model, args.floor)
            print(f"what bounds it ({args.floor} steps each, from the end state):")
            for b in bounds:
                print(f"  {b['variant']:<24} {b['wall_ms_per_step']:7.1f} ms/step, 10 years "
                      f"{b['ten_year_s']:6.0f} s; " + ", ".join(
                          f"{k} {v:.2f}" for k, v in b["ms_per_step"].items()))
    at_1e4 = min(rows, key=lambda r: abs(np.log(r["cells"] / 1e4)))
    summary = {"populations": rows, "long_run": run, "floor": bounds,
               "agent_steps_per_s_at_1e4": at_1e4["numba_agent_steps_per_s"],
               "ratio_at_1e4": at_1e4["ratio"],
               "ten_year_wall_s": run["wall_s"] * 10.0 / args.years if run else None}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
