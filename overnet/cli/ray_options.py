"""`overnet upscale --ray [ADDRESS]`: the options that run the batch on a Ray cluster.

:func:`ray_options` adds ``--ray``, ``--actors``, ``--num-cpus``, ``--num-gpus``,
``--max-attempts`` and ``--manifest`` to a command and routes it: without ``--ray`` the
command runs as before; with it, the same parameters go to
:func:`overnet.scaleout.upscale_on_ray`. ``-o`` and the inputs may then be ``pyarrow.fs``
URIs (:data:`PATH_OR_URI` keeps a URI as text).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any

import click

from overnet.cli.library import constant
from overnet.cli.options import Decorator, choose_model, stack

_RAY_ONLY = ("actors", "num_cpus", "num_gpus", "max_attempts", "manifest")


def _is_uri(text: str) -> bool:
    from overnet.scaleout.storage import is_uri

    return is_uri(text)


class PathOrURI(click.ParamType):
    """A local path (-> Path) or a ``scheme://`` URI (-> str, its slashes kept)."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, Path):
            return value
        return str(value) if _is_uri(str(value)) else Path(value)


PATH_OR_URI = PathOrURI()


def ray_options() -> Decorator:
    """The Ray options, and the switch between the local command and the Ray run."""
    options = stack(
        click.option(
            "--ray",
            "ray_address",
            is_flag=False,
            flag_value="local",
            default=None,
            metavar="[ADDRESS]",
            help="Run on a Ray cluster with Ray Data: auto (the running cluster), HOST:PORT "
            "or ray://HOST:10001; a bare --ray (after the inputs, or before another option) "
            "starts a local Ray. Inputs and -o may then be storage URIs: s3://, gs://, "
            "hdfs://, file://.",
        ),
        click.option(
            "--actors",
            type=click.IntRange(min=1),
            default=None,
            help="--ray: actors, each with one runtime session (default: as many as the "
            "cluster's CPUs allow, or its GPUs with --num-gpus).",
        ),
        click.option(
            "--num-cpus",
            type=click.FloatRange(min=0),
            default=1.0,
            help="--ray: CPUs reserved per actor; its --threads default to this, rounded up.",
        ),
        click.option(
            "--num-gpus",
            type=click.FloatRange(min=0),
            default=0.0,
            help="--ray: GPUs per actor (with --device cuda); 0.5 puts two actors on a GPU.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(min=1),
            default=constant("overnet.scaleout.attempts", "DEFAULT_MAX_ATTEMPTS"),
            help="--ray: times a file is started before it counts as failed when its "
            "worker dies on it (out of memory, a crash in a codec; a lost node costs one).",
        ),
        click.option(
            "--manifest",
            default=None,
            metavar="PATH|URI",
            help="--ray: the JSON-lines record of every file, read to resume "
            "(default: OUTDIR/overnet-manifest.jsonl).",
        ),
    )

    def decorate(command: Any) -> Any:
        @functools.wraps(command)
        def route(ray_address: str | None, **params: Any) -> Any:
            ray_params = {name: params.pop(name) for name in _RAY_ONLY}
            if ray_address is None:
                _refuse_without_ray(params)
                return command(**params)
            return run_on_ray(ray_address, ray_params, params)

        before = len(getattr(command, "__click_params__", []))
        route = options(route)
        params = route.__click_params__  # click lists them reversed: these go last in --help
        params[:] = params[before:] + params[:before]
        return route

    return decorate


def _refuse_without_ray(params: dict[str, Any]) -> None:
    ctx = click.get_current_context()
    for name in _RAY_ONLY:
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT):
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} applies to Ray runs: add --ray [ADDRESS]")
    given = (params["out_dir"], params["model"], params["weights"], *params["inputs"])
    uris = [str(p) for p in given if p is not None and _is_uri(str(p))]
    if uris:
        raise click.UsageError(f"{uris[0]} is a storage URI: URIs need --ray [ADDRESS]")


def run_on_ray(address: str, ray_params: dict[str, Any], params: dict[str, Any]) -> None:
    """``overnet upscale --ray``: the local command's parameters through upscale_on_ray."""
    from overnet.cli.video_options import check_video_options, video_settings
    from overnet.scaleout import Cluster, upscale_on_ray
    from overnet.video.encode import default_encoder_threads

    model = choose_model(params["model"], params["weights"], params["scale"])
    cluster = Cluster(address, ray_params["actors"], ray_params["num_cpus"], ray_params["num_gpus"])
    encode, trim = video_settings(params)
    # this machine's thread count, not each node's: outputs then match the local command's
    encode = dataclasses.replace(encode, threads=encode.threads or default_encoder_threads())
    check_video_options(encode, params["video_format"])  # before the cluster starts
    try:
        report = upscale_on_ray(
            list(params["inputs"]),
            params["out_dir"],
            model,
            backend=params["backend"],
            device=params["device"],
            precision=params["precision"],
            scale=params["scale"],
            threads=params["threads"],
            tile=params["tile"],
            overlap=params["overlap"],
            max_memory=params["max_memory"],
            batch=params["tile_batch"],
            fmt=params["fmt"],
            suffix=params["suffix"],
            quality=params["quality"],
            recursive=params["recursive"],
            overwrite=params["overwrite"],
            max_pixels=int(params["max_pixels"]),
            encode=encode,
            video_format=params["video_format"],
            trim=trim,
            strict=params["strict"],
            cluster=cluster,
            max_attempts=ray_params["max_attempts"],
            manifest=ray_params["manifest"],
            progress=params["progress"],
            echo=lambda line: click.echo(line, err=True),
        )
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted: files settled so far are in the manifest; run again to finish",
            err=True,
        )
        sys.exit(130)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
