"""The listening page in a real headless Chromium (selenium + chromedriver), served by ``listen serve``.

A listener goes through the training page, plays every stimulus, switches between conditions while they
play, moves the sliders with the keyboard and submits; the test then reads the collected JSONL file.

Headless Chromium has no sound card here: its AudioContext renders into a fake output stream at real-time
rate (state ``running``, ``currentTime`` advances, an AnalyserNode sees the rendered signal), so the test
measures playback, not an offline render. The stimuli (tests/app/test_listen_page.py
``write_sweep_stimuli``) hold one common sweep (300 Hz + 600 Hz/s) plus a marker tone per condition: the
analyser's last 2048 frames after a switch tell which condition sounds (the marker) and where in the
excerpt it plays (the sweep's frequency), which must be the position the page's clock reports -- a
condition restarted from 0 at the switch would be 0.5 s or more off.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mixbridge.app.listen_order import listener_orders
from mixbridge.app.listen_page import ANCHOR, HIDDEN_REFERENCE, build_page
from mixbridge.app.listen_server import make_server
from tests.app.test_listen_page import MARKERS_HZ, SWEEP_RATE_HZ_PER_S, SWEEP_START_HZ, write_sweep_stimuli

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
_missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not installed (Debian chromium and chromium-driver; scripts/setup.sh "
                "installs them)", allow_module_level=True)
from selenium import webdriver  # noqa: E402  (pinned in requirements.lock: a missing selenium is an error, not a skip)

#: Playback position read from the sweep vs the page's clock (s). The probe reads the analyser's last 2048 frames
#: and currentTime in one JS task, so they agree to a render quantum (128 frames, 2.9 ms); the sweep's peak,
#: interpolated, is far finer than its 21.5 Hz bin (36 ms of sweep). Measured: within 0.5 ms (README). 20 ms still
#: catches a switch that starts the new condition late by the page's 50 ms start delay; a restart is >= 0.5 s off.
POSITION_TOLERANCE_S = 0.02
#: The page's reported switch position vs the position the test read just before clicking (s): one selenium
#: round trip on a loaded 2-core machine, generously.
CLICK_TOLERANCE_S = 0.3
#: The marker of the condition playing must be this much above every other marker (dB) once the 5 ms gain ramp
#: is over; the markers are -16 dB re the sweep, a silent gain leaves nothing.
MARKER_MARGIN_DB = 20.0
EXCERPT_S = 2.5
LISTENER = "browser-listener-1"
#: Ratings the test gives by (trial index, position on the page).
TARGETS = {(0, 0): 12, (0, 1): 37, (0, 2): 64, (0, 3): 100, (0, 4): 5, (1, 0): 88, (1, 1): 41, (1, 2): 0,
           (1, 3): 93, (1, 4): 27}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("listen")
    stimuli = write_sweep_stimuli(root / "stimuli", seconds=3.0)
    cfg = build_page([str(stimuli / c) for c in ("alpha", "beta", "gamma")], root / "page", style="mushra",
                     reference=stimuli / "ref", anchor=True, excerpt_s=EXCERPT_S, seed=7)
    server = make_server(root / "page", port=0, results=root / "collected.jsonl")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, cfg
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--disable-gpu",
                "--disable-dev-shm-usage", "--mute-audio"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout_s: float = 15.0, poll_s: float = 0.02):
    """Poll ``return <script>`` until truthy; return its value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {script}")


def measure(probe: dict, start_s: float) -> tuple[float, str, float]:
    """(position in the excerpt from the sweep, the loudest marker's condition, its margin over the others in dB)."""
    x = np.asarray(probe["samples"], np.float64)
    rate = probe["sample_rate"]
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = (freqs > 250) & (freqs < 2500)
    k = int(np.flatnonzero(band)[np.argmax(spec[band])])
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)  # parabolic interpolation of the peak bin
    f = freqs[k] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0])
    window_centre = (len(x) / 2) / rate
    position = (f - SWEEP_START_HZ) / SWEEP_RATE_HZ_PER_S - start_s + window_centre
    level = {c: 20 * np.log10(spec[np.abs(freqs - hz) < 60].max() + 1e-12) for c, hz in MARKERS_HZ.items()}
    best = max(level, key=level.get)
    margin = level[best] - max(v for c, v in level.items() if c != best)
    return position, best, margin


