"""``listen serve``: what it serves, what it refuses, and whole lines under concurrent submissions."""
from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request

import pytest

from mixbridge.app.listen_order import listener_orders
from mixbridge.app.listen_page import ListenPageError, build_page
from mixbridge.app.listen_results import RESULTS_FORMAT, read_submissions
from mixbridge.app.listen_server import MAX_BODY_BYTES, make_server
from tests.app.test_listen_page import write_sweep_stimuli


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    stimuli = write_sweep_stimuli(root / "stimuli", seconds=1.2, conditions=("alpha", "beta"))
    build_page([str(stimuli / "alpha"), str(stimuli / "beta")], root / "page", style="ape", excerpt_s=1.0)
    srv = make_server(root / "page", port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def valid(srv, listener: str) -> dict:
    items, orders = listener_orders(srv.config, listener)
    return {"format": RESULTS_FORMAT, "version": 1, "page_id": srv.config["page_id"], "style": "ape",
            "listener": listener, "seed": 0, "trial_order": items,
            "trials": [{"item": i, "index": k, "condition_order": orders[i], "ratings": {c: 50 for c in orders[i]},
                        "switches": []} for k, i in enumerate(items)]}


def get(srv, path: str) -> int:
    try:
        with urllib.request.urlopen(srv.url.rstrip("/") + path) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def post(srv, body: bytes, headers=None) -> tuple[int, dict]:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", "/submit", body=body, headers=headers or {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data or b"{}")


def test_binds_loopback_and_serves_only_the_page(server):
    assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    assert get(server, "/") == 200 and get(server, "/listen.js") == 200 and get(server, "/config.json") == 200
    stim = server.config["items"][0]["stimuli"]["alpha"]["file"]
    assert get(server, "/" + stim) == 200
    for path in ("/results.jsonl", "/stimuli/", "/../page/config.json", "/%2e%2e/etc/passwd", "/nope.html"):
        assert get(server, path) == 404, path


def test_collects_valid_submissions_and_refuses_bad_ones(server):
    status, body = post(server, json.dumps(valid(server, "ann")).encode())
    assert status == 200 and body["ok"]
    assert post(server, b"{not json")[0] == 400
    other_page = {**valid(server, "bob"), "page_id": "elsewhere"}
    status, body = post(server, json.dumps(other_page).encode())
    assert status == 400 and "page id 'elsewhere'" in body["error"]
    bad_rating = valid(server, "cid")
    bad_rating["trials"][0]["ratings"]["alpha"] = -3
    assert post(server, json.dumps(bad_rating).encode())[0] == 400
    # an oversized body is refused from its declared length, before it is read (so the client is not made to
    # send it: sending a whole oversized body races the server's early reply and close)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.putrequest("POST", "/submit")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and str(MAX_BODY_BYTES) in json.loads(r.read())["error"]
    conn.close()
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.putrequest("POST", "/submit")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    got = read_submissions([server.results])
    assert [s["listener"] for s in got] == ["ann"]


def test_concurrent_submissions_are_whole_lines(server):
    before = len(server.results.read_text().splitlines()) if server.results.exists() else 0
    errors: list[int] = []

    def send(k: int) -> None:
        for j in range(4):
            status, _ = post(server, json.dumps(valid(server, f"t{k}-{j}")).encode())
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = server.results.read_text().splitlines()
    assert len(lines) == before + 24
    assert {json.loads(x)["listener"] for x in lines[before:]} == {f"t{k}-{j}" for k in range(6) for j in range(4)}


def test_not_a_page(tmp_path):
    with pytest.raises(ListenPageError, match="not a listening page"):
        make_server(tmp_path)


def test_cli_serve_prints_the_url_and_serves(server):
    """``mixbridge listen serve PAGE_DIR --port 0`` in its own process: the printed URL answers."""
    import re
    import subprocess
    import sys

    code = ("import sys; from mixbridge.app.cli import main; "
            f"sys.exit(main(['listen', 'serve', {str(server.page_dir)!r}, '--port', '0', '-q']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        with urllib.request.urlopen(url.group(0) + "config.json") as r:
            assert json.loads(r.read())["page_id"] == server.config["page_id"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
