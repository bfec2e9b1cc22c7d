"""Starting a service on a shared Ray cluster: its name and route must be free, the
proxy gets the body limit, and a service whose replicas cannot be placed fails after
its start timeout naming the resource the cluster lacks (instead of waiting forever).
"""

from __future__ import annotations

import time

import ray
from ray import serve

from overnet.errors import OverNetError
from overnet.serve.config import ServiceConfig

#: seconds between looks at the application's status while it starts
_POLL_S = 0.5


def _applications() -> dict:
    try:
        return dict(serve.status().applications)
    except Exception:  # no Serve instance on this cluster yet
        return {}


def serve_running() -> bool:
    """Whether Serve runs on this cluster (``serve.status`` is empty, not an error,
    before it starts)."""
    try:
        status = serve.status()
    except Exception:
        return False
    return bool(status.proxies or status.applications)


def check_free(config: ServiceConfig) -> None:
    """Refuse to replace another service: Serve would redeploy an application of the
    same name (a taken route prefix is Serve's own refusal, see ``deploy``)."""
    if config.name in _applications():
        raise OverNetError(
            f"a service named {config.name!r} already runs on this Ray cluster; give "
            "another --name (or stop that one first)"
        )


def deploy(app: object, config: ServiceConfig) -> None:
    """Hand the application to Serve without waiting for it (``wait_running`` waits,
    with a timeout); Serve's refusal (a route prefix another application holds) becomes
    one line."""
    target = serve.RunTarget(target=app, name=config.name, route_prefix=config.route_prefix)
    try:
        serve.run_many(
            [target],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
    except Exception as exc:  # Ray wraps the controller's RayServeException
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = lines[-1].split("Exception: ", 1)[-1] if lines else type(exc).__name__
        hint = "; give another --route-prefix" if "Prefix" in reason else ""
        raise OverNetError(f"Ray Serve refused the service: {reason}{hint}") from None


def start_proxy(host: str, port: int) -> None:
    """Start Serve's HTTP proxy on ``host``:``port`` unless Serve runs already (its
    proxies keep their address). The body limit in the proxy comes from the environment
    Ray started with (``proxy_limits.proxy_environment``)."""
    if not serve_running():
        serve.start(http_options={"host": host, "port": port})


def wait_running(config: ServiceConfig) -> None:
    """Wait until the application runs; OverNetError when a replica fails (its reason)
    or when it is not running within the start timeout (what it waits for)."""
    deadline = time.monotonic() + config.start_timeout_s
    while True:
        status = _applications().get(config.name)
        state = str(getattr(status, "status", ""))
        if state.endswith("RUNNING"):
            return
        if state.endswith(("DEPLOY_FAILED", "UNHEALTHY")):
            raise OverNetError(f"the replicas could not start: {failure(config.name)}")
        if time.monotonic() > deadline:
            raise OverNetError(not_started(config))
        time.sleep(_POLL_S)


def failure(name: str) -> str:
    """The last line of the failed deployment's message (its constructor's exception)."""
    status = _applications().get(name)
    messages = [d.message for d in status.deployments.values()] if status else []
    lines = [ln.strip() for m in messages for ln in (m or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no reason given by Ray Serve"


def not_started(config: ServiceConfig) -> str:
    """Why the replicas are not running yet: a resource the cluster lacks, else Serve's
    own message (slow to schedule, slow to initialise)."""
    need = {k: v for k, v in config.replica_resources.items() if v > 0}
    total = ray.cluster_resources()
    free = ray.available_resources()
    count = config.min_replicas if config.autoscaling else config.replicas
    count = max(1, count or 0)
    head = f"the service was not running after --start-timeout {config.start_timeout_s:g} s"
    lacking = [k for k, v in need.items() if v > total.get(k, 0)]
    if lacking:
        have = ", ".join(f"{k} {total.get(k, 0):g}" for k in lacking)
        wants = ", ".join(f"{k} {need[k]:g}" for k in lacking)
        return (
            f"{head}: each replica needs {wants}, and the whole cluster has {have}; give "
            "fewer --num-gpus/--num-cpus, another --device, or add nodes that have it"
        )
    short = [k for k, v in need.items() if v * count > free.get(k, 0) + 1e-9]
    if short:
        wants = ", ".join(f"{k} {need[k] * count:g}" for k in short)
        have = ", ".join(f"{k} {free.get(k, 0):g}" for k in short)
        return (
            f"{head}: {count} replica(s) need {wants} and only {have} is free on the "
            "cluster; give fewer --replicas or less --num-cpus/--num-gpus"
        )
    status = _applications().get(config.name)
    messages = [d.message for d in status.deployments.values() if d.message] if status else []
    return f"{head}: " + (messages[0] if messages else "the replicas are still starting")
