"""Run-directory bookkeeping: atomic writes and the runner's store of finished runs."""

import json

import pandas as pd
import pytest

from bonesim.experiments.files import atomic_path, write_json
from bonesim.experiments.runner import Job, Store, parameters_set, replicate_seeds
from bonesim.model.parameters import value
from bonesim.model.scenario import parse_scenario


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


PATIENT = {"sex": "female", "age": "50 years"}


def test_store_names_a_run_by_scenario_seed_parameters_and_code(tmp_path):
    scenario = parse_scenario({"name": "x", "patient": PATIENT})
    seeds = replicate_seeds(1, 2)
    store = Store(tmp_path, code="model A")
    job = Job("rep_000", scenario, seeds[0])
    store.save(job, pd.DataFrame({"day": [0.0]}))
    assert store.result(Job("rep_000", scenario, replicate_seeds(1, 2)[0])).exists()
    more = parse_scenario({"name": "x", "patient": PATIENT, "simulation": {"replicates": 5}})
    assert store.result(Job("rep_000", more, seeds[0])).exists()  # replicate count is not part
    others = [Job("rep_000", scenario, seeds[1]),
              Job("rep_000", parse_scenario({"name": "x", "patient": {**PATIENT, "age": "51 years"}}),
                  seeds[0]),
              Job("rep_000", scenario, seeds[0], {"cells.osteoblast.lifespan": 80.0})]
    assert not any(store.result(other).exists() for other in others)
    assert not Store(tmp_path, code="model B").result(job).exists()


def test_parameters_set_only_inside_the_block():
    key = "cells.osteoblast.lifespan"
    before = value(key)
    with parameters_set({key: before * 2}):
        assert value(key) == before * 2
    assert value(key) == before


def test_replicate_seeds_are_independent_and_reproducible():
    a, b = replicate_seeds(7, 3), replicate_seeds(7, 3)
    draws = [s.generate_state(2).tolist() for s in a]
    assert draws == [s.generate_state(2).tolist() for s in b]
    assert len({tuple(d) for d in draws}) == 3
    assert replicate_seeds(7, 5)[:3][2].generate_state(2).tolist() == draws[2]
