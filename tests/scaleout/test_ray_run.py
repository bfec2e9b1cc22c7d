"""`overnet upscale --ray` on a local Ray: the local command's bytes, a manifest entry per
file, a killed actor recovered without duplicates or gaps, an interrupted run resumed,
and file:// URIs (the pyarrow.fs path)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.scaleout.conftest import differences, digest, make_images, outputs, upscale_locally

pytest.importorskip("openvino")
pytest.importorskip("pyarrow")

pytestmark = [
    pytest.mark.slow,
    # Ray Data's own DataContext warns about its deprecated fields when it is copied
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]
#: the options of every run here (1 thread: the actors' and the local command's)
THREADS = 1


class Stop(Exception):
    """Raised from on_record to interrupt a run (as Ctrl-C on the driver would)."""


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "in"
    make_images(folder, 20)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, images, x2_onnx) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference")
    upscale_locally(images, out, x2_onnx, "--threads", str(THREADS))
    made = outputs(out)
    assert len(made) == 20
    return made


def manifest_of(out: Path) -> list[dict]:
    path = out / "overnet-manifest.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_manifest(out: Path, images: Path) -> list[dict]:
    """One record per input, each done output present with its recorded size and hash."""
    records = manifest_of(out)
    assert sorted(r["input"] for r in records) == sorted(str(p.resolve()) for p in images.iterdir())
    for record in records:
        assert record["status"] in ("done", "skipped"), record
        output = Path(record["output"])
        assert output.is_file() and output.stat().st_size == record["output_size"]
        assert digest(output) == record["sha256"]
        assert record["input_size"] == Path(record["input"]).stat().st_size
    return records


def no_temps(out: Path) -> list[str]:
    return [p.name for p in out.rglob("*") if ".overnet-" in p.name]


def gone(psutil, pid: int, born: float) -> bool:
    """True once process ``pid`` started at ``born`` has ended (its pid may be reused)."""
    try:
        process = psutil.Process(pid)
        return process.create_time() != born or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def settled_outputs(out: Path, quiet_s: float = 1.0, limit_s: float = 15.0) -> dict[str, int]:
    """Output names and mtimes once nothing has changed for ``quiet_s`` (at most
    ``limit_s``): write tasks already running when a run is interrupted may still land."""
    deadline, last, since = time.monotonic() + limit_s, None, time.monotonic()
    while time.monotonic() < deadline:
        now = {
            p.name: p.stat().st_mtime_ns
            for p in out.iterdir()
            if p.suffix != ".jsonl" and not p.name.startswith(".")  # temps come and go
        }
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.2)
    return last or {}


def run(images: Path, out: Path, model: Path, **options):
    from overnet.scaleout import Cluster, upscale_on_ray

    cluster = Cluster(actors=2, num_cpus=1)
    return upscale_on_ray(
        [str(images)], out, model, threads=THREADS, cluster=cluster, progress=False, **options
    )


def test_two_actors_write_the_local_commands_bytes(ray_local, images, reference, x2_onnx, tmp_path):
    out = tmp_path / "out"
    report = run(images, out, x2_onnx)
    assert report.ok, report.summary()
    assert report.count("done") == 20 and report.actors == 2
    assert differences(outputs(out), reference) == []
    records = check_manifest(out, images)
    assert {r["status"] for r in records} == {"done"}
    # at most the 2 actors asked for (a slow-starting one may find nothing left to do)
    assert 1 <= len({r["actor"] for r in records}) <= 2
    assert "images/s" in report.summary() and "actor" in report.summary()
    # a rerun finds everything done: the manifest and the outputs agree, Ray is not used
    again = run(images, out, x2_onnx)
    assert again.count("skipped") == 20 and again.actors == 0, again.summary()
    assert differences(outputs(out), reference) == []


@pytest.fixture(scope="module")
def larger(tmp_path_factory, x2_onnx) -> tuple[Path, dict[str, bytes]]:
    """24 mixed images of 96..128 px and the local command's outputs: each actor still
    has files in flight when the first result reaches the driver."""
    folder = tmp_path_factory.mktemp("larger") / "in"
    make_images(folder, 24, seed=1, sides=(96, 128))
    out = tmp_path_factory.mktemp("larger-reference")
    upscale_locally(folder, out, x2_onnx, "--threads", str(THREADS))
    return folder, outputs(out)


def test_a_killed_actor_is_replaced_without_duplicates_or_gaps(
    ray_local, larger, x2_onnx, tmp_path
):
    images, reference = larger
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out"
    killed: list[int] = []
    born: list[float] = []

    def kill_first(record) -> None:
        if killed:
            return
        # an actor in the middle of a file: its attempt began (a started record) and
        # has not settled, so its task is retried on the restarted actor
        lines = manifest_of(out)
        settled = {r["input"] for r in lines if r["status"] != "started"} | {record.input}
        busy = [r["pid"] for r in lines if r["status"] == "started" and r["input"] not in settled]
        victim = busy[-1] if busy else record.pid
        born.append(psutil.Process(victim).create_time())
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    report = run(images, out, x2_onnx, on_record=kill_first)
    assert killed, "no record arrived"
    assert report.ok, report.summary()
    assert differences(outputs(out), reference) == []  # every output, byte for byte, nothing else
    assert no_temps(out) == []
    records = check_manifest(out, images)
    assert len(records) == 24 and {r["status"] for r in records} == {"done"}
    assert gone(psutil, killed[0], born[0])  # the actor process really died
    # Ray restarted the actor (same actor id, new process) and it went on with its files
    actor = next(r["actor"] for r in records if r["pid"] == killed[0])
    restarted = {r["pid"] for r in records if r["actor"] == actor} - {killed[0]}
    assert restarted, report.summary()
    assert "restarted 1x" in report.summary()


def test_an_interrupted_run_resumes_with_the_rest_only(ray_local, larger, x2_onnx, tmp_path):
    images, reference = larger
    out = tmp_path / "out"
    settled: list[str] = []

    def stop_after_five(record) -> None:
        settled.append(record.input)
        if len(settled) == 5:
            raise Stop

    with pytest.raises(Stop):
        run(images, out, x2_onnx, on_record=stop_after_five)
    first = {r["input"]: r for r in manifest_of(out)}
    assert len(first) == 5 and {r["status"] for r in first.values()} == {"done"}
    before = settled_outputs(out)  # writes in flight when the driver stopped may land
    assert 5 <= len(before) < 24  # the stop came with files left to do

    report = run(images, out, x2_onnx)
    assert report.ok, report.summary()
    by_input = {r.input: r for r in report.records}
    assert len(by_input) == 24
    assert all(by_input[name].status == "skipped" for name in first)  # not redone
    redone = {Path(r.output).name for r in report.records if r.status == "done"}
    assert redone.isdisjoint(before) and len(redone) == 24 - len(before)
    for name, mtime in before.items():
        assert (out / name).stat().st_mtime_ns == mtime  # finished files left alone
    assert differences(outputs(out), reference) == [] and no_temps(out) == []
    check_manifest(out, images)


def test_file_uris_through_the_command_line_with_a_failed_file(
    ray_local, images, reference, x2_onnx, tmp_path
):
    from click.testing import CliRunner

    from overnet.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    names = sorted(reference)[:6]
    for name in names:
        (folder / name).write_bytes((images / name).read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    expected = {name: reference[name] for name in names}
    video: list[str] = []
    if importlib.util.find_spec("av") is not None:  # a video goes whole to one actor
        from tests.video.clips import Clip, make_clip

        # FFV1 in AVI: lossless, so equal bytes mean equal frames (Matroska would write
        # random UIDs; libx264's repeatability has its own test in tests/video)
        video = ["--codec", "ffv1", "--video-format", "avi"]
        clip = make_clip(tmp_path / "clip.mp4", Clip(width=40, height=128, frames=6))
        reference_out = tmp_path / "clip-ref"
        upscale_locally(clip, reference_out, x2_onnx, "--threads", str(THREADS), *video)
        (folder / "clip.mp4").write_bytes(clip.read_bytes())
        expected["clip.avi"] = (reference_out / "clip.avi").read_bytes()
    out = tmp_path / "out"
    args = [
        "upscale", folder.as_uri(), "-o", out.as_uri(), "--model", str(x2_onnx),
        "--threads", str(THREADS), "--actors", "2", "--no-progress", "--ray", *video,
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # one file failed, the others were done
    done = f"{len(expected)} upscaled, 0 skipped"
    assert done in result.output and "1 failed" in result.output
    assert differences(outputs(out), expected) == []
    records = {Path(r["input"]).name: r for r in manifest_of(out)}
    assert records["broken.png"]["status"] == "failed"
    assert "broken.png" in records["broken.png"]["error"]
    assert records[names[0]]["input"] == (folder / names[0]).as_uri()
    # --overwrite redoes every file, to the same bytes
    again = CliRunner().invoke(main, [*args, "--overwrite"])
    assert again.exit_code == 1 and done in again.output, again.output
    assert differences(outputs(out), expected) == []


def test_bad_inputs_fail_alone_on_ray_as_in_the_local_command(ray_local, x2_onnx, tmp_path):
    """The bad-input corpus through `--ray`: each bad file fails alone (one manifest
    record with one line), the good ones equal the local command's bytes, exit 1."""
    from click.testing import CliRunner

    from overnet.cli import main
    from tests.jobs.corpus import make_corpus

    folder = tmp_path / "in"
    expected = make_corpus(folder)
    local = tmp_path / "local"
    CliRunner().invoke(main, [
        "upscale", str(folder), "-o", str(local), "--model", str(x2_onnx),
        "--threads", str(THREADS), "--no-progress",
    ])  # fmt: skip
    out = tmp_path / "out"
    args = [
        "upscale", str(folder), "-o", str(out), "--model", str(x2_onnx),
        "--threads", str(THREADS), "--actors", "2", "--no-progress", "--ray",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    records = {Path(r["input"]).name: r for r in manifest_of(out)}
    assert set(records) == set(expected)
    for name, outcome in expected.items():
        record = records[name]
        assert record["status"] == outcome, record
        if outcome == "failed":
            assert name in record["error"] and "\n" not in record["error"], record
            assert "internal error" not in record["error"], record
    assert differences(outputs(out), outputs(local)) == []


def test_a_bare_ray_starts_no_dashboard_and_no_jobs_api(ray_local):
    """The local instance of a bare --ray (ray_local starts it as --ray does): Ray's
    dashboard head runs headless, with its Prometheus exporter only (which answers any
    path with metrics); no port of it answers the dashboard's API (the web UI and the
    jobs API that takes code to run)."""
    import urllib.error
    import urllib.request

    psutil = pytest.importorskip("psutil")
    ports = []
    for child in psutil.Process().children(recursive=True):
        try:
            # the dashboard head (web UI, jobs API); each node's agent is Ray's own
            if any(part.endswith("dashboard/dashboard.py") for part in child.cmdline()):
                ports += [c.laddr.port for c in child.net_connections() if c.status == "LISTEN"]
        except psutil.Error:  # a short-lived worker already gone
            continue
    answering = []
    for port in ports:
        try:
            url = f"http://127.0.0.1:{port}/api/version"
            with urllib.request.urlopen(url, timeout=5) as answer:
                if not answer.read(64).startswith(b"# HELP"):  # not the metrics exporter
                    answering.append(port)
        except urllib.error.HTTPError:  # Ray's default here: 8265 says 401 (a token)
            answering.append(port)
        except (urllib.error.URLError, OSError):
            continue
    assert answering == [], f"the dashboard API answers on {answering}"