#: Which marker each page condition carries (the anchor is low-passed below every marker).
MARKER_OF = {"alpha": "alpha", "beta": "beta", "gamma": "gamma", HIDDEN_REFERENCE: "ref", "__reference__": "ref"}


def switch_and_probe(driver, position: int, lo_s: float, hi_s: float) -> dict:
    """Wait until the clock is within ``lo_s..hi_s``, click the condition at ``position``, let the ramp pass, probe."""
    wait_for(driver, f"(() => {{ const p = window.mixbridgeListen.probe(); "
                     f"return p.playing && p.position_s > {lo_s} && p.position_s < {hi_s}; }})()")
    before = driver.execute_script("return window.mixbridgeListen.probe().position_s;")
    driver.find_element("css selector", f"#ratings button[data-position='{position}']").click()
    time.sleep(0.25)
    probe = driver.execute_script("return window.mixbridgeListen.probe();")
    probe["clicked_at_s"] = before
    return probe


def test_listener_takes_the_test_in_chromium(served, browser):
    server, cfg = served
    driver = browser
    driver.get(server.url + f"?listener={LISTENER}")
    wait_for(driver, "!document.getElementById('begin').disabled")
    driver.find_element("id", "begin").click()
    # the training page: every sample (and the reference) must be heard before the test can start
    wait_for(driver, "document.querySelectorAll('#training-buttons button').length === 6")
    state = driver.execute_script("return window.mixbridgeListen.state.player.ctx.state;")
    assert state == "running"
    assert driver.find_element("id", "start-test").get_attribute("disabled") is not None
    for b in driver.find_elements("css selector", "#training-buttons button"):
        b.click()
        time.sleep(0.1)
    wait_for(driver, "!document.getElementById('start-test').disabled")
    driver.find_element("id", "start-test").click()

    items, orders = listener_orders(cfg, LISTENER)
    probes: dict[int, list[dict]] = {}
    errors_s: list[float] = []
    for trial in range(2):
        # the page builds a trial's controls in one task once its stimuli are decoded (state.current is set then)
        wait_for(driver, f"(window.mixbridgeListen.state.current || {{}}).index === {trial} && "
                         "document.querySelectorAll('#ratings input').length === 5")
        item = next(i for i in cfg["items"] if i["name"] == items[trial])
        order = orders[item["name"]]
        driver.find_element("css selector", "#ratings button[data-position='0']").click()  # starts playback
        probes[trial] = [switch_and_probe(driver, 1, 0.5, 0.9), switch_and_probe(driver, 2, 1.3, 1.7)]
        for probe, pos in zip(probes[trial], (1, 2)):
            measured, marker, margin = measure(probe, item["start_s"])
            errors_s.append(measured - probe["position_s"])
            assert probe["active"] == order[pos]
            # the position the analyser hears is the page's clock: switching kept the playback position
            assert abs(measured - probe["position_s"]) < POSITION_TOLERANCE_S, (measured, probe["position_s"])
            if order[pos] != ANCHOR:
                assert marker == MARKER_OF[order[pos]] and margin > MARKER_MARGIN_DB, (marker, margin)
        assert probes[trial][1]["context_time_s"] > probes[trial][0]["context_time_s"] + 0.4  # the clock advances
        for pos in (3, 4):
            driver.find_element("css selector", f"#ratings button[data-position='{pos}']").click()
        driver.find_element("id", "play-reference").click()
        from selenium.webdriver.common.keys import Keys

        for pos in range(5):
            slider = driver.find_element("css selector", f"#ratings input[data-position='{pos}']")
            slider.send_keys(Keys.HOME + Keys.ARROW_UP * TARGETS[(trial, pos)])
            assert slider.get_property("value") == str(TARGETS[(trial, pos)])
        driver.find_element("id", "next").click()
    wait_for(driver, "!document.getElementById('done').hidden")
    driver.find_element("id", "submit").click()
    wait_for(driver, "document.getElementById('submit-status').textContent.startsWith('Saved')")

    # no network resource: everything the page fetched came from the page's own server
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert fetched and all(u.startswith(server.url) for u in fetched), fetched
    lines = server.results.read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["listener"] == LISTENER and rec["page_id"] == cfg["page_id"] and rec["style"] == "mushra"
    # the randomisation is recorded, and it is the one the listener's seed gives
    assert rec["trial_order"] == items
    assert rec["training"]["played"] and len(rec["training"]["played"]) == 6
    for trial, t in enumerate(rec["trials"]):
        assert t["item"] == items[trial] and t["condition_order"] == orders[t["item"]]
        assert t["ratings"] == {name: TARGETS[(trial, pos)] for pos, name in enumerate(t["condition_order"])}
        assert t["switches"][0]["kind"] == "start" and t["switches"][0]["position_s"] == 0.0  # a trial starts at 0
        switches = [s for s in t["switches"] if s["kind"] == "switch"]
        first_two = switches[:2]
        assert [s["to"] for s in first_two] == t["condition_order"][1:3]
        for s, probe in zip(first_two, probes[trial]):
            assert abs(s["position_s"] - probe["clicked_at_s"]) < CLICK_TOLERANCE_S
        # between two switches the recorded position moves exactly as the shared clock does
        for a, b in zip(switches, switches[1:]):
            moved = (b["position_s"] - a["position_s"]) % t["duration_s"]
            assert abs(moved - (b["context_time_s"] - a["context_time_s"]) % t["duration_s"]) < 1e-6
        assert abs(t["duration_s"] - EXCERPT_S) < 1e-3
    # shown by `pytest -rP` (README "Listening tests"): the heard position minus the page's clock at each probe
    print(f"position heard - page clock over {len(errors_s)} switches: "
          f"{', '.join(f'{e * 1000:+.1f}' for e in errors_s)} ms (tolerance {POSITION_TOLERANCE_S * 1000:.0f} ms)")


