"""The configuration file: defaults, the shipped example, and errors that name the key."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.app.policy import Policy
from agent.config import SECTIONS, load_config, parse_config, render_example, warnings
from agent.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "agent.example.toml"


def example_text() -> str:
    """The shipped example with the two keys an installer must set filled in."""
    return EXAMPLE.read_text().replace('# facility_id = "01001"', 'facility_id = "01001"').replace(
        '# terminal_id = "gate-1"', 'terminal_id = "gate-1"'
    )


def test_shipped_example_is_rendered_from_the_schema() -> None:
    assert EXAMPLE.read_text() == render_example(), "regenerate docs/agent.example.toml from agent.config"


def test_shipped_example_needs_the_terminal_identity_then_matches_the_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"terminal\.facility_id: required key is missing"):
        load_config(EXAMPLE)
    path = tmp_path / "agent.toml"
    path.write_text(example_text())
    cfg = load_config(path)
    minimal = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1"}})
    for section in SECTIONS:
        assert getattr(cfg, section) == getattr(minimal, section), section
    assert Policy.from_config(cfg.policy) == Policy.default()


def test_every_key_has_a_meaning_and_every_table_is_documented() -> None:
    text = EXAMPLE.read_text()
    for name, cls in SECTIONS.items():
        assert f"[{name}]" in text
        for f in dataclasses.fields(cls):
            assert f.metadata["doc"], f"{name}.{f.name}"
            assert re.search(rf"^#? ?{f.name} = ", text, re.M), f"{name}.{f.name}"


T = {"facility_id": "1", "terminal_id": "g"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "terminal: required table is missing"),
        ({"terminal": {"facility_id": "01001"}}, "terminal.terminal_id: required key is missing"),
        ({"terminal": {"facility_id": "01001", "terminal_id": "g", "colour": 1}}, "terminal.colour: unknown key"),
        ({"terminal": {"facility_id": "01 001", "terminal_id": "g"}}, "terminal.facility_id"),
        ({"terminal": T, "reader": {"chunk_size": "big"}}, "reader.chunk_size: expected an integer"),
        ({"terminal": T, "reader": {"chunk_size": 70000}}, "reader.chunk_size: must be between"),
        ({"terminal": T, "finger": {"enabled": True}}, "finger.url: required"),
        ({"terminal": T, "timeouts": {"keys": 0}}, "timeouts.keys: must be at least"),
        ({"terminal": T, "timeouts": {"card": True}}, "timeouts.card: expected a number"),
        ({"terminal": T, "outputs": {"kinds": ["siren"]}}, r"outputs.kinds\[0\]: 'siren' is not one of"),
        ({"terminal": T, "outputs": {"kinds": ["recorder"]}}, "outputs.recorder_path"),
        ({"terminal": T, "policy": {"pa_failed": "shrug"}}, "policy.pa_failed"),
        ({"terminal": T, "gate": {}}, "gate: unknown table"),
        ({"terminal": T, "reader": {"files": ["dg1", 13]}}, r"reader.files\[1\]"),
        # the list, one by one
        ({"terminal": T, "uplink": {"tls_cafile": "x"}}, "uplink.tls_cafile: unknown key"),
        ({"terminal": T, "uplink": {"keepalive": "thirty"}}, "uplink.keepalive: expected an integer"),
        ({"terminal": T, "uplink": {"broker_url": "mqtt://127.0.0.1:1883"}}, "uplink.broker_url: unknown key"),
        ({"terminal": T, "uplink": {"broker_urls": ["http://hub:80"]}}, r"uplink.broker_urls\[0\]: 'http://hub:80'"),
        # plain MQTT, even on loopback, only when allowed (a simulator or a test)
        ({"terminal": T, "uplink": {"broker_urls": ["mqtt://127.0.0.1:1883"]}},
         r"uplink.broker_urls: 'mqtt://127.0.0.1:1883' is plain MQTT without TLS; .* uplink.allow_plaintext = true"),
        ({"terminal": T, "uplink": {"allow_plaintext": "yes"}}, "uplink.allow_plaintext: expected true or false"),
        ({"terminal": T, "uplink": {"hub_key": "hub.pub"}}, "uplink.hub_key: .* must be an absolute path"),
        ({"terminal": T, "uplink": {"clock_skew": -1}}, "uplink.clock_skew: must be at least 0"),
        ({"terminal": {**T, "queue_key": "/var/lib/gate-agent/queue/key"}},
         "terminal.queue_key: .* is inside the state directory"),
        ({"terminal": T, "uplink": {"broker_urls": "mqtt://hub"}}, "uplink.broker_urls: expected a list"),
        ({"terminal": T, "uplink": {"broker_urls": ["mqtt://:1883"]}}, r"uplink.broker_urls\[0\]: .* has no host"),
        ({"terminal": T, "uplink": {"broker_urls": ["mqtt://hub:99999"]}}, r"uplink.broker_urls\[0\]: .* bad port"),
        ({"terminal": T, "uplink": {"protocol": "4"}}, "uplink.protocol: '4' is not one of"),
        ({"terminal": T, "uplink": {"inflight": 0}}, "uplink.inflight: must be between"),
        ({"terminal": T, "uplink": {"backoff_min": 5.0, "backoff_max": 1.0}}, "uplink.backoff_max"),
        ({"terminal": T, "uplink": {"password": "pw"}}, "uplink.username: required when uplink.password"),
        ({"terminal": T, "uplink": {"tls_ca": "relative/ca.pem"}}, "uplink.tls_ca: .* must be an absolute path"),
        ({"terminal": T, "uplink": {"tls_key": "/nonexistent/gate-1.key"}}, "uplink.tls_key: file .* does not exist"),
        ({"terminal": T, "reader": {"trust_dir": "/nonexistent/trust"}}, "reader.trust_dir: directory .* does not"),
        ({"terminal": T, "reader": {"files": ["dg99"]}}, r"reader.files\[0\]: 'dg99' is not one of"),
        ({"terminal": T, "reader": {"files": ["dg1", "dg1"]}}, "reader.files: lists a file twice"),
        ({"terminal": T, "reader": {"files": ["dg14", "dg15"]}}, "reader.files: needs dg1 or dg13"),
        ({"terminal": {**T, "state_dir": "var/lib/gate-agent"}}, "terminal.state_dir: .* must be an absolute path"),
        ({"terminal": T, "finger": {"profile": "r999"}}, "finger.profile: "),
        ({"terminal": T, "reader": {"profile": "acme"}}, "reader.profile: "),
        ({"terminal": T, "scanners": {"qr_profile": "r307"}}, "scanners.qr_profile: "),
        ({"terminal": T, "finger": {"enabled": True, "url": "socket://127.0.0.1"}}, "finger.url: .* needs a host and"),
        ({"terminal": T, "finger": {"enabled": True, "url": "socket://:5000"}}, "finger.url: .* needs a host and"),
        ({"terminal": T, "scanners": {"qr_url": "ttyUSB0"}}, "scanners.qr_url: .* must be a device path"),
        ({"terminal": T, "scanners": {"mrz_url": "http://x:1"}}, "scanners.mrz_url: .* unknown scheme"),
        ({"terminal": T, "timeouts": {"read": 0}}, "timeouts.read: must be at least"),
        ({"terminal": T, "timeouts": {"outcome": 5.0}}, "timeouts.outcome: removed"),
        ({"terminal": T, "finger": {"capture_timeout": 15.0}}, "finger.capture_timeout: removed"),
        ({"terminal": T, "outputs": {"kinds": ["log", "log"]}}, "outputs.kinds: lists an output twice"),
        ({"terminal": T, "eligibility": {"online_timeout": 600}}, "eligibility.online_timeout: must be between"),
        # the patient's page and the desk
        ({"terminal": T, "outputs": {"kiosk_bind": "0.0.0.0"}}, "outputs.kiosk_bind: '0.0.0.0' is not a loopback"),
        ({"terminal": T, "outputs": {"kiosk_port": 70000}}, "outputs.kiosk_port: must be between"),
        ({"terminal": T, "outputs": {"kiosk_hold": 0}}, "outputs.kiosk_hold: must be between"),
        ({"terminal": T, "outputs": {"speech": "loud"}}, "outputs.speech: 'loud' is not one of"),
        ({"terminal": T, "outputs": {"speech_voice": "en"}}, "outputs.speech_voice: 'en' is not one of"),
        ({"terminal": T, "outputs": {"speech": "recorded"}}, "outputs.recorded_dir: required"),
        ({"terminal": T, "outputs": {"recorded_dir": "/nonexistent/prompts"}}, "outputs.recorded_dir: directory"),
        ({"terminal": T, "desk": {"enabled": True}}, "desk.users_file: required when desk.enabled"),
        ({"terminal": T, "desk": {"users_file": "desk-users"}}, "desk.users_file: .* must be an absolute path"),
        ({"terminal": T, "desk": {"tls_cert": "/nonexistent/desk.pem"}}, "desk.tls_cert: file .* does not exist"),
        ({"terminal": T, "desk": {"session_minutes": 0}}, "desk.session_minutes: must be between"),
        ({"terminal": T, "desk": {"user_file": "/etc/x"}}, "desk.user_file: unknown key"),
    ],
)
def test_errors_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^agent.toml: {message}"):
        parse_config(doc, Path("agent.toml"))


def test_gpio_without_the_module_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gpiod" else real(name, *a))
    with pytest.raises(ConfigError, match=r"outputs\.kinds: 'gpio' needs the gpiod Python module"):
        parse_config({"terminal": T, "outputs": {"kinds": ["gpio"]}}, Path("agent.toml"))


def tls_files(tmp_path: Path, cn: str = "gate-1") -> dict[str, Path]:
    """A CA and a client certificate it issued, as files."""
    from sim.pki import make_pki

    make_pki(tmp_path, "01001", [cn])
    return {"ca": tmp_path / "ca.crt", "cert": tmp_path / f"{cn}.crt", "key": tmp_path / f"{cn}.key"}


def test_tls_files_must_load_as_the_uplink_will(tmp_path: Path) -> None:
    files = tls_files(tmp_path)
    good = {"broker_urls": ["mqtts://127.0.0.1:8883"], "tls_ca": str(files["ca"]), "tls_cert": str(files["cert"]),
            "tls_key": str(files["key"])}  # fmt: skip
    cfg = parse_config({"terminal": T, "uplink": good})
    assert cfg.uplink.tls and cfg.uplink.tls_key == str(files["key"])
    (tmp_path / "x").write_text("x")
    for change, message in [
        ({"tls_ca": str(tmp_path / "x")}, "uplink.tls_ca: .* is not a PEM CA certificate"),
        ({"tls_key": str(files["ca"])}, "uplink.tls_key: .* are not a PEM certificate and its private key"),
        ({"tls_key": ""}, "uplink.tls_key: tls_cert and tls_key go together"),
        ({"broker_urls": ["mqtt://127.0.0.1:1883"]}, "uplink.tls_ca: TLS files are set but no broker URL is mqtts"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config({"terminal": T, "uplink": {**good, **change}})


def test_a_pinned_hub_key_must_load_as_the_start_will(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from agent.app.wiring import build_hub_verifier
    from agent.uplink.config import UplinkConfig
    from agent.uplink.hubmsg import HubKeyError, public_pem

    pin = tmp_path / "hub.pub"
    pin.write_text("not a key")
    uplink = {"broker_urls": ["mqtts://127.0.0.1:8883"], "hub_key": str(pin)}
    doc = {"terminal": {**T, "state_dir": str(tmp_path / "state")}, "uplink": uplink}
    with pytest.raises(ConfigError, match=r"uplink.hub_key: .*cannot load the hub's public key"):
        parse_config(doc)
    # the same file stops the start: the check above refuses exactly that
    accepted = parse_config({**doc, "uplink": {"broker_urls": uplink["broker_urls"]}})
    pinned = dataclasses.replace(accepted, uplink=dataclasses.replace(accepted.uplink, hub_key=str(pin)))
    up = UplinkConfig.from_settings(pinned.uplink, "01001", "gate-1")
    with pytest.raises(HubKeyError):
        build_hub_verifier(pinned, up)
    pin.write_bytes(public_pem(ed25519.Ed25519PrivateKey.generate().public_key()))
    assert parse_config(doc).uplink.hub_key == str(pin)
    with pytest.raises(ConfigError, match=r"uplink.hub_key: .*cannot load"):  # the default pin too
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "hub.pub").write_text("not a key")
        parse_config({**doc, "uplink": {"broker_urls": uplink["broker_urls"]}})


def test_warnings_name_legal_but_unsafe_choices(tmp_path: Path) -> None:
    files = tls_files(tmp_path / "pki", T["terminal_id"])
    tls = {"broker_urls": ["mqtts://127.0.0.1:8883"], "tls_ca": str(files["ca"]), "tls_cert": str(files["cert"]),
           "tls_key": str(files["key"])}  # fmt: skip
    quiet = parse_config({"terminal": {**T, "state_dir": str(tmp_path)}, "outputs": {"kinds": ["screen"]},
                          "uplink": tls})  # fmt: skip
    (tmp_path / "trust").mkdir()
    assert warnings(quiet) == []
    # allowed plain MQTT is still a warning, on loopback too
    plain = parse_config({"terminal": {**T, "state_dir": str(tmp_path)}, "outputs": {"kinds": ["screen"]},
                          "uplink": {"broker_urls": ["mqtt://127.0.0.1:1883"], "allow_plaintext": True}})  # fmt: skip
    assert [w.split(":")[0] for w in warnings(plain)] == ["uplink.broker_urls"]
    loud = parse_config({
        "terminal": {**T, "state_dir": str(tmp_path / "new")},
        "finger": {"enabled": True, "url": "/dev/ttyUSB0"},
        "reader": {"files": ["dg1", "dg2"]},
        "uplink": {"broker_urls": ["mqtt://hub.clinic.lan:1883"], "allow_plaintext": True},
        "policy": {"pa_failed": "admit", "other_facility": "refer_desk", "vneid_unverified_offline": "admit",
                   "vneid_expired": "admit"},
    })  # fmt: skip
    got = "\n".join(warnings(loud))
    for key in ("uplink.broker_urls: mqtt://hub.clinic.lan:1883 is not TLS", "reader.trust_dir: ",
                "reader.terminal_credentials: not set", "reader.files: dg2", "outputs.kinds: neither gpio nor screen",
                "policy.pa_failed = 'admit': a patient whose card, finger or VNeID identity was not proven genuine",
                "policy.vneid_unverified_offline = 'admit': "):  # fmt: skip
        assert key in got, key
    assert "policy.vneid_expired = " not in got  # not fail-closed: only "more lenient than the default"
    assert "other_facility" not in got  # stricter than the default is no warning
    assert "uplink.broker_urls: none configured" in "\n".join(warnings(parse_config({"terminal": T})))


def test_kiosk_and_desk_settings(tmp_path: Path) -> None:
    files = tls_files(tmp_path / "pki", T["terminal_id"])
    with pytest.raises(ConfigError, match=r"desk\.tls_key: tls_cert and tls_key go together"):
        parse_config({"terminal": T, "desk": {"tls_cert": str(files["cert"])}})
    with pytest.raises(ConfigError, match=r"desk\.tls_key: .* are not a PEM certificate and its private key"):
        parse_config({"terminal": T, "desk": {"tls_cert": str(files["cert"]), "tls_key": str(files["ca"])}})
    users = tmp_path / "desk-users"
    lan = parse_config({"terminal": {**T, "state_dir": str(tmp_path)},
                        "outputs": {"kinds": ["kiosk"], "kiosk_bind": "192.0.2.10", "kiosk_allow_remote": True},
                        "desk": {"enabled": True, "bind": "192.0.2.10", "users_file": str(users)}})  # fmt: skip
    got = "\n".join(warnings(lan))
    for key in ("outputs.kiosk_bind: 192.0.2.10 is not loopback", "desk.users_file: ", "desk.tls_cert: the desk on "
                "192.0.2.10 without TLS"):  # fmt: skip
        assert key in got, key
    assert "outputs.kinds: neither" not in got  # the kiosk shows the outcome
    users.write_text("")
    tls = {"tls_cert": str(files["cert"]), "tls_key": str(files["key"])}
    safe = parse_config({"terminal": {**T, "state_dir": str(tmp_path)}, "outputs": {"kinds": ["kiosk"]},
                         "desk": {"enabled": True, "bind": "192.0.2.10", "users_file": str(users), **tls}})  # fmt: skip
    assert not [w for w in warnings(safe) if w.startswith(("desk.", "outputs."))]
    assert safe.as_dict()["desk"]["bind"] == "192.0.2.10"


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[terminal\nfacility_id = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "config", "check", *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_config_check_command(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(example_text().replace('state_dir = "/var/lib/gate-agent"', f'state_dir = "{tmp_path}"'))
    ok = check("--config", str(good), "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] is True and report["terminal_id"] == "gate-1"
    effective = report["effective"]
    assert effective["reader"]["trust_dir"] == str(tmp_path / "trust")  # the default, resolved
    assert effective["uplink"]["keepalive"] == 30 and effective["timeouts"]["finger"] == 15.0
    assert effective["policy"]["pa_failed"] == "refuse"
    assert any(w.startswith("uplink.broker_urls: none configured") for w in report["warnings"])
    # the hub's last push is part of the effective policy
    (tmp_path / "policy.json").write_text('{"cache_stale": "refer_desk"}')
    assert json.loads(check("--config", str(good), "--json").stdout)["effective"]["policy"]["cache_stale"] == \
        "refer_desk"  # fmt: skip
    text = check("--config", str(good), "-v")
    assert text.returncode == 0 and "ok (facility 01001, terminal gate-1)" in text.stdout
    assert "warning: uplink.broker_urls: none configured" in text.stderr
    assert check("--config", str(good), "--strict").returncode == 1

    bad = tmp_path / "agent.toml"
    bad.write_text('[terminal]\nfacility_id = "01001"\nterminal_id = "g"\n[finger]\nthreshhold = 3\n')
    res = check("--config", str(bad))
    assert res.returncode == 2 and res.stdout == ""
    assert "finger.threshhold: unknown key" in res.stderr and "Traceback" not in res.stderr
    res = check("--config", str(bad), "--json")
    assert res.returncode == 2
    error = json.loads(res.stdout)
    assert error["ok"] is False and "finger.threshhold: unknown key" in error["error"] and error["exit_code"] == 2


def test_one_effective_policy_at_start_on_push_and_on_reload(tmp_path: Path) -> None:
    """Defaults < the config's [policy] < the hub's last push; a reload keeps the push, as a restart does."""
    import datetime as dt
    import types

    from agent.app.effective_policy import effective_policy
    from agent.app.eligibility import EligibilityCache
    from agent.app.hub_commands import HubCommands
    from agent.app.policy import ACTIONS, Finding

    path = tmp_path / "agent.toml"
    base = f'[terminal]\nfacility_id = "01001"\nterminal_id = "g"\nstate_dir = "{tmp_path}"\n'
    path.write_text(base + '[policy]\ncache_stale = "refer_desk"\nnot_in_cache = "refuse"\n')
    cfg = load_config(path)
    start = effective_policy(cfg)
    assert start.actions[Finding.CACHE_STALE] is ACTIONS["refer_desk"]
    assert start.actions[Finding.PA_FAILED] is ACTIONS["refuse"]  # a default

    flow = types.SimpleNamespace(policy=start)
    handler = HubCommands(cfg, EligibilityCache(dt.timedelta(hours=1)), None, flow)  # type: ignore[arg-type]
    assert handler({"type": "policy", "policy": {"cache_stale": "refuse"}}) == (True, "policy applied")
    pushed = flow.policy
    assert pushed.actions[Finding.CACHE_STALE] is ACTIONS["refuse"]
    assert pushed.actions[Finding.NOT_IN_CACHE] is ACTIONS["refuse"]  # the config's key the hub did not push
    # SIGHUP (a fresh load) and a restart both give what the push gave
    assert effective_policy(load_config(path)) == pushed
    # the config file changes what the hub did not push; the push still wins on its own keys
    path.write_text(base + '[policy]\ncache_stale = "admit"\nnot_in_cache = "refer_desk"\n')
    reloaded = effective_policy(load_config(path))
    assert reloaded.actions[Finding.CACHE_STALE] is ACTIONS["refuse"]
    assert reloaded.actions[Finding.NOT_IN_CACHE] is ACTIONS["refer_desk"]
    # a push that does not validate changes nothing, on disk or in the flow
    before = (tmp_path / "policy.json").read_text()
    ok, reason = handler({"type": "policy", "policy": {"cache_stale": "shrug"}})
    assert not ok and "policy.cache_stale" in reason
    assert (tmp_path / "policy.json").read_text() == before and flow.policy == pushed


def test_a_push_after_a_reload_lays_over_the_reloaded_policy(tmp_path: Path) -> None:
    """The daemon's hub-command handler follows SIGHUP: a later push overlays the fresh [policy]."""
    from agent.app.policy import ACTIONS, Finding
    from agent.app.wiring import build_runtime
    from sim.infra.net import free_port

    path = tmp_path / "agent.toml"
    base = (f'[terminal]\nfacility_id = "01001"\nterminal_id = "g"\nstate_dir = "{tmp_path}"\n'
            f'[reader]\ntrust_dir = "{tmp_path}"\n'
            f'[uplink]\nbroker_urls = ["mqtt://127.0.0.1:{free_port()}"]\nallow_plaintext = true\n')  # fmt: skip
    path.write_text(base + '[policy]\ncache_stale = "refer_desk"\n')
    rt = build_runtime(load_config(path))
    try:
        path.write_text(base + '[policy]\ncache_stale = "refer_desk"\nnot_in_cache = "refuse"\n')
        assert rt.reconfigure is not None
        rt.reconfigure(load_config(path))
        uplink = rt.status_publisher
        handler = getattr(uplink, "on_command", None)
        assert handler is not None
        assert handler({"type": "policy", "policy": {"cache_stale": "refuse"}}) == (True, "policy applied")
        actions = rt.flow.policy.actions
        assert actions[Finding.CACHE_STALE] is ACTIONS["refuse"]  # the push
        assert actions[Finding.NOT_IN_CACHE] is ACTIONS["refuse"]  # the reloaded config, not the start's default
    finally:
        for close in reversed(rt.closers):
            close()


