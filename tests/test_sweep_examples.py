"""The example experiment scripts of experiments/sweeps/ run at their CI setting (--small: a
32x32 section for 30 days, fewest samples) and print the answer to their question."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SWEEPS = Path(__file__).resolve().parents[1] / "experiments" / "sweeps"

pytestmark = pytest.mark.slow


def run_script(name: str, out: Path) -> str:
    done = subprocess.run([sys.executable, str(SWEEPS / f"{name}.py"), "--small", "--workers", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_progesterone_dose_and_route(tmp_path):
    text = run_script("progesterone_dose", tmp_path)
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert len(table) == 8 and (table["status"] == "done").all()
    for arm in ("oral", "cream"):
        for dose in (25, 50, 100, 200):
            assert any(line.startswith(f"{arm}") and f" {dose} mg" in line
                       for line in text.splitlines()), text
    assert table[["vbmd_pct_trabecular", "bmd_pct_spine", "serum_p4_ng_ml"]].notna().all().all()
    assert (tmp_path / "response.png").exists()


def test_morris_screen_of_cell_parameters(tmp_path):
    text = run_script("morris_cells", tmp_path)
    indices = pd.read_parquet(tmp_path / "sensitivity.parquet")
    bmd = indices[indices["output"] == "bmd_pct_spine"]
    assert len(bmd) == 8 and (bmd["mu_star"] >= 0).all()
    assert bmd["mu_star"].max() > 0        # the parameters move BMD even in 30 days
    for name in bmd["input"]:
        assert name in text
    assert (tmp_path / "sensitivity.png").exists() and (tmp_path / "sensitivity.md").exists()


def test_cohort_cee_vs_placebo(tmp_path):
    text = run_script("cohort_cee", tmp_path)
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert len(table) == 4 and sorted(table["arm"].unique()) == ["cee", "placebo"]
    assert table.groupby("point")["patient.age"].nunique().eq(1).all()
    assert "CEE - placebo, paired" in text and "of 2 women better on CEE" in text
    assert (tmp_path / "cohort.png").exists()
