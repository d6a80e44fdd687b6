"""A real mosquitto broker on a free loopback port with a throw-away configuration.

Never the system broker or its configuration: every instance writes its own
``mosquitto.conf`` into its work directory, listens on 127.0.0.1 only, and is
stopped by PID.  ``extra_conf`` appends lines (TLS listener, ACL file, ...).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sim.infra.net import free_port, tcp_accepts, wait_for

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """mosquitto is missing or did not come up."""


@dataclass
class Mosquitto:
    workdir: Path
    port: int
    extra_conf: str = ""
    anonymous: bool = True
    persistence: bool = True
    tls: bool = False  # the listener speaks TLS (``extra_conf`` names its files)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1" if "listener" not in self.extra_conf else "",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            # as root, mosquitto would switch to its own user, who cannot read a test's private files
            "user root" if os.geteuid() == 0 else "",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            # small QoS 1 packets and their PUBACKs would wait for Nagle's algorithm (up to 40 ms each way)
            "set_tcp_nodelay true",
            self.extra_conf,
        ]
        self.conf_path.write_text("\n".join(line for line in lines if line) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if shutil.which("mosquitto") is None:
            raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_conf()
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "mosquitto.stderr", "ab"),
            start_new_session=True,
        )
        proc = self.process

        def up() -> bool:
            if proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with status {proc.returncode}; see {self.workdir}")
            return tcp_accepts(self.port)

        wait_for(up, timeout, f"mosquitto on port {self.port}")
        log.info("mosquitto pid %d on 127.0.0.1:%d", proc.pid, self.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Clean stop (SIGTERM: the broker saves its persistence file)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash the broker (SIGKILL): whatever it had not saved is lost."""
        self._signal(signal.SIGKILL, 5.0)

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> Mosquitto:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


FACILITY_CONF = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "mosquitto" / "facility.conf"


def facility_conf(pki: Path, port: int, acl: Path | None = None) -> str:
    """The shipped facility broker configuration (TLS, client certificates, ACL) with a ``python -m sim pki``
    directory's files and a loopback listener on ``port``; persistence and anonymity are left to :class:`Mosquitto`."""
    text = FACILITY_CONF.read_text().replace("listener 8883", f"listener {port} 127.0.0.1")
    for name in ("broker.crt", "broker.key", "ca.crt"):
        text = text.replace(f"/etc/mosquitto/certs/{name}", str(Path(pki) / name))
    text = text.replace("/etc/mosquitto/gate-acl", str(acl or Path(pki) / "acl"))
    return "\n".join(line for line in text.splitlines() if not line.startswith(("persistence", "allow_anonymous")))


def start_tls_mosquitto(workdir: Path, pki: Path, port: int | None = None) -> Mosquitto:
    """A broker configured as docs/deploy/mosquitto/facility.conf: TLS, a client certificate required, the ACL."""
    port = port or free_port()
    broker = Mosquitto(Path(workdir), port, extra_conf=facility_conf(pki, port), anonymous=False, tls=True)
    return broker.start()


def start_mosquitto(workdir: Path, port: int | None = None, extra_conf: str = "", anonymous: bool = True) -> Mosquitto:
    return Mosquitto(Path(workdir), port or free_port(), extra_conf=extra_conf, anonymous=anonymous).start()
