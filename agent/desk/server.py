"""The desk's web server: login per attendant, the referred patients, manual entry with its outcome shown back.

Standard library only.  Pages are rendered on the server (every value escaped); a
small script refreshes the list of referred patients.  Sessions are random tokens in
an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` under TLS), at most
``session_minutes`` long.  Every form that changes something carries the session's
CSRF token, and a request whose ``Origin`` is another site is refused, so a page
elsewhere on the LAN cannot act in an attendant's name.  Failed logins cost a second
and ten in a row lock the name for five minutes.

It is a device source of the daemon: an entry becomes a trigger in the flow's inbox,
exactly as from the attendant's socket.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.app.attendant import trigger_from_request
from agent.app.ports import Trigger
from agent.card.errors import InputError
from agent.desk.board import DeskBoard, Referral
from agent.desk.users import Users
from agent.errors import GateAgentError
from agent.kiosk.screen import OUTCOMES, mask_id
from agent.kiosk.server import PageHandler, PageServer, StateBus

log = logging.getLogger(__name__)

COOKIE = "gate_desk"
MAX_BODY = 4096
LOCK_AFTER, LOCK_SECONDS, FAIL_DELAY = 10, 300.0, 1.0

Recorder = Callable[[dict[str, Any]], str]


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class DeskServer(PageServer):
    """The desk's HTTP server (:class:`DeskSource` makes it a device source of the daemon)."""

    def __init__(
        self,
        bind: str,
        port: int,
        users: Users,
        board: DeskBoard,
        record: Recorder,
        *,
        session_minutes: int = 480,
        entry_wait: float = 30.0,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(bind, port, "agent.desk", StateBus(), handler=DeskHandler)
        self.users = users
        self.board = board
        self.record = record
        self.session_seconds = session_minutes * 60.0
        self.entry_wait = entry_wait
        self.sessions: dict[str, Session] = {}
        self.failures: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()
        self.submit: Callable[[Trigger], None] | None = None
        self.tls = tls is not None
        if tls is not None:
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(str(tls[0]), str(tls[1]))
            except (OSError, ssl.SSLError) as exc:
                self.server_close()
                raise GateAgentError(f"desk TLS certificate or key unusable: {exc}") from exc
            # the handshake happens in the connection's own thread: a silent client cannot stall the accept loop
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    @property
    def url(self) -> str:
        return super().url.replace("http://", "https://") if self.tls else super().url

    # --- sessions -----------------------------------------------------------------------------------

    def login(self, user: str, password: str) -> tuple[str, Session] | None:
        """A new session and its cookie value, or None (after a delay) for a wrong name or password."""
        with self.lock:
            count, until = self.failures.get(user, (0, 0.0))
            locked = count >= LOCK_AFTER and time.monotonic() < until
        if not locked and self.users.verify(user, password):
            with self.lock:
                self.failures.pop(user, None)
                token = secrets.token_urlsafe(32)
                session = Session(user, secrets.token_urlsafe(32), time.monotonic() + self.session_seconds)
                self.sessions[token] = session
            return token, session
        with self.lock:
            count = count + 1 if time.monotonic() >= until or count < LOCK_AFTER else count
            self.failures[user] = (count, time.monotonic() + LOCK_SECONDS)
        time.sleep(FAIL_DELAY)
        return None

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self.lock:
            session = self.sessions.get(token)
            if session is not None and time.monotonic() >= session.expires:
                del self.sessions[token]
                return None
            return session

    def logout(self, token: str) -> None:
        with self.lock:
            self.sessions.pop(token, None)


class DeskSource:
    """The desk as a device source of the daemon: entries go into the flow's inbox."""

    name = "desk"

    def __init__(self, server: DeskServer) -> None:
        self.server = server

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self.server.submit = submit
        self.server.start()
        log.info("desk page on %s", self.server.url)

    def stop(self) -> None:
        self.server.submit = None
        self.server.stop()

    def state(self) -> str:
        return "ok" if self.server.submit is not None else "stopped"


_STYLE = '<link rel="stylesheet" href="/desk.css"><link rel="icon" href="/favicon.svg">'


def _page(title: str, body: str, head: str = "") -> bytes:
    return (
        f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>{_STYLE}{head}</head>'
        f"<body>{body}</body></html>"
    ).encode()


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def referral_json(r: Referral) -> dict[str, Any]:
    return {"key": r.key, "time": time.strftime("%H:%M", time.localtime(r.time)), "given_name": r.given_name,
            "masked_id": r.masked_id, "reason": r.reason, "message_vi": r.message_vi,
            "message_en": r.message_en}  # fmt: skip


class DeskHandler(PageHandler):
    server: DeskServer
    referrer_policy = "same-origin"  # with no-referrer, browsers send "Origin: null" and the origin check fails
    timeout = 30  # seconds a LAN client may stay silent before its connection is dropped

    # --- plumbing -----------------------------------------------------------------------------------

    def cookie(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None

    def current(self) -> Session | None:
        return self.server.session(self.cookie())

    def redirect(self, where: str, headers: dict[str, str] | None = None) -> None:
        self.send_body(303, "text/plain; charset=utf-8", b"", {"Location": where, **(headers or {})})

    def form(self) -> dict[str, str] | None:
        """The posted form, read whole (so the connection stays in step), or None when it is not a small form."""
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return None
        data = self.rfile.read(length)
        if "application/x-www-form-urlencoded" not in (self.headers.get("Content-Type") or ""):
            return None
        try:
            fields = urllib.parse.parse_qs(data.decode("utf-8", "replace"), max_num_fields=20)
        except ValueError:
            return None
        return {k: v[0] for k, v in fields.items()}

    def same_origin(self) -> bool:
        """A browser names the page a form came from; it must be this server (a missing Origin is an old browser)."""
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        parts = urllib.parse.urlsplit(origin)
        return parts.netloc == self.headers.get("Host") and parts.scheme == ("https" if self.server.tls else "http")

    # --- GET ----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/favicon.ico":
            self.path = "/favicon.svg"
        if not self.host_allowed():
            self.send_text(421, "wrong host")
            return
        path = self.path.split("?", 1)[0]
        if path in ("/desk.css", "/desk.js", "/favicon.svg") or path.startswith("/fonts/"):
            super().do_GET()
            return
        if path == "/login":
            self.login_page()
            return
        session = self.current()
        if session is None:
            self.redirect("/login")
            return
        if path == "/":
            self.desk_page(session)
        elif path == "/referrals.json":
            doc = [referral_json(r) for r in self.server.board.referrals()]
            self.send_body(200, "application/json", json.dumps(doc, ensure_ascii=False).encode())
        else:
            self.send_text(404, "not found")

    def login_page(self, error: str = "") -> None:
        message = f'<p class="error" id="error">{_e(error)}</p>' if error else ""
        body = f"""<main class="login"><h1>Quầy tiếp đón <span class="en">Desk</span></h1>{message}
<form method="post" action="/login">
<label>Tên đăng nhập <span class="en">Name</span><input name="user" autocomplete="username" required></label>
<label>Mật khẩu <span class="en">Password</span>
<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="login">Đăng nhập · Log in</button></form></main>"""
        self.send_body(401 if error else 200, "text/html; charset=utf-8", _page("Đăng nhập · Log in", body))

    def desk_page(self, session: Session, result: str = "", status: int = 200) -> None:
        rows = "".join(self.referral_row(r, session) for r in self.server.board.referrals())
        body = f"""<header><h1>Quầy tiếp đón <span class="en">Desk</span></h1>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{_e(session.csrf)}">
<span id="user">{_e(session.user)}</span> <button type="submit" id="logout">Đăng xuất · Log out</button></form></header>
<main>{result}
<section><h2>Bệnh nhân chuyển đến quầy <span class="en">Patients sent to the desk</span></h2>
<table id="referrals" data-csrf="{_e(session.csrf)}"><thead><tr><th>Giờ</th><th>Tên</th><th>Số định danh</th>
<th>Lý do <span class="en">Reason</span></th><th></th></tr></thead><tbody>{rows}</tbody></table>
<p id="none" class="en">{"" if rows else "Không có ai · Nobody waiting"}</p></section>
<section><h2>Nhập tay <span class="en">Manual entry</span></h2>
<form method="post" action="/entry" id="entry"><input type="hidden" name="csrf" value="{_e(session.csrf)}">
<label>Số định danh (12 số) <span class="en">ID number</span>
<input name="id_number" inputmode="numeric" pattern="[0-9]{{12}}" maxlength="12" required></label>
<label>Ngày sinh (ngày tháng năm) <span class="en">Birth date DDMMYYYY</span>
<input name="birth" inputmode="numeric" pattern="[0-9]{{8}}" maxlength="8"></label>
<label>Ngày cấp (nếu cần) <span class="en">Issue date, if needed</span>
<input name="issued" inputmode="numeric" pattern="[0-9]{{8}}" maxlength="8"></label>
<label class="check"><input type="checkbox" name="no_card" value="1"> Trẻ em không có thẻ
<span class="en">Child without a card</span></label>
<button type="submit" id="send">Gửi · Send</button></form></section></main>
<script src="/desk.js" defer></script>"""
        self.send_body(status, "text/html; charset=utf-8", _page("Quầy tiếp đón · Desk", body))

    @staticmethod
    def referral_row(r: Referral, session: Session) -> str:
        d = referral_json(r)
        return (f'<tr data-key="{_e(r.key)}"><td>{_e(d["time"])}</td><td class="name">{_e(r.given_name)}</td>'
                f'<td class="id">{_e(r.masked_id or "chưa rõ · unknown")}</td>'
                f'<td>{_e(r.message_vi)}<br><span class="en">{_e(r.message_en)}'
                f'</span></td><td><form method="post" action="/clear"><input type="hidden" name="csrf" '
                f'value="{_e(session.csrf)}"><input type="hidden" name="key" value="{_e(r.key)}">'
                f'<button type="submit" class="clear">Đã xử lý · Done</button></form></td></tr>')  # fmt: skip

    # --- POST ---------------------------------------------------------------------------------------

    def do_POST(self) -> None:
        if not self.host_allowed():
            self.send_text(421, "wrong host")
            return
        path = self.path.split("?", 1)[0]
        fields = self.form()
        if fields is None:
            self.send_text(400, "expected a small urlencoded form")
            return
        if not self.same_origin():
            self.send_text(403, "cross-site request refused")
            return
        if path == "/login":
            self.post_login(fields)
            return
        session = self.current()
        if session is None:
            self.redirect("/login")
            return
        if not secrets.compare_digest(fields.get("csrf", ""), session.csrf):
            self.send_text(403, "the form is stale or forged (CSRF token)")
            return
        if path == "/logout":
            self.record("logout", session)
            self.server.logout(self.cookie() or "")
            self.redirect("/login", {"Set-Cookie": f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"})
        elif path == "/entry":
            self.post_entry(session, fields)
        elif path == "/clear":
            self.post_clear(session, fields)
        else:
            self.send_text(404, "not found")

    def record(self, action: str, session: Session, **fields: Any) -> str | None:
        try:
            return self.server.record({"action": action, "attendant": session.user, **fields})
        except (GateAgentError, OSError, ValueError) as exc:
            log.error("desk action %s could not be stored: %s", action, exc)
            return None

    def post_login(self, fields: dict[str, str]) -> None:
        user = fields.get("user", "")
        answer = self.server.login(user, fields.get("password", ""))
        if answer is None:
            log.warning("desk login refused for %r from %s", user[:32], self.client_address[0])
            self.login_page("Sai tên hoặc mật khẩu · Wrong name or password")
            return
        token, session = answer
        if self.record("login", session) is None:
            self.server.logout(token)
            self.login_page("Không ghi được nhật ký · The action log cannot be written")
            return
        secure = "; Secure" if self.server.tls else ""
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
        self.redirect("/", {"Set-Cookie": cookie})

    def post_entry(self, session: Session, fields: dict[str, str]) -> None:
        request: dict[str, Any] = {"id_number": fields.get("id_number", "").strip()}
        if fields.get("no_card"):
            request["no_card"] = True
        else:
            request["birth"] = fields.get("birth", "").strip()
            request["issued"] = fields.get("issued", "").strip()
        try:
            trigger = trigger_from_request(request)
        except InputError as exc:
            self.desk_page(session, f'<p class="error" id="result">{_e(exc)}</p>', 400)
            return
        submit = self.server.submit
        if submit is None:
            not_running = '<p class="error" id="result">Cổng chưa sẵn sàng · The gate is not running</p>'
            self.desk_page(session, not_running, 503)
            return
        board = self.server.board
        mark = board.mark()
        submit(trigger)
        shown = board.wait_outcome(request["id_number"], mark, self.server.entry_wait)
        event = self.record("manual_entry", session, no_card=bool(request.get("no_card")),
                            checkin_id=shown.event_id if shown and shown.event_id else None)  # fmt: skip
        masked = _e(mask_id(request["id_number"]))
        if shown is None:
            text = (f'<p class="pending" id="result">{masked}: chưa có kết quả (thẻ chưa được đọc?) · no outcome yet '
                    f"(was the card read?)</p>")  # fmt: skip
        else:
            title_vi, title_en, tone, _ = OUTCOMES.get(shown.outcome, OUTCOMES["refer_desk"])
            if shown.outcome.startswith("admitted") and not shown.gate_opens:
                title_vi, title_en, tone, _ = OUTCOMES["refer_desk"]
            text = (f'<div class="result tone-{tone}" id="result" data-outcome="{_e(shown.outcome)}">'
                    f"<strong>{masked}: {_e(title_vi)}</strong> <span class=\"en\">{_e(title_en)}</span><br>"
                    f'{_e(shown.message_vi)} <span class="en">{_e(shown.message_en)}</span></div>')  # fmt: skip
        if event is None:
            text += '<p class="error">Không ghi được nhật ký quầy · The desk log could not be written</p>'
        self.desk_page(session, text)

    def post_clear(self, session: Session, fields: dict[str, str]) -> None:
        key = fields.get("key", "")
        known = {r.key: r for r in self.server.board.referrals()}
        if key not in known:
            self.redirect("/")
            return
        if self.record("clear_referral", session, checkin_id=known[key].event_id) is None:
            failed = '<p class="error" id="result">Không ghi được nhật ký · Not recorded, not cleared</p>'
            self.desk_page(session, failed, 500)
            return
        self.server.board.clear(key)
        self.redirect("/")
