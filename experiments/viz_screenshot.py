"""The README's picture of the browser view (docs/viz.png), regenerated:

    python -m bonesim.experiments.viz_screenshot [SCENARIO] [--days N] [--out docs/viz.png]

Starts `bonesim viz SCENARIO` (default: the built-in default, 256 x 256) offline, plays N
simulated days (default 30), pauses and saves the page (experiments/viz_browser.py; needs
/usr/bin/chromium and Playwright, the `test` extra).
"""

import argparse
import tempfile
from pathlib import Path

from bonesim.experiments import viz_browser


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", nargs="?", default="default", help="scenario file or built-in name")
    parser.add_argument("--days", type=int, default=30, help="simulated days to play first")
    parser.add_argument("--out", default="docs/viz.png", help="PNG to write")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with viz_browser.serve(args.scenario, log) as url, viz_browser.browser() as chromium:
            page = viz_browser.open_page(chromium, url)
            viz_browser.play_until(page, args.days, timeout_s=3600.0)
            page.wait_for_timeout(2000)          # the last frame drawn
            page.screenshot(path=str(out))
    print(f"{out}: the page at day {args.days} or later of {args.scenario}")


if __name__ == "__main__":
    main()
