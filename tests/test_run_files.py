"""Run-directory bookkeeping: atomic writes and the runner's store of finished runs."""

import json

import pandas as pd
import pytest

from bonesim.experiments.files import atomic_path, write_json
from bonesim.experiments.runner import (
    Job, SpinupFiles, Store, parameters_set, replicate_seeds, run_jobs, simulate,
)
from bonesim.experiments.validate import SCENARIO_DIR
from bonesim.model.parameters import value
from bonesim.model.scenario import load_scenario, parse_scenario


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


def test_the_arms_of_a_trial_spin_up_once(tmp_path, monkeypatch):
    """run_jobs: of a placebo and a treated arm with one patient, tissue and seed, the first
    leaves its spun-up tissue in the store and the second takes it; each result is that of its
    run alone, and no spin-up file is left behind."""
    names = ("v3b_pepi_cee", "v3a_pepi_placebo")
    short = {"tissue.size": [32, 32], "simulation.duration": "18 d"}
    seed = replicate_seeds(0, 1)[0]
    jobs = [Job(name, load_scenario(SCENARIO_DIR / f"{name}.toml", short), seed) for name in names]
    calls = []
    for method in ("__getitem__", "__setitem__"):
        original = getattr(SpinupFiles, method)

        def spy(files, *args, _method=method, _original=original):
            calls.append(_method)
            return _original(files, *args)
        monkeypatch.setattr(SpinupFiles, method, spy)
    with parameters_set({"tissue.spinup.days": 30.0, "tissue.spinup.history_max": 0.0}):
        frames = run_jobs(jobs, tmp_path)
        alone = {job.name: simulate(job.scenario, job.seed) for job in jobs}
    assert calls == ["__setitem__", "__getitem__"]
    for name in names:
        pd.testing.assert_frame_equal(frames[name], alone[name])
    assert not frames[names[0]].equals(frames[names[1]])
    assert not list(tmp_path.glob("spinup-*"))
