"""The cell benchmark (experiments/bench_cells.py) runs and reports what the issue asks for:
its table, and a last line that is one JSON object with the headline figures."""

import json

from bonesim.experiments import bench_cells


def test_bench_prints_its_table_and_a_json_last_line(capsys):
    summary = bench_cells.main(["--sizes", "1000", "--steps", "1", "--years", "0"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "plain Mesa agent-steps/s" in lines[2]
    assert json.loads(lines[-1]) == json.loads(json.dumps(summary))
    (row,) = summary["populations"]
    assert 500 < row["cells"] < 1500
    # the numba path outruns Python calling the same rules per agent
    assert row["numba_agent_steps_per_s"] > row["mesa_agent_steps_per_s"]
    assert summary["long_run"] is None and summary["ten_year_wall_s"] is None