@pytest.fixture(scope="module")
def served_ape(tmp_path_factory):
    root = tmp_path_factory.mktemp("listen_ape")
    stimuli = write_sweep_stimuli(root / "stimuli", seconds=1.5, conditions=("alpha", "beta", "gamma"))
    cfg = build_page([str(stimuli / c) for c in ("alpha", "beta", "gamma")], root / "page", style="ape",
                     excerpt_s=1.2, seed=11)
    server = make_server(root / "page", port=0, results=root / "collected.jsonl")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, cfg
    server.shutdown()
    server.server_close()


def test_ape_markers_on_one_axis(served_ape, browser):
    """APE: the three conditions are markers on one axis; Next stays off until every marker was heard and moved."""
    from selenium.webdriver.common.keys import Keys

    server, cfg = served_ape
    driver = browser
    listener = "ape-listener"
    driver.get(server.url + f"?listener={listener}")
    wait_for(driver, "!document.getElementById('begin').disabled")
    driver.find_element("id", "begin").click()
    wait_for(driver, "document.querySelectorAll('#training-buttons button').length === 3")
    for b in driver.find_elements("css selector", "#training-buttons button"):
        b.click()
    wait_for(driver, "!document.getElementById('start-test').disabled")
    driver.find_element("id", "start-test").click()
    items, orders = listener_orders(cfg, listener)
    wanted = {0: [80, 20, 55], 1: [10, 95, 40]}
    for trial in range(2):
        wait_for(driver, f"(window.mixbridgeListen.state.current || {{}}).index === {trial} && "
                         "document.querySelectorAll('#ratings input').length === 3")
        tops = {driver.execute_script("return arguments[0].getBoundingClientRect().top;", s)
                for s in driver.find_elements("css selector", "#ratings.ape input[type=range]")}
        assert len(tops) == 1  # one axis
        for pos in range(3):
            driver.find_element("css selector", f"#ratings button[data-position='{pos}']").click()
        assert driver.find_element("id", "next").get_attribute("disabled") is not None  # heard, not yet moved
        for pos in range(3):
            slider = driver.find_element("css selector", f"#ratings input[data-position='{pos}']")
            slider.send_keys(Keys.HOME + Keys.ARROW_RIGHT * wanted[trial][pos])
        wait_for(driver, "!document.getElementById('next').disabled")
        driver.find_element("id", "next").click()
    wait_for(driver, "!document.getElementById('done').hidden")
    driver.find_element("id", "submit").click()
    wait_for(driver, "document.getElementById('submit-status').textContent.startsWith('Saved')")
    rec = json.loads(server.results.read_text().splitlines()[-1])
    assert rec["style"] == "ape" and rec["trial_order"] == items
    for trial, t in enumerate(rec["trials"]):
        assert t["condition_order"] == orders[t["item"]]
        assert t["ratings"] == {name: wanted[trial][pos] for pos, name in enumerate(t["condition_order"])}
        assert sorted(t["initial_ratings"].values()) == [25, 50, 75]


