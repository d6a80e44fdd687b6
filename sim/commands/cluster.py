"""``python -m sim cluster``: a private RabbitMQ cluster (MQTT 3.1.1, quorum queues) in the foreground.

The cluster the tests use (:mod:`sim.infra.rabbitmq`): ``--nodes`` nodes (3 by default)
of Debian's ``rabbitmq-server`` on free loopback ports, with their own names, data,
Erlang cookie and epmd; it never touches a system RabbitMQ.  Prints the nodes' MQTT URLs
(``export GATE_SIM_BROKERS=URL,URL,URL``, the form ``sim hub --broker`` takes, or one JSON
object with ``--json``) and stops every node and the private epmd (by PID) on
SIGINT/SIGTERM.

To try failover by hand, stdin takes one command a line: ``kill N`` (SIGKILL to node N's
process group, a crash), ``stop N`` (a clean shutdown), ``start N`` (start it again, with
its data) and ``status``; each answers with one line (JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.infra.control import stop_on_signals

if TYPE_CHECKING:
    from sim.infra.rabbitmq import RabbitCluster

HELP = "run a private RabbitMQ cluster (MQTT 3.1.1) on loopback ports; stdin: kill/stop/start N, status"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument("--workdir", type=Path, help="configuration, data and logs (default: a temporary dir)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds the start may take (default 180)")
    parser.add_argument("--json", action="store_true", help="print JSON objects, one a line")


def _nodes(cluster: RabbitCluster) -> list[dict[str, Any]]:
    """Each node's number, name, MQTT URL, whether it runs and its process group (``pid``, 0 when never started)."""
    return [{"node": n.index, "name": n.name, "url": n.url, "running": n.running,
             "pid": n.process.pid if n.process is not None else 0} for n in cluster.nodes]  # fmt: skip


def control(cluster: RabbitCluster, line: str) -> dict[str, Any]:
    """Apply one stdin command to the cluster; the answer says what happened (``error`` for a bad command)."""
    words = line.split()
    if words == ["status"]:
        return {"event": "status", "nodes": _nodes(cluster)}
    if len(words) != 2 or words[0] not in ("kill", "stop", "start") or not words[1].isdigit():
        return {"event": "error", "error": f"unknown command {line.strip()!r} (kill N, stop N, start N, status)"}
    action, index = words[0], int(words[1])
    if not 1 <= index <= len(cluster.nodes):
        return {"event": "error", "error": f"no node {index} (nodes 1 to {len(cluster.nodes)})"}
    node = cluster.nodes[index - 1]
    if action == "kill":
        cluster.kill_node(node)
    elif action == "stop":
        cluster.stop_node(node)
    else:
        cluster.start_node(node)
    return {"event": action, "node": index, "url": node.url, "running": node.running}


def _say(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(info), flush=True)
    elif info["event"] == "error":
        print(f"python -m sim cluster: {info['error']}", file=sys.stderr, flush=True)
    elif info["event"] == "status":
        for n in info["nodes"]:
            print(f"node {n['node']} {n['name']} {n['url']} {'running' if n['running'] else 'down'}", flush=True)
    else:
        print(f"node {info['node']} {info['url']} {'running' if info['running'] else 'down'}", flush=True)


def run(args: argparse.Namespace) -> int:
    from sim.infra.rabbitmq import RabbitCluster, RabbitError

    if not 1 <= args.nodes <= 9:
        print("python -m sim cluster: error: --nodes must be 1 to 9", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gate-sim-cluster-"))
    stop = threading.Event()

    stop_on_signals(stop)
    cluster = RabbitCluster(workdir, args.nodes)
    try:
        cluster.start(args.timeout)
    except (RabbitError, TimeoutError) as exc:
        print(f"python -m sim cluster: error: {exc}", file=sys.stderr)
        return 3
    lock = threading.Lock()  # the stdin thread and the shutdown never act on the nodes at once

    def read_commands() -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            with lock:
                if stop.is_set():
                    return
                try:
                    answer = control(cluster, line)
                except (RabbitError, TimeoutError) as exc:
                    answer = {"event": "error", "error": str(exc)}
            _say(answer, args.json)

    try:
        urls = ",".join(cluster.urls)
        if args.json:
            info = {"event": "ready", "urls": cluster.urls, "nodes": _nodes(cluster), "log": str(workdir),
                    "seconds": round(cluster.start_seconds, 1)}  # fmt: skip
            print(json.dumps(info), flush=True)
        else:
            print(f"export GATE_SIM_BROKERS={urls}", flush=True)
        threading.Thread(target=read_commands, name="cluster-control", daemon=True).start()
        while not stop.wait(0.5):
            pass
    finally:
        with lock:
            cluster.stop()
    return 0
