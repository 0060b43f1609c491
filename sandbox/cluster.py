"""A three-node Restate cluster on loopback, from the pinned npm binary, instead of one server.

Each node has its own ports and data directory and runs every role (metadata server, log
server, worker, admin, ingress); data is replicated to two nodes, so the cluster survives the
loss of one. The stack's `ingress` and `admin` URLs point at loopback proxies over all nodes,
as a Kubernetes Service would. `restatectl` (pinned in package.json) reads the cluster's own
tables: partitions, their leaders, node liveness.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

from sandbox.stack import (
    RESTATE_SERVER,
    ROOT,
    Stack,
    StackError,
    _http_ok,
    free_port,
    native_server,
    wait_for,
)
from sandbox.tcp_proxy import TcpProxy

RESTATECTL = ROOT / "node_modules" / ".bin" / "restatectl"
CLUSTER_NAME = "slack-agent-test"


@dataclass(frozen=True)
class Node:
    name: str
    node_port: int
    ingress_port: int
    admin_port: int

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.node_port}/"

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


@dataclass
class ClusterStack(Stack):
    """The product on a replicated Restate cluster; `restate-<name>` are the node processes."""

    size: int = 3
    replication: int = 2
    partitions: int = 2
    nodes: dict[str, Node] = field(default_factory=dict)
    proxies: list[TcpProxy] = field(default_factory=list)

    def start_restate(self, extra_env: dict[str, str] | None = None) -> None:
        if extra_env:
            raise StackError("a cluster's nodes take no extra environment")
        if not RESTATE_SERVER.exists() or not RESTATECTL.exists():
            raise StackError("restate-server or restatectl is missing: run `make install`")
        for i in range(1, self.size + 1):
            name = f"n{i}"
            self.nodes[name] = Node(name, free_port(), free_port(), free_port())
        for name in self.nodes:
            self.start_node(name)
        ingress = self._proxy("ingress", lambda n: n.ingress_port)
        admin = self._proxy("admin", lambda n: n.admin_port)
        self.urls.update(ingress=ingress.url, admin=admin.url)
        wait_for(self.healthy, 90, "every Restate node to be alive with partition leaders")
        wait_for(self.settled, 60, "the partitions' leadership to settle")

    def _proxy(self, name: str, port: Any) -> TcpProxy:
        proxy = TcpProxy(lambda: [("127.0.0.1", port(n)) for n in self.nodes.values()], name)
        self.proxies.append(proxy.start())
        return proxy

    def _node_env(self, node: Node) -> dict[str, str]:
        first = next(iter(self.nodes))
        metadata = json.dumps([n.address for n in self.nodes.values()])
        return {
            "RESTATE_DISABLE_TELEMETRY": "true",
            "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE": "96MB",
            "RESTATE_LISTEN_MODE": "tcp",
            "RESTATE_NODE_NAME": node.name,
            "RESTATE_CLUSTER_NAME": CLUSTER_NAME,
            "RESTATE_DEFAULT_REPLICATION": str(self.replication),
            "RESTATE_DEFAULT_NUM_PARTITIONS": str(self.partitions),
            # Exactly one node may provision the cluster; the others join it.
            "RESTATE_AUTO_PROVISION": "true" if node.name == first else "false",
            "RESTATE_METADATA_CLIENT__ADDRESSES": metadata,
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node.node_port}",
            "RESTATE_ADVERTISED_ADDRESS": node.address,
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{node.ingress_port}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{node.admin_port}",
            "RESTATE_ADMIN__QUERY_ENGINE__MEMORY_SIZE": "64MB",
            "RESTATE_LOG_FORMAT": "compact",
            "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
            "NO_COLOR": "1",
        }

    def start_node(self, name: str) -> None:
        """Start (or restart, on the same data directory) one node."""
        node = self.nodes[name]
        argv = [str(native_server()), "--no-logo", "--base-dir", str(self.workdir / name)]
        self._spawn(f"restate-{name}", argv, self._node_env(node))

    def kill_node(self, name: str) -> None:
        """SIGKILL the node, as a machine failure would."""
        self.procs[f"restate-{name}"].kill()

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if self.procs[f"restate-{n.name}"].alive()]

    def restatectl_sql(self, query: str) -> list[dict[str, Any]]:
        """Query the cluster's own tables (nodes, partitions, partition_state) on a live node."""
        addresses = ",".join(n.address for n in self.live_nodes())
        out = subprocess.run(  # noqa: S603 (argv built here, no shell)
            [str(RESTATECTL), "--address", addresses, "sql", "--json", query],
            capture_output=True,
            timeout=30,
            check=True,
            cwd=ROOT,
            env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        ).stdout
        rows = json.loads(out.decode().strip() or "[]")
        return list(rows)

    def node_names(self) -> dict[str, str]:
        """Cluster node id (N1, ...) to our node name; ids follow join order, not names."""
        rows = self.restatectl_sql("SELECT plain_node_id, name FROM nodes")
        return {str(r["plain_node_id"]): str(r["name"]) for r in rows}

    def leader_of(self, partition_key: int) -> tuple[int, str]:
        """The partition holding `partition_key` and the name of the node leading it."""
        rows = self.restatectl_sql(
            "SELECT partition_id, start_key, end_key, leader_plain_node_id FROM partitions"
        )
        ids = self.node_names()
        for row in rows:
            if int(row["start_key"]) <= partition_key <= int(row["end_key"]):
                return int(row["partition_id"]), ids[str(row["leader_plain_node_id"])]
        raise StackError(f"no partition holds key {partition_key}")

    def healthy(self) -> bool:
        """Every node alive and serving, every partition led by a node that is alive."""
        for node in self.nodes.values():
            if not self.procs[f"restate-{node.name}"].alive():
                raise StackError(f"restate node {node.name} exited; see {self.workdir}")
            serving = _http_ok(node.admin_url + "/health")
            if not (serving and _http_ok(node.ingress_url + "/restate/health")):
                return False
        try:
            nodes = self.restatectl_sql("SELECT plain_node_id, state FROM nodes")
            leaders = self.restatectl_sql(
                "SELECT partition_id, plain_node_id FROM partition_state "
                "WHERE effective_mode = 'Leader' AND replay_status = 'active'"
            )
        except (subprocess.SubprocessError, ValueError):
            return False
        alive = {r["plain_node_id"] for r in nodes if r["state"] == "alive"}
        led = {r["partition_id"] for r in leaders if r["plain_node_id"] in alive}
        return len(alive) == self.size and len(led) == self.partitions

    def settled(self) -> bool:
        """Every partition's replica set made of live nodes, all of them active, led by the
        leader the partition table names: leadership will not move again on its own."""
        live = {n.name for n in self.live_nodes()}
        try:
            alive = {pid for pid, name in self.node_names().items() if name in live}
            parts = self.restatectl_sql(
                "SELECT partition_id, leader_plain_node_id, current_replica_set FROM partitions"
            )
            states = self.restatectl_sql(
                "SELECT partition_id, plain_node_id, effective_mode, replay_status "
                "FROM partition_state"
            )
        except (subprocess.SubprocessError, ValueError):
            return False
        return bool(parts) and all(_partition_settled(p, states, alive) for p in parts)

    def stop(self) -> None:
        super().stop()
        for proxy in self.proxies:
            proxy.stop()
        self.proxies.clear()


def _partition_settled(
    partition: dict[str, Any], states: list[dict[str, Any]], alive: set[str]
) -> bool:
    members = set(str(partition["current_replica_set"]).split(","))
    mine = [s for s in states if s["partition_id"] == partition["partition_id"]]
    active = {s["plain_node_id"] for s in mine if s["replay_status"] == "active"}
    leaders = {s["plain_node_id"] for s in mine if s["effective_mode"] == "Leader"}
    leader = partition["leader_plain_node_id"]
    return members <= alive and members <= active and leaders == {leader} and leader in members
