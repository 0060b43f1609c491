"""With the snapshot settings the deployments ship, a three-node Restate cluster trims its log.

The pinned restate-server runs three nodes on loopback (replication 2, one partition) with the
shipped snapshot settings and, for the destination the operator names, a bucket on a local S3
(moto's server: Restate writes snapshots to object stores only). Only Restate's trim delay is
set to zero here (shipped: Restate's default of ten minutes, which gives followers time to catch
up before the trim; it changes when, not whether). Calls to a tiny service fill the partition's
log past the interval; the cluster then snapshots the partition by itself and trims the log up
to the snapshot, read with the `restatectl` queries docs/deploy.md gives operators.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.cluster import ClusterStack, Node
from sandbox.stack import _http_ok, free_port, wait_for
from tests.deploy.tally_service import ENTRIES_PER_CALL
from tests.deploy.test_operations_config import DESTINATION, INTERVAL, shipped_snapshot_settings

# The queries docs/deploy.md gives operators ("Snapshots and log trimming").
PARTITION_LSNS = (
    "SELECT partition_id, plain_node_id, applied_log_lsn, durable_log_lsn, archived_log_lsn "
    "FROM partition_state"
)
TRIM_POINTS = "SELECT log_id, plain_node_id, trim_point FROM loglet_workers"
# Calls go out in batches between progress checks, spread over keys (virtual objects).
CALLS_PER_BATCH = 50
BUCKET, PREFIX = "restate-snapshots", "slack-agent"

pytest.importorskip("moto.server", reason="moto[server] (a local S3) is not installed")
# A real three-node cluster: left out by `make unit`, and slower than most.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@dataclass
class SnapshotCluster(ClusterStack):
    """A ClusterStack whose nodes also get `node_env` (the settings under test)."""

    node_env: dict[str, str] = field(default_factory=dict)

    def _node_env(self, node: Node) -> dict[str, str]:
        return {**super()._node_env(node), **self.node_env}

    def start_s3(self) -> str:
        """A local S3 (moto) with the snapshot bucket; its URL."""
        port = free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        self._spawn("s3", argv, {})
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _http_ok(url + "/"), 60, "the local S3 to serve")
        httpx.put(f"{url}/{BUCKET}", timeout=30).raise_for_status()
        return url

    def start_tally(self) -> None:
        """Serve the tally service and register it with the cluster."""
        ready = self.workdir / "tally.ready"
        self._spawn(
            "tally",
            [sys.executable, "-m", "tests.deploy.tally_service"],
            {"READY_FILE": str(ready)},
        )
        port = self._ready("tally", ready)["port"]
        response = httpx.post(
            self.urls["admin"] + "/deployments",
            json={"uri": f"http://127.0.0.1:{port}", "force": True},
            timeout=30,
        )
        response.raise_for_status()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotCluster]:
    stack = SnapshotCluster(workdir=Path(tmp_path_factory.mktemp("trimming")), partitions=1)
    try:
        s3 = stack.start_s3()
        stack.node_env = {
            **shipped_snapshot_settings(),
            DESTINATION: f"s3://{BUCKET}/{PREFIX}",
            "RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL": s3,
            "RESTATE_WORKER__SNAPSHOTS__AWS_ALLOW_HTTP": "true",
            "RESTATE_WORKER__SNAPSHOTS__AWS_REGION": "us-east-1",
            "RESTATE_WORKER__SNAPSHOTS__AWS_ACCESS_KEY_ID": "test",
            "RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY": "test",
            "RESTATE_WORKER__TRIM_DELAY_INTERVAL": "0s",
        }
        stack.urls["s3"] = s3
        stack.start_restate()
        stack.start_tally()
        yield stack
    finally:
        stack.stop()


def _rows(cluster: SnapshotCluster, query: str) -> list[dict[str, Any]]:
    """The query's rows; none while the cluster cannot answer (it is busy, not broken)."""
    try:
        return cluster.restatectl_sql(query)
    except (subprocess.SubprocessError, ValueError):
        return []


def highest(cluster: SnapshotCluster, column: str) -> int:
    """The highest value of a partition_state column over the partition's replicas."""
    return max((int(r.get(column) or 0) for r in _rows(cluster, PARTITION_LSNS)), default=0)


