"""The `bonesim` command line.

    bonesim run SCENARIO.toml [--out DIR] [--seed N] [--years Y] [--workers W] [--snapshots EVERY]
    bonesim schema
    bonesim pk SCENARIO.toml [--out DIR] [--seed N] [--years Y]
    bonesim validate [--quick] [--seeds N] [--workers W] [--out DIR] ...
    bonesim converge [--seeds N] [--workers W] [--size N] [--years Y] [--out DIR]
    bonesim sweep SWEEP.toml [--out DIR] [--workers W] [--scheduler tcp://HOST:PORT | local]
    bonesim sweep --status DIR
    bonesim viz [SCENARIO.toml | name] [--host 127.0.0.1] [--port 8765]

SCENARIO is a TOML file, or the name of a built-in scenario in experiments/scenarios/
(`bonesim run default`). Bad input exits with status 2 and a message naming the file, the key,
the value and what is allowed (or, for a file that cannot be read at all, why: a directory, an
empty, binary or unreadable file); nothing is run or written then.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from bonesim.model.scenario import Scenario, ScenarioError, load_scenario

SCENARIO_DIR = Path(__file__).parent / "scenarios"


def scenario_path(name: str) -> Path:
    """A scenario file, or the file of a built-in scenario name."""
    path = Path(name)
    if not path.exists() and (SCENARIO_DIR / f"{name}.toml").exists():
        path = SCENARIO_DIR / f"{name}.toml"
    return path


def resolve_scenario(name: str, seed: int | None = None, years: float | None = None) -> Scenario:
    """Load a scenario file or built-in scenario name, with --seed/--years applied before validation."""
    overrides = {}
    if seed is not None:
        overrides["simulation.seed"] = seed
    if years is not None:
        overrides["simulation.duration"] = f"{years} years"
    return load_scenario(scenario_path(name), overrides)


def _positive_years(text: str) -> float:
    years = float(text)
    if not years > 0:
        raise argparse.ArgumentTypeError(f"--years must be > 0, got {text}")
    return years


def _every(text: str) -> float:
    """--snapshots: a time ("90 d", "3 months") or a number of days, > 0; in days."""
    from bonesim.model.units import parse_quantity

    try:
        days = float(text) if text.replace(".", "", 1).isdigit() else parse_quantity(text, ("time",))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--snapshots: {err}") from None
    if not days > 0:
        raise argparse.ArgumentTypeError(f"--snapshots must be > 0, got {text}")
    return days


def _seed(text: str) -> int:
    seed = int(text)
    if seed < 0:
        raise argparse.ArgumentTypeError(f"--seed must be >= 0, got {text}")
    return seed


def cmd_run(args) -> int:
    from bonesim.experiments.run import final_values, run_scenario

    if args.workers is not None and args.workers < 1:
        print(f"bonesim: error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    scenario = resolve_scenario(args.scenario, args.seed, args.years)
    out = Path(args.out) if args.out else Path("runs") / scenario.name
    replicates = scenario.simulation.replicates
    workers = min(args.workers or os.cpu_count() or 1, replicates)
    series = run_scenario(scenario, out, workers=workers, snapshot_every=args.snapshots)
    print(f"{scenario.name}: {scenario.simulation.duration:g} years, {replicates} replicate(s); "
          f"results in {out}/")
    for row in final_values(series).itertuples():
        ci = (f" [95% CI {row.ci95_lo:.3f}, {row.ci95_hi:.3f}]" if replicates > 1 else "")
        print(f"  final {row.quantity}: {row.mean:.3f}{ci}")
    if replicates > 1:
        print(f"  (mean over the {replicates} replicate sections, and the 95% confidence interval "
              "of that mean)")
    else:
        print("  (one replicate: no confidence interval; set simulation.replicates >= 2)")
    return 0


def cmd_schema(args) -> int:
    print(json.dumps(Scenario.model_json_schema(), indent=2))
    return 0


def cmd_pk(args) -> int:
    from bonesim.experiments.pk import write_pk

    scenario = resolve_scenario(args.scenario, args.seed, args.years)
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-pk"
    paths = write_pk(scenario, out)
    print(f"{scenario.name}: serum levels over {scenario.simulation.duration:g} years in "
          f"{paths['parquet']} and {paths['png']}")
    return 0


def cmd_validate(args) -> int:
    from bonesim.experiments.validate import BadRequest, exit_code, summary, validate

    try:
        table = validate(Path(args.out), quick=args.quick, seeds=args.seeds, workers=args.workers,
                         only=args.only, size=args.size, dt=args.dt,
                         source=None if args.source is None else Path(args.source),
                         precision=args.precision, max_seeds=args.max_seeds)
    except BadRequest as err:
        print(f"bonesim: error: {err}", file=sys.stderr)
        return 2
    targets = summary(table).query("level == 'target'")
    print(f"validation: {int(targets['passed'].sum())} of {len(targets)} targets pass; "
          f"report in {args.out}/validation.md")
    return exit_code(table, args.strict)


def cmd_converge(args) -> int:
    from bonesim.experiments.convergence import converge
    from bonesim.experiments.validate import BadRequest

    try:
        table = converge(Path(args.out), seeds=args.seeds, workers=args.workers, size=args.size,
                         years=args.years)
    except BadRequest as err:
        print(f"bonesim: error: {err}", file=sys.stderr)
        return 2
    for _, r in table.iterrows():
        print(f"{r['what']}, {r['label']}: difference {r['difference']:+.2f} "
              f"[{r['ci95_lo']:+.2f}, {r['ci95_hi']:+.2f}] points: {r['verdict']}")
    print(f"report in {args.out}/convergence.md")
    return 0


def cmd_sweep(args) -> int:
    from bonesim.experiments.runner import NoScheduler, WorkerDied
    from bonesim.experiments.sweep import default_out, load_sweep, run_sweep, status

    if args.status:
        counts = status(Path(args.status))
        print(f"{counts['name']}: {counts['done']} of {counts['total']} runs done, "
              f"{counts['failed']} failed, {counts['pending']} pending")
        for run, error in counts["errors"].items():
            print(f"  {run}: {error}")
        return 0
    if args.sweep is None:
        print("bonesim: error: sweep: give a sweep file (or --status DIR)", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"bonesim: error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.scheduler not in (None, "local") and "://" not in args.scheduler:
        print(f"bonesim: error: --scheduler {args.scheduler}: give a scheduler address "
              "(tcp://HOST:PORT) or 'local'", file=sys.stderr)
        return 2
    sweep = load_sweep(args.sweep)
    out = Path(args.out) if args.out else None
    try:
        table = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler)
    except (WorkerDied, NoScheduler) as err:
        print(f"bonesim: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, NoScheduler) else 1
    failed = table[table["status"] == "failed"]
    where = out or default_out(sweep)
    print(f"{sweep.name}: {len(table) - len(failed)} of {len(table)} runs done, {len(failed)} "
          f"failed; results in {where}/")
    return 1 if len(failed) else 0


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be within 0..65535 (0: any free port), got {text}")
    return port


def _listen_check(host: str, port: int) -> tuple[int, str | None]:
    """(port, None) if a server can listen at host:port (for port 0 a free port), else
    (port, the reason it cannot)."""
    import socket

    try:
        socket.getaddrinfo(host, port)
    except socket.gaierror as err:
        return port, f"no such address ({err.strerror})"
    try:
        with socket.create_server((host, port)) as probe:
            return probe.getsockname()[1], None
    except OSError as err:
        return port, os.strerror(err.errno)


def cmd_viz(args) -> int:
    scenario = resolve_scenario(args.scenario)     # refuses a bad scenario before anything runs
    port, problem = _listen_check(args.host, args.port)
    if problem:
        print(f"bonesim: error: --host {args.host} --port {args.port}: cannot listen there: "
              f"{problem}", file=sys.stderr)
        return 2
    os.environ["BONESIM_VIZ_SCENARIO"] = str(scenario_path(args.scenario).resolve())
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "false"
    from solara.__main__ import cli as solara_cli

    print(f"bonesim viz: {scenario.name}: spinning up the tissue, then serving "
          f"http://{args.host}:{port}/", file=sys.stderr)
    solara_cli(["run", "bonesim.model.app", "--host", args.host, "--port", str(port),
                "--production", "--no-open", "--no-check-version"], standalone_mode=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bonesim", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write a run directory")
    run.add_argument("scenario", help="scenario TOML file or built-in name (e.g. default)")
    run.add_argument("--out", help="run directory (default runs/<scenario name>)")
    run.add_argument("--seed", type=_seed, help="override simulation.seed")
    run.add_argument("--years", type=_positive_years, help="override simulation.duration, years")
    run.add_argument("--workers", type=int, default=None,
                     help="processes for replicates (default: one per CPU, at most one per "
                          "replicate)")
    run.add_argument("--snapshots", type=_every, metavar="EVERY",
                     help="also save field and cell snapshots every EVERY ('90 d' or days) in "
                          "DIR/snapshots/ (experiments/snapshots.py)")
    run.set_defaults(handler=cmd_run)

    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    schema.set_defaults(handler=cmd_schema)

    pk = sub.add_parser("pk", help="serum levels of a scenario's patient and protocol, without "
                        "the tissue: write serum.png and serum.parquet")
    pk.add_argument("scenario", help="scenario TOML file or built-in name")
    pk.add_argument("--out", help="output directory (default runs/<scenario name>-pk)")
    pk.add_argument("--seed", type=_seed, help="override simulation.seed (menstrual cycle draws)")
    pk.add_argument("--years", type=_positive_years, help="override simulation.duration, years")
    pk.set_defaults(handler=cmd_pk)

    check = sub.add_parser("validate", help="run the clinical validation suite (docs/targets.md) and "
                           "write validation.md, .parquet and .png")
    check.add_argument("--quick", action="store_true",
                       help="for CI: 3 seeds, 96x96 tissue, shorter arms where a target allows")
    check.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    check.add_argument("--seeds", type=int, help="replicate seeds per arm (default 8; 3 with --quick)")
    check.add_argument("--workers", type=int, help="processes (default: number of CPUs)")
    check.add_argument("--out", default="runs/validation", help="output directory (default runs/validation)")
    check.add_argument("--only", nargs="+", metavar="ID", help="only these targets or rows, e.g. V1 V3f")
    check.add_argument("--size", type=int, metavar="N", help="N x N grid cells of tissue for every arm")
    check.add_argument("--dt", type=float, metavar="DAYS", help="tissue time step for every arm, days")
    check.add_argument("--precision", type=float, metavar="H",
                       help="add seeds until every target's 95%% CI half-width is <= H, in its "
                            "units (points, %%/yr, days, um)")
    check.add_argument("--max-seeds", type=int, metavar="N",
                       help="with --precision: at most N seeds per arm (default 128)")
    check.add_argument("--from", dest="source", metavar="DIR",
                       help="simulate nothing: evaluate the runs of a finished validation in DIR, "
                            "every seed they hold (same --size, --dt, --quick as that run)")
    check.set_defaults(handler=cmd_validate)

    conv = sub.add_parser("converge", help="does halving dt or dx change the 3-year BMD by < 0.3 "
                          "points? (paired seeds; resumable: more --seeds extends a finished study)")
    conv.add_argument("--seeds", type=int, default=16, help="replicate seeds per arm (default 16)")
    conv.add_argument("--workers", type=int, help="processes (default: number of CPUs)")
    conv.add_argument("--size", type=int, default=128, metavar="N",
                      help="N x N grid cells of tissue (default 128)")
    conv.add_argument("--years", type=_positive_years, default=3.0,
                      help="simulated years (default 3)")
    conv.add_argument("--out", default="runs/convergence",
                      help="output directory (default runs/convergence)")
    conv.set_defaults(handler=cmd_converge)

    sweep = sub.add_parser("sweep", help="run a sweep file: grid, Latin hypercube, Sobol or "
                           "Morris design, or a virtual cohort (resumable)")
    sweep.add_argument("sweep", nargs="?", help="sweep TOML file (see experiments/sweeps/)")
    sweep.add_argument("--out", help="output directory (default runs/sweeps/<sweep name>)")
    sweep.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="processes (default: number of CPUs), or Dask workers of a "
                            "--scheduler local")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a Dask cluster: tcp://HOST:PORT of its scheduler, or 'local' "
                            "for a LocalCluster of --workers processes")
    sweep.add_argument("--status", metavar="DIR", help="count the runs done, failed and pending "
                       "in the sweep directory DIR; run nothing")
    sweep.set_defaults(handler=cmd_sweep)

    viz = sub.add_parser("viz", help="watch the scenario's tissue remodel in the browser "
                         "(Mesa SolaraViz, served from this machine, no network needed)")
    viz.add_argument("scenario", nargs="?", default="default",
                     help="scenario TOML file or built-in name (default: default)")
    viz.add_argument("--host", default="127.0.0.1",
                     help="address to serve on (default 127.0.0.1: this machine only)")
    viz.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0: a free one)")
    viz.set_defaults(handler=cmd_viz)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ScenarioError as err:
        print(f"bonesim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
