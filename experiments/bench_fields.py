"""Benchmark of the field engine: field-cell updates per second for one simulated day.

For 256^2 and 512^2 grids with 10 fields (the first ten of the registry, float64, registry D
and decay, a trabecular-like matrix map, vessels, secreting and consuming cells) it times

* the LOD step (backward-Euler, split: one step per day),
* the unsplit backward-Euler step (the default solver: multigrid-preconditioned CG),
* a numpy forward-Euler reference covering the same day, which needs, field by field,
  ceil(rate_max x 1 day / 0.9) sub-steps at its stability limit (timed over a few sub-steps
  and scaled),
* a memory-bandwidth triad a = b + s c in numpy, in the same run,

and prints the ratios. "Field-cell updates per second" = n_fields x cells / (wall time to
advance all fields one simulated day). The warm start (import + first step with the JIT cache
hit) is timed in a fresh subprocess. The last line is one JSON object with the headline
figures. Run: `python -m bonesim.experiments.bench_fields` (BONESIM_CI=1: smaller and shorter).
"""

import json
import os
import subprocess
import sys
import time

import numba
import numpy as np

from bonesim.model import diffusion
from bonesim.model.fields import FIELDS, FieldSolver

CI = os.environ.get("BONESIM_CI") == "1"
N_FIELDS = 10
SPACING_UM = 10.0
REPEATS = 5 if CI else 15
TRIAD_N = 2**22 if CI else 2**25          # 3 x 256 MB: far beyond the 260 MB L3
# minimal memory traffic of one LOD step per field-cell: conc read + written in each of the
# two sweeps, source and uptake read once (8-byte words)
LOD_BYTES_PER_FIELD_CELL = 6 * 8


def tissue(n: int, rng: np.random.Generator):
    """A trabecular-like matrix map, 0.5% vessel cells, 2% secreting and 5% consuming cells."""
    yy, xx = np.mgrid[0:n, 0:n] * SPACING_UM
    matrix = np.sin(xx / 90.0) * np.sin(yy / 130.0) + 0.3 * np.sin((xx + yy) / 40.0) > 0.35
    vessel = (rng.random((n, n)) < 0.005) & ~matrix
    source = np.where(rng.random((N_FIELDS, n, n)) < 0.02, 50.0, 0.0)
    uptake = np.where(rng.random((N_FIELDS, n, n)) < 0.05, 2.0, 0.0)
    serum = np.array([np.nan if f.units == "pM" else 1.0 for f in FIELDS[:N_FIELDS]])
    return matrix, vessel, source, uptake, serum


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_solver(method: str, n: int, inputs, rng: np.random.Generator) -> dict:
    """Wall time of one day step from a realistic state: three days with the cells as they
    were, then a day on which the secreting and consuming cells have moved (rolled by a few
    cells), so that the implicit solver has the day-to-day work of a running model."""
    matrix, vessel, source, uptake, serum = inputs
    solver = FieldSolver((n, n), SPACING_UM, 1.0, fields=FIELDS[:N_FIELDS], method=method)
    solver.set_matrix(matrix)
    state = np.zeros((N_FIELDS, n, n))
    for _ in range(3):
        solver.step(state, source, uptake, vessel, serum)
    moved = [(np.roll(source, tuple(s), axis=(1, 2)), np.roll(uptake, tuple(s), axis=(1, 2)))
             for s in rng.integers(-3, 4, size=(REPEATS, 2))]
    conc = np.empty_like(state)
    times, cpu, iterations = [], [], []
    for src, upt in moved:
        conc[:] = state
        c0, t0 = time.process_time(), time.perf_counter()
        solver.step(conc, src, upt, vessel, serum)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        iterations.append(solver.iterations.mean())
    best, median = min(times), float(np.median(times))
    # CPU seconds per thread: what the step costs when the cores are not shared with other
    # processes (the wall time on a busy machine also holds the time spent descheduled)
    cpu_per_thread = min(cpu) / numba.get_num_threads()
    out = {"seconds": best, "median_seconds": median, "cpu_seconds_per_thread": cpu_per_thread,
           "updates_per_s": N_FIELDS * n * n / best,
           "updates_per_cpu_s": N_FIELDS * n * n / cpu_per_thread}
    if method == "implicit":
        out["cg_iterations"] = float(np.mean(iterations))
    return out


def time_explicit(n: int, inputs) -> dict:
    """numpy forward Euler over one day: sub-steps needed x measured cost per sub-step."""
    matrix, vessel, source, uptake, serum = inputs
    solver = FieldSolver((n, n), SPACING_UM, 1.0, fields=FIELDS[:N_FIELDS])
    serum0 = np.nan_to_num(serum)
    seconds = 0.0
    substeps = 0
    sample_steps = 3 if CI else 8
    for f in range(N_FIELDS):
        one = slice(f, f + 1)
        rates = (solver.vessel_rate[one], serum0[one], solver.decay[one],
                 solver.d_um2_day[one], solver.matrix_factor[one], matrix, SPACING_UM)
        day_steps = int(diffusion.explicit_substeps(uptake[one], vessel, rates[0], *rates[2:],
                                                    duration=1.0)[0])
        probe = np.ones((1, n, n))
        t0 = time.perf_counter()            # `sample_steps` stable sub-steps, then scale
        taken = int(diffusion.explicit_reference(probe, source[one], uptake[one], vessel,
                                                 *rates, duration=sample_steps / day_steps)[0])
        seconds += (time.perf_counter() - t0) / taken * day_steps
        substeps += day_steps
    return {"seconds": seconds, "updates_per_s": N_FIELDS * n * n / seconds,
            "substeps_per_day": substeps / N_FIELDS,
            "substep_updates_per_s": substeps * n * n / seconds}


