"""A RabbitMQ cluster of three nodes (Debian's ``rabbitmq-server``, MQTT plugin) on free loopback ports.

Never the system RabbitMQ: each node is named ``rtN@localhost`` (the system one is
``rabbit@localhost``), listens on its own free loopback ports (AMQP, MQTT, Erlang
distribution), keeps its data and logs in the work directory, shares only a fresh
Erlang cookie with its siblings, and reads no file of ``/etc/rabbitmq``
(``RABBITMQ_CONF_ENV_FILE``, ``RABBITMQ_CONFIG_FILE``, ``RABBITMQ_ADVANCED_CONFIG_FILE``,
``RABBITMQ_ENABLED_PLUGINS_FILE`` all point into the work directory).

Node discovery (epmd) is private too: the cluster starts its own ``epmd`` on a free
loopback port (``ERL_EPMD_PORT``) as a child process, so nothing registers with the
system's epmd on port 4369, and stopping the cluster stops that epmd by its PID.

Every node runs the MQTT plugin with ``mqtt.durable_queue_type = quorum``: a client's
persistent session (``clean_session`` false) lives in a quorum queue replicated on
the three nodes, so it survives the loss of one.  The cluster forms by
``classic_config`` peer discovery: the first node starts alone, then the others join
it.  A node is stopped with SIGTERM (a clean shutdown), or killed with SIGKILL (its
whole process group: the shell wrapper, the Erlang VM and its port programs), and
can be started again with its data.  Every wait is bounded.

RabbitMQ 3.10 speaks MQTT 3.1.1 only: clients must use the agent's 3.1.1 mode.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim.infra.net import free_port, tcp_accepts, wait_for

log = logging.getLogger(__name__)

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # the script itself, not /usr/sbin's su wrapper
EPMD_CANDIDATES = [*sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd")), Path("/usr/bin/epmd")]


class RabbitError(RuntimeError):
    """rabbitmq-server is missing or a node did not come up in time."""


@dataclass
class RabbitNode:
    index: int
    workdir: Path
    amqp_port: int
    mqtt_port: int
    dist_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"rt{self.index}@localhost"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def mqtt_ready(self) -> bool:
        """The MQTT listener accepts connections (it opens only after the node has booted its plugins)."""
        return tcp_accepts(self.mqtt_port)


@dataclass
class RabbitCluster:
    workdir: Path
    size: int = 3
    nodes: list[RabbitNode] = field(default_factory=list)
    epmd_port: int = 0
    epmd: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    start_seconds: float = 0.0  # how long the last start() took, first node to all MQTT listeners up

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        if not self.nodes:
            self.nodes = [
                RabbitNode(i + 1, self.workdir / f"rt{i + 1}", free_port(), free_port(), free_port())
                for i in range(self.size)
            ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    # --- configuration --------------------------------------------------------------------------------

    def _write_files(self) -> None:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20))
            cookie.chmod(0o400)
        (self.workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (self.workdir / "rabbitmq-env.conf").write_text("# this cluster's settings come from the environment\n")
        peers = "\n".join(
            f"cluster_formation.classic_config.nodes.{n.index} = {n.name}" for n in self.nodes
        )  # fmt: skip
        for node in self.nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            (node.workdir / "rabbitmq.conf").write_text(
                f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n"
                f"mqtt.listeners.tcp.default = 127.0.0.1:{node.mqtt_port}\n"
                "mqtt.allow_anonymous = true\n"
                "mqtt.durable_queue_type = quorum\n"
                "cluster_formation.peer_discovery_backend = classic_config\n"
                f"{peers}\n"
                "log.console = false\n"
                "log.file.level = warning\n"
                # the disk alarm must not stop publishers on a small test machine
                "disk_free_limit.absolute = 50MB\n"
                "vm_memory_high_watermark.relative = 0.6\n"
            )

    def _env(self, node: RabbitNode) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_", "NOTIFY_SOCKET"))}
        env.update(
            HOME=str(self.workdir / "home"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=node.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(node.amqp_port),
            RABBITMQ_DIST_PORT=str(node.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(node.workdir / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(node.workdir / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(node.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(node.workdir / "log"),
            RABBITMQ_PID_FILE=str(node.workdir / "pid"),
            RABBITMQ_SERVER_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    # --- life -----------------------------------------------------------------------------------------

    def _start_epmd(self) -> None:
        if self.epmd is not None and self.epmd.poll() is None:
            return
        binary = next((p for p in EPMD_CANDIDATES if p.exists()), None)
        if binary is None:
            raise RabbitError("epmd is missing (Debian: apt-get install rabbitmq-server)")
        self.epmd_port = self.epmd_port or free_port()
        env = dict(os.environ, ERL_EPMD_ADDRESS="127.0.0.1")
        self.epmd = subprocess.Popen([str(binary), "-port", str(self.epmd_port)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        epmd = self.epmd

        def up() -> bool:
            if epmd.poll() is not None:
                raise RabbitError(f"epmd exited with status {epmd.returncode}")
            return tcp_accepts(self.epmd_port)

        wait_for(up, 10, f"epmd on port {self.epmd_port}")

    def start_node(self, node: RabbitNode, timeout: float = 90.0) -> None:
        """Start (or restart, with its data) one node and wait until its MQTT listener is up."""
        self.start_nodes([node], timeout)

    def start_nodes(self, nodes: list[RabbitNode], timeout: float = 90.0) -> None:
        for node in nodes:
            if node.running:
                continue
            node.workdir.mkdir(parents=True, exist_ok=True)
            node.process = subprocess.Popen(
                [str(SERVER)],
                env=self._env(node),
                cwd=node.workdir,
                stdin=subprocess.DEVNULL,
                stdout=open(node.workdir / "stdout.log", "ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches the VM behind the shell
            )
        deadline = time.monotonic() + timeout
        for node in nodes:
            proc = node.process
            assert proc is not None

            def up(node: RabbitNode = node, proc: subprocess.Popen[bytes] = proc) -> bool:
                if proc.poll() is not None:
                    raise RabbitError(f"{node.name} exited with status {proc.returncode}; see {node.workdir}")
                return node.mqtt_ready()

            wait_for(up, max(1.0, deadline - time.monotonic()), f"{node.name} MQTT on port {node.mqtt_port}", 0.2)
            log.info("%s up: MQTT 127.0.0.1:%d", node.name, node.mqtt_port)

    def start(self, timeout: float = 120.0) -> RabbitCluster:
        """Start the cluster: the first node alone, then the others (they join it); bounded by ``timeout``."""
        if not SERVER.exists() or shutil.which("erl") is None:
            raise RabbitError("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
        began = time.monotonic()
        self._write_files()
        self._start_epmd()
        try:
            self.start_nodes(self.nodes[:1], timeout)
            self.start_nodes(self.nodes[1:], max(10.0, timeout - (time.monotonic() - began)))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop_node(self, node: RabbitNode, timeout: float = 30.0) -> None:
        """A clean stop (SIGTERM: the wrapper asks the node to shut down)."""
        self._signal(node, signal.SIGTERM, timeout)

    def kill_node(self, node: RabbitNode) -> None:
        """A crash: SIGKILL to the node's process group, so the Erlang VM dies without a word."""
        self._signal(node, signal.SIGKILL, 10.0)

    def _signal(self, node: RabbitNode, sig: int, timeout: float) -> None:
        """Signal the node's process group, wait (bounded) until no process of the group is left, else SIGKILL it."""
        proc = node.process
        if proc is None:
            return
        group = proc.pid  # the group is the node's own (start_new_session)
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            proc.poll()
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(group):
            proc.poll()
            time.sleep(0.1)
        if _group_alive(group):
            log.warning("%s did not stop within %.0f s: SIGKILL", node.name, timeout)
            os.killpg(group, signal.SIGKILL)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Stop every node, then the private epmd (by PID)."""
        for node in self.nodes:
            try:
                self.stop_node(node)
            except Exception:  # a stuck node is killed; the others must still stop
                self.kill_node(node)
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            try:
                self.epmd.wait(5)
            except subprocess.TimeoutExpired:
                self.epmd.kill()
                self.epmd.wait(5)

    def __enter__(self) -> RabbitCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_cluster(workdir: Path, size: int = 3, timeout: float = 120.0) -> RabbitCluster:
    return RabbitCluster(Path(workdir), size).start(timeout)
