"""`overnet serve` on a cluster of three raylets on this machine (a head with no CPU for
replicas, two worker nodes with 1 CPU each): one replica per worker node; one node is
removed while requests go on, and the replica left answers them, with a bounded number
of failed requests."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.scaleout.cluster import deadline, local_cluster
from tests.serve.conftest import encoded, free_port, noise

pytest.importorskip("ray.serve")
pytest.importorskip("openvino")

pytestmark = pytest.mark.slow
#: the whole test, at most (a hung cluster fails instead of hanging the suite)
TEST_LIMIT_S = 300
#: requests after the loss, and the seconds they may take together
AFTER_REQUESTS, AFTER_S = 12, 120
#: requests allowed to fail around the loss (those in flight on the lost replica)
ALLOWED_FAILURES = 3


def replica_nodes(ray) -> dict[str, str]:
    """Node id of each live UpscaleService replica actor, by actor id (Ray's actor table:
    the dashboard, and with it Ray's state API, is off in these clusters)."""
    from ray._private import state

    table = state.state.actor_table(None)
    return {
        actor: entry["Address"]["NodeID"]
        for actor, entry in table.items()
        if "UpscaleService" in entry["ActorClassName"] and entry["State"] == "ALIVE"
    }


def post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url + "/v1/upscale", data=body, headers={"Content-Type": "image/png"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return 0, str(error).encode()


def test_a_lost_node_leaves_the_other_replica_answering(x2_onnx):
    import ray
    from ray import serve

    from overnet.serve.app import run_service
    from overnet.serve.config import ServiceConfig

    body = encoded(noise(32, 24, seed=4))
    port = free_port()
    with (
        deadline(TEST_LIMIT_S, "serve with a node lost"),
        local_cluster(workers=2, cpus=1, head_cpus=0) as (cluster, workers),
    ):
        # one proxy, on the head: every node of this cluster shares 127.0.0.1
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        config = ServiceConfig(model=str(x2_onnx), replicas=2, num_cpus=1, threads=1)
        try:
            url = run_service(config, "127.0.0.1", port)
            nodes = replica_nodes(ray)
            by_node = {node.node_id: node for node in workers}
            assert len(nodes) == 2 and set(nodes.values()) == set(by_node), nodes
            before = [post(url, body) for _ in range(4)]
            assert [status for status, _ in before] == [200] * 4, before
            expected = before[0][1]  # every replica gives the same bytes

            lost = next(iter(nodes.values()))
            cluster.remove_node(by_node[lost])
            statuses: list[int] = []
            begin = time.monotonic()
            while len(statuses) < AFTER_REQUESTS and time.monotonic() - begin < AFTER_S:
                status, answer = post(url, body)
                statuses.append(status)
                if status == 200:
                    assert answer == expected
            failed = [s for s in statuses if s != 200]
            print(f"statuses after the node loss: {statuses}")  # shown with -s
            assert len(statuses) == AFTER_REQUESTS, f"only {len(statuses)} answers in {AFTER_S} s"
            assert len(failed) <= ALLOWED_FAILURES, statuses
            assert statuses[-5:] == [200] * 5, statuses  # the replica left took the load
            left = replica_nodes(ray)
            assert lost not in left.values() and set(left.values()) <= set(by_node), left
        finally:
            serve.shutdown()  # the service, its proxy and controller
