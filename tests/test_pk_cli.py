"""`bonesim pk`: serum curves of a scenario without the tissue."""

import numpy as np
import pandas as pd

from bonesim.experiments.cli import main
from bonesim.model.endocrine import SERUM_NAMES

SCENARIO = """
name = "pk_check"
[patient]
sex = "female"
age = "56 years"
fmp_age = "51 years"
[[protocol]]
drug = "progesterone"
route = "oral"
dose = "200 mg"
schedule = "cyclic"
days = [1, 12]
[[protocol]]
drug = "cee"
route = "oral"
dose = "0.625 mg"
schedule = "daily"
[simulation]
duration = "1 year"
"""


def test_pk_writes_png_and_parquet(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    assert main(["pk", str(path), "--out", str(out), "--years", "0.25", "--seed", "3"]) == 0
    frame = pd.read_parquet(out / "serum.parquet")
    assert set(SERUM_NAMES) <= set(frame.columns)
    assert 0.25 * 365.25 <= frame["day"].iloc[-1] + 0.25 / 24 <= 92 + 1e-9  # whole daily steps cover the run
    assert np.diff(frame["day"]).max() * 24 < 1.0  # sub-hour resolution
    assert frame["p4_ng_ml"].max() > 3  # the oral doses show
    assert (out / "serum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["serum.parquet", "serum.png"]  # no temp files
    assert "serum.parquet" in capsys.readouterr().out


AXES_SCENARIO = """
name = "axes_check"
[patient]
sex = "male"
age = "65 years"
testosterone = "320 ng/dL"
[[protocol]]
drug = "anastrozole"
route = "oral"
dose = "1 mg"
schedule = "daily"
stop = "60 d"
[[protocol]]
drug = "testosterone_enanthate"
route = "im"
dose = "200 mg"
schedule = "weekly"
start = "60 d"
"""


def test_pk_shows_the_axes(tmp_path):
    """LH drive, endogenous vs exogenous T and the GH axis are columns of the parquet."""
    path = tmp_path / "axes.toml"
    path.write_text(AXES_SCENARIO)
    assert main(["pk", str(path), "--out", str(tmp_path / "out"), "--years", "0.3"]) == 0
    frame = pd.read_parquet(tmp_path / "out" / "serum.parquet")
    assert {"lh_drive", "t_endogenous_ng_dl", "t_exogenous_ng_dl", "gh_rel", "igf1_ng_ml"} <= set(frame.columns)
    before = frame[(frame["day"] > 45) & (frame["day"] < 59)]
    after = frame[frame["day"] > 95]
    assert before["lh_drive"].mean() > 1.2 > 0.2 > after["lh_drive"].mean()  # AI raises LH, TRT suppresses it
    assert np.allclose(frame["t_ng_dl"], frame["t_endogenous_ng_dl"] + frame["t_exogenous_ng_dl"], rtol=1e-5)


def test_pk_refuses_an_implausible_dose(tmp_path, capsys):
    path = tmp_path / "big.toml"
    path.write_text(AXES_SCENARIO.replace('dose = "1 mg"', 'dose = "50 g"'))
    assert main(["pk", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "protocol[0].dose = '50 g'" in err and "outside the plausible range of anastrozole oral" in err
    assert not (tmp_path / "out").exists()


def test_pk_bad_scenario_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO.replace('dose = "200 mg"', 'dose = "200 IU"'))
    assert main(["pk", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "protocol[0]" in err and "IU" in err
    assert not (tmp_path / "out").exists()
