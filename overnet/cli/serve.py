"""`overnet serve`: models as an HTTP service on Ray Serve (`overnet.serve`)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import click
from click.core import ParameterSource

from overnet.cli.library import LibraryChoice, constant, field_default
from overnet.cli.options import (
    backend_option,
    device_option,
    memory_option,
    scale_option,
    stack,
    upscaler_options,
)
from overnet.units import format_memory

_CONFIG = "overnet.serve.config"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

_model = stack(
    backend_option("auto"),
    device_option("cpu", help="Device: cpu or cuda (a replica sees only the GPUs Ray gives it)."),
    click.option(
        "--precision",
        type=LibraryChoice("overnet.runtime.base", "PRECISION_CHOICES"),
        default="auto",
        help="Compute precision, as `overnet upscale` takes it (auto: the fastest the "
        "hardware runs natively within 45 dB of fp32; fp32 gives exact results anywhere).",
    ),
    scale_option(
        "Scale of a request that gives none (default: the first model's). Requests may ask "
        "for any scale above 1 up to the largest model's."
    ),
    click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="Inference threads per session (default: the replica's --num-cpus share; CPU "
        "pinning is off below the node's core count).",
    ),
    click.option(
        "--name",
        default=constant(_CONFIG, "DEFAULT_APP_NAME"),
        help="Name of this service's Serve application; stopping deletes it alone, so "
        "several services share a cluster.",
    ),
    click.option(
        "--route-prefix",
        default=constant(_CONFIG, "DEFAULT_ROUTE_PREFIX"),
        help="URL path the service answers under (one per service on a cluster).",
    ),
)
_replicas = stack(
    click.option("--replicas", type=click.IntRange(min=1), default=1, help="Fixed replicas."),
    click.option(
        "--min-replicas", type=click.IntRange(min=0), default=None, help="Autoscaling floor."
    ),
    click.option(
        "--max-replicas", type=click.IntRange(min=1), default=None, help="Autoscaling ceiling."
    ),
    click.option(
        "--num-gpus",
        type=click.FloatRange(min=0),
        default=None,
        help="GPUs per replica, fractions allowed (default: 1 with --device cuda, else 0).",
    ),
    click.option(
        "--num-cpus",
        type=click.FloatRange(min=0),
        default=1.0,
        help="CPUs Ray reserves per replica.",
    ),
    click.option(
        "--max-batch",
        type=click.IntRange(min=1),
        default=constant(_CONFIG, "DEFAULT_MAX_BATCH"),
        help="Most tiles per inference run, from any requests.",
    ),
    click.option(
        "--max-wait-ms",
        type=click.FloatRange(min=0),
        default=constant(_CONFIG, "DEFAULT_MAX_WAIT_MS"),
        help="How long a batch's first tile waits for more.",
    ),
)
_limits = stack(
    memory_option(
        "--max-body",
        default=field_default(_CONFIG, "Limits", "max_body_bytes", format_memory),
        help="Larger request bodies get 413",
    ),
    click.option(
        "--max-pixels",
        type=float,
        default=field_default(_CONFIG, "Limits", "max_pixels"),
        help="Larger images get 413 (checked before decoding).",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=field_default(_CONFIG, "Limits", "timeout_s"),
        help="Seconds per request before 504 (a request may ask for less).",
    ),
    click.option(
        "--max-queue",
        type=click.IntRange(min=1),
        default=field_default(_CONFIG, "Limits", "max_queue"),
        help="Requests one replica holds (and Ray Serve queues in front of it); the next "
        "get 503 with Retry-After.",
    ),
    click.option(
        "--memory-wait",
        type=click.FloatRange(min=0),
        default=field_default(_CONFIG, "Limits", "memory_wait_s"),
        help="Seconds a request waits for the replica's --max-memory before a 503.",
    ),
    click.option(
        "--drain-timeout",
        type=click.FloatRange(min=0),
        default=None,
        help="Seconds a stopping replica waits for its in-flight requests (default: "
        "--timeout plus 5).",
    ),
    click.option(
        "--start-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=constant(_CONFIG, "DEFAULT_START_TIMEOUT_S"),
        help="Seconds to wait for every replica to be placed and warmed up.",
    ),
)
_network = stack(
    click.option(
        "--host",
        default=constant(_CONFIG, "DEFAULT_HOST"),
        help="Address to bind; 0.0.0.0 exposes the service to the network.",
    ),
    click.option(
        "--port", type=click.IntRange(1, 65535), default=constant(_CONFIG, "DEFAULT_PORT")
    ),
    click.option(
        "--token",
        envvar="OVERNET_SERVE_TOKEN",
        show_envvar=True,
        default=None,
        help="Bearer token every request but /healthz and the page must carry (401 "
        "without it); an empty one is refused.",
    ),
    click.option(
        "--address",
        default=None,
        help="Ray cluster to join (auto, or ray://HOST:10001); default: a new local Ray "
        "instance (no dashboard), never one that happens to run.",
    ),
)


@click.command()
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@_model
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    default=None,
    metavar="PIXELS",
    help="Tile side in input pixels. Default: `overnet upscale`'s plan for --max-memory "
    "(the whole image when it fits), so answers equal the command's output.",
)
@upscaler_options()
@_replicas
@_limits
@_network
def serve(models: tuple[str, ...], **options) -> None:
    """Serve MODELs (pretrained names such as x2, checkpoints, ONNX files or TensorRT
    engines) as one HTTP service on Ray Serve until Ctrl-C or SIGTERM, which drain
    in-flight requests: POST /v1/upscale?scale=S (any S above 1 up to the largest
    model's; each request goes to the model that covers it), GET /v1/models, GET
    /healthz, GET /metrics and a web page at /. --max-memory is each replica's budget,
    shared by the requests it admits. Tiles of concurrent requests share inference
    batches."""
    from overnet._optional import require

    config = _config(models, options)
    config.check()
    host, port = options["host"], options["port"]
    if host not in _LOCAL_HOSTS and config.token_sha256 is None:
        click.echo(f"warning: serving on {host} without --token: anyone who reaches it may use it")
    ray = require("ray", "overnet serve", "serve")
    require("ray.serve", "overnet serve", "serve")
    from ray import serve as ray_serve

    from overnet.serve.app import run_service, stop_service
    from overnet.serve.config import model_name
    from overnet.serve.proxy_limits import proxy_environment

    address = options["address"]
    previous = _interrupt_on_sigterm()
    # a new local instance (never a cluster that happens to run here) without the
    # dashboard; a cluster given by --address keeps its own settings
    if address:
        ray.init(address=address)
    else:
        # the proxies of our own Ray refuse bodies over --max-body before reading them
        os.environ.update(proxy_environment({config.route_prefix: config.limits.max_body_bytes}))
        ray.init(address="local", include_dashboard=False)
    _interrupt_on_sigterm()  # ray.init sets its own SIGTERM handler
    serving = False
    try:
        url = run_service(config, host, port)
        serving = True
        replicas = (
            f"{config.min_replicas}..{config.max_replicas} replicas (autoscaling)"
            if config.autoscaling
            else f"{config.replicas} replica(s)"
        )
        names = ", ".join(model_name(m) for m in config.model_paths)
        click.echo(f"serving {names} as {config.name} at {url} with {replicas}; Ctrl-C to stop")
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo("stopping: draining in-flight requests")
    except KeyboardInterrupt:
        click.echo("interrupted while starting: stopping", err=True)
        raise SystemExit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            # a running service drains; one still starting has nothing to drain (its
            # replicas may wait for resources: waiting for them would hang)
            stop_service(config.name, wait=serving)
            if serving and not address:  # our own local Serve: proxy and controller too
                ray_serve.shutdown()
        finally:
            ray.shutdown()


def _config(models: tuple[str, ...], options: dict):
    from overnet.serve.auth import TOKEN_ENV, token_digest
    from overnet.serve.config import Limits, ServiceConfig

    ctx = click.get_current_context()
    autoscaling = options["min_replicas"] is not None or options["max_replicas"] is not None
    if autoscaling and ctx.get_parameter_source("replicas") != ParameterSource.DEFAULT:
        raise click.UsageError("give --replicas or --min-replicas/--max-replicas, not both")
    num_gpus = options["num_gpus"]
    if num_gpus is None:
        num_gpus = 1.0 if options["device"].startswith("cuda") else 0.0
    limits = Limits(
        max_body_bytes=options["max_body"],
        max_pixels=int(options["max_pixels"]),
        timeout_s=options["timeout"],
        max_queue=options["max_queue"],
        memory_wait_s=options["memory_wait"],
    )
    token = options["token"]
    if token is None and TOKEN_ENV in os.environ:  # click drops an empty variable
        token = os.environ[TOKEN_ENV]
    if token is not None and not token.strip():
        raise click.UsageError(
            f"the token is empty (--token or ${TOKEN_ENV}); an unfilled secret must not open "
            f"the service: give a token, or unset {TOKEN_ENV} to serve without one"
        )
    return ServiceConfig(
        models=tuple(_model_argument(m) for m in models),
        backend=options["backend"],
        device=options["device"],
        precision=options["precision"],
        scale=options["scale"],
        threads=options["threads"],
        name=options["name"],
        route_prefix=options["route_prefix"],
        tile=options["tile"],
        overlap=options["overlap"],
        max_memory=options["max_memory"],
        max_batch=options["max_batch"],
        max_wait_ms=options["max_wait_ms"],
        replicas=options["replicas"],
        min_replicas=options["min_replicas"],
        max_replicas=options["max_replicas"],
        num_cpus=options["num_cpus"],
        num_gpus=num_gpus,
        drain_s=options["drain_timeout"],
        start_timeout_s=options["start_timeout"],
        token_sha256=token_digest(token) if token else None,
        limits=limits,
    )


def _model_argument(model: str) -> str:
    """An existing file as an absolute path; a pretrained name as given (each replica
    fetches it into its node's cache); anything else is refused before Ray starts."""
    from overnet.errors import InputError
    from overnet.weights import pretrained

    path = Path(model)
    if path.exists():
        return str(path.resolve())
    if pretrained.canonical_name(model) is not None:
        return model
    raise InputError(f"model not found: {model} (not a file, nor a pretrained name such as x2)")


def _interrupt_on_sigterm() -> dict:
    """SIGTERM raises KeyboardInterrupt as Ctrl-C does, at every stage (while Ray starts,
    while replicas are placed, while serving); returns the handlers it replaced."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def interrupt(*_):
        raise KeyboardInterrupt

    for sig in previous:
        signal.signal(sig, interrupt)
    return previous
