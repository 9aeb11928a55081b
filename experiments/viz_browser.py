"""Drive `bonesim viz` in headless Chromium, offline: for the browser test and the README
screenshot (experiments/viz_screenshot.py).

`serve(scenario)` starts `bonesim viz SCENARIO` on a free loopback port in a subprocess whose
HTTP(S) proxy is a closed loopback port, so any fetch it tried beyond the machine would fail
(Solara's server would log "Could not load URL"); it yields the page's URL once the server
answers, and stops the server afterwards. `browser()` launches Debian's Chromium
(/usr/bin/chromium; Playwright downloads no browser here) through Playwright, with the same
closed proxy: only loopback addresses (which Chromium never proxies) can be reached.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
DEAD_PROXY = "http://127.0.0.1:9"     # the discard port: nothing listens there
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  f"--proxy-server={DEAD_PROXY}"]
VIEWPORT = {"width": 1400, "height": 1000}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def offline_env() -> dict:
    """This process's environment with every HTTP(S) fetch beyond loopback sent to DEAD_PROXY."""
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[name] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@contextmanager
def serve(scenario: str, log: Path, timeout: float = 600.0):
    """Run `bonesim viz SCENARIO` offline on a free port, its output in `log`; yields the URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "bonesim.experiments.cli", "viz", scenario,
                                   "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                  env=offline_env())
    try:
        _wait_for(url, server, log, timeout)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_for(url: str, server: subprocess.Popen, log: Path, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f"bonesim viz exited with {server.returncode}:\n{log.read_text()}")
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1.0)
    raise TimeoutError(f"bonesim viz did not answer at {url} in {timeout:.0f} s:\n{log.read_text()}")


@contextmanager
def browser():
    """A Playwright Chromium browser (Debian's), headless, with no route beyond loopback."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(chromium, url: str):
    """The viewer's page, loaded (its Step button shown)."""
    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(url)
    page.get_by_role("button", name="Step").wait_for(timeout=120_000)
    return page


def shown_day(page) -> int:
    """The simulated day the page shows ('day N = year Y, day D ...')."""
    return int(page.locator(".bonesim-date").inner_text().split()[1])


def play_until(page, day: int, timeout_s: float = 600.0) -> None:
    """Press Play, wait until the page shows `day` or later, press Pause."""
    page.get_by_role("button", name="▶").click()
    page.wait_for_function(
        "(day) => parseInt(document.querySelector('.bonesim-date').innerText.split(' ')[1]) >= day",
        arg=day, timeout=timeout_s * 1000)
    page.get_by_role("button", name="❚❚").click()
