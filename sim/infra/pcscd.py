"""A real ``pcscd`` with virtual readers from the vpcd driver (``vsmartcard-vpcd``).

Two facts shape this module:

* pcsc-lite 1.9's daemon always creates its socket at ``/run/pcscd/pcscd.comm``
  and ignores ``PCSCLITE_CSOCK_NAME``; the client library honours that variable
  (and reads it once per process).  So a *private* pcscd runs in its own mount
  namespace (``unshare -m``) with a private directory bind-mounted over
  ``/run/pcscd``; clients outside reach it by setting ``PCSCLITE_CSOCK_NAME`` to
  the socket in that directory.  Several terminals, test sessions or developers
  can then run side by side without touching the system daemon.
* The vpcd driver keeps its slots in a static array indexed by slot number, so
  one pcscd serves one vpcd configuration entry, i.e. two virtual readers
  (``<name> 00 00`` on port P and ``<name> 00 01`` on port P+1).  A clinic with
  more terminals runs one private pcscd per terminal.

The vpcd ports listen on all interfaces (the driver's choice); the simulator
only ever connects to them through 127.0.0.1.

Running a private pcscd needs root (for the mount namespace).  Without root,
:func:`start_pcscd` falls back to the system daemon and its configured vpcd
readers, starting it if it is not running, and says so in its log.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim.infra.net import free_port, tcp_listening, wait_for

log = logging.getLogger(__name__)

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
SYSTEM_CONF_DIR = Path("/etc/reader.conf.d")
DEFAULT_READER_NAME = "Gate Sim Reader"


class PcscdError(RuntimeError):
    """pcscd or the vpcd driver is missing or did not come up."""


@dataclass
class Pcscd:
    """A running pcscd and the vpcd readers it offers."""

    socket_path: Path
    reader_names: list[str]
    vpcd_ports: list[int]
    workdir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def private(self) -> bool:
        """True for a daemon in its own mount namespace (ours alone)."""
        return self.workdir is not None

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients (pyscard, ``gate-agent``) of this daemon."""
        return {"PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the daemon if we started it (by its PID), wait for it to exit."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again with the same socket, ports and reader names."""
        if self.workdir is None:
            raise PcscdError("cannot restart the system pcscd from here")
        self.stop()
        fresh = _start_private(self.workdir, self.reader_names[0].rsplit(" 00 ", 1)[0], self.vpcd_ports[0], timeout)
        self.process = fresh.process

    def __enter__(self) -> Pcscd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_installed() -> None:
    if shutil.which("pcscd") is None:
        raise PcscdError("pcscd is not installed (Debian: apt-get install pcscd)")
    if not VPCD_DRIVER.exists():
        raise PcscdError(f"the vpcd driver is not installed ({VPCD_DRIVER}; Debian: apt-get install vsmartcard-vpcd)")


def can_run_private() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def start_pcscd(
    workdir: Path,
    reader_name: str = DEFAULT_READER_NAME,
    port: int | None = None,
    timeout: float = 10.0,
) -> Pcscd:
    """Start a private pcscd with two vpcd readers, or fall back to the system daemon."""
    check_installed()
    if can_run_private() and os.environ.get("GATE_SIM_PCSCD") != "system":
        return _start_private(Path(workdir), reader_name, port, timeout)
    log.warning("not root: using the system pcscd and its vpcd readers")
    return system_pcscd(timeout)


def _start_private(workdir: Path, reader_name: str, port: int | None, timeout: float) -> Pcscd:
    workdir.mkdir(parents=True, exist_ok=True)
    rundir = workdir / "run"
    confdir = workdir / "reader.conf.d"
    rundir.mkdir(exist_ok=True)
    confdir.mkdir(exist_ok=True)
    sock = rundir / "pcscd.comm"
    if sock.exists():
        sock.unlink()
    if port is None:
        port = free_port(2)
    (confdir / "vpcd").write_text(
        f'FRIENDLYNAME "{reader_name}"\n'
        f"DEVICENAME   /dev/null:0x{port:04X}\n"
        f"LIBPATH      {VPCD_DRIVER}\n"
        f"CHANNELID    0x{port:04X}\n"
    )
    SYSTEM_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$1" /run/pcscd && exec pcscd --foreground --config "$2"'
    logfile = open(workdir / "pcscd.log", "ab")
    try:
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "pcscd", str(rundir), str(confdir)],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        logfile.close()
    pcscd = Pcscd(
        socket_path=sock,
        reader_names=[f"{reader_name} 00 00", f"{reader_name} 00 01"],
        vpcd_ports=[port, port + 1],
        workdir=workdir,
        process=proc,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise PcscdError(f"pcscd exited with status {proc.returncode}; see {workdir / 'pcscd.log'}")
        return sock.exists() and tcp_listening(port) and tcp_listening(port + 1)

    try:
        wait_for(ready, timeout, "pcscd and its vpcd ports")
    except BaseException:
        pcscd.stop()
        raise
    log.info("private pcscd pid %d, socket %s, vpcd ports %d/%d", proc.pid, sock, port, port + 1)
    return pcscd


_ENTRY = re.compile(
    r"FRIENDLYNAME\s+\"?([^\"\n]+)\"?\s*\n\s*DEVICENAME\s+\S*:(0x[0-9A-Fa-f]+|\d+)\s*\n\s*LIBPATH\s+(\S+)"
)


def system_vpcd_readers(confdir: Path = SYSTEM_CONF_DIR) -> tuple[list[str], list[int]]:
    """Reader names and ports of the vpcd entry the system pcscd loads (the last one wins)."""
    names: list[str] = []
    ports: list[int] = []
    for conf in sorted(confdir.glob("*")) if confdir.is_dir() else []:
        for match in _ENTRY.finditer(conf.read_text(errors="replace")):
            if "ifdvpcd" in match.group(3):
                port = int(match.group(2), 0)
                names = [f"{match.group(1).strip()} 00 00", f"{match.group(1).strip()} 00 01"]
                ports = [port, port + 1]
    if not names:
        raise PcscdError(f"no vpcd reader configured in {confdir} (install vsmartcard-vpcd)")
    return names, ports


def system_pcscd(timeout: float = 10.0) -> Pcscd:
    """The system daemon; started (and then owned by us) if it is not running."""
    names, ports = system_vpcd_readers()
    proc = None
    if not SYSTEM_SOCKET.exists():
        if os.geteuid() != 0:
            raise PcscdError("pcscd is not running and only root can start it")
        proc = subprocess.Popen(
            ["pcscd", "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: SYSTEM_SOCKET.exists() and tcp_listening(ports[0]), timeout, "system pcscd")
    elif not tcp_listening(ports[0]):
        time.sleep(0.5)
    return Pcscd(socket_path=SYSTEM_SOCKET, reader_names=names, vpcd_ports=ports, process=proc)
