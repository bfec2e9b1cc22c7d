"""The demo a newcomer runs first (``make demo``): weights, an upscaled image, an ONNX
export and Set5 figures, each step saying what it did or, when it could not, what to run.

Weights come from ``SHARED/weights`` when present, else the pretrained x2 (fetched once;
``overnet.weights.pretrained``). Without network and without weights the demo still describes
the network and ends successfully with the command that would fetch them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from overnet.errors import MissingDependencyError, OverNetError

#: output folder of `overnet demo` (relative to the working directory)
DEFAULT_OUT = Path("demo-out")


@dataclass
class DemoReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # could not run here, and what to run
    failed: list[str] = field(default_factory=list)  # should have worked: a bug or bad file

    def summary(self) -> str:
        lines = [f"demo: {len(self.done)} step(s) done"]
        lines += [f"  done: {line}" for line in self.done]
        lines += [f"  not done: {line}" for line in self.skipped]
        lines += [f"  FAILED: {line}" for line in self.failed]
        return "\n".join(lines)


def find_weights(shared: Path | None, say: Callable[[str], None]) -> tuple[Path | None, str]:
    """(weights, "") or (None, why not and what to run)."""
    if shared is not None and (shared / "weights" / "OverNet_x2.pth.tar").is_file():
        return shared / "weights" / "OverNet_x2.pth.tar", ""
    from overnet.weights import pretrained

    try:
        return pretrained.resolve("x2", say=say), ""
    except OverNetError as exc:
        return None, (
            f"no weights: {exc}\n    Run `overnet weights fetch x2` when online (or "
            "`overnet weights fetch x2 --from FILE`), then `make demo` again"
        )


def _upscale_sample(weights: Path, out_dir: Path, say: Callable[[str], None]) -> str:
    from PIL import Image

    from overnet.imaging.io import write_image_atomic
    from overnet.imaging.sample import write_sample
    from overnet.runtime import Upscaler, open_session

    sample = write_sample(out_dir / "sample.png")
    image = Image.open(sample)
    with open_session(weights) as session:
        start = time.perf_counter()
        result = Upscaler(session).upscale(image)
        took = time.perf_counter() - start
        described = session.info.describe()
    output = write_image_atomic(result, out_dir / "sample_x2.png", format="PNG")
    bicubic = image.resize(result.size, Image.Resampling.BICUBIC)
    write_image_atomic(bicubic, out_dir / "sample_bicubic_x2.png", format="PNG")
    say(f"upscaled {sample} -> {output} ({described}, {took:.2f} s)")
    return f"upscaled the sample image: {output} (bicubic for comparison beside it)"


def _export(weights: Path, out_dir: Path, say: Callable[[str], None]) -> str:
    from overnet.export import export_onnx

    result = export_onnx(weights, out_dir / "overnet_x2.onnx", overwrite=True)
    if result.validation is not None:
        say(result.validation.format())
    return f"exported and validated {result.path}"


def _evaluate(weights: Path, set5: Path, say: Callable[[str], None]) -> str:
    from overnet.eval import discover, evaluate
    from overnet.eval.report import format_table
    from overnet.runtime import open_session

    with open_session(weights, "torch") as session:
        result = evaluate(discover(set5, 2), session.run, "paper", None, False)
    say(format_table(result, True))
    if result.failed:
        raise OverNetError(f"{len(result.failed)} Set5 image(s) failed; see the table above")
    return f"Set5 x2: mean PSNR-Y {result.mean('psnr_y'):.3f} dB (paper protocol)"


def run_demo(
    shared: Path | None, out_dir: Path = DEFAULT_OUT, say: Callable[[str], None] = print
) -> DemoReport:
    """Each step that can run here; never raises for a missing network, weights or extra."""
    from overnet.info import describe, format_info

    report = DemoReport()
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, why = find_weights(shared, say)
    say(format_info(describe(weights)))
    if weights is None:
        report.skipped.append(why)
        report.skipped.append("upscale, export and Set5 evaluation need weights")
        return report
    set5 = shared / "data" / "Set5" if shared is not None else None
    steps: list[tuple[str, Callable[[], str]]] = [
        ("upscale", lambda: _upscale_sample(weights, out_dir, say)),
        ("export", lambda: _export(weights, out_dir, say)),
    ]
    if set5 is not None and set5.is_dir():
        steps.append(("eval", lambda: _evaluate(weights, set5, say)))
    else:
        report.skipped.append(
            "Set5 evaluation: no Set5 folder (put it at SHARED/data/Set5, then "
            "`overnet eval --weights x2 --data SHARED/data/Set5`)"
        )
    for name, step in steps:
        try:
            report.done.append(step())
        except MissingDependencyError as exc:
            report.skipped.append(f"{name}: {exc}")
        except OverNetError as exc:
            report.failed.append(f"{name}: {exc}")
    return report
