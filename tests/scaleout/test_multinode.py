"""`--ray` on a cluster of three nodes on this machine (a head and two workers, 1 CPU
each): a worker node removed mid-job, and a hidden poison input, in real Ray runs."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from tests.scaleout.cluster import deadline, local_cluster
from tests.scaleout.conftest import differences, make_images, outputs, upscale_locally
from tests.scaleout.poison import make_poison

pytest.importorskip("openvino")
pytest.importorskip("pyarrow")
pytest.importorskip("ray.data")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]
#: the whole of one test's Ray run, at most (a hung cluster fails instead of hanging)
RUN_LIMIT_S = 240


@pytest.fixture(scope="module")
def cluster():
    """Head + 2 worker nodes; every worker runs tests/scaleout/poison.py's hook."""
    env = {
        "worker_process_setup_hook": "tests.scaleout.poison.install",
        "env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    }
    with local_cluster(workers=2, cpus=1, head_cpus=1, runtime_env=env) as made:
        yield made


def manifest_lines(out: Path) -> list[dict]:
    text = (out / "overnet-manifest.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_a_worker_node_lost_mid_job_leaves_every_output_once(cluster, x2_onnx, tmp_path):
    """Images and a video; the node of the first actor found on a worker node is removed
    as its first result arrives. Every output once, the local command's bytes, one
    manifest record per input, no temp files."""
    ray_cluster, workers = cluster
    folder = tmp_path / "in"
    make_images(folder, 12, seed=5, sides=(40, 64))
    options = ["--threads", "1"]
    if importlib.util.find_spec("av") is not None:
        from tests.video.clips import Clip, make_clip

        # FFV1 in AVI: lossless and repeatable, so equal bytes mean equal frames
        make_clip(folder / "clip.mp4", Clip(width=40, height=32, frames=4, audio=False))
        options += ["--codec", "ffv1", "--video-format", "avi"]
    reference = tmp_path / "reference"
    upscale_locally(folder, reference, x2_onnx, *options)
    expected = outputs(reference)

    from overnet.scaleout import Cluster, upscale_on_ray
    from overnet.video.encode import EncodeOptions, default_encoder_threads

    by_node = {node.node_id: node for node in workers}
    removed: list[str] = []
    after: list[str] = []  # records that arrived after the removal

    def lose_a_node(record) -> None:
        if removed:
            after.append(record.input)
        elif record.node in by_node:
            ray_cluster.remove_node(by_node[record.node])  # its raylet and workers die
            removed.append(record.node)

    encode = EncodeOptions(codec="ffv1", threads=default_encoder_threads())
    out = tmp_path / "out"
    with deadline(RUN_LIMIT_S, "the Ray run with a node lost"):
        report = upscale_on_ray(
            [str(folder)], out, x2_onnx, threads=1, encode=encode, video_format="avi",
            cluster=Cluster(actors=2, num_cpus=1), progress=False, on_record=lose_a_node,
        )  # fmt: skip
    assert removed, "no record came from a worker node"
    assert after, "the node was removed after the last record"
    assert report.ok, report.summary()
    assert differences(outputs(out), expected) == []
    assert [p.name for p in out.rglob("*") if ".overnet-" in p.name] == []
    final = {r["input"]: r for r in manifest_lines(out)}
    assert len(final) == len(list(folder.iterdir())) == len(expected)
    assert {r["status"] for r in final.values()} == {"done"}
    assert len(manifest_lines(out)) == len(final)  # compacted: one line per input
    # the nodes that were left took the load (results already on their way when the node
    # went may still name it)
    assert any(final[name]["node"] != removed[0] for name in after)


def test_a_hidden_poison_input_fails_alone_after_max_attempts(cluster, x2_onnx, tmp_path):
    """An input that kills its actor process each time it is started: tried twice
    (--max-attempts 2), then recorded as failed with the reason; the rest are done, exit 1."""
    from click.testing import CliRunner

    from overnet.cli import main

    folder = tmp_path / "in"
    make_images(folder, 6, seed=3, sides=(24, 48))
    make_poison(folder / "img02_poison.png")  # a valid image: the local command upscales it
    reference = tmp_path / "reference"
    upscale_locally(folder, reference, x2_onnx, "--threads", "1")
    expected = {k: v for k, v in outputs(reference).items() if "poison" not in k}
    out = tmp_path / "out"
    args = [
        "upscale", str(folder), "-o", str(out), "--model", str(x2_onnx), "--threads", "1",
        "--actors", "2", "--max-attempts", "2", "--no-progress", "--ray",
    ]  # fmt: skip
    begin = time.monotonic()
    with deadline(RUN_LIMIT_S, "the Ray run with a poison input"):
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "6 upscaled, 0 skipped" in result.output and "1 failed" in result.output, result.output
    assert differences(outputs(out), expected) == []
    lines = manifest_lines(out)
    records = {Path(r["input"]).name: r for r in lines}
    assert len(records) == len(lines) == 7  # compacted: the last record per file
    poison = records["img02_poison.png"]
    assert poison["status"] == "failed" and poison["attempts"] == 2, poison
    assert "worker died 2 time(s)" in poison["error"] and "img02_poison.png" in poison["error"]
    assert "--max-attempts 2" in poison["error"]
    assert "(Ray: SYSTEM_ERROR: Worker unexpectedly exits" in poison["error"]  # Ray's own word
    print("the poison file's record:", poison["error"])  # shown with -s
    assert {r["status"] for n, r in records.items() if n != "img02_poison.png"} == {"done"}
    assert time.monotonic() - begin < RUN_LIMIT_S