def triad() -> dict:
    a = np.empty(TRIAD_N)
    b = np.full(TRIAD_N, 1.0)
    c = np.full(TRIAD_N, 2.0)

    def run():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    best = best_of(run, 5)
    return {"gb_per_s": 24 * TRIAD_N / best / 1e9, "elements_per_s": TRIAD_N / best}


def warm_start(method: str) -> float:
    """Seconds for import + solver + first step in a fresh interpreter (JIT cache hit)."""
    code = ("import time; t0 = time.perf_counter(); import numpy as np; "
            "from bonesim.model.fields import FieldSolver, FIELDS; "
            f"s = FieldSolver((64, 64), 10.0, 1.0, method='{method}'); "
            "c = np.ones((len(FIELDS), 64, 64)); s.step(c); "
            "print(time.perf_counter() - t0)")
    runs = []
    for _ in range(3):                    # the first run may fill the cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return min(runs[1:])


def main() -> None:
    rng = np.random.default_rng(0)
    sizes = (128, 256) if CI else (256, 512)
    load = os.getloadavg()[0]
    print(f"bonesim field engine benchmark: {N_FIELDS} fields float64, spacing {SPACING_UM} um,"
          f" one simulated day per step, {numba.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, load average {load:.2f} at start")
    bw = triad()
    print(f"memory triad (numpy a = b + s*c, {24 * TRIAD_N / 1e9:.2f} GB): "
          f"{bw['gb_per_s']:.1f} GB/s")
    header = (f"{'grid':>8} {'method':>9} {'ms/day':>10} {'M upd/s':>9} {'x explicit':>11} "
              f"{'GB/s eq.':>9} {'/ triad':>8}  notes")
    print(header)
    results = {}
    for n in sizes:
        inputs = tissue(n, rng)
        lod = time_solver("lod", n, inputs, rng)
        imp = time_solver("implicit", n, inputs, rng)
        exp = time_explicit(n, inputs)
        results[n] = {"lod": lod, "implicit": imp, "explicit": exp}
        for name, r, note in (
                ("lod", lod, f"median {lod['median_seconds'] * 1e3:.1f} ms; CPU/thread "
                             f"{lod['cpu_seconds_per_thread'] * 1e3:.1f} ms = "
                             f"{lod['updates_per_cpu_s'] / 1e6:.0f} M upd/s"),
                ("implicit", imp, f"{imp['cg_iterations']:.1f} CG iterations (mean), median "
                                  f"{imp['median_seconds'] * 1e3:.1f} ms; CPU/thread "
                                  f"{imp['cpu_seconds_per_thread'] * 1e3:.1f} ms = "
                                  f"{imp['updates_per_cpu_s'] / 1e6:.1f} M upd/s"),
                ("explicit", exp, f"{exp['substeps_per_day']:.0f} sub-steps/day per field, "
                                  f"{exp['substep_updates_per_s'] / 1e6:.0f} M sub-step "
                                  "upd/s")):
            gbs = r["updates_per_s"] * LOD_BYTES_PER_FIELD_CELL / 1e9
            print(f"{n:>4}^2   {name:>9} {r['seconds'] * 1e3:>10.1f} "
                  f"{r['updates_per_s'] / 1e6:>9.2f} "
                  f"{exp['seconds'] / r['seconds']:>11.0f} "
                  f"{gbs if name == 'lod' else float('nan'):>9.1f} "
                  f"{gbs / bw['gb_per_s'] if name == 'lod' else float('nan'):>8.2f}  {note}")
    warm = {m: warm_start(m) for m in ("lod", "implicit")}
    print(f"warm start (import + first step, JIT cache hit): lod {warm['lod']:.2f} s, "
          f"implicit {warm['implicit']:.2f} s")
    big = max(sizes)
    headline = {
        "benchmark": "bench_fields", "fields": N_FIELDS, "threads": numba.get_num_threads(),
        "grid": big,
        "lod_updates_per_s": round(results[big]["lod"]["updates_per_s"]),
        "lod_updates_per_cpu_s": round(results[big]["lod"]["updates_per_cpu_s"]),
        "implicit_updates_per_cpu_s": round(results[big]["implicit"]["updates_per_cpu_s"]),
        "implicit_updates_per_s": round(results[big]["implicit"]["updates_per_s"]),
        "explicit_updates_per_s": round(results[big]["explicit"]["updates_per_s"]),
        "lod_speedup_vs_explicit": round(results[big]["explicit"]["seconds"]
                                         / results[big]["lod"]["seconds"], 1),
        "implicit_speedup_vs_explicit": round(results[big]["explicit"]["seconds"]
                                              / results[big]["implicit"]["seconds"], 1),
        "implicit_cg_iterations": results[big]["implicit"]["cg_iterations"],
        "triad_gb_per_s": round(bw["gb_per_s"], 2),
        "lod_bandwidth_fraction_of_triad": round(
            results[big]["lod"]["updates_per_s"] * LOD_BYTES_PER_FIELD_CELL / 1e9
            / bw["gb_per_s"], 3),
        "warm_start_s": {m: round(v, 3) for m, v in warm.items()},
        "load_average_start": round(load, 2), "load_average_end": round(os.getloadavg()[0], 2),
        "goal_lod_500M_met": results[big]["lod"]["updates_per_s"] >= 500e6,
        "lod_ms_per_day": round(results[big]["lod"]["seconds"] * 1e3, 2),
        "implicit_ms_per_day": round(results[big]["implicit"]["seconds"] * 1e3, 1),
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
