"""A node failure loses nothing: the product on a three-node Restate cluster (replication 2).

The cluster runs one partition, so the node leading the session's partition is also the one
driving its running task: killing it mid-stream kills the invocation's driver, its journal's
leader and one of the log's replicas at once.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest

from sandbox.cluster import ClusterStack
from tests.conftest import product_env
from tests.integration.harness import (
    BOT_MENTION,
    CHANNEL,
    TEAM,
    Harness,
    eventually,
    open_harness,
    plan_step,
)

T = TypeVar("T")
ANSWER = "The migration now survives a lost node."
AFTER_INTERRUPT = "Retries and a timeout, as asked."


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    stack = ClusterStack(
        workdir=Path(tmp_path_factory.mktemp("cluster")),
        partitions=1,
        env=product_env(CLEANUP_WAIT_SECONDS="10"),
    )
    try:
        stack.start_restate()
        stack.start_product(chunk_delay=0.01)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def harness(cluster: ClusterStack) -> Iterator[Harness]:
    with open_harness(cluster) as harness:
        yield harness


def _through_failover(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Like `eventually`, but a refused or failed request only means "not yet"."""

    def tolerant() -> T | None:
        try:
            return check()
        except httpx.HTTPError:
            return None

    return eventually(tolerant, timeout, what)


def _slow(words: int, delay: float = 0.05) -> dict[str, Any]:
    return {"text": " ".join(f"word{i}" for i in range(words)), "chunk_delay": delay}


def _streaming(h: Harness, plan: str, chunks: int = 5) -> dict[str, Any]:
    """The answer request that follows `plan`, once it has streamed a few chunks."""
    found = eventually(
        lambda: [r for r in h.requests_mentioning(plan) if r["chunks_sent"] >= chunks],
        what=f"the answer after {plan!r} to stream",
    )
    return found[0]


def _session_partition_key(h: Harness, thread_ts: str) -> int:
    key = f"{TEAM}:{CHANNEL}:{thread_ts}".replace("'", "''")
    rows = h.sql(
        "SELECT partition_key FROM sys_invocation_status "
        f"WHERE target_service_name = 'CodingAgent' AND target_service_key = '{key}' LIMIT 1"
    )
    return int(rows[0]["partition_key"])


def _completed(h: Harness, thread_ts: str, tasks: int) -> dict[str, Any] | None:
    status = h.status(thread_ts)
    done = status["state"] == "idle" and status["tasks_started"] >= tasks
    return status if done and status["last_outcome"] == "completed" else None


def _fail_over(h: Harness, cluster: ClusterStack, thread_ts: str) -> tuple[str, float]:
    """SIGKILL the node leading the session's partition; returns its name and the kill time."""
    partition, leader = cluster.leader_of(_session_partition_key(h, thread_ts))
    killed_at = time.time()
    cluster.kill_node(leader)
    print(f"killed {leader}, leader of partition {partition}, mid-stream")
    return leader, killed_at


def _rejoined(cluster: ClusterStack, name: str) -> bool:
    try:
        rows = cluster.restatectl_sql("SELECT name, state, metadata_server_state FROM nodes")
    except subprocess.CalledProcessError:
        return False  # restatectl reached the node while it was still starting
    return any(
        r["name"] == name and r["state"] == "alive" and r["metadata_server_state"] == "member"
        for r in rows
    )


def test_killing_the_partition_leader_mid_stream_loses_nothing(
    harness: Harness, cluster: ClusterStack
) -> None:
    h = harness
    # A change of leader re-runs the step in flight: every re-run gets the same answer.
    h.script(plan_step("plan: survive"), _slow(150), *[{"text": ANSWER}] * 4)
    ts = h.post(f"{BOT_MENTION} make the migration survive a lost node")
    first = _streaming(h, "plan: survive")

    killed, killed_at = _fail_over(h, cluster, ts)

    status = _through_failover(lambda: _completed(h, ts, 1), 90, "the task to finish")
    done_at = time.time()
    rerun = next(r for r in h.requests_mentioning("plan: survive") if r["received_at"] > killed_at)
    print(
        f"node killed -> answer re-requested: {rerun['received_at'] - killed_at:.2f} s; "
        f"-> task completed (observed): {done_at - killed_at:.2f} s"
    )
    assert first["id"] != rerun["id"]
    assert status["tasks_started"] == 1
    texts = h.bot_texts(ts)
    assert len([t for t in texts if ANSWER in t]) == 1
    assert not any("Sorry" in t for t in texts)
    assert [t["kind"] for t in h.turns(ts)] == ["user", "answer"]

    # A reply after the failover still interrupts the running task. Let the cluster settle
    # first: it moves the partition once more, onto a replica set of live nodes only.
    eventually(cluster.settled, 60, "the partition's leadership to settle")
    h.http.delete(h.model + "/_model/script").raise_for_status()
    h.script(plan_step("plan: retries"), _slow(150), plan_step("plan: both"))
    h.script(*[{"text": AFTER_INTERRUPT}] * 4)
    h.post("add retries", thread_ts=ts)
    _streaming(h, "plan: retries")
    h.post("and a timeout", thread_ts=ts)
    status = _through_failover(lambda: _completed(h, ts, 3), 60, "the interrupted run to restart")
    assert status["interruptions"] == 1
    texts = h.bot_texts(ts)
    assert any("Cancelled" in t and "restarting" in t for t in texts)
    assert len([t for t in texts if AFTER_INTERRUPT in t]) == 1

    # The killed node comes back on its own data and serves the session again.
    cluster.start_node(killed)
    eventually(lambda: _rejoined(cluster, killed), 60, f"node {killed} to rejoin")
    node = cluster.nodes[killed]
    key = quote(f"{TEAM}:{CHANNEL}:{ts}", safe="")
    seen = _through_failover(
        lambda: h.http.post(f"{node.ingress_url}/CodingAgent/{key}/status").raise_for_status(),
        60,
        f"node {killed}'s ingress to answer",
    )
    assert seen.json()["tasks_started"] == 3
