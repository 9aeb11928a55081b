"""Experimental designs over a box of inputs, and the sensitivity indices read from them.

`Design.points()` gives the design's points, one row per point and one column per input:
- grid: every combination of each input's values;
- lhs: a Latin hypercube of `samples` points (SALib `sample.latin`);
- sobol: Saltelli's extension of a Sobol sequence, N = `samples` (a power of 2), N (k + 2)
  points for k inputs (SALib `sample.sobol`, first and total order);
- morris: `samples` trajectories of k + 1 points on a grid of `levels` levels (SALib
  `sample.morris`).
`Design.indices(points, y)` gives, from the model outputs `y` at those points, the Sobol first
and total order indices S1 and ST with their 95% bootstrap confidence intervals, or Morris's
mu* (mean absolute elementary effect, in the output's units) with its 95% interval, mu and
sigma (SALib `analyze.sobol`, `analyze.morris`).
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Design:
    """A design of `kind` over inputs `names` within `bounds`; `grid` holds each input's
    values for a grid. `seed` seeds the sampler and the bootstrap of the intervals."""

    kind: str
    names: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    samples: int = 1
    levels: int = 4
    seed: int = 0
    grid: tuple[tuple, ...] = ()

    @property
    def problem(self) -> dict:
        """The design as SALib's problem dictionary."""
        return {"num_vars": len(self.names), "names": list(self.names),
                "bounds": [list(b) for b in self.bounds]}

    def points(self) -> list[tuple]:
        """The design's points, each a tuple of input values in the order of `names`."""
        if self.kind == "grid":
            return list(itertools.product(*self.grid))
        if self.kind == "lhs":
            from SALib.sample import latin
            x = latin.sample(self.problem, self.samples, seed=self.seed)
        elif self.kind == "sobol":
            from SALib.sample import sobol
            x = sobol.sample(self.problem, self.samples, calc_second_order=False, seed=self.seed)
        elif self.kind == "morris":
            from SALib.sample import morris
            x = morris.sample(self.problem, self.samples, num_levels=self.levels, seed=self.seed)
        else:
            raise ValueError(f"design {self.kind!r} has no points of its own")
        return [tuple(float(v) for v in row) for row in x]

    def indices(self, points: list[tuple], y) -> pd.DataFrame:
        """Sensitivity indices of output `y` (one value per point, in the order of `points`):
        one row per input. Sobol: S1, S1_lo, S1_hi, ST, ST_lo, ST_hi; Morris: mu_star,
        mu_star_lo, mu_star_hi, mu, sigma (output units)."""
        y = np.asarray(y, dtype=float)
        if self.kind == "sobol":
            from SALib.analyze import sobol
            r = sobol.analyze(self.problem, y, calc_second_order=False, conf_level=CONFIDENCE,
                              seed=self.seed)
            columns = {"S1": r["S1"], "S1_lo": r["S1"] - r["S1_conf"],
                       "S1_hi": r["S1"] + r["S1_conf"], "ST": r["ST"],
                       "ST_lo": r["ST"] - r["ST_conf"], "ST_hi": r["ST"] + r["ST_conf"]}
        elif self.kind == "morris":
            from SALib.analyze import morris
            r = morris.analyze(self.problem, np.asarray(points, dtype=float), y,
                               num_levels=self.levels, conf_level=CONFIDENCE, seed=self.seed)
            columns = {"mu_star": r["mu_star"], "mu_star_lo": r["mu_star"] - r["mu_star_conf"],
                       "mu_star_hi": r["mu_star"] + r["mu_star_conf"], "mu": r["mu"],
                       "sigma": r["sigma"]}
        else:
            raise ValueError(f"a {self.kind} design gives no sensitivity indices")
        return pd.DataFrame({"input": list(self.names),
                             **{k: np.asarray(v, dtype=float) for k, v in columns.items()}})
