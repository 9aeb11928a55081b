"""Field and cell snapshots (experiments/snapshots.py): `bonesim run --snapshots`, the file
format, and that a snapshot is the model's state on its day."""

import numpy as np
import pytest

from bonesim.agents.osteoclasts import Osteoclast
from bonesim.experiments import snapshots as sn
from bonesim.experiments.cli import main
from bonesim.experiments.runner import replicate_seeds
from bonesim.model.bone_model import BoneModel
from bonesim.model.fields import FIELDS
from bonesim.model.scenario import load_scenario
from test_cli_run import scenario_file   # noqa: F401  a 32 x 32 woman at menopause, 2 replicates


@pytest.fixture(scope="module")
def run_dir(scenario_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("snapshots") / "run"
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "3",
                 "--snapshots", "2 weeks"]) == 0
    return out


def test_snapshots_on_day_0_and_every_interval_per_replicate(run_dir):
    for replicate in (0, 1):
        folder = run_dir / "snapshots" / f"rep_{replicate:03d}"
        assert sorted(p.name for p in folder.iterdir()) == [
            "day_00000.npz", "day_00014.npz", "day_00028.npz"]     # no temporary files left
    days = [s.day for s in sn.read_snapshots(run_dir, 1)]
    assert days == [0.0, 14.0, 28.0]


def test_snapshot_is_the_model_state_on_its_day(scenario_file, run_dir):
    """Replicate 0 rebuilt with its seed and stepped 14 days: the file holds its fields, matrix
    and cells (single precision), and its cells are the model's agents."""
    scenario = load_scenario(scenario_file, {"simulation.seed": 3})
    model = BoneModel(scenario, rng=replicate_seeds(3, 2)[0])
    for _ in range(14):
        model.step()
    snap = sn.read_snapshot(run_dir / "snapshots" / "rep_000" / "day_00014.npz")
    assert snap.day == 14.0 and float(snap.arrays["spacing_um"]) == 10.0
    assert list(snap.arrays["field_names"]) == [f.name for f in FIELDS]
    np.testing.assert_array_equal(snap.arrays["fields"], model.conc.astype(np.float32))
    np.testing.assert_array_equal(snap.field("rankl"), model.grid.rankl.data.astype(np.float32))
    np.testing.assert_array_equal(snap.field("mineral"), model.tissue.mineral.astype(np.float32))
    np.testing.assert_array_equal(snap.field("site_bmu"), model.tissue.site_bmu)
    cells = snap.cells
    assert sorted(cells["id"]) == sorted(a.unique_id for a in model.agents)
    oc = cells[cells["kind"] == "osteoclast"].set_index("id")
    for agent in model.agents_by_type.get(Osteoclast, []):
        assert (oc.loc[agent.unique_id, "row"], oc.loc[agent.unique_id, "col"]) == agent.position
        assert oc.loc[agent.unique_id, "bmu"] == agent.bmu
        assert oc.loc[agent.unique_id, "age_days"] == pytest.approx(agent.age, rel=1e-6)
    assert (cells.loc[cells["kind"] != "osteoclast", "nuclei"] == 0).all()


def test_write_read_round_trip(scenario_file, tmp_path):
    model = BoneModel(load_scenario(scenario_file), rng=1, spinup_days=20)
    snap = sn.take_snapshot(model)
    path = tmp_path / "s" / sn.snapshot_name(model.day)
    sn.write_snapshot(path, snap)
    back = sn.read_snapshot(path)
    assert back.arrays.keys() == snap.arrays.keys()
    for name, array in snap.arrays.items():
        np.testing.assert_array_equal(back.arrays[name], array)
    assert back.arrays["fields"].dtype == np.float32
    with pytest.raises(KeyError, match="no field 'pth'"):
        back.field("pth")


@pytest.mark.parametrize("every", ["0", "-3 d", "5 kg", "soon"])
def test_bad_interval_is_refused(scenario_file, tmp_path, capsys, every):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(scenario_file), "--out", str(tmp_path / "x"), "--snapshots", every])
    assert exit_info.value.code == 2
    assert "--snapshots" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_two_workers_write_the_serial_snapshots(scenario_file, run_dir, tmp_path):
    """`--workers 2` runs the replicates in worker processes: the same snapshot files, array
    for array, as the serial run."""
    out = tmp_path / "two_workers"
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "3",
                 "--snapshots", "2 weeks", "--workers", "2"]) == 0
    for replicate in (0, 1):
        serial, parallel = sn.read_snapshots(run_dir, replicate), sn.read_snapshots(out, replicate)
        assert [s.day for s in parallel] == [0.0, 14.0, 28.0]
        for a, b in zip(serial, parallel, strict=True):
            assert a.arrays.keys() == b.arrays.keys()
            for name in a.arrays:
                np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)
