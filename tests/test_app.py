"""The browser view (model/app.py) and the Mesa user's view of the cells.

Component-level tests draw from a 64 x 64 model without a browser, as Mesa tests its
components; `test_the_page_in_a_browser_offline` drives `bonesim viz` in Debian's Chromium
with no route beyond loopback (marker `browser`; CI installs /usr/bin/chromium).
"""

import importlib
import io
import os
import queue
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from matplotlib.image import imread

from bonesim.agents.population import (
    I_BMU, I_KIND, I_NUCLEI, KIND_NAMES, OSTEOCLAST, KernelOwnedError,
)
from bonesim.experiments import viz_browser
from bonesim.experiments.runner import replicate_seeds
from bonesim.model.bone_model import BoneModel
from bonesim.model.fields import check_mesa_version
from bonesim.model.scenario import load_scenario
from bonesim.model.tissue import Tissue

CI = os.environ.get("BONESIM_CI") == "1"
# an early postmenopausal woman, untreated, on a 64 x 64 section: E2 low, so estrogen therapy
# shows at once in the serum record
SMALL = """
name = "small"
description = "viewer tests: early postmenopausal, 64 x 64"

[patient]
sex = "female"
age = "54 years"
fmp_age = "51 years"

[tissue]
size = [64, 64]

[simulation]
duration = "1 years"
seed = 3
"""


@pytest.fixture(scope="module")
def small_toml(tmp_path_factory):
    path = tmp_path_factory.mktemp("viz") / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.fixture(scope="module")
def app(small_toml):
    """bonesim.model.app started on SMALL (its model spun up once for the module)."""
    saved = os.environ.get("BONESIM_VIZ_SCENARIO")
    os.environ["BONESIM_VIZ_SCENARIO"] = str(small_toml)
    sys.modules.pop("bonesim.model.app", None)
    module = importlib.import_module("bonesim.model.app")
    yield module
    sys.modules.pop("bonesim.model.app", None)
    if saved is None:
        del os.environ["BONESIM_VIZ_SCENARIO"]
    else:
        os.environ["BONESIM_VIZ_SCENARIO"] = saved


@pytest.fixture
def view(app):
    """A fresh copy of the app's spun-up model (what Reset gives)."""
    return app.BoneView(**app.START)


