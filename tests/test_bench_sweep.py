"""The sweep benchmark (experiments/bench_sweep.py): it runs every configuration through and
ends with one JSON object whose ratio keys contain "ratio". Its figures are not asserted."""

import json

import pytest

from bonesim.experiments import bench_sweep


def test_bench_sweep_ends_with_json_of_rates_and_ratios(capsys):
    result = bench_sweep.main(["--runs", "2", "--size", "16", "--days", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == json.loads(json.dumps(result))
    assert {k for k in result if "ratio" in k} == {"local_ratio", "dask_ratio"}
    for executor in ("local", "dask"):
        one, two = result[f"{executor}_1_runs_per_min"], result[f"{executor}_2_runs_per_min"]
        assert one > 0 and two > 0
        assert result[f"{executor}_ratio"] == pytest.approx(two / one, rel=1e-2)   # rounded rates
    assert [line.split(":")[0] for line in lines[:-1]] == ["local_1", "local_2", "dask_1", "dask_2"]
