"""`overnet upscale` over a folder of bad inputs mixed with good ones: every good file is
done, each bad one fails alone with one line naming it, no traceback, exit status 1, and
the whole run's peak RSS stays within --max-memory plus the runtime's fixed cost."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.jobs.corpus import DEEP, make_corpus

pytest.importorskip("openvino")

MAX_MEMORY_MB = 500
#: runs the command in a child and reports that child's own peak RSS on stderr
_WRAPPER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_RSS_KB=%d' % resource.getrusage("
    "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from overnet.cli import main\n"
    "main(sys.argv[1:], prog_name='overnet')\n"
)


def _upscale(inputs: Path, out: Path, model: Path, *extra: str) -> tuple[int, str, int]:
    args = [
        sys.executable, "-c", _WRAPPER, "upscale", str(inputs), "-o", str(out),
        "--model", str(model), "--backend", "openvino", "--threads", "2",
        "--max-memory", f"{MAX_MEMORY_MB}MB", "--no-progress", *extra,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    text = done.stdout + done.stderr
    peak_kb = int(re.search(r"PEAK_RSS_KB=(\d+)", text).group(1))
    return done.returncode, text, peak_kb * 1024


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("corpus") / "in"
    return folder, make_corpus(folder)


def test_every_good_file_done_each_bad_one_failed_alone(corpus, x2_onnx, tmp_path):
    folder, expected = corpus
    # the runtime's fixed cost: the same command on one small good file
    single = tmp_path / "single"
    single.mkdir()
    (single / "good1.png").write_bytes((folder / "good1.png").read_bytes())
    code, text, fixed = _upscale(single, tmp_path / "single-out", x2_onnx)
    assert code == 0, text

    out = tmp_path / "out"
    code, text, peak = _upscale(folder, out, x2_onnx)
    assert code == 1, text
    assert "Traceback" not in text and "internal error" not in text, text
    failed_lines = [line for line in text.splitlines() if line.startswith("  failed: ")]
    for name, outcome in expected.items():
        mentions = [line for line in failed_lines if f"/{name}" in line]
        if outcome == "done":
            assert not mentions, mentions
            assert any(p.stem == Path(name).stem for p in out.iterdir()), name
        else:
            assert len(mentions) == 1, (name, text)
    done = sum(outcome == "done" for outcome in expected.values())
    assert f"{done} upscaled, 0 skipped" in text
    assert f"{len(expected) - done} failed" in text
    assert peak <= fixed + MAX_MEMORY_MB * 1e6, (peak / 1e6, fixed / 1e6)
    # the reasons a user can act on
    reasons = "\n".join(failed_lines)
    assert "16383" in reasons  # WebP's limit, named before the upscale
    assert "CMYK" in reasons
    assert re.search(r"header_bomb\.png: .*(MP|pixels)", reasons)


def test_an_interlaced_16_bit_png_is_read_at_full_depth(corpus, x2_onnx, tmp_path):
    from overnet.imaging.files import load_image

    folder, _ = corpus
    image = load_image(folder / "interlaced16.png")
    assert np.array_equal(image.pixels, DEEP)


def test_a_tile_below_the_fractional_scale_minimum_is_a_usage_error(corpus, x2_weights, tmp_path):
    folder, _ = corpus
    code, text, _ = _upscale(folder / "good1.png", tmp_path / "o", x2_weights, "--scale", "1.5",
                             "--tile", "12")  # fmt: skip
    assert code == 2, text
    assert "--tile 12 is below" in text and "Traceback" not in text
    assert not (tmp_path / "o" / "good1.png").exists()
