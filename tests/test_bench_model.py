"""The whole-model benchmark (experiments/bench_model.py): its work count, its split and a last
line that is one JSON object whose `site_days_per_s` is the first size's throughput."""

import json
import math
import time

import pytest

from bonesim.experiments import bench_model
from bonesim.model.bone_model import BoneModel


def test_bench_counts_site_days_with_the_spinup_and_ends_with_json(capsys):
    summary = bench_model.main(["--sizes", "32", "24", "--years", "0.02", "--spinup-days", "10"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == json.loads(json.dumps(summary))
    first, second = summary["runs"]
    assert (first["size"], second["size"]) == (32, 24)
    assert summary["site_days_per_s"] == first["site_days_per_s"]
    assert first["steps"] == 10 + math.ceil(0.02 * 365.25)       # spin-up and record, dt 1 d
    assert first["site_days_per_s"] * first["wall_s"] == pytest.approx(32 * 32 * first["steps"],
                                                                       rel=1e-12)
    assert set(first["ms_per_step"]) == {"fields", "cells", "events", "matrix", "readouts", "set-up"}
    assert all(v >= 0 for v in first["ms_per_step"].values())
    # the split sums to the CPU time, on which it is measured; the model clock is wall time again
    assert sum(first["ms_per_step"].values()) * first["steps"] / 1e3 == pytest.approx(first["cpu_s"], rel=1e-3)
    assert BoneModel.clock is time.perf_counter
    assert "per step [ms]" in lines[1] and "CG iterations" in lines[2]
