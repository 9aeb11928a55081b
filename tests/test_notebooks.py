"""Every notebook in notebooks/ (jupytext percent-format .py) runs from top to bottom.

Each is converted to an .ipynb in a temporary folder (its working directory, where it writes
any files) and executed by nbmake's runner in a fresh kernel. BONESIM_CI=1, inherited by the
kernel, gives each notebook its small setting (the `SMALL` switch at its top). A notebook added
to notebooks/ is picked up without editing this file.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbmake.nb_run import NotebookRun

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))
TIMEOUT = 1800   # seconds per cell


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    notebook = jupytext.read(path)
    assert any(c.cell_type == "markdown" for c in notebook.cells), "a notebook explains itself"
    ipynb = tmp_path / f"{path.stem}.ipynb"
    nbformat.write(notebook, ipynb)
    result = NotebookRun(ipynb, default_timeout=TIMEOUT, kernel="python3").execute()
    assert result.error is None, f"{path.name}: {result.error.summary}\n{result.error.trace}"
