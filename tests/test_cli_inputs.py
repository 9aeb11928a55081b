"""Every command refuses a file it cannot use (a directory, a binary file, an empty file, a file
it may not read) with exit status 2 and one line naming the file: nothing runs or is written."""

import os
from pathlib import Path

import pytest

from bonesim.experiments.cli import main


def hostile(kind: str, tmp_path: Path, monkeypatch) -> Path:
    """A path of `kind`: dir, binary, empty or unreadable."""
    path = tmp_path / f"{kind}.toml"
    if kind == "dir":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256)))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text('name = "x"\n')
        path.chmod(0)
        if os.access(path, os.R_OK):    # root reads anything: make the read fail as it would
            real = Path.read_bytes

            def denied(self):
                if self == path:
                    raise PermissionError(13, "Permission denied", str(self))
                return real(self)

            monkeypatch.setattr(Path, "read_bytes", denied)
    return path


REASONS = {"dir": "is a directory", "binary": "not a text file", "empty": "empty file",
           "unreadable": "permission denied"}


@pytest.mark.parametrize("kind", list(REASONS))
@pytest.mark.parametrize("command", ["run", "pk", "viz", "sweep"])
def test_commands_refuse_files_they_cannot_read(command, kind, tmp_path, monkeypatch, capsys):
    path = hostile(kind, tmp_path, monkeypatch)
    out = tmp_path / "out"
    args = [command, str(path)] + ([] if command == "viz" else ["--out", str(out)])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and REASONS[kind] in err, err
    assert not out.exists()


@pytest.mark.parametrize("kind", list(REASONS))
def test_validate_from_refuses_what_is_not_a_finished_validation(kind, tmp_path, monkeypatch,
                                                                 capsys):
    path = hostile(kind, tmp_path, monkeypatch)
    if kind == "dir":      # a directory whose result files are not Parquet
        for name in ("validation_series.parquet", "validation.parquet"):
            (path / name).write_bytes(b"\x00\xff garbage")
    out = tmp_path / "out"
    assert main(["validate", "--from", str(path), "--out", str(out), "--only", "V7"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert ("cannot read a finished validation" if kind == "dir" else "not a directory") in err
    assert not out.exists()


def test_sweep_status_of_a_directory_without_a_sweep(tmp_path, capsys):
    assert main(["sweep", "--status", str(tmp_path)]) == 2
    assert "no sweep here" in capsys.readouterr().err


def test_sweep_refuses_a_scheduler_that_is_no_address(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "experiments" / "sweeps" / "morris_cells.toml"
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--scheduler", "cluster-1", "--out", str(out)]) == 2
    assert "--scheduler cluster-1" in capsys.readouterr().err
    assert not out.exists()
