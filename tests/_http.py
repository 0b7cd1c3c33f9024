"""A tiny HTTP server on 127.0.0.1 for download tests: Range support and one-time drops.

Usage::

    with FileServer({"/a.zip": data}) as srv:
        srv.drop_once.add("/a.zip")   # first GET sends half the body, then closes
        url = srv.url("/a.zip")
        ...
        srv.requests  # list of (path, Range header or None)
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        path = self.path.split("?", 1)[0]
        rng = self.headers.get("Range")
        srv.requests.append((path, rng))
        data = srv.files.get(path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and srv.ranges:
            start = int(m[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if path in srv.drop_once:
            srv.drop_once.discard(path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = dict(files)
        self.drop_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True


class FileServer:
    """Serve ``files`` (URL path -> bytes) on 127.0.0.1 in a background thread."""

    def __init__(self, files: dict[str, bytes] | None = None):
        self._srv = _Server(files or {})
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    @property
    def files(self) -> dict[str, bytes]:
        return self._srv.files

    @property
    def drop_once(self) -> set[str]:
        return self._srv.drop_once

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self._srv.requests

    @property
    def ranges(self) -> bool:
        return self._srv.ranges

    @ranges.setter
    def ranges(self, value: bool) -> None:
        self._srv.ranges = value

    def url(self, path: str = "") -> str:
        host, port = self._srv.server_address[:2]
        return f"http://{host}:{port}{path}"
