"""Run-directory bookkeeping: atomic writes and resumable partial replicates."""

import json

import pandas as pd
import pytest

from bonesim.experiments.run import _prepare_partial, atomic_path, replicate_seeds, write_json


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "run.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "timeseries.parquet"
    pd.DataFrame({"day": [0.0]}).to_parquet(target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("killed mid-write")
    assert pd.read_parquet(target)["day"].tolist() == [0.0]
    assert [p.name for p in tmp_path.iterdir()] == ["timeseries.parquet"]


def test_partial_replicates_kept_only_for_same_scenario_and_seed(tmp_path):
    partial = tmp_path / ".partial"
    identity = {"scenario": {"name": "x"}, "seed": 1}
    _prepare_partial(partial, identity)
    (partial / "rep_000.parquet").write_bytes(b"done")
    _prepare_partial(partial, identity)
    assert (partial / "rep_000.parquet").exists()
    _prepare_partial(partial, {"scenario": {"name": "x"}, "seed": 2})
    assert not (partial / "rep_000.parquet").exists()


def test_replicate_seeds_are_independent_and_reproducible():
    a, b = replicate_seeds(7, 3), replicate_seeds(7, 3)
    draws = [s.generate_state(2).tolist() for s in a]
    assert draws == [s.generate_state(2).tolist() for s in b]
    assert len({tuple(d) for d in draws}) == 3
    assert replicate_seeds(7, 5)[:3][2].generate_state(2).tolist() == draws[2]
