"""The one parameter table of bonesim.

Every number the model uses lives in a TOML file under `model/parameters/` (one file per
domain: fields, drugs, endocrine, cells, tissue), as an entry

    [section.name]
    value = 0.35
    units = "1/day"
    range = [0.1, 1.0]          # plausible range, for sweeps and sensitivity analysis
    source = "Pivonka 2008"     # or "calibrated: <how and to what>"

`PARAMETERS` maps "file.section.name" to a `Parameter`; `value(key)` returns the number.
Files that hold structured tables (e.g. drugs) are also read whole through `table(name)`.
"""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PARAMETER_DIR = Path(__file__).parent / "parameters"


@dataclass(frozen=True)
class Parameter:
    """One model parameter: value in `units`, its plausible `range` and its `source`."""

    key: str
    value: float
    units: str
    range: tuple[float, float]
    source: str


@cache
def table(name: str) -> dict:
    """The parsed TOML file `parameters/<name>.toml`."""
    with open(PARAMETER_DIR / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


def _collect(prefix: str, node: dict, out: dict[str, Parameter]) -> None:
    if "value" in node and "units" in node:
        missing = {"range", "source"} - node.keys()
        if missing:
            raise ValueError(f"parameter {prefix} lacks {sorted(missing)}")
        low, high = node["range"]
        out[prefix] = Parameter(prefix, float(node["value"]), node["units"],
                                (float(low), float(high)), node["source"])
        return
    for key, child in node.items():
        if isinstance(child, dict):
            _collect(f"{prefix}.{key}", child, out)


@cache
def all_parameters() -> dict[str, Parameter]:
    """Every parameter entry of every file, keyed "file.section.name"."""
    out: dict[str, Parameter] = {}
    for path in sorted(PARAMETER_DIR.glob("*.toml")):
        _collect(path.stem, table(path.stem), out)
    return out


def value(key: str) -> float:
    """The value of parameter `key` ("file.section.name") in its documented units."""
    return all_parameters()[key].value