def png(figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    buffer.seek(0)
    return imread(buffer)


# ---------------------------------------------------------------------------- drawing
def test_tissue_colours_show_marrow_vessel_osteoid_and_mineral(app):
    # grid cells: marrow, vessel, osteoid, unmineralized matrix, fully mineralized matrix
    pools = np.zeros((4, 1, 5))
    pools[0, 0, 2] = 1.0
    pools[1, 0, 3:] = 1.0
    pools[2, 0, 4], pools[3, 0, 4] = 0.6, 0.4
    vessel = np.zeros((1, 5), dtype=bool)
    vessel[0, 1] = True
    tissue = Tissue(10.0, "spine", pools, vessel, np.zeros((1, 5), bool),
                    np.full((1, 5), -1), np.zeros((1, 5)), np.zeros((1, 5)), np.zeros((1, 5)))
    rgb = app.tissue_rgb(tissue)[0]
    for cell, colour in enumerate((app.MARROW, app.VESSEL, app.OSTEOID, app.MINERAL_LOW,
                                   app.MINERAL_HIGH)):
        np.testing.assert_allclose(rgb[cell], colour, atol=1e-12)


def test_cell_dots_are_the_kernels_cells_styled_by_kind_and_state(app, view):
    dots = app.cell_dots(view)
    pop = view.population
    assert len(dots["x"]) == len(view.agents)
    mm = view.dx / 1000
    places = {(round(x / mm - 0.5), round(y / mm - 0.5)) for x, y in zip(dots["x"], dots["y"])}
    assert {(a.position[1], a.position[0]) for a in view.agents} == places
    alive = np.flatnonzero(pop.ints[I_KIND, : pop.n_hi] >= 0)
    kinds = pop.ints[I_KIND, alive]
    np.testing.assert_array_equal(dots["kind"], kinds)
    oc = kinds == OSTEOCLAST
    np.testing.assert_allclose(dots["s"][oc], app.DOT_AREA
                               + app.NUCLEUS_AREA * pop.ints[I_NUCLEI, alive][oc])
    np.testing.assert_array_equal(dots["edgecolors"][:, 3] == 1.0, pop.ints[I_BMU, alive] >= 0)


def test_every_layer_is_a_grid_layer_on_a_fixed_labelled_scale(app, view):
    for label, layer in app.LAYERS.items():
        data = getattr(view.grid, layer.name).data
        source = view.rankl_free if layer.name == "rankl_free" else (
            view.stimulus if layer.name == "stimulus" else None)
        if source is not None:
            assert np.shares_memory(data, source)
        figure = app.draw_layer(view, label)
        image = figure.axes[0].images[0]
        assert (image.norm.vmin, image.norm.vmax) == (layer.lo, layer.hi)
        assert figure.axes[1].get_ylabel() == f"{label} [{app.UNITS[layer.name]}]"
    assert app.UNITS["e2"] == "pmol/L" and app.UNITS["rankl_free"] == "pM"


def test_views_and_plots_draw(app, view):
    for _ in range(8):
        view.step()
    frame = view.timeseries()
    for figure in (app.draw_tissue(view), app.draw_layer(view, "E2"),
                   app.draw_bone_record(frame, 1.0), app.draw_body_record(frame, 1.0)):
        pixels = png(figure)
        assert pixels[..., :3].std() > 0.05          # not blank
    assert app.date_text(view).startswith("day 8 = year 0, day 8 · age 54.0")
    assert app.record_text(view).startswith("day 7: spine BMD ")
    assert app.record_span(frame, app.run_years(view)) == 0.25


def test_a_frame_of_the_256_tissue_renders_within_0_3_s(app):
    """Tissue and cells of a 256 x 256 section, drawn and encoded as the page's PNG: at most
    0.3 s of CPU (best of 3; CPU time, so that other work on the machine does not count).
    The cells are the section's residents before a spin-up, osteocytes and lining cells."""
    scenario = load_scenario(app.SCENARIO_DIR / "default.toml", {"tissue.size": [256, 256]})
    model = BoneModel(scenario, rng=1, spinup_days=0)
    times = []
    for _ in range(3):
        start = time.process_time()
        png(app.draw_tissue(model))
        times.append(time.process_time() - start)
    assert len(model.agents) > 2000
    assert min(times) <= 0.3, times


# ---------------------------------------------------------------------------- the model
def test_reset_builds_the_view_from_the_controls_without_a_scenario(app):
    """Mesa's Reset: type(model)(**kwargs) with the kwargs SolaraViz builds; BoneView takes no
    `scenario`, so Mesa does not pass its own."""
    from mesa.visualization.solara_viz import _build_model_init_kwargs, _check_model_params

    _check_model_params(app.model, app.model_params)
    kwargs = _build_model_init_kwargs(app.model, app.START, add_scenario_when_empty=True,
                                      require_model_accepts_scenario=True)
    assert kwargs == app.START
    start = time.perf_counter()
    fresh = type(app.model)(**kwargs)
    assert time.perf_counter() - start < 5.0           # the spun-up state, taken over
    assert fresh.spec == app.model.spec and fresh.day == 0
    start = time.perf_counter()
    treated = type(app.model)(**{**kwargs, "protocol": "v3b_pepi_cee"})
    assert time.perf_counter() - start < 5.0           # the same patient's spin-up
    assert treated.spec.protocol and treated.day == 0
    np.testing.assert_array_equal(treated.tissue.pools, fresh.tissue.pools)


def test_a_copied_spun_up_state_runs_as_bonesim_run_and_shares_nothing(app, view):
    """The cached copy steps exactly like a model spun up anew with replicate 0's seed of
    `bonesim run` (experiments/run.py), and has its own arrays, grid and agents."""
    scenario = view.spec
    fresh = BoneModel(scenario, rng=replicate_seeds(scenario.simulation.seed, 1)[0])
    other = app.BoneView(**app.START)
    for model in (view, fresh):
        for _ in range(10):
            model.step()
    assert view.timeseries().equals(fresh.timeseries())
    np.testing.assert_array_equal(view.population.ints, fresh.population.ints)
    np.testing.assert_array_equal(view.conc, fresh.conc)
    assert other.day == 0 and not np.shares_memory(other.conc, view.conc)
    assert other.grid is not view.grid
    for model in (view, other):
        assert np.shares_memory(model.grid.rankl.data, model.conc)
        for agent in list(model.agents)[:300]:
            assert agent.model is model and agent.cell is model.grid[agent.position]
            assert agent in agent.cell.agents


def test_the_view_stops_at_the_end_of_its_run(view):
    """Mesa's Play stops when model.running turns False: after the scenario's last step."""
    assert view.running
    view.steps_done = view.n_steps - 1
    view.step()
    assert not view.running


@pytest.mark.parametrize("controls, message", [
    ({"seed": "3"}, "seed '3': expected a whole number >= 0"),
    ({"seed": -1}, "seed -1"),
    ({"size": "big"}, "tissue size 'big': expected 'ROWS x COLS'"),
    ({"patient": "nobody"}, "patient 'nobody': no such preset"),
    ({"protocol": "nothing"}, "protocol 'nothing': no such preset"),
])
def test_bad_controls_are_refused_with_a_clear_message(app, controls, message):
    with pytest.raises(ValueError, match=message):
        app.view_scenario(**{**app.START, **controls})


# ---------------------------------------------------------------------------- Mesa's view
def test_a_cell_keeps_its_agent_and_id_through_differentiation(view):
    agents = {agent: type(agent) for agent in view.agents}
    ids = {agent: agent.unique_id for agent in agents}
    changed = []
    for _ in range(60):
        view.step()
        changed = [a for a, cls in agents.items() if type(a) is not cls and a in view.agents]
        if changed:
            break
    assert changed, "no cell differentiated in 60 days"
    for agent in changed:
        assert agent.unique_id == ids[agent]
        assert agent in view.agents_by_type[type(agent)]
        assert agent not in view.agents_by_type[agents[agent]]
        assert agent.kind == KIND_NAMES[view.population.ints[I_KIND, agent.slot]]
        assert agent.cell is view.grid[agent.position]


def test_the_kernel_owns_deaths_and_moves(view):
    agent = next(iter(view.agents))
    cell, other = agent.cell, view.grid[(0, 0)]
    for attempt in (agent.remove, lambda: setattr(agent, "cell", other),
                    lambda: agent.move_to(other)):
        with pytest.raises(KernelOwnedError, match="kernel"):
            attempt()
    assert agent in view.agents and agent.cell is cell and agent in cell.agents


def test_free_rankl_and_stimulus_are_grid_layers_the_cells_read(view):
    for _ in range(3):
        view.step()
    agent = next(iter(view.agents))
    assert agent.cell.rankl_free == view.rankl_free[agent.position]
    assert agent.cell.stimulus == view.stimulus[agent.position]


def test_the_datacollector_records_each_cells_kind_age_and_bmu(view):
    n0 = len(view.agents)
    for _ in range(7):
        view.step()
    records = view.datacollector.get_agent_vars_dataframe()
    assert list(records.columns) == ["kind", "age_days", "bmu"]
    assert len(records.loc[0.0]) == n0
    last = records.loc[7.0]
    assert len(last) == len(view.agents)
    agent = next(iter(view.agents))
    assert tuple(last.loc[agent.unique_id]) == (agent.kind, agent.age, agent.bmu)


def test_field_layers_refuse_an_untested_mesa():
    check_mesa_version("3.5.1")
    with pytest.raises(RuntimeError, match=r"PropertyLayer._data.*tested with Mesa 3.5.x; this is Mesa 4.0.0"):
        check_mesa_version("4.0.0")


# ---------------------------------------------------------------------------- entry points
def test_the_page_displays_in_a_jupyter_kernel(small_toml):
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "BONESIM_VIZ_SCENARIO": str(small_toml)}
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        msg_id = client.execute("from bonesim.model.app import page\npage")
        outputs = []
        while True:
            try:
                msg = client.get_iopub_msg(timeout=300)
            except queue.Empty:
                pytest.fail("the kernel did not answer in 300 s")
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                pytest.fail("\n".join(msg["content"]["traceback"]))
            if msg["msg_type"] in ("execute_result", "display_data"):
                outputs.append(msg["content"]["data"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert any("application/vnd.jupyter.widget-view+json" in data for data in outputs), outputs
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.parametrize("args, message", [
    (["nosuch.toml"], "nosuch.toml: no such file"),
    (["default", "--port", "70000"], "--port must be within 0..65535"),
    (["default", "--host", "no.such.host.invalid"], "--host no.such.host.invalid --port 8765: "
                                                    "cannot listen there: no such address"),
])
def test_viz_refuses_bad_input(args, message):
    run = subprocess.run([sys.executable, "-m", "bonesim.experiments.cli", "viz", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert message in run.stderr.strip().splitlines()[-1]


def test_viz_refuses_a_port_in_use():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "bonesim.experiments.cli", "viz", "default",
                              "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"bonesim: error: --host 127.0.0.1 --port {port}: cannot listen there: Address already in use"]


# ---------------------------------------------------------------------------- the browser
def _image(page, item: int) -> str:
    """The data URL of the figure in grid item `item` (0 tissue, 1 layer, 2 bone, 3 body)."""
    return page.locator(".vue-grid-item").nth(item).locator("img").get_attribute("src")


def _choose(page, label: str, option: str) -> None:
    page.locator(".v-select", has_text=label).first.click()
    exact = re.compile(rf"^\s*{re.escape(option)}\s*$")
    page.locator(".menuable__content__active .v-list-item", has_text=exact).first.click()
    page.wait_for_function(
        "([label, option]) => [...document.querySelectorAll('.v-select')].some("
        "e => e.innerText.includes(label) && e.innerText.includes(option))", arg=[label, option])


@pytest.mark.browser
@pytest.mark.timeout(1200)
def test_the_page_in_a_browser_offline(small_toml, tmp_path):
    if not viz_browser.CHROMIUM.exists():
        if CI:
            pytest.fail(f"{viz_browser.CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{viz_browser.CHROMIUM} missing (apt-get install chromium)")
    log = tmp_path / "server.log"
    requests, failures, errors = [], [], []
    with viz_browser.serve(str(small_toml), log) as url, viz_browser.browser() as chromium:
        page = chromium.new_page(viewport=viz_browser.VIEWPORT)
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.url}: {r.status}"))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.goto(url)
        page.get_by_role("button", name="Step").wait_for(timeout=120_000)
        assert viz_browser.shown_day(page) == 0

        # Step, then Play / Pause: the date and the BMD plot advance
        page.get_by_role("button", name="Step").click()
        page.wait_for_function("() => document.querySelector('.bonesim-date').innerText.startsWith('day 1 ')")
        bmd_plot = _image(page, 2)
        viz_browser.play_until(page, 15)
        paused = viz_browser.shown_day(page)
        assert paused >= 15 and _image(page, 2) != bmd_plot
        page.wait_for_timeout(1500)
        assert viz_browser.shown_day(page) - paused <= 1   # paused (a step may have been under way)
        untreated = page.locator(".bonesim-record").inner_text()

        # another field layer
        layer_image = _image(page, 1)
        _choose(page, "layer", "E2")
        page.wait_for_function("(before) => document.querySelectorAll('.vue-grid-item')[1]"
                               ".querySelector('img').src != before", arg=layer_image)

        # another protocol and seed, Reset: a new spin-up, its progress shown, then a run from
        # day 0 whose serum E2 carries the estrogen
        _choose(page, "protocol", "v3b_pepi_cee")
        _choose(page, "seed", "1")
        page.get_by_role("button", name="Reset").click()
        page.wait_for_function("() => document.querySelector('.bonesim-spinup').innerText != ''",
                               timeout=60_000)
        page.wait_for_function("() => document.querySelector('.bonesim-date').innerText.startsWith('day 0 ')"
                               " && document.querySelector('.bonesim-spinup').innerText == ''",
                               timeout=600_000)
        viz_browser.play_until(page, 15)
        treated = page.locator(".bonesim-record").inner_text()
        e2 = [float(text.split("E2 ")[1].split()[0]) for text in (untreated, treated)]
        assert e2[1] > 2 * e2[0], (untreated, treated)

        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot))
        pixels = imread(shot)[..., :3]
        assert pixels.std() > 0.1 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000

        # the network beyond loopback is unreachable from the browser (its own page)
        probe = chromium.new_page()
        probe.goto(url + "static/assets/favicon.svg")
        cdn = probe.evaluate("() => fetch('https://cdn.jsdelivr.net/npm/requirejs@2.3.6/require.js',"
                             " {mode: 'no-cors'}).then(() => 'reached', () => 'unreachable')")
    assert cdn == "unreachable"
    assert not errors, errors
    assert not failures, failures
    outside = [u for u in requests if not u.startswith((url, "blob:", "data:"))]
    assert not outside, outside
    assert "Could not load URL" not in log.read_text()
