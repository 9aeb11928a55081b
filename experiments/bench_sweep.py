"""Sweep throughput with 1 and 2 workers, on local processes and on a Dask LocalCluster.

    python -m bonesim.experiments.bench_sweep [--runs 8] [--size 64] [--days 90]

Each configuration runs the same sweep (`--runs` replicate runs of a postmenopausal woman on a
`--size`^2 section for `--days` days after a 200-day spin-up) from an empty directory, and
reports runs per minute of wall time, process start-up and numba's cache loading included.
"1 worker" on local processes is the runner's in-process path with numba on one thread, as each
worker has it, so that the ratio measures parallel runs rather than numba's threads. The goal
on a 2-core machine is a ratio >= 1.7; other load on the machine lowers it, and so do short
runs, whose worker start-up (~1 s: process spawn, numba's cache) is not small beside them. The
last line is one JSON object; its ratio keys contain "ratio".
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bonesim.model.bone_model import BoneModel
from bonesim.model.scenario import load_scenario

SCENARIO = """
name = "bench"
[patient]
sex = "female"
age = "53 years"
fmp_age = "51 years"
"""
SWEEP = """
[sweep]
scenario = "bench.toml"
design = "grid"
replicates = {runs}
[set]
"tissue.size" = [{size}, {size}]
"simulation.duration" = "{days} d"
"tissue.spinup.days" = 200
[vary."cells.osteoblast.lifespan"]
values = [120.0]
"""


def throughput(folder: Path, label: str, workers: int, scheduler: str | None) -> float:
    """Runs per minute of one configuration, from an empty sweep directory."""
    import numba

    from bonesim.experiments.sweep import load_sweep, run_sweep

    sweep = load_sweep(folder / "sweep.toml")
    threads = numba.get_num_threads()
    if workers == 1 and scheduler is None:
        numba.set_num_threads(1)     # the in-process run, single-threaded as a worker is
    started = time.perf_counter()
    table = run_sweep(sweep, folder / label, workers, scheduler, show_progress=False)
    seconds = time.perf_counter() - started
    numba.set_num_threads(threads)
    assert (table["status"] == "done").all(), table["error"].tolist()
    rate = 60.0 * len(table) / seconds
    print(f"{label}: {len(table)} runs in {seconds:.1f} s: {rate:.2f} runs/min")
    return rate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8, help="runs per configuration")
    parser.add_argument("--size", type=int, default=64, help="section side, grid cells")
    parser.add_argument("--days", type=float, default=90.0, help="simulated days per run")
    args = parser.parse_args(argv)
    result = {"runs": args.runs, "size": args.size, "days": args.days, "cpus": os.cpu_count(),
              "load_average_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench.toml").write_text(SCENARIO)
        # numba compiles the rules into its on-disk cache here, once, so that no configuration
        # times the compilation and the workers only load it
        warm = load_scenario(folder / "bench.toml", {"tissue.size": [16, 16]})
        BoneModel(warm, rng=0, spinup_days=2).step()
        (folder / "sweep.toml").write_text(SWEEP.format(runs=args.runs, size=args.size,
                                                        days=args.days))
        for executor, scheduler in (("local", None), ("dask", "local")):
            rates = [throughput(folder, f"{executor}_{w}", w, scheduler) for w in (1, 2)]
            result[f"{executor}_1_runs_per_min"] = round(rates[0], 3)
            result[f"{executor}_2_runs_per_min"] = round(rates[1], 3)
            result[f"{executor}_ratio"] = round(rates[1] / rates[0], 3)
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
