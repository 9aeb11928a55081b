"""Result files that survive a killed process, and what identifies the code that made them.

Every result file is written atomically (a temporary file in the same folder, then
`os.replace`), so a killed run never leaves a corrupt file.
"""

import hashlib
import json
import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: dict) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write `frame` as Parquet, atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def git_revision() -> str | None:
    """The git revision of the bonesim source tree (with '-dirty' if modified), or None."""
    try:
        rev = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def code_digest() -> str:
    """SHA-256 (hex) of the simulation's own code: every .py file of model/ and agents/ and the
    parameter tables (model/parameters/*.toml), by path and content. Two runs with the same
    scenario, seed and digest are the same run, whatever was committed or edited elsewhere
    (tests, docs, experiments), so finished runs can be reused by later runs; any edit to the
    model, committed or not, changes it."""
    h = hashlib.sha256()
    files = sorted([*PACKAGE_ROOT.glob("model/**/*.py"), *PACKAGE_ROOT.glob("agents/**/*.py"),
                    *PACKAGE_ROOT.glob("model/parameters/*.toml")])
    for f in files:
        h.update(f.relative_to(PACKAGE_ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()
