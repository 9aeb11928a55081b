"""Speed of the browser view on the default scenario (its section, as the page opens), against
what it is held to: a frame in <= 0.3 s and a Reset of the default ready in <= 5 s.

    python -m bonesim.experiments.bench_viz [--steps N] [--repeat R]

Times, in this process: the first model (its spin-up), a Reset to the same controls (taking
over the spun-up state), then after N steps each view drawn and encoded as the page's PNG
(best of R), with the number of cells drawn.
"""

import argparse
import io
import time


def _best(draw, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        draw().savefig(io.BytesIO(), format="png")
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="days simulated before drawing")
    parser.add_argument("--repeat", type=int, default=5, help="draws per view (best counts)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    from bonesim.model import app      # builds the default model: its spin-up
    print(f"first model (spin-up): {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    model = app.BoneView(**app.START)
    print(f"Reset to the same controls (cached state): {time.perf_counter() - start:.2f} s")
    for _ in range(args.steps):
        model.step()
    frame = model.timeseries()
    years = app.record_span(frame, app.run_years(model))
    print(f"after {args.steps} days, {len(model.agents)} cells on {model.tissue.shape[0]} x "
          f"{model.tissue.shape[1]}; frame (draw + PNG), best of {args.repeat}:")
    for name, draw in (("tissue and cells", lambda: app.draw_tissue(model)),
                       ("layer (free RANKL)", lambda: app.draw_layer(model, "free RANKL")),
                       ("bone record", lambda: app.draw_bone_record(frame, years)),
                       ("body record", lambda: app.draw_body_record(frame, years))):
        print(f"  {name:20s} {_best(draw, args.repeat):.3f} s")


if __name__ == "__main__":
    main()
