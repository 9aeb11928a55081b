"""The calibration of bonesim, as a procedure anyone can re-run.

    python -m bonesim.experiments.calibrate [--seeds 4] [--years 5] [--size 256] [--workers W]
                                            [--passes 2] [--only TARGET ...] [--write]

What this procedure calibrates, and on what (the hand-set calibrations below it aside, every
other parameter is taken from the literature or assumed, as its `source` says):

| parameters (model/parameters/cells.toml) | target (docs/targets.md V1) | aimed at |
|---|---|---|
| osteoclast.lifespan | V1.oc_lifespan: measured osteoclast lifespan | 14 days (~2 weeks) |
| osteoblast.lifespan | V1.ob_lifespan: measured osteoblast lifespan | 91 days (~3 months) |
| lining.activation_rate and oc_precursor.recruitment, one common factor | V1.turnover | 25 %/yr |
| ob_precursor.recruitment | V1.drift: spine DXA-like BMD slope of the premenopausal steady state | 0 %/yr |

Only V1, the untreated premenopausal steady state, is used here. Set by hand, outside this
procedure (their sources give the probes): lining.activation_basal with
lining.e2_basal_suppression, toward the doubling of activation after menopause (V2.activation,
so the V2 rows are "calibrated on"); ob_precursor.reversal_window, to V2's late loss through
the size of the osteoblast teams; ob_precursor.recruitment was last set by hand to the V1
BMU balance (1.0) rather than by this procedure's drift equation. The other rows (V3-V7) are
never seen by a calibration, and no per-drug or endocrine parameter is touched (drugs.toml and
endocrine.toml are not in the table above).

Objective and method: each parameter group has its own target, so the calibration solves four
equations f_k(p_k) = goal_k. It goes through them in the order above (lifespans first, since
they shift turnover and balance), and repeats the sweep `--passes` times (Gauss-Seidel). One
equation is solved by the secant method on log(parameter) (and on log(response) for the
proportional responses: lifespans, turnover), kept inside the parameter's documented `range`,
to the tolerance given per group. Each evaluation simulates the V1 arm
(experiments/scenarios/v1_premenopausal.toml) with the same `--seeds` replicate seeds every time
(common random numbers, so the response is smooth in the parameter) and computes the target's
statistic exactly as `bonesim validate` does (experiments/targets.py).

It prints every evaluation and the result. `--write` puts the values into the parameter files
(only the `value` of the calibrated keys is changed); their `source` already says
"calibrated: ..." and names V1.
"""

import argparse
import math
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bonesim.experiments import targets as tg
from bonesim.experiments.runner import replicate_seeds, simulate
from bonesim.experiments.validate import SCENARIO_DIR
from bonesim.model.parameters import PARAMETER_DIR, all_parameters
from bonesim.model.scenario import load_scenario


@dataclass(frozen=True)
class Knob:
    """Parameters moved together by one factor to bring the statistic of `target` to `goal`."""

    keys: tuple[str, ...]
    target: str
    goal: float
    tolerance: float
    proportional: bool  # response roughly proportional to the parameter: secant on log-log


KNOBS: tuple[Knob, ...] = (
    Knob(("cells.osteoclast.lifespan",), "V1.oc_lifespan", 14.0, 1.0, True),
    Knob(("cells.osteoblast.lifespan",), "V1.ob_lifespan", 91.0, 5.0, True),
    Knob(("cells.lining.activation_rate", "cells.oc_precursor.recruitment"), "V1.turnover",
         25.0, 1.0, True),
    Knob(("cells.ob_precursor.recruitment",), "V1.drift", 0.0, 0.1, False),
)
MAX_EVALUATIONS = 8  # per knob and pass


class Evaluator:
    """The V1 arm with fixed replicate seeds, simulated at given parameter values."""

    def __init__(self, seeds: int, years: float | None, size: int | None, workers: int):
        overrides: dict = {"simulation.replicates": seeds}
        if years is not None:
            overrides["simulation.duration"] = f"{years} years"
        if size is not None:
            overrides["tissue.size"] = [size, size]
        self.scenario = load_scenario(SCENARIO_DIR / f"{tg.V1}.toml", overrides)
        self.seeds = replicate_seeds(self.scenario.simulation.seed, seeds)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        self.targets = {t.id: t for t in tg.TARGETS}

    def __call__(self, values: dict[str, float]) -> dict[str, float]:
        """Mean over seeds of every V1 statistic at parameter `values`."""
        jobs = [self.pool.submit(simulate, self.scenario, s, values) for s in self.seeds]
        per_seed: dict[str, list[float]] = {}
        for job in jobs:
            arms = {tg.V1: tg.Arm(job.result(), self.scenario)}
            for ident in (k.target for k in KNOBS):
                try:
                    per_seed.setdefault(ident, []).append(self.targets[ident].compute(arms))
                except tg.NotMeasurable:
                    per_seed.setdefault(ident, []).append(float("nan"))
        return {ident: float(np.mean(v)) for ident, v in per_seed.items()}

    def close(self) -> None:
        self.pool.shutdown()