def fill_the_log(cluster: SnapshotCluster, records: int) -> int:
    """Call the tally until the partition has applied `records` log records; the calls made."""
    calls, limit = 0, 4 * records // ENTRIES_PER_CALL + CALLS_PER_BATCH
    with httpx.Client(base_url=cluster.urls["ingress"], timeout=30) as client:
        while highest(cluster, "applied_log_lsn") < records:
            assert calls < limit, f"{calls} calls did not write {records} log records"
            for i in range(CALLS_PER_BATCH):
                client.post(f"/Tally/key-{i}/add/send", json=1).raise_for_status()
            calls += CALLS_PER_BATCH
    return calls


def trimmed_up_to(cluster: SnapshotCluster) -> int | None:
    """The lowest trim point over the log's replicas, once every replica has trimmed."""
    points = [int(r.get("trim_point") or 0) for r in _rows(cluster, TRIM_POINTS)]
    return min(points) if points and min(points) > 0 else None


def snapshot_keys(cluster: SnapshotCluster) -> list[str]:
    """The keys under the snapshot prefix in the bucket (S3 ListObjectsV2)."""
    listing = httpx.get(
        f"{cluster.urls['s3']}/{BUCKET}",
        params={"list-type": "2", "prefix": f"{PREFIX}/"},
        timeout=30,
    )
    listing.raise_for_status()
    return re.findall(r"<Key>([^<]+)</Key>", listing.text)


def test_the_shipped_snapshot_settings_let_the_cluster_trim_its_log(
    cluster: SnapshotCluster,
) -> None:
    interval = int(shipped_snapshot_settings()[INTERVAL])
    assert highest(cluster, "archived_log_lsn") == 0
    assert trimmed_up_to(cluster) is None

    calls = fill_the_log(cluster, interval + interval // 5)

    archived = wait_for(
        lambda: highest(cluster, "archived_log_lsn"),
        120,
        "an automatic snapshot of the partition",
        interval=1,
    )
    assert archived >= interval
    assert f"{PREFIX}/0/latest.json" in snapshot_keys(cluster)
    trim_point = wait_for(lambda: trimmed_up_to(cluster), 120, "the log to be trimmed", 1)
    assert 0 < trim_point <= archived
    # Nothing was lost with the trimmed records: the state counts every call.
    wait_for(lambda: counted(cluster) == calls, 60, "every call to be applied", interval=0.5)


def counted(cluster: SnapshotCluster) -> int | None:
    """The calls the tally has counted over its keys; None while the cluster cannot answer."""
    try:
        with httpx.Client(base_url=cluster.urls["ingress"], timeout=30) as client:
            keys = range(CALLS_PER_BATCH)
            return sum(int(client.post(f"/Tally/key-{i}/total").json()) for i in keys)
    except (httpx.HTTPError, ValueError):
        return None


def restart_all_nodes(cluster: SnapshotCluster, before_start: Callable[[], None]) -> None:
    """Stop every node (as `docker compose stop` would), run `before_start`, start them all."""
    for name in cluster.nodes:
        cluster.procs[f"restate-{name}"].stop()
    before_start()
    for name in cluster.nodes:
        cluster.start_node(name)
    wait_for(cluster.healthy, 120, "the restarted nodes to be healthy", interval=0.5)


def test_a_cold_copy_of_every_node_restores_the_cluster_to_that_point(
    cluster: SnapshotCluster,
) -> None:
    """docs/deploy.md, "Backups": copies of all nodes, taken stopped, restored together."""
    backup = cluster.workdir / "backup"

    def copy_nodes() -> None:
        for name in cluster.nodes:
            shutil.copytree(cluster.workdir / name, backup / name, symlinks=True)

    restart_all_nodes(cluster, copy_nodes)
    answers = wait_for(
        lambda: [c for c in [counted(cluster)] if c is not None], 60, "the tally to answer"
    )
    at_backup = answers[0]
    with httpx.Client(base_url=cluster.urls["ingress"], timeout=30) as client:
        client.post("/Tally/key-0/add/send", json=1).raise_for_status()
    wait_for(lambda: counted(cluster) == at_backup + 1, 60, "the call after the backup")

    def restore_nodes() -> None:
        for name in cluster.nodes:
            shutil.rmtree(cluster.workdir / name)
            shutil.copytree(backup / name, cluster.workdir / name, symlinks=True)

    restart_all_nodes(cluster, restore_nodes)
    wait_for(lambda: counted(cluster) == at_backup, 60, "the state as it was at the backup")
