"""A Ray cluster of several nodes on this machine (``ray.cluster_utils.Cluster``, as
Ray's own tests make them): a head and worker nodes, each a raylet with its own CPUs and
object store, started and stopped by the tests; and a deadline for a test's body."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import pytest

#: each node's object store: Ray's smallest useful size (the default is 30% of memory)
OBJECT_STORE = 80 * 2**20


@contextlib.contextmanager
def local_cluster(
    workers: int = 2, cpus: int = 1, head_cpus: int = 1, runtime_env: dict | None = None
) -> Iterator[tuple[Any, list[Any]]]:
    """(Cluster, worker nodes) with this process connected as the driver; every process
    of every node is stopped on the way out."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    head = {"num_cpus": head_cpus, "object_store_memory": OBJECT_STORE, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        nodes = [
            cluster.add_node(num_cpus=cpus, object_store_memory=OBJECT_STORE)
            for _ in range(workers)
        ]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, runtime_env=runtime_env)
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


class Overtime(Exception):
    """A test body ran past its deadline."""


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise Overtime in the main thread after ``seconds`` (SIGALRM): a hung cluster
    fails the test instead of hanging the suite."""

    def expire(signum: int, frame: Any) -> None:
        raise Overtime(f"{what} took more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