def test_a_relaxation_pushed_by_the_hub_is_warned_about_too(tmp_path: Path) -> None:
    """config check judges the policy the daemon applies: the config's [policy] with the hub's push over it."""
    path = tmp_path / "agent.toml"
    path.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "g"\nstate_dir = "{tmp_path}"\n')
    assert "warning: policy." not in check("--config", str(path)).stderr
    (tmp_path / "policy.json").write_text('{"clone_suspected": "admit"}')
    assert "warning: policy.clone_suspected = 'admit'" in check("--config", str(path)).stderr


def test_config_check_shows_and_judges_the_policy_the_daemon_runs(tmp_path: Path) -> None:
    """A push that no longer validates is not in force: config check says so and judges the config's [policy];
    a pushed leniency and a fail-closed finding moved from refuse to the desk are warned about too."""
    path = tmp_path / "agent.toml"
    path.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "g"\nstate_dir = "{tmp_path}"\n'
                    '[policy]\nnot_insured = "refuse"\n')  # fmt: skip
    (tmp_path / "policy.json").write_text('{"pa_failed": "admit", "no_such_finding": "refuse"}')
    res = check("--config", str(path), "--json")
    assert json.loads(res.stdout)["effective"]["policy"] == {"not_insured": "refuse"}
    assert "no longer validates" in res.stderr and "pa_failed" not in res.stderr
    (tmp_path / "policy.json").write_text('{"clone_suspected": "refer_desk", "not_insured": "admit"}')
    res = check("--config", str(path), "--json")
    assert json.loads(res.stdout)["effective"]["policy"] == {"clone_suspected": "refer_desk", "not_insured": "admit"}
    assert "warning: policy.clone_suspected: 'refer_desk' is more lenient than the default 'refuse'" in res.stderr
    assert "warning: policy.not_insured: 'admit' is more lenient than the default" in res.stderr


def test_config_check_refuses_a_usb_sensor_when_the_matcher_does_not_load(tmp_path: Path) -> None:
    """run cannot open fprint:// without the host matcher; config check must say so, naming finger.url."""
    path = tmp_path / "agent.toml"
    path.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "g"\nstate_dir = "{tmp_path}"\n'
                    '[finger]\nenabled = true\nurl = "fprint://"\n')  # fmt: skip
    assert check("--config", str(path)).returncode == 0
    env = {**os.environ, "GATE_AGENT_NBIS_LIB": str(tmp_path / "no-such-library.so")}
    res = subprocess.run([sys.executable, "-m", "agent", "config", "check", "--config", str(path)],
                         capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert res.returncode == 2 and "finger.url: fprint:// needs the host fingerprint matcher" in res.stderr
