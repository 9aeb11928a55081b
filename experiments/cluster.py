"""A sweep on a SLURM or PBS cluster, through dask-jobqueue: the recipe.

    python -m bonesim.experiments.cluster slurm SWEEP.toml --jobs 10 --cores 16 \\
        --memory 32GB --walltime 04:00:00 [--queue Q] [--account A] [--out DIR]
    python -m bonesim.experiments.cluster pbs SWEEP.toml ... --print-script

Run it on the login node, in the environment where bonesim is installed (the compute nodes must
see the same Python and file system). It submits `--jobs` batch jobs; each starts one Dask
worker process per core, single-threaded (numba too: NUMBA_NUM_THREADS=1), which connect back to
a scheduler on this node. The sweep's driver stays here and writes every finished run into the
sweep directory as it arrives, so a sweep cut off by the walltime (or by anything else) resumes
by running the same command again; `bonesim sweep --status DIR` shows how far it got.
`--print-script` prints the batch script a job would run and submits nothing.

The same from Python (a notebook on the login node):

    from distributed import Client
    from bonesim.experiments.cluster import batch_cluster
    from bonesim.experiments.sweep import load_sweep, run_sweep
    with batch_cluster("slurm", cores=16, memory="32GB", walltime="04:00:00") as cluster:
        cluster.scale(jobs=10)
        with Client(cluster) as client:
            run_sweep(load_sweep("experiments/sweeps/morris_cells.toml"), scheduler=client)
"""

import argparse
import sys


def batch_cluster(kind: str, cores: int, memory: str, walltime: str, queue: str | None = None,
                  account: str | None = None, host: str | None = None):
    """A dask-jobqueue cluster of `kind` ("slurm" or "pbs"): per batch job `cores` cores and
    as many single-threaded worker processes, `memory` (e.g. "32GB") and `walltime`
    ("HH:MM:SS"). `host`: the address the scheduler listens on (default: this node's)."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    kinds = {"slurm": SLURMCluster, "pbs": PBSCluster}
    options = {"dashboard_address": None} | ({"host": host} if host else {})
    return kinds[kind](cores=cores, processes=cores, memory=memory, walltime=walltime,
                       queue=queue, account=account, python=sys.executable,
                       job_script_prologue=["export NUMBA_NUM_THREADS=1",
                                            "export OMP_NUM_THREADS=1"],
                       scheduler_options=options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bonesim.experiments.cluster",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["slurm", "pbs"])
    parser.add_argument("sweep", help="sweep TOML file")
    parser.add_argument("--jobs", type=int, default=1, help="batch jobs to submit")
    parser.add_argument("--cores", type=int, default=8, help="cores (and workers) per job")
    parser.add_argument("--memory", default="16GB", help="memory per job")
    parser.add_argument("--walltime", default="04:00:00", help="walltime per job, HH:MM:SS")
    parser.add_argument("--queue", help="queue or partition")
    parser.add_argument("--account", help="account or project to charge")
    parser.add_argument("--out", help="sweep directory (default runs/sweeps/<name>)")
    parser.add_argument("--print-script", action="store_true",
                        help="print the batch script and submit nothing")
    args = parser.parse_args(argv)
    from distributed import Client

    from bonesim.experiments.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)       # a bad sweep file is refused before any job is queued
    with batch_cluster(args.kind, args.cores, args.memory, args.walltime, args.queue,
                       args.account) as cluster:
        if args.print_script:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=args.jobs)
        with Client(cluster) as client:
            table = run_sweep(sweep, args.out, scheduler=client)
    return int((table["status"] != "done").any())


if __name__ == "__main__":
    sys.exit(main())
