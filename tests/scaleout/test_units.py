"""The parts of the Ray path that need no Ray: URIs and exactly-once writes, the manifest,
what a rerun skips, output-name refusals, the actor called directly, CLI usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from overnet.cli import main
from overnet.scaleout.manifest import Manifest, Record, read_manifest
from overnet.scaleout.plan import Naming, _glob_match, find_inputs, make_plan
from overnet.scaleout.report import ScaleoutReport
from overnet.scaleout.stages import new_row, read_stage, record_of, write_stage
from overnet.scaleout.storage import Place, is_uri, place_of
from tests.scaleout.conftest import make_images

pytest.importorskip("pyarrow")


# -- storage ---------------------------------------------------------------------------
def test_paths_and_uris_become_places():
    assert place_of("s3://bucket/a b/c.png") == Place("s3://bucket", "bucket/a b/c.png")
    assert place_of("s3://bucket/a b/c.png").text() == "s3://bucket/a b/c.png"
    assert place_of("gs://b/x/").path == "b/x"
    assert place_of("hdfs://nn:8020/data/x.png") == Place("hdfs://nn:8020", "/data/x.png")
    assert place_of("file:///tmp/x.png").text() == "file:///tmp/x.png"
    assert place_of("file:///tmp/x.png").local and not place_of("s3://b/k").local
    assert place_of("rel/x.png").path == str(Path("rel/x.png").resolve())
    assert [is_uri(t) for t in ("s3://b", "C://x", "a/b", "file:///x")] == [1, 0, 0, 1]


def test_exactly_once_local_writes_leave_no_temp(tmp_path):
    from overnet._atomic import _TEMP_NAME
    from overnet.scaleout.storage import _temp_name, write_once

    target = place_of((tmp_path / "sub" / "x.png").as_uri())
    write_once(target, b"first")
    write_once(target, b"second")  # a retried write: same name, whole file
    assert (tmp_path / "sub" / "x.png").read_bytes() == b"second"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]
    # temp names of non-local stores follow overnet._atomic's, so stale ones are found
    assert _TEMP_NAME.fullmatch(_temp_name(place_of("hdfs://nn/o/x.png")).name)


def test_other_stores_get_a_temp_name_and_object_stores_one_whole_upload(monkeypatch):
    import pyarrow.fs

    from overnet.scaleout import storage

    target = place_of("mock:///out/sub/x.png")  # pyarrow's in-memory filesystem
    storage.write_once(target, b"whole")
    assert storage.read_bytes(target) == b"whole"
    assert storage.list_files(place_of("mock:///out"), True) == [(target, 5)]  # no temp

    class ObjectStore:  # pyarrow's mock filesystem, seen as S3
        type_name = "s3"

        def __init__(self) -> None:
            self.inner = pyarrow.fs.FileSystem.from_uri("mock:///")[0]
            self.opened: list[str] = []

        def open_output_stream(self, path: str):
            self.opened.append(path)
            return self.inner.open_output_stream(path)

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

    store = ObjectStore()
    store.inner.create_dir("bucket/out", recursive=True)  # S3 has no folders; mock does
    monkeypatch.setattr(storage, "filesystem", lambda root: store)
    key = place_of("s3://bucket/out/x.png")
    storage.write_once(key, b"object")
    assert store.opened == ["bucket/out/x.png"]  # the final key only, no temp object
    assert storage.read_bytes(key) == b"object"


def test_a_manifest_on_a_store_that_cannot_append_is_rewritten_whole():
    where = "mock:///runs/m.jsonl"
    book = Manifest.open(where)
    book.add(Record("a", "o/a", "done", output_size=1))
    book.close()
    assert set(read_manifest(where)) == {"a"}


def test_globs_on_uris_match_folder_by_folder(tmp_path):
    assert _glob_match(["a", "b", "c.png"], ["**", "*.png"])
    assert _glob_match(["c.png"], ["**", "*.png"])
    assert not _glob_match(["a", "c.png"], ["*.png"])
    make_images(tmp_path / "in" / "deep", 3)
    make_images(tmp_path / "in", 2, seed=1)
    out = place_of(str(tmp_path / "in" / "out"))
    found, problems = find_inputs([f"{(tmp_path / 'in').as_uri()}/**/*.png"], False, out)
    assert problems == [] and len(found) == 5  # every .png at any depth
    assert {s.relative for s in found} == {"img00_RGB.png", "img01_RGBA.png", "img02_L.png"}
    found, _ = find_inputs([(tmp_path / "in").as_uri()], True, out)
    assert sorted(s.relative for s in found) == [
        "deep/img00_RGB.png", "deep/img01_RGBA.png", "deep/img02_L.png",
        "img00_RGB.png", "img01_RGBA.png",
    ]  # fmt: skip
    _, problems = find_inputs([(tmp_path / "nothing").as_uri()], False, out)
    assert "no such file or folder" in problems[0]


def test_missing_pyarrow_names_the_extra(monkeypatch):
    from overnet.errors import MissingDependencyError
    from overnet.scaleout.storage import filesystem

    monkeypatch.setitem(sys.modules, "pyarrow.fs", None)
    filesystem.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"overnet\[ray\]"):
            filesystem("s3://bucket")
    finally:
        filesystem.cache_clear()


def test_the_package_imports_neither_ray_pyarrow_nor_torch():
    code = (
        "import sys, overnet.scaleout, overnet.cli.ray_options\n"
        "print([m for m in ('ray', 'pyarrow', 'torch', 'pandas') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# -- manifest ----------------------------------------------------------------------------
def test_the_manifest_keeps_the_last_record_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "m.jsonl"
    book = Manifest.open(str(path))
    book.add(Record("b", "out/b", "failed", "bad"))
    book.add(Record("a", "out/a", "done", output_size=3, sha256="x"))
    book.add(Record("b", "out/b", "done", output_size=4))
    assert len(path.read_text().splitlines()) == 3  # appended as they settle
    with open(path, "a") as fh:
        fh.write('{"input": "c", "out')  # a crash mid-line
    assert set(read_manifest(str(path))) == {"a", "b"}
    book.close()  # compacted: one line per input, sorted
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["input"], r["status"]) for r in lines] == [("a", "done"), ("b", "done")]
    Manifest.open(str(tmp_path / "empty.jsonl")).close()  # nothing settled: no file
    assert not (tmp_path / "empty.jsonl").exists()


# -- what a rerun does ---------------------------------------------------------------------
def _plan(tmp_path, earlier, overwrite=False, fmt=None):
    out = place_of(str(tmp_path / "out"))
    sources, _ = find_inputs([str(tmp_path / "in")], False, out)
    return make_plan(sources, out, earlier, Naming(fmt=fmt), overwrite)


def test_a_rerun_trusts_the_manifest_only_while_the_output_agrees(tmp_path):
    make_images(tmp_path / "in", 4)
    (tmp_path / "out").mkdir()
    names = sorted(p.name for p in (tmp_path / "in").iterdir())
    ins = [str((tmp_path / "in" / n).resolve()) for n in names]
    outs = [tmp_path / "out" / n for n in names]
    for path in outs[:3]:
        path.write_bytes(b"12345")
    earlier = {
        ins[0]: Record(ins[0], str(outs[0]), "done", output_size=5, sha256="s0"),
        ins[1]: Record(ins[1], str(outs[1]), "done", output_size=9),  # size differs
        ins[3]: Record(ins[3], str(outs[3]), "failed", "boom"),
    }
    plan = _plan(tmp_path, earlier)
    assert [(r.input, r.status, r.sha256) for r in plan.settled] == [(ins[0], "skipped", "s0")]
    actions = {row["input"]: row["action"] for row in plan.rows}
    # output of a different size: redo; output without a record: hash it and skip (as the
    # local command skips existing outputs); a failed file: try again
    assert actions == {ins[1]: "verify", ins[2]: "verify", ins[3]: "upscale"}
    outs[1].unlink()
    assert {r["input"]: r["action"] for r in _plan(tmp_path, earlier).rows}[ins[1]] == "upscale"
    redo = _plan(tmp_path, earlier, overwrite=True)
    assert not redo.settled and {r["action"] for r in redo.rows} == {"upscale"}


def test_outputs_that_collide_or_land_on_an_input_are_refused(tmp_path):
    folder = tmp_path / "in"
    make_images(folder, 1)
    (folder / "img00_RGB.jpg").write_bytes((folder / "img00_RGB.png").read_bytes())
    plan = _plan(tmp_path, {}, fmt="png")
    assert len(plan.rows) == 1 and "also the output of" in plan.settled[0].error
    out = place_of(str(folder))
    sources, _ = find_inputs([str(folder)], False, out)
    plan = make_plan(sources, out, {}, Naming(), False)
    assert all("would overwrite an input" in r.error for r in plan.settled)


def test_no_inputs_is_an_input_error_before_anything_is_written(tmp_path):
    from overnet.errors import InputError
    from overnet.scaleout import upscale_on_ray

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no input images or videos"):
        upscale_on_ray([str(tmp_path / "empty")], tmp_path / "out", "x2")
    assert not (tmp_path / "out").exists()


# -- stages and the actor, called directly -------------------------------------------------
def test_stages_read_and_write_bytes_and_report_failures(tmp_path):
    source = tmp_path / "a.png"
    source.write_bytes(b"abc")
    target = tmp_path / "out" / "a.png"
    row = new_row(input=str(source), in_path=str(source), output=str(target),
                  out_path=str(target), fmt="png")  # fmt: skip
    row = read_stage(row)
    assert row["data"] == b"abc" and row["input_size"] == 3 and row["status"] == ""
    row["data"] = b"output"
    row = write_stage(row)
    assert target.read_bytes() == b"output" and row["data"] == b""
    record = record_of(row)
    assert record.status == "done" and record.output_size == 6 and len(record.sha256) == 64
    missing = read_stage(new_row(input="gone.png", in_path=str(tmp_path / "gone.png")))
    assert missing["status"] == "failed" and "could not read the input gone.png" in missing["error"]


def test_the_actor_names_the_input_in_errors_and_matches_the_local_bytes(
    tmp_path, x2_onnx, monkeypatch
):
    pytest.importorskip("openvino")
    from overnet.scaleout import actor as actor_module
    from overnet.scaleout.actor import JobSpec, UpscaleActor

    monkeypatch.setattr(actor_module, "claim_cpus", lambda threads: [])  # keep pytest's CPUs
    from tests.scaleout.conftest import upscale_locally

    folder = tmp_path / "in"
    make_images(folder, 2)
    upscale_locally(folder, tmp_path / "ref", x2_onnx, "--threads", "1")
    actor = UpscaleActor(JobSpec(str(x2_onnx), threads=1))
    for name in ("img00_RGB.png", "img01_RGBA.png"):
        row = new_row(input=f"s3://b/{name}", in_path=f"b/{name}", fmt="png")
        row["data"] = (folder / name).read_bytes()
        done = actor(row)
        assert done["status"] == "" and done["data"] == (tmp_path / "ref" / name).read_bytes()
        assert done["pid"] and done["session"].startswith("openvino")
    broken = new_row(input="s3://b/broken.png", in_path="b/broken.png", fmt="png", data=b"x")
    failed = actor(broken)
    assert failed["status"] == "failed" and "s3://b/broken.png" in failed["error"]
    assert "overnet-ray-" not in failed["error"]  # the scratch file is not named


def test_actors_on_one_node_claim_cpus_of_their_own(tmp_path):
    import os

    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs Linux and 2 CPUs")
    claim = (
        "import os, sys\n"
        "from overnet.scaleout.actor import claim_cpus\n"
        "held = claim_cpus(1)\n"
        "print(len(held), sorted(os.sched_getaffinity(0)), flush=True)\n"
        "sys.stdin.readline()\n"  # keeps its claim until told to go
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    first = subprocess.Popen(
        [sys.executable, "-c", claim], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    try:
        one = first.stdout.readline().split(maxsplit=1)
        second = subprocess.run(
            [sys.executable, "-c", claim], input="\n", capture_output=True, text=True, env=env,
            timeout=60,
        )  # fmt: skip
        two = second.stdout.split(maxsplit=1)
    finally:
        first.communicate("\n", timeout=60)
    assert one[0] == two[0] == "1" and len(json.loads(one[1])) == 1
    assert one[1] != two[1]  # different CPUs: OpenVINO pins each actor to its own


def test_a_model_uri_is_cached_by_content_in_a_private_folder(tmp_path, monkeypatch):
    import hashlib
    import os
    import stat
    import tempfile

    from overnet.errors import OverNetError
    from overnet.scaleout.nodefiles import fetch_model

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    model = tmp_path / "store" / "x2.onnx"
    model.parent.mkdir()
    model.write_bytes(b"model bytes")
    digest = hashlib.sha256(b"model bytes").hexdigest()
    local = fetch_model(model.as_uri(), digest)
    assert Path(local).read_bytes() == b"model bytes" and Path(local).name == "x2.onnx"
    folder = tmp_path / "tmp" / f"overnet-{os.getuid()}"
    assert Path(local).parent == folder / "models" / digest
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert fetch_model(model.as_uri(), digest) == local  # cached: the same file
    Path(local).write_bytes(b"swapped in")  # a cached file that no longer hashes right
    assert Path(fetch_model(model.as_uri(), digest)).read_bytes() == b"model bytes"
    model.write_bytes(b"a new version")  # the store changed after the driver hashed it
    os.unlink(local)
    with pytest.raises(OverNetError, match="changed during the run"):
        fetch_model(model.as_uri(), digest)


def test_the_private_folder_is_refused_when_it_is_not_this_users_alone(tmp_path, monkeypatch):
    import os
    import tempfile

    from overnet.scaleout.nodefiles import UnsafeFolder, claim_cpus, private_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmp_path / f"overnet-{os.getuid()}"
    victim = tmp_path / "victim"
    victim.mkdir()
    folder.symlink_to(victim)  # planted by someone else
    with pytest.raises(UnsafeFolder, match="cannot use"):
        private_folder()
    assert claim_cpus(1) == []  # pinning skipped, the actor goes on
    folder.unlink()
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # open to all: anyone could plant lock files or models
    with pytest.raises(UnsafeFolder, match="only 700 is safe"):
        private_folder()
    folder.chmod(0o700)
    lock = folder / "cpu-0.lock"
    (tmp_path / "precious").write_text("keep me")
    lock.symlink_to(tmp_path / "precious")  # a planted link is never followed
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2:
        claim_cpus(1)
    assert (tmp_path / "precious").read_text() == "keep me"


# -- report and command line ---------------------------------------------------------------
def test_the_summary_shows_each_actor_and_its_restarts():
    records = [
        Record("a", "oa", "done", seconds=1.0, actor="A" * 32, host="h", pid=1),
        Record("b", "ob", "done", seconds=1.0, actor="A" * 32, host="h", pid=2),
        Record("c", "oc", "done", seconds=0.5, actor="B" * 32, host="h", pid=3),
        Record("d.png", "od", "failed", "bad file"),
    ]
    report = ScaleoutReport(records=records, seconds=2.0, actors=2, manifest="m.jsonl")
    text = report.summary()
    assert "3 upscaled, 0 skipped" in text and "1 failed" in text and "1.5 images/s" in text
    assert "pid 1, 2, restarted 1x): 2 file(s), 2.0 s busy, 1 images/s" in text
    assert "failed: d.png: bad file" in text and not report.ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--actors", "2"], "--actors applies to Ray runs"),
        (["--manifest", "m.jsonl"], "--manifest applies to Ray runs"),
        (["-o", "s3://bucket/out"], "s3://bucket/out is a storage URI"),
    ],
)
def test_ray_options_without_ray_are_usage_errors(tmp_path, args, message):
    (tmp_path / "a.png").write_bytes(b"")
    base = ["upscale", str(tmp_path / "a.png"), "--model", "m.onnx"]
    if "-o" not in args:
        base += ["-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*base, *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_gpus_for_actors_need_a_gpu_device(tmp_path):
    result = CliRunner().invoke(
        main,
        ["upscale", str(tmp_path), "-o", str(tmp_path / "o"), "--model", "m.onnx",
         "--num-gpus", "1", "--ray", "auto"],
    )  # fmt: skip
    assert result.exit_code == 2 and "--device is cpu" in result.output, result.output


def test_encoder_options_are_checked_on_the_driver_before_ray_starts(tmp_path, monkeypatch):
    pytest.importorskip("av")
    import overnet.scaleout as scaleout

    def never(*args, **kwargs):
        raise AssertionError("the Ray job started with an encoder option the encoder refuses")

    monkeypatch.setattr(scaleout, "upscale_on_ray", never)
    result = CliRunner().invoke(
        main,
        ["upscale", str(tmp_path), "-o", str(tmp_path / "o"), "--model", "m.onnx",
         "--encoder-option", "nosuch=1", "--ray"],
    )  # fmt: skip
    assert result.exit_code == 2 and "libx264 has no option nosuch" in result.output, result.output


# -- attempts ----------------------------------------------------------------------------
def test_the_ledger_bounds_attempts_per_file_across_worker_deaths():
    from overnet.scaleout.attempts import AttemptLedger, Where

    ledger = AttemptLedger(max_attempts=2, died={"old.png": 1})
    first, second = Where("A" * 32, "h", 1, "n1"), Where("A" * 32, "h", 2, "n1")
    assert ledger.begin("ok.png", first) == (1, "")
    ledger.end("ok.png")
    assert ledger.begin("bad.png", first) == (1, "")  # its worker dies: never ended
    assert ledger.begin("ok.png", second) == (1, "")  # a retried task: ok.png had ended
    assert ledger.begin("bad.png", second) == (2, "")  # the second death follows
    attempt, refused = ledger.begin("bad.png", Where("A" * 32, "h", 3, "n1"))
    assert attempt == 2 and "bad.png: worker died 2 time(s)" in refused
    assert "pid 2 on h" in refused and "--max-attempts 2" in refused
    assert ledger.begin("old.png", first) == (2, "")  # one death in an earlier run
    assert [(b["input"], b["attempts"]) for b in ledger.drain()] == [
        ("ok.png", 1), ("bad.png", 1), ("ok.png", 1), ("bad.png", 2), ("old.png", 2),
    ]  # fmt: skip
    assert ledger.drain() == []


def test_started_records_stay_only_when_the_driver_died(tmp_path):
    from dataclasses import replace

    where = str(tmp_path / "m.jsonl")
    book = Manifest.open(where)
    book.add(Record("a.png", "", "started", attempts=1))
    book.add(Record("b.png", "", "started", attempts=1))
    book.add(Record("a.png", "oa", "done", attempts=1))
    lines = Path(where).read_text().splitlines()
    assert [json.loads(x)["status"] for x in lines] == ["started", "started", "done"]
    book.close()  # the driver lived: b.png was interrupted, not killed
    assert {k: r.status for k, r in read_manifest(where).items()} == {"a.png": "done"}
    crashed = Manifest.open(where)
    crashed.add(Record("b.png", "", "started", attempts=2))
    crashed._stream.close()  # a driver that died never closes: its record stays
    earlier = read_manifest(where)
    assert earlier["b.png"].attempts == 2
    # the rerun's ledger starts from those deaths
    make_images(tmp_path / "in", 1)
    image = next((tmp_path / "in").iterdir())
    earlier[str(image)] = replace(earlier.pop("b.png"), input=str(image))
    sources, _ = find_inputs([str(image)], False, place_of(str(tmp_path / "out")))
    plan = make_plan(sources, place_of(str(tmp_path / "out")), earlier, Naming(), False)
    assert [row["attempts"] for row in plan.rows] == [2]
