"""The cell benchmark (experiments/bench_cells.py) runs and reports the cost of the cells (docs/design.md, decision 2):
its table, and a last line that is one JSON object with the headline figures."""

import json

import numpy as np
import pytest

from bonesim.experiments import bench_cells
from bonesim.model.bone_model import BoneModel
from bonesim.model.fields import FIELD_INDEX
from bonesim.model.scenario import load_scenario


def test_bench_prints_its_table_and_a_json_last_line(capsys):
    summary = bench_cells.main(["--sizes", "1000", "--steps", "1", "--years", "0"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "plain Mesa agent-steps/s" in lines[2]
    assert json.loads(lines[-1]) == json.loads(json.dumps(summary))
    (row,) = summary["populations"]
    assert 500 < row["cells"] < 1500
    assert row["ratio"] == pytest.approx(row["numba_agent_steps_per_s"] / row["mesa_agent_steps_per_s"])
    assert summary["long_run"] is None and summary["floor"] is None
    assert summary["ten_year_wall_s"] is None


def test_floor_variants_cut_the_field_solve_short_then_skip_it():
    """`floor` times the model as is, then with no CG iteration in any field solve, then with
    no field solve: the second leaves the iteration counts at 0, the third the fields as they
    were (but for the local aromatization of T into E2, which is not a solve); each row's 10-year figure is its ms per step over 10 years of steps."""
    model = BoneModel(load_scenario(bench_cells.SCENARIO, {"tissue.size": [48, 48]}), rng=1)
    model.step()
    assert model.solver.iterations.max() > 0
    rows = bench_cells.floor(model, 2)
    assert [r["variant"] for r in rows] == ["as is", "fields: no CG iteration", "fields: not solved"]
    assert model.solver.iterations.max() == 0        # left by the second variant
    transported = [i for name, i in FIELD_INDEX.items() if name not in ("e2", "t")]
    conc = model.conc[transported].copy()
    model.step()
    np.testing.assert_array_equal(model.conc[transported], conc)
    for r in rows:
        assert r["ten_year_s"] == pytest.approx(r["wall_ms_per_step"] * 3652.5 / model.dt / 1e3)
        assert set(r["ms_per_step"]) == set(model.timing)
