"""Scenario files: valid ones load with canonical units; bad ones are refused with the file,
the key path, the value and what is allowed."""

import copy
import json

import pytest

from bonesim.experiments.cli import main
from bonesim.model.scenario import ScenarioError, load_scenario, parse_scenario

BASE = {
    "name": "t",
    "patient": {"sex": "female", "age": "35 years"},
    "protocol": [{"drug": "progesterone", "route": "oral", "dose": "200 mg",
                  "schedule": "cyclic", "days": [1, 12]}],
    "tissue": {"size": [64, 64], "spacing": "10 um"},
    "simulation": {"duration": "1 years", "dt": "1 d"},
}


def with_change(path: str, value):
    """BASE with the dotted `path` set to `value` (or removed when value is ...)."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_valid_scenario_in_canonical_units():
    s = parse_scenario(with_change("protocol.0.dose", "0.2 g"))
    assert s.patient.age == pytest.approx(35.0)
    assert s.patient.status == "premenopausal"
    assert s.protocol[0].dose_amount == pytest.approx(200.0)
    assert s.tissue.spacing == 10.0 and s.simulation.dt == 1.0
    assert s.days == pytest.approx(365.25)


def test_volume_dose_uses_concentration():
    entry = {"drug": "testosterone_cypionate", "route": "sc", "dose": "0.1 mL",
             "concentration": "200 mg/mL", "schedule": "weekly"}
    s = parse_scenario(with_change("protocol", [entry]))
    assert s.protocol[0].dose_amount == pytest.approx(20.0)


BAD = [
    # (what, dotted path, value, words the message must contain)
    ("unknown top-level key", "colour", "red", ["colour", "unknown key", "allowed keys here"]),
    ("unknown nested key", "patient.weight", "70 kg", ["patient.weight", "unknown key", "sex"]),
    ("unknown drug", "protocol.0.drug", "unobtainium", ["protocol[0].drug = 'unobtainium'", "unknown drug", "progesterone"]),
    ("route the drug lacks", "protocol.0.route", "im", ["protocol[0].route = 'im'", "no such route", "oral"]),
    ("unit-less dose", "protocol.0.dose", "200", ["protocol[0].dose = '200'", "<number> <unit>", "mg"]),
    ("negative dose", "protocol.0.dose", "-5 mg", ["protocol[0]", "positive"]),
    ("dose of the wrong kind", "protocol.0.dose", "2 mL", ["protocol[0].dose", "'mL' is not allowed"]),
    ("empty cyclic window", "protocol.0.days", [12, 3], ["protocol[0]", "empty"]),
    ("cyclic schedule without days", "protocol.0.days", ..., ["protocol[0].days", "needs 'days'"]),
    ("stop before start", "protocol.0.stop", "0 d", ["protocol[0]", "must come after start"]),
    ("start after the end", "protocol.0.start", "2 years", ["protocol[0].start", "after the simulation ends"]),
    ("non-positive duration", "simulation.duration", "0 years", ["simulation.duration = '0 years'", "greater than 0"]),
    ("spacing out of range", "tissue.spacing", "500 um", ["tissue.spacing", "less than or equal to 50"]),
    ("size out of range", "tissue.size", [8, 4096], ["tissue.size = [8, 4096]", "16..1024"]),
    ("wrong unit for age", "patient.age", "35 kg", ["patient.age", "'kg'"]),
    ("unknown sex", "patient.sex", "other", ["patient.sex", "'female' or 'male'"]),
    ("menopause contradicts ages", "patient.menopause", "postmenopausal", ["patient.menopause = 'postmenopausal'", "contradicts"]),
    ("fractions exceed one", "patient.cycle", {"anovulatory_fraction": 0.7, "short_luteal_fraction": 0.5},
     ["patient.cycle", "must not exceed 1"]),
    ("output shorter than dt", "simulation.output_every", "1 h", ["simulation", "shorter than dt"]),
    ("negative seed", "simulation.seed", -1, ["simulation.seed", "greater than or equal to 0"]),
    ("missing required key", "patient.sex", ..., ["patient.sex", "Field required"]),
    ("implausible dose", "protocol.0.dose", "50 g", ["protocol[0].dose = '50 g'", "outside the plausible range",
                                                     "progesterone oral", "25 mg to 600 mg", "dose_range"]),
    ("implausible volume dose", "protocol.0", {"drug": "testosterone_cypionate", "route": "im", "dose": "5 mL",
                                               "concentration": "200 mg/mL", "schedule": "weekly"},
     ["protocol[0].dose = '5 mL'", "1000 mg is outside", "10 mg to 400 mg"]),
    ("implausible patch rate", "protocol.0", {"drug": "estradiol", "route": "transdermal", "dose": "5 mg/day",
                                              "schedule": "twice_weekly"},
     ["protocol[0].dose = '5 mg/day'", "per patch", "rate_range"]),
]


@pytest.mark.parametrize("what,path,value,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_a_clear_message(what, path, value, words):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(with_change(path, value), "bad.toml")
    message = str(err.value)
    assert message.startswith("bad.toml: ")
    for word in words:
        assert word in message, f"{what}: {word!r} not in {message!r}"


def test_overlapping_schedules_are_refused():
    entries = [{"drug": "mpa", "route": "oral", "dose": "10 mg", "schedule": "daily",
                "start": "0 d", "stop": "100 d"},
               {"drug": "mpa", "route": "oral", "dose": "5 mg", "schedule": "daily",
                "start": "50 d"}]
    with pytest.raises(ScenarioError, match=r"protocol\[1\]: gives mpa oral on days that overlap protocol\[0\]"):
        parse_scenario(with_change("protocol", entries))


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[patient\nsex = "female"\n')
    with pytest.raises(ScenarioError, match=r"broken.toml: not valid TOML"):
        load_scenario(path)


def test_cli_refuses_bad_input_with_exit_code_2_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[patient]\nsex = "female"\nage = "35"\n')
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: patient.age = '35'" in err and "years" in err
    assert not out.exists()


def test_cli_refuses_years_override_that_empties_a_protocol(tmp_path, capsys):
    path = tmp_path / "late.toml"
    path.write_text('name = "x"\n[patient]\nsex = "female"\nage = "35 years"\n'
                    '[[protocol]]\ndrug = "mpa"\nroute = "oral"\ndose = "10 mg"\n'
                    'schedule = "daily"\nstart = "2 years"\n'
                    '[simulation]\nduration = "3 years"\n')
    assert main(["run", str(path), "--years", "1", "--out", str(tmp_path / "o")]) == 2
    assert "after the simulation ends" in capsys.readouterr().err


def test_schema_command_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) >= {"name", "patient", "protocol", "tissue", "simulation"}
    assert "units: mg" not in json.dumps(schema["$defs"]["Patient"])  # ages are times, not masses
    assert "years" in json.dumps(schema["$defs"]["Patient"]["properties"]["age"])


def test_builtin_scenarios_are_valid():
    from bonesim.experiments.cli import SCENARIO_DIR
    files = sorted(SCENARIO_DIR.glob("*.toml"))
    assert files, "no built-in scenarios"
    for path in files:
        load_scenario(path)


def test_readme_example_is_a_valid_scenario():
    import re
    import tomllib
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    scenario = parse_scenario(tomllib.loads(block), "README.md")
    assert {e.drug for e in scenario.protocol} == {"cee", "mpa", "testosterone_cypionate",
                                                   "testosterone_pellet"}


def test_every_route_has_a_plausible_dose_range_and_parameters_lie_in_their_ranges():
    """The scenario check needs a dose range for every route (and a rate range where a dose may be
    a rate), in units of the doses the route accepts; every drug and endocrine parameter lies in
    its own plausible range."""
    from bonesim.model.parameters import all_parameters, table
    from bonesim.model.units import parse_quantity
    for drug, spec in table("drugs").items():
        for route, r in spec["routes"].items():
            kinds = {"mass" if kind == "volume" else kind for kind in r["dose"]}
            ranges = {"rate_range": {"mass_rate"} & kinds, "dose_range": kinds - {"mass_rate"}}
            for key, dims in ranges.items():
                if not dims:
                    continue
                bounds = r[key]
                low, high = (parse_quantity(bounds[end], tuple(dims)) for end in ("low", "high"))
                assert 0 < low < high and bounds["source"], (drug, route, key)
    for key, parameter in all_parameters().items():
        if key.startswith(("drugs.", "endocrine.")):
            low, high = parameter.range
            assert low <= parameter.value <= high, key
