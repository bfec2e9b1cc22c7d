"""Faults that need no Ray: object keys that would leave the output folder, and uploads
that stream instead of holding a file (the Ray runs with faults: test_multinode.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("pyarrow")


# -- refused keys ----------------------------------------------------------------------
#: object keys below s3://bucket/uploads/ that name files outside it, or oddly
TRAVERSAL_KEYS = [
    "bucket/uploads/../../../../tmp/evil.png",
    "bucket/uploads/a/../../escape.png",
    "bucket/uploads//abs.png",
    "bucket/uploads/./dot.png",
]


def test_keys_that_leave_the_input_folder_are_refused_each_alone(monkeypatch, tmp_path):
    import pyarrow.fs

    from overnet.scaleout import plan as plan_module
    from overnet.scaleout.plan import Naming, find_inputs, make_plan
    from overnet.scaleout.storage import Place, place_of

    keys = [*TRAVERSAL_KEYS, "bucket/uploads/good.png", "bucket/uploads/sub/fine.png"]

    class Folder:  # what S3's listing of the prefix returns: keys as they were written
        type = pyarrow.fs.FileType.Directory

    monkeypatch.setattr(plan_module, "file_info", lambda place: Folder())
    monkeypatch.setattr(
        plan_module,
        "list_files",
        lambda place, recursive: [(Place("s3://bucket", k), 5) for k in keys],
    )
    out = place_of(str(tmp_path / "out"))
    sources, problems = find_inputs(["s3://bucket/uploads/"], True, out)
    assert problems == [] and len(sources) == len(keys)
    monkeypatch.setattr(plan_module, "list_files", lambda place, recursive: [])
    plan = make_plan(sources, out, {}, Naming(), overwrite=False)
    refused = {r.input: r for r in plan.settled}
    assert sorted(refused) == sorted("s3://" + k for k in TRAVERSAL_KEYS)
    for record in refused.values():
        assert record.status == "failed" and record.output == ""
        assert record.input in record.error and "refused" in record.error
    rows = sorted(row["out_path"] for row in plan.rows)
    assert rows == [str(tmp_path / "out" / "good.png"), str(tmp_path / "out" / "sub" / "fine.png")]


def test_an_output_name_that_would_leave_the_output_folder_is_refused():
    from overnet.errors import InputError
    from overnet.scaleout.plan import _inside
    from overnet.scaleout.storage import place_of, safe_relative

    out = place_of("s3://bucket/out")
    assert _inside(out, "a/b.png").path == "bucket/out/a/b.png"
    with pytest.raises(InputError, match="refused"):
        _inside(out, "../../etc/x.png")
    with pytest.raises(InputError, match="refused"):
        safe_relative("bucket/outside.png", "bucket/out")


# -- streaming uploads -------------------------------------------------------------------
UPLOAD_MB = 1024
#: what an upload may add to the process's peak RSS: chunks of 4 MiB, a few in flight
UPLOAD_LIMIT_MB = 64

_UPLOAD = """
import sys, pyarrow.fs
from overnet.scaleout import storage
from overnet.scaleout.storage import Place

class ObjectStore:  # the local disk, driven the way overnet drives S3 and GCS
    type_name = "s3"
    def __init__(self):
        self.inner = pyarrow.fs.LocalFileSystem()
    def __getattr__(self, name):
        return getattr(self.inner, name)

storage.filesystem = lambda root: ObjectStore()
source, target = sys.argv[1], sys.argv[2]
storage.write_once(Place("s3://b", target + ".warm"), b"x")  # first use: not measured
def status(key):  # kB
    text = open("/proc/self/status").read()
    return int(text.split(key + ":")[1].split()[0])
with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM, the peak RSS, to now
    fh.write("5")
before = status("VmRSS")
storage.upload_file(source, Place("s3://b", target))
print((status("VmHWM") - before) // 1024)
"""


@pytest.mark.slow
def test_a_large_upload_streams_in_small_chunks(tmp_path):
    """A 1 GiB output is uploaded with the process's peak RSS growing by a few chunks."""
    source = tmp_path / "video.mkv"
    with open(source, "wb") as fh:  # real bytes, not a sparse file: the reads are real
        block = os.urandom(1 << 20)
        for _ in range(UPLOAD_MB):
            fh.write(block)
    target = tmp_path / "bucket" / "out" / "video.mkv"
    target.parent.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", _UPLOAD, str(source), str(target)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    grew_mb = int(done.stdout.split()[-1])
    assert target.stat().st_size == source.stat().st_size
    assert grew_mb < UPLOAD_LIMIT_MB, f"peak RSS grew by {grew_mb} MiB for a {UPLOAD_MB} MiB upload"
    with open(source, "rb") as a, open(target, "rb") as b:
        while chunk := a.read(1 << 24):
            assert chunk == b.read(1 << 24)


def test_a_failed_upload_leaves_no_object(tmp_path, monkeypatch):
    import pyarrow.fs

    from overnet.scaleout import storage

    class ObjectStore:
        type_name = "s3"

        def __init__(self) -> None:
            self.inner = pyarrow.fs.LocalFileSystem()

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

    class Broken:
        def __init__(self) -> None:
            self.reads = 0

        def read(self, size: int) -> bytes:
            self.reads += 1
            if self.reads > 2:
                raise OSError("disk gone")
            return b"x" * size

    monkeypatch.setattr(storage, "filesystem", lambda root: ObjectStore())
    target = tmp_path / "out.mkv"
    with pytest.raises(OSError, match="disk gone"):
        storage._write_stream(storage.Place("s3://b", str(target)), Broken())
    assert not target.exists()  # what close completed was deleted
