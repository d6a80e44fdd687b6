"""The kiosk page's web server: static files from this package, the font from Debian, the state live over SSE.

Standard library only (:mod:`http.server`), one thread per connection: the kiosk
browser holds one Server-Sent Events stream, so a handful of threads is all it takes.
Loopback by default; on loopback the ``Host`` header must name loopback too, so a web
page elsewhere cannot read the screen through DNS rebinding.  Every answer carries a
Content-Security-Policy that allows this origin only: the page cannot load anything
from outside even by mistake.
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from agent.config import is_loopback
from agent.errors import GateAgentError

log = logging.getLogger(__name__)

#: Debian's fonts-dejavu-core: Latin with every Vietnamese diacritic
DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
KEEPALIVE_SECONDS = 15.0
MAX_STREAMS = 8
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(?:css|js|svg|html|png)$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ttf": "font/ttf",
    ".json": "application/json",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class StateBus:
    """The latest state document and its sequence number; stream threads wait here for the next one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._doc: dict[str, Any] = {}
        self.closed = False

    def publish(self, doc: dict[str, Any]) -> int:
        with self._cond:
            self._seq += 1
            self._doc = dict(doc, bus_seq=self._seq)
            self._cond.notify_all()
            return self._seq

    def latest(self) -> tuple[int, dict[str, Any]]:
        with self._cond:
            return self._seq, self._doc

    def wait(self, after: int, timeout: float) -> tuple[int, dict[str, Any]] | None:
        """The state after sequence ``after``, or None when none came within ``timeout`` (or the bus closed)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.closed, timeout)
            if self._seq > after and not self.closed:
                return self._seq, self._doc
            return None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def static_file(package: str, name: str) -> bytes | None:
    """A file shipped in ``package``'s ``static/`` folder, or None (names are checked, no paths)."""
    if not _STATIC_NAME.match(name):
        return None
    entry = resources.files(package).joinpath("static", name)
    return entry.read_bytes() if entry.is_file() else None


class PageServer(http.server.ThreadingHTTPServer):
    """A small HTTP server for one page with a live state stream (the kiosk; the hub dashboard reuses it)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        bind: str,
        port: int,
        package: str,
        bus: StateBus,
        *,
        font_dir: Path = DEFAULT_FONT_DIR,
        extra_get: Callable[[str], tuple[int, str, bytes] | None] | None = None,
        handler: type[http.server.BaseHTTPRequestHandler] | None = None,
    ) -> None:
        self.package = package
        self.bus = bus
        self.font_dir = Path(font_dir)
        self.extra_get = extra_get
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.loopback = is_loopback(bind)
        try:
            super().__init__((bind, port), handler or PageHandler)
        except OSError as exc:
            raise GateAgentError(f"cannot serve the page on {bind}:{port}: {exc}") from exc
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def start(self) -> PageServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"http-{self.package}", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        self.bus.close()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(3)
        self.server_close()


def _host_is_loopback(header: str | None) -> bool:
    if not header:
        return False
    host = header.rsplit(":", 1)[0] if not header.endswith("]") else header
    return is_loopback(host)


class PageHandler(http.server.BaseHTTPRequestHandler):
    server: PageServer
    protocol_version = "HTTP/1.1"
    server_version = "gate-agent"
    sys_version = ""
    referrer_policy = "no-referrer"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def send_body(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", self.referrer_policy)
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_text(self, status: int, text: str) -> None:
        self.send_body(status, "text/plain; charset=utf-8", text.encode())

    def host_allowed(self) -> bool:
        return not self.server.loopback or _host_is_loopback(self.headers.get("Host"))

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if self.server.bus.closed:  # stopping: a kept-alive connection must not serve a last, stale state
            self.close_connection = True
            self.send_text(503, "stopping")
            return
        if not self.host_allowed():
            self.send_text(421, "wrong host")
            return
        path = self.path.split("?", 1)[0]
        if path == "/":
            path = "/index.html"
        if path == "/events":
            self.stream()
            return
        if path == "/state":
            _, doc = self.server.bus.latest()
            self.send_body(200, _TYPES[".json"], json.dumps(doc, ensure_ascii=False).encode())
            return
        if path.startswith("/fonts/"):
            name = path[len("/fonts/"):]
            if name in FONTS and (self.server.font_dir / name).is_file():
                self.send_body(200, _TYPES[".ttf"], (self.server.font_dir / name).read_bytes(),
                               {"Cache-Control": "max-age=86400"})  # fmt: skip
            else:
                self.send_text(404, "no such font")
            return
        if self.server.extra_get is not None:
            answer = self.server.extra_get(path)
            if answer is not None:
                status, ctype, body = answer
                self.send_body(status, ctype, body)
                return
        name = path.lstrip("/")
        data = static_file(self.server.package, name)
        if data is None:
            self.send_text(404, "not found")
            return
        self.send_body(200, _TYPES[Path(name).suffix], data)

    def stream(self) -> None:
        """Server-Sent Events: the current state at once, then each new one; a comment line keeps it open."""
        if not self.server.streams.acquire(blocking=False):
            self.send_text(503, "too many streams")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            self.close_connection = True
            bus = self.server.bus
            seq, doc = bus.latest()
            self._event(seq, doc)
            while not bus.closed:
                got = bus.wait(seq, KEEPALIVE_SECONDS)
                if got is None:
                    if bus.closed:
                        break
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                seq, doc = got
                self._event(seq, doc)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            self.server.streams.release()

    def _event(self, seq: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, ensure_ascii=False)
        self.wfile.write(f"id: {seq}\ndata: {data}\n\n".encode())
        self.wfile.flush()
