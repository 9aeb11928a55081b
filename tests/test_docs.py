"""docs/ against the code: the validation targets, the parameter page and the citations.

docs/targets.md is the specification of the clinical targets; experiments/targets.py must
agree with it (ids, bands, published results and their sources, measures). docs/parameters.md
is generated from the parameter tables and must be current; every parameter key that
docs/biology.md names must exist; and the code cites docs/, never files outside the repo.
"""

import re
from pathlib import Path

import pytest

from bonesim.experiments import parameter_doc
from bonesim.experiments import targets as tg
from bonesim.model.parameters import all_parameters

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MEASURE_NAMES = {tg.BMD: "DXA spine BMD", tg.VBMD: "QCT trabecular vBMD", None: "-"}
SOURCE = re.compile(r"([A-Z][A-Za-z-]+(?: & [A-Z][A-Za-z-]+)?) (\d{4})")   # "Sowers 2010"


def table(section: str) -> list[list[str]]:
    """Body rows (cells stripped) of the first Markdown table under heading `section` of
    docs/targets.md."""
    text = (DOCS / "targets.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_every_trial_row_has_targets_and_every_target_a_row():
    rows = [r[0] for r in table("The trials")]
    assert len(rows) == 14
    assert rows == sorted({t.row for t in tg.TARGETS}, key=rows.index)
    assert set(rows) == {t.row for t in tg.TARGETS}


@pytest.mark.parametrize("target", tg.TARGETS, ids=lambda t: t.id)
def test_target_agrees_with_docs(target):
    documented = {r[0]: r for r in table("Checked quantities")}
    assert target.id in documented, f"{target.id} is not in docs/targets.md"
    _, checks, published, band, measure = documented[target.id]
    assert checks == target.description
    assert published == target.published
    assert band == target.band_text
    assert measure == MEASURE_NAMES[target.measure]


def test_documented_targets_are_the_code_targets():
    assert [r[0] for r in table("Checked quantities")] == [t.id for t in tg.TARGETS]


@pytest.mark.parametrize("target", tg.TARGETS, ids=lambda t: t.id)
def test_target_sources_are_those_of_its_trial(target):
    """Every "Author year" the target's published result cites is a source of its trial row."""
    sources = {r[0]: r[3] for r in table("The trials")}[target.row]
    for author, year in SOURCE.findall(target.published):
        assert f"{author} {year}" in sources, (target.id, author, year, sources)


def test_parameter_page_is_current():
    assert parameter_doc.main(["--check"]) == 0, (
        "docs/parameters.md differs from model/parameters/*.toml: "
        "run python -m bonesim.experiments.parameter_doc")


def test_parameter_page_has_every_parameter_with_value_units_range_source():
    text = (DOCS / "parameters.md").read_text()
    for p in all_parameters().values():
        assert parameter_doc.row(p) in text, p.key


def test_biology_names_existing_parameters():
    keys = all_parameters()
    text = (DOCS / "biology.md").read_text()
    named = re.findall(r"`((?:cells|tissue|fields|endocrine|drugs)\.[a-z0-9_.<>*]+)`", text)
    assert len(named) > 100
    for key in named:
        prefix = re.split(r"[*<]", key)[0]
        assert key in keys or (prefix != key and any(k.startswith(prefix) for k in keys)), key


def test_code_cites_docs_not_files_outside_the_repo():
    cited = re.compile(r"\b(DESIGN|BIOLOGY|TARGETS)\.md|\.\./shared")
    files = [p for folder in ("model", "agents", "experiments", "tests", "notebooks")
             for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".toml", ".md"}]
    files.append(ROOT / "README.md")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in files
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if cited.search(line) and p.name != "test_docs.py"]
    assert not offenders
    for name in ("design.md", "biology.md", "targets.md", "parameters.md"):
        assert (DOCS / name).exists()
