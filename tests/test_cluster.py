"""The dask-jobqueue recipe for SLURM and PBS (experiments/cluster.py): the batch script a job
would run, generated without a batch system (the scheduler listens on loopback)."""

import re

import pytest

from bonesim.experiments.cluster import batch_cluster


@pytest.mark.parametrize("kind, directives", [
    ("slurm", ["#SBATCH -p short", "#SBATCH -A bone", "#SBATCH --cpus-per-task=4",
               "#SBATCH --mem=8G", "#SBATCH -t 01:30:00"]),
    ("pbs", ["#PBS -q short", "#PBS -A bone", "#PBS -l select=1:ncpus=4",
             "#PBS -l walltime=01:30:00"]),
])
def test_job_script_runs_single_threaded_workers_one_per_core(kind, directives):
    with batch_cluster(kind, cores=4, memory="8GB", walltime="01:30:00", queue="short",
                       account="bone", host="127.0.0.1") as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    for line in directives:
        assert line in script, script
    assert "export NUMBA_NUM_THREADS=1" in script
    worker = next(line for line in script.splitlines() if "dask_worker" in line)
    assert address in worker and address.startswith("tcp://127.0.0.1:")
    assert re.search(r"--nthreads 1\b", worker) and re.search(r"--nworkers 4\b", worker)