def solve(knob: Knob, values: dict[str, float], evaluate: Evaluator, log=print) -> dict[str, float]:
    """Scale `knob.keys` by one factor until the target statistic is within tolerance.

    Secant on x = log(factor) against g(y) = log(y) (proportional responses) or y; every
    response is taken to rise with its parameters, which sets the direction of the first step.
    """
    params = all_parameters()
    base = {k: values[k] for k in knob.keys}
    x_lo = max(math.log(params[k].range[0] / base[k]) for k in knob.keys)  # keep every key
    x_hi = min(math.log(params[k].range[1] / base[k]) for k in knob.keys)  # inside its range
    g = math.log if knob.proportional else (lambda y: y)

    def response(x: float) -> float:
        trial = {**values, **{k: base[k] * math.exp(x) for k in knob.keys}}
        result = evaluate(trial)[knob.target]
        log(f"  {knob.target}: {', '.join(f'{k} = {trial[k]:.4g}' for k in knob.keys)} -> "
            f"{result:.4g} (goal {knob.goal:g} +- {knob.tolerance:g})")
        return result

    points = [(0.0, response(0.0))]
    while len(points) < MAX_EVALUATIONS:
        x, y = points[-1]
        if not np.isfinite(y) or abs(y - knob.goal) <= knob.tolerance:
            break
        if len(points) == 1:
            step = g(knob.goal) - g(y) if knob.proportional else math.copysign(0.3, knob.goal - y)
        else:
            (x0, y0) = points[-2]
            slope = (g(y) - g(y0)) / (x - x0)
            if not np.isfinite(slope) or slope <= 0:
                log(f"  {knob.target}: no rising response to the parameter; stopping")
                break
            step = (g(knob.goal) - g(y)) / slope
        x_new = float(np.clip(x + step, x_lo, x_hi))
        if x_new == x:
            log(f"  {knob.target}: at the edge of the documented range; stopping")
            break
        points.append((x_new, response(x_new)))
    best = min(points, key=lambda p: abs(p[1] - knob.goal) if np.isfinite(p[1]) else math.inf)
    return {**values, **{k: base[k] * math.exp(best[0]) for k in knob.keys}}


def calibrate(evaluate: Evaluator, passes: int, knobs: tuple[Knob, ...] = KNOBS,
              log=print) -> dict[str, float]:
    """Solve every knob in order, `passes` times; return the calibrated values."""
    values = {k: all_parameters()[k].value for knob in knobs for k in knob.keys}
    for n in range(passes):
        log(f"pass {n + 1} of {passes}")
        for knob in knobs:
            values = solve(knob, values, evaluate, log)
    final = evaluate(values)
    log("calibrated V1 statistics: " + ", ".join(f"{k} {v:.4g}" for k, v in final.items()))
    return values


def write_values(values: dict[str, float], directory: Path = PARAMETER_DIR) -> None:
    """Replace the `value` of each key ("file.section.name") in its TOML file, nothing else."""
    for key, new in values.items():
        stem, *section, name = key.split(".")
        path = directory / f"{stem}.toml"
        text = path.read_text()
        header = re.search(rf"^\[{re.escape('.'.join(section))}\]\s*$", text, flags=re.M)
        if header is None:
            raise KeyError(f"{path}: no section [{'.'.join(section)}] for {key}")
        end = re.search(r"^\[", text[header.end():], flags=re.M)
        stop = header.end() + (end.start() if end else len(text) - header.end())
        block = text[header.end():stop]
        line = re.compile(rf"^({re.escape(name)}\s*=\s*\{{\s*value\s*=\s*)[^,}}]+", flags=re.M)
        if not line.search(block):
            raise KeyError(f"{path}: no inline entry '{name} = {{ value = ... }}' in [{'.'.join(section)}]")
        block = line.sub(lambda m: f"{m.group(1)}{new:.4g}", block, count=1)
        path.write_text(text[:header.end()] + block + text[stop:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bonesim.experiments.calibrate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="replicate seeds per evaluation")
    parser.add_argument("--years", type=float, help="V1 duration (default: the scenario's 5 years)")
    parser.add_argument("--size", type=int, help="tissue side in grid cells (default: the scenario's)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--passes", type=int, default=2, help="sweeps over the knobs")
    parser.add_argument("--only", nargs="+", metavar="TARGET",
                        choices=[k.target for k in KNOBS],
                        help="solve only the knobs of these targets (default: all, in order)")
    parser.add_argument("--write", action="store_true", help="write the values into model/parameters")
    args = parser.parse_args(argv)
    knobs = tuple(k for k in KNOBS if args.only is None or k.target in args.only)
    evaluate = Evaluator(args.seeds, args.years, args.size, args.workers)
    try:
        values = calibrate(evaluate, args.passes, knobs)
    finally:
        evaluate.close()
    for key, new in values.items():
        print(f"{key} = {new:.4g}  (was {all_parameters()[key].value:.4g})")
    if args.write:
        write_values(values)
        print(f"written to {PARAMETER_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
