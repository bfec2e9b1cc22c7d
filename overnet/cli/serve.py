"""`overnet serve`: a model as an HTTP service on Ray Serve (`overnet.serve`)."""

from __future__ import annotations

import signal
import threading
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
        type=LibraryChoice("overnet.runtime", "PRECISIONS"),
        default=None,
        help="Compute precision (default: the model file's / fp32).",
    ),
    scale_option(
        "Target scale (default: the model's), up to its upscale; a fractional scale runs "
        "the overscale graph."
    ),
    click.option("--threads", type=int, default=None, help="CPU threads per replica."),
    click.option("--name", default=None, help="Model name in answers (default: file name)."),
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
        help="Requests one replica holds; the next get 503 with Retry-After.",
    ),
    click.option(
        "--drain-timeout",
        type=click.FloatRange(min=0),
        default=constant(_CONFIG, "DEFAULT_DRAIN_S"),
        help="Seconds a stopping replica waits for its in-flight requests.",
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
        help="Bearer token every request but /healthz must carry (401 without it).",
    ),
    click.option(
        "--address",
        default=None,
        help="Ray cluster to join (auto, or ray://HOST:10001); default: a local Ray instance "
        "(no dashboard).",
    ),
)


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
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
def serve(model: Path, **options) -> None:
    """Serve MODEL (checkpoint, ONNX or TensorRT engine) over HTTP on Ray Serve until
    Ctrl-C or SIGTERM, which drain in-flight requests: POST /v1/upscale, GET /v1/models,
    GET /healthz, GET /metrics. Tiles of concurrent requests share inference batches."""
    from overnet._optional import require
    from overnet.errors import InputError

    config = _config(model, options)
    config.check()
    if not model.exists():
        raise InputError(f"model not found: {model}")
    host, port = options["host"], options["port"]
    if host not in _LOCAL_HOSTS and config.token_sha256 is None:
        click.echo(f"warning: serving on {host} without --token: anyone who reaches it may use it")
    ray = require("ray", "overnet serve", "serve")
    require("ray.serve", "overnet serve", "serve")
    from overnet.serve.app import run_service, stop_service

    address = options["address"]
    # a local instance without the dashboard; a cluster keeps its own settings
    if address:
        ray.init(address=address)
    else:
        ray.init(include_dashboard=False)
    stop, previous = _stop_on_signals()  # after ray.init, which sets its own SIGTERM handler
    try:
        url = run_service(config, host, port)
        replicas = (
            f"{config.min_replicas}..{config.max_replicas} replicas (autoscaling)"
            if config.autoscaling
            else f"{config.replicas} replica(s)"
        )
        click.echo(f"serving {config.model_name} at {url} with {replicas}; Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
        click.echo("stopping: draining in-flight requests")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_service()
        ray.shutdown()


def _config(model: Path, options: dict):
    from overnet.serve.auth import token_digest
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
    )
    token = options["token"]
    return ServiceConfig(
        model=str(model.resolve()),
        backend=options["backend"],
        device=options["device"],
        precision=options["precision"],
        scale=options["scale"],
        threads=options["threads"],
        name=options["name"] or "",
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
        token_sha256=token_digest(token) if token else None,
        limits=limits,
    )


def _stop_on_signals() -> tuple[threading.Event, dict]:
    """An event SIGINT and SIGTERM set (the caller then drains and stops), and the
    handlers they replace."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    return stop, previous
