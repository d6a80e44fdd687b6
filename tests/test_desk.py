"""The attendant's desk page on the real daemon, in a real browser: login, manual entry round trip, referrals.

The daemon runs without a card reader (manual entries need none) and with a policy
that sends typed entries of unknown eligibility to the desk, so one entry exercises
the outcome shown back, the referral list and its clearing.  Afterwards the queue
holds one signed ``desk`` event per action, each naming the attendant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pycddl
import pytest

from agent.desk.board import DeskBoard
from agent.desk.server import DeskServer
from agent.desk.users import Users, check_password, hash_password
from agent.model import Identity, Shown
from sim.infra.net import free_port
from tests.browser import Browser, browser, off_loopback  # noqa: F401 - the fixture
from tests.daemon_harness import readerless_daemon_config, start_daemon, stop_daemon

pytestmark = pytest.mark.slow
ID_NUMBER = "001090012345"
SCHEMA = pycddl.Schema((Path(__file__).resolve().parent.parent / "docs" / "events.cddl").read_text())


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    users = tmp_path / "desk-users"
    Users(users).set_password("lan", "mật khẩu đúng")
    Users(users).set_password("minh", "another one")
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    port = free_port()
    config, env = readerless_daemon_config(tmp_path, f"""[desk]
enabled = true
port = {port}
users_file = "{users}"
entry_wait = 2.0
[policy]
eligibility_unknown = "refer_desk"
""")
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, env, log)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(url + "login", timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError((tmp_path / "daemon.log").read_text()[-3000:]) from None
            time.sleep(0.1)
    try:
        yield url, config, log
    finally:
        code, err = stop_daemon(proc, log)
    assert code == 0, err[-3000:]


def export(config: Path) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "agent", "queue", "export", "--config", str(config), "--unmasked"],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, fields: dict[str, str], cookie: str = "", origin: str | None = None) -> int:
    """The status of one form post, redirects not followed."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    if origin:
        headers["Origin"] = origin
    request = urllib.request.Request(url, urllib.parse.urlencode(fields).encode(), headers)
    try:
        with OPENER.open(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_desk_login_entry_referral_and_events(browser: Browser, daemon: tuple[str, Path, Path]) -> None:  # noqa: F811
    url, config, log = daemon
    b, d = browser, browser.driver
    b.resize(1280, 800)
    from selenium.webdriver.common.by import By

    # login required
    b.open(url)
    assert d.current_url.endswith("/login")
    with urllib.request.urlopen(url + "referrals.json", timeout=5) as resp:
        assert resp.url.endswith("/login")  # no list without a login
    d.find_element(By.NAME, "user").send_keys("lan")
    d.find_element(By.NAME, "password").send_keys("wrong password")
    d.find_element(By.ID, "login").click()
    b.wait(lambda: "Sai tên hoặc mật khẩu" in b.text("error"), what="the refusal")
    d.find_element(By.NAME, "user").send_keys("lan")
    d.find_element(By.NAME, "password").send_keys("mật khẩu đúng")
    d.find_element(By.ID, "login").click()
    b.wait(lambda: d.current_url == url, what="the desk")
    assert b.text("user") == "lan" and "Nobody waiting" in b.text("none")
    cookie = d.get_cookie("gate_desk")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # a child without a card: the outcome comes back, and the patient is on the desk's list
    d.find_element(By.NAME, "id_number").send_keys(ID_NUMBER)
    d.find_element(By.NAME, "no_card").click()
    d.find_element(By.ID, "send").click()
    b.wait(lambda: bool(b.js("return document.querySelector('#result[data-outcome]') !== null")), 10, "the outcome")
    result = d.find_element(By.ID, "result")
    assert result.get_attribute("data-outcome") == "refer_desk" and "001******345" in result.text
    assert "Mời đến quầy tiếp đón" in result.text and ID_NUMBER not in b.js("return document.body.innerText")
    rows = d.find_elements(By.CSS_SELECTOR, "#referrals tbody tr")
    assert len(rows) == 1 and "001******345" in rows[0].text
    b.screenshot(Path(os.environ.get("KIOSK_SCREENSHOTS") or log.parent) / "20-desk.png")

    # keys typed for a card that is not on the reader: said so, not hung
    d.find_element(By.NAME, "id_number").send_keys(ID_NUMBER)
    d.find_element(By.NAME, "birth").send_keys("17051990")
    d.find_element(By.ID, "send").click()
    b.wait(lambda: "no outcome yet" in b.text("result"), 10, "the pending answer")

    # forged and cross-site posts are refused, with and without the session
    session = f"gate_desk={cookie['value']}"
    key = rows_key = b.js("return document.querySelector('#referrals tbody tr').dataset.key")
    assert post(url + "clear", {"key": key}, session) == 403
    csrf = b.js("return referrals.dataset.csrf")
    assert post(url + "clear", {"key": key, "csrf": csrf}, session, origin="http://evil.example") == 403
    assert post(url + "entry", {"id_number": ID_NUMBER, "no_card": "1", "csrf": csrf}) == 303  # to the login
    assert len(d.find_elements(By.CSS_SELECTOR, "#referrals tbody tr")) == 1

    # the attendant clears the referral
    b.open(url)
    d.find_element(By.CSS_SELECTOR, f'#referrals tr[data-key="{rows_key}"] button.clear').click()
    b.wait(lambda: len(d.find_elements(By.CSS_SELECTOR, "#referrals tbody tr")) == 0, what="the cleared list")
    assert off_loopback(b.network()) == []
    d.find_element(By.ID, "logout").click()
    b.wait(lambda: d.current_url.endswith("/login"), what="the login page")
    assert post(url + "clear", {"key": key, "csrf": csrf}, session) == 303  # the old session is gone

    # every desk action is a signed event in the queue, naming the attendant
    events = export(config)
    desk = [e for e in events if e["type"] == "desk"]
    assert [e["body"]["action"] for e in desk] == ["login", "manual_entry", "manual_entry", "clear_referral",
                                                   "logout"]  # fmt: skip
    assert all(e["body"]["attendant"] == "lan" for e in desk)
    checkin = next(e for e in events if e["type"] == "checkin")
    assert checkin["body"]["assurance"] == "manual" and checkin["body"]["outcome"] == "refer_desk"
    assert desk[1]["body"]["checkin_id"] == checkin["id"] and desk[1]["body"]["no_card"] is True
    assert desk[2]["body"]["checkin_id"] is None  # no outcome came: the card was never read
    assert desk[3]["body"]["checkin_id"] == checkin["id"]
    for event in desk:
        SCHEMA.validate_cbor(cbor2.dumps(event))
    assert ID_NUMBER not in log.read_text()


def test_passwords_and_lockout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = hash_password("s3cret-pass")
    assert check_password("s3cret-pass", stored) and not check_password("s3cret-pasS", stored)
    assert not check_password("x", "md5:abc") and not check_password("x", "garbage")
    users = Users(tmp_path / "u")
    with pytest.raises(Exception, match="at least 8"):
        users.set_password("lan", "short")
    users.set_password("lan", "long enough")
    monkeypatch.setattr("agent.desk.server.FAIL_DELAY", 0.0)
    server = DeskServer("127.0.0.1", 0, users, DeskBoard(), lambda body: "e")
    try:
        assert server.login("nobody", "long enough") is None
        for _ in range(10):
            assert server.login("lan", "wrong") is None
        assert server.login("lan", "long enough") is None  # locked for five minutes after ten failures
        assert server.login("nobody", "x") is None
    finally:
        server.server_close()


def test_board_orders_referrals_and_matches_outcomes() -> None:
    board = DeskBoard()
    mark = board.mark()
    person = Identity(ID_NUMBER, "Trần Thị Bích")
    board.show(Shown("e1", "refer_desk", "NOT_INSURED", "vi", "en", identity=person))
    board.show(Shown("e2", "admitted", "OK", "vi", "en", identity=Identity("079201000001")))
    board.show(Shown(None, "refer_desk", "STORE_FAILED", "vi", "en", identity=Identity("079201000001")))
    refs = board.referrals()
    assert [r.event_id for r in refs] == ["e1", None] and refs[0].given_name == "Bích"
    assert refs[0].masked_id == "001******345" and refs[1].key.startswith("local-")
    got = board.wait_outcome("079201000001", mark, 0.1)
    assert got is not None and got.event_id == "e2"
    assert board.wait_outcome("079201000001", board.mark(), 0.05) is None
    assert board.clear("e1") is not None and board.clear("e1") is None


def test_desk_over_tls_with_a_secure_cookie(tmp_path: Path) -> None:
    import ssl

    from tests.sim_procs import sim

    made = subprocess.run(sim("pki", "--out", str(tmp_path / "pki"), "--broker-host", "127.0.0.1"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    pki = tmp_path / "pki"
    users = Users(tmp_path / "users")
    users.set_password("lan", "long enough")
    server = DeskServer("127.0.0.1", 0, users, DeskBoard(), lambda body: "e",
                        tls=(pki / "broker.crt", pki / "broker.key"))  # fmt: skip
    server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        import socket

        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # connects, never says hello
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        https = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
        with https.open(server.url + "login", timeout=10) as resp:
            assert resp.status == 200
        form = urllib.parse.urlencode({"user": "lan", "password": "long enough"}).encode()
        request = urllib.request.Request(server.url + "login", form,
                                         {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as answer:
            https.open(request, timeout=10)
        assert answer.value.code == 303 and "; Secure" in answer.value.headers["Set-Cookie"]
        with pytest.raises(OSError):  # plain HTTP to the TLS port gets nowhere
            urllib.request.urlopen(server.url.replace("https://", "http://") + "login", timeout=5)
        silent.close()
    finally:
        server.stop()
