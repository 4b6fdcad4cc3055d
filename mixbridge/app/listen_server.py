"""``mixbridge listen serve``: serve a listening page and collect its submissions (stdlib :mod:`http.server`).

GET serves only the page's own files (``index.html``, ``listen.js``, ``listen.css``, ``config.json`` and the
stimuli ``config.json`` lists; anything else, the collected ratings included, is 404), so listeners cannot
read each other's ratings. ``POST /submit`` takes one submission: a body of at most :data:`MAX_BODY_BYTES`
(413 past it, 411 without a length), UTF-8 JSON that :func:`mixbridge.app.listen_results.validate_submission`
accepts for this page (400 with the reason otherwise); it is appended as one line to the results JSONL file
under a lock (a thread lock and ``fcntl.flock``, one ``write`` of the whole line on an ``O_APPEND`` descriptor,
then ``fsync``), so concurrent submissions never interleave and a crash leaves whole lines. The server binds
127.0.0.1 by default; port 0 picks a free port (the URL is printed).
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mixbridge.errors import MixbridgeError

#: Largest submission body accepted (bytes): a 40-trial test with 12 conditions and 200 switches per trial is
#: about 400 kB.
MAX_BODY_BYTES = 1 << 20
DEFAULT_HOST = "127.0.0.1"


class ListenServeError(ValueError, MixbridgeError):
    """A page folder or results path the server cannot use."""


def append_line(path: Path, record: dict, lock: threading.Lock) -> int:
    """Append ``record`` as one JSON line to ``path`` (module docstring) and return the file's line count."""
    line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the flock
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)


class ListenServer(ThreadingHTTPServer):
    """The page server: ``page_dir`` (with its config), ``results`` (the JSONL file) and :attr:`url`."""

    daemon_threads = True

    def __init__(self, page_dir: Path, results: Path, host: str, port: int, config: dict, quiet: bool = True):
        self.page_dir, self.results, self.config, self.quiet = page_dir, results, config, quiet
        self.lock = threading.Lock()
        self.allowed = {"/index.html", "/listen.js", "/listen.css", "/config.json"}
        for item in config["items"]:
            for s in list(item["stimuli"].values()) + ([item["reference"]] if item.get("reference") else []):
                self.allowed.add("/" + s["file"])
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` of the bound socket."""
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host}:{port}/"


class _Handler(SimpleHTTPRequestHandler):
    server: ListenServer

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(args[2].page_dir), **kwargs)

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"listen serve: {self.address_string()} {format % args}\n")

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _path(self) -> str:
        path = unquote(urlsplit(self.path).path)
        return "/index.html" if path == "/" else path

    def do_GET(self):
        if self._path() not in self.server.allowed:
            self.send_error(HTTPStatus.NOT_FOUND, "not a file of this listening page")
            return
        self.path = self._path()
        super().do_GET()

    def do_HEAD(self):
        if self._path() not in self.server.allowed:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.path = self._path()
        super().do_HEAD()

    def _reply(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        from mixbridge.app.listen_results import ListenResultsError, validate_submission

        if self._path() != "/submit":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "POST only to /submit"})
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length header is required"})
            return
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        {"error": f"body of {length} bytes; the limit is {MAX_BODY_BYTES}"})
            return
        raw = self.rfile.read(int(length))
        try:
            record = json.loads(raw.decode("utf-8"))
            validate_submission(record, config=self.server.config)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"not UTF-8 JSON ({e})"})
            return
        except ListenResultsError as e:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            return
        count = append_line(self.server.results, record, self.server.lock)
        self._reply(HTTPStatus.OK, {"ok": True, "count": count})
        if not self.server.quiet:
            print(f"listen serve: submission {count} from listener {record['listener']!r} -> {self.server.results}",
                  flush=True)


def make_server(page_dir: str | Path, *, host: str = DEFAULT_HOST, port: int = 0, results: str | Path | None = None,
                quiet: bool = True) -> ListenServer:
    """A bound (not yet serving) :class:`ListenServer` for ``page_dir``; call ``serve_forever()`` (a thread in tests).

    ``results`` defaults to ``PAGE_DIR/results.jsonl``.

    Raises:
        ListenPageError: ``page_dir`` is not a listening page. ListenServeError: ``results`` is a folder.
        OSError: the port is taken.
    """
    from mixbridge.app.listen_page import RESULTS_FILE, read_page_config

    page_dir = Path(page_dir)
    config = read_page_config(page_dir)
    results = page_dir / RESULTS_FILE if results is None else Path(results)
    if results.is_dir():
        raise ListenServeError(f"--results {results}: a folder; give a file path (JSON lines are appended)")
    return ListenServer(page_dir, results, host, int(port), config, quiet=quiet)


__all__ = ["make_server", "ListenServer", "ListenServeError", "append_line", "MAX_BODY_BYTES"]
