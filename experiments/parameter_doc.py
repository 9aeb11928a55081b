"""docs/parameters.md: every parameter of model/parameters/*.toml as a table a reader can open.

    python -m bonesim.experiments.parameter_doc [--check]

One table per file (cells, drugs, endocrine, fields, tissue), one row per parameter: key,
value, units, plausible range and source, as `bonesim.model.parameters` reads them. The page is
written from the tables, never by hand; `--check` exits with status 1 when the page on disk is
not the page the tables give (the test suite runs this check).
"""

import argparse
import sys
from pathlib import Path

from bonesim.model.parameters import Parameter, all_parameters

PAGE = Path(__file__).resolve().parent.parent / "docs" / "parameters.md"
HEADER = """# Parameters

Every number of the model, as `model/parameters/*.toml` holds it: value, units, plausible range
(for sweeps and sensitivity analysis) and source. Tags in sources: [V] read in the source
named, [L] standard literature value; "calibrated: ..." names the procedure and the target
(`experiments/calibrate.py`, targets.md). The mechanisms these parameters carry are described
in [biology.md](biology.md). Keys are "file.section.name", as `bonesim.model.parameters.value`
takes them.

This page is generated: `python -m bonesim.experiments.parameter_doc` (the test suite checks
that it matches the tables).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def row(p: Parameter) -> str:
    """One Markdown table row of parameter `p`."""
    low, high = p.range
    return (f"| `{p.key}` | {p.value:g} | {_cell(p.units)} | {low:g} - {high:g} | "
            f"{_cell(p.source)} |")


def page(parameters: dict[str, Parameter] | None = None) -> str:
    """The Markdown text of docs/parameters.md."""
    parameters = all_parameters() if parameters is None else parameters
    lines = [HEADER]
    files = sorted({key.split(".")[0] for key in parameters})
    for name in files:
        lines += [f"## {name} (model/parameters/{name}.toml)", "",
                  "| key | value | units | range | source |", "|---|---|---|---|---|"]
        lines += [row(p) for key, p in parameters.items() if key.split(".")[0] == name]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/parameters.md differs from the tables")
    args = parser.parse_args(argv)
    text = page()
    if args.check:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date: run python -m bonesim.experiments.parameter_doc",
                  file=sys.stderr)
            return 1
        return 0
    from bonesim.experiments.files import atomic_path
    with atomic_path(PAGE) as tmp:
        tmp.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