def test_plain_static_server_falls_back_to_the_downloads(served_ape, browser):
    """From a plain static server (stdlib http.server: POST is 501) the page says the ratings were not saved, and
    the JSON and CSV downloads hold them."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from selenium.webdriver.common.keys import Keys

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server, cfg = served_ape
    static = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(server.page_dir)))
    threading.Thread(target=static.serve_forever, daemon=True).start()
    driver = browser
    try:
        driver.get(f"http://127.0.0.1:{static.server_address[1]}/?listener=offline")
        wait_for(driver, "!document.getElementById('begin').disabled")
        driver.find_element("id", "begin").click()
        wait_for(driver, "document.querySelectorAll('#training-buttons button').length === 3")
        for b in driver.find_elements("css selector", "#training-buttons button"):
            b.click()
        driver.find_element("id", "start-test").click()
        for trial in range(2):
            wait_for(driver, f"(window.mixbridgeListen.state.current || {{}}).index === {trial} && "
                             "document.querySelectorAll('#ratings input').length === 3")
            for pos in range(3):
                driver.find_element("css selector", f"#ratings button[data-position='{pos}']").click()
                driver.find_element("css selector", f"#ratings input[data-position='{pos}']").send_keys(
                    Keys.HOME + Keys.ARROW_RIGHT * (30 + 10 * pos + trial))
            wait_for(driver, "!document.getElementById('next').disabled")
            driver.find_element("id", "next").click()
        wait_for(driver, "!document.getElementById('done').hidden")
        driver.find_element("id", "submit").click()
        wait_for(driver, "document.getElementById('submit-status').textContent.startsWith('Not saved')")
        get = ("const done = arguments[arguments.length - 1]; "
               "fetch(document.getElementById(arguments[0]).href).then(r => r.text()).then(done);")
        rec = json.loads(driver.execute_async_script(get, "download-json"))
        rows = driver.execute_async_script(get, "download-csv").splitlines()
    finally:
        static.shutdown()
        static.server_close()
    assert rec["listener"] == "offline" and rec["page_id"] == cfg["page_id"]
    assert rows[0] == "listener,trial,item,condition,position,rating" and len(rows) == 1 + 2 * 3
    for t in rec["trials"]:
        for pos, name in enumerate(t["condition_order"]):
            assert t["ratings"][name] == 30 + 10 * pos + t["index"]
            assert f'"offline",{t["index"]},"{t["item"]}","{name}",{pos},{t["ratings"][name]}' in rows
