"""Cluster faults on this machine: the cost of losing a worker node mid-job, the memory
of streaming a large upload, and which object keys are refused.

    python benchmarks/scaleout_faults.py [--images 32] [--size 160x120] [--rounds 2]
                                         [--upload-mb 1024] [--parts keys,upload,nodes]
                                         [--out benchmarks/results/scaleout-faults.txt]

Node loss: a Ray cluster of three raylets on this machine (``ray.cluster_utils.Cluster``:
a head and two worker nodes, 1 CPU each, as tests/scaleout/test_multinode.py makes it),
``upscale_on_ray`` with 2 actors x 1 thread over the same images, rounds interleaved:
one run untouched, one where the node of the first actor seen on a worker node is removed
as that actor's first result arrives (its raylet, actor and tasks die; Ray restarts the
actor on the free CPU and redoes the lost block); the node is added back between rounds.
Wall time of the whole call; the difference is the price of the loss.

Upload: a file of random bytes uploaded by ``overnet.scaleout.storage.upload_file``
through the object-store path (the S3/GCS code path over the local disk), in a child
process: peak RSS growth (VmHWM reset through /proc/self/clear_refs just before, minus
VmRSS then), against the earlier way (``write_once(place, src.read())``).

Refused keys: object keys below ``s3://bucket/uploads/`` run through the plan (a listing
stands in for S3's), with the record each one gets.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from cold_start import cpu  # noqa: E402
from scaleout import make_images  # noqa: E402

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
source, target, way = sys.argv[1:4]
storage.write_once(Place("s3://b", target + ".warm"), b"x")  # first use: not measured
def status(key):  # kB
    text = open("/proc/self/status").read()
    return int(text.split(key + ":")[1].split()[0])
with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM, the peak RSS, to now
    fh.write("5")
before = status("VmRSS")
begin = __import__("time").perf_counter()
if way == "streamed":
    storage.upload_file(source, Place("s3://b", target))
else:  # the earlier upload: the whole file read into memory, then written
    with open(source, "rb") as src:
        storage.write_once(Place("s3://b", target), src.read())
seconds = __import__("time").perf_counter() - begin
print((status("VmHWM") - before) / 1024, seconds)
"""


def upload_memory(work: Path, megabytes: int) -> list[str]:
    source = work / "big.bin"
    with open(source, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(megabytes):
            fh.write(block)
    lines = []
    for way in ("streamed", "whole"):
        target = work / f"uploaded-{way}.bin"
        done = subprocess.run(
            [sys.executable, "-c", _UPLOAD, str(source), str(target), way],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        grew, seconds = (float(v) for v in done.stdout.split())
        ok = target.stat().st_size == source.stat().st_size
        lines.append(
            f"upload of {megabytes} MiB, {way}: peak RSS +{grew:.0f} MiB, {seconds:.1f} s"
            + ("" if ok else " (SIZE MISMATCH)")
        )
        target.unlink()
    source.unlink()
    return lines


def refused_keys(out: Path) -> list[str]:
    import pyarrow.fs

    from overnet.scaleout import plan as plan_module
    from overnet.scaleout.plan import Naming, find_inputs, make_plan
    from overnet.scaleout.storage import Place, place_of

    keys = [
        "bucket/uploads/../../../../tmp/evil.png",
        "bucket/uploads/a/../../escape.png",
        "bucket/uploads//abs.png",
        "bucket/uploads/./dot.png",
        "bucket/uploads/good.png",
        "bucket/uploads/sub/fine.png",
    ]

    class Folder:
        type = pyarrow.fs.FileType.Directory

    plan_module.file_info = lambda place: Folder()
    plan_module.list_files = lambda place, recursive: (
        [(Place("s3://bucket", k), 5) for k in keys] if place.root else []
    )
    target = place_of(str(out))
    sources, _ = find_inputs(["s3://bucket/uploads/"], True, target)
    plan = make_plan(sources, target, {}, Naming(), overwrite=False)
    lines = [f"key {r.input}: {r.status}: {r.error}" for r in plan.settled]
    lines += [f"key {row['input']}: to do, output {row['output']}" for row in plan.rows]
    return lines


def node_loss(work: Path, model: Path, count: int, rounds: int, say) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from overnet.scaleout import Cluster as Where
    from overnet.scaleout import upscale_on_ray

    store = 80 * 2**20
    begin = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False},
    )
    workers = [cluster.add_node(num_cpus=1, object_store_memory=store) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    say(f"cluster of 3 raylets (1 CPU each) up in {time.perf_counter() - begin:.1f} s")
    times: dict[str, list[float]] = {"untouched": [], "worker node lost": []}
    try:
        for round_ in range(rounds):
            for name in times:
                removed: list[float] = []
                by_node = {node.node_id: node for node in workers}

                def lose(record, by_node=by_node, removed=removed, name=name) -> None:
                    if name == "untouched" or removed or record.node not in by_node:
                        return
                    cluster.remove_node(by_node[record.node])
                    workers.remove(by_node[record.node])
                    removed.append(time.perf_counter())

                out = work / f"out-{round_}-{len(times[name])}-{name[0]}"
                start = time.perf_counter()
                report = upscale_on_ray(
                    [str(work / "in")], out, model, threads=1, progress=False,
                    cluster=Where(actors=2, num_cpus=1), on_record=lose,
                )  # fmt: skip
                wall = time.perf_counter() - start
                if not report.ok or report.count("done") != count:
                    raise SystemExit(report.summary())
                times[name].append(wall)
                restarts = sum(len(f.pids) - 1 for f in report.per_actor())
                when = f", node removed at {removed[0] - start:.1f} s" if removed else ""
                say(f"round {round_ + 1}, {name}: {wall:.1f} s, {count / wall:.3g} images/s"
                    f"{when}, actor restarts {restarts}")  # fmt: skip
                if removed:
                    workers.append(cluster.add_node(num_cpus=1, object_store_memory=store))
                    cluster.wait_for_nodes()
    finally:
        ray.shutdown()
        cluster.shutdown()
    base = statistics.median(times["untouched"])
    lost = statistics.median(times["worker node lost"])
    say(f"median over {rounds} rounds: untouched {base:.1f} s, worker node lost {lost:.1f} s "
        f"(+{lost - base:.1f} s, x{lost / base:.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the inputs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--upload-mb", type=int, default=1024)
    parser.add_argument("--parts", default="keys,upload,nodes", help="what to measure")
    weights = ROOT.parent / "shared" / "weights" / "OverNet_x2.pth.tar"
    parser.add_argument("--weights", type=Path, default=weights)
    parser.add_argument("--out", type=Path, default=None, help="also write the lines here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    import ray

    from overnet.export import export_onnx

    start = time.perf_counter()
    parts = set(args.parts.split(","))
    say(f"# command: python benchmarks/scaleout_faults.py --images {args.images} --size "
        f"{args.size} --rounds {args.rounds} --upload-mb {args.upload_mb} "
        f"--parts {args.parts}")  # fmt: skip
    say(f"cpu: {cpu()}, {platform.machine()}; shared with up to 5 other sessions' work")
    say(f"python {platform.python_version()}, ray {ray.__version__}")
    say(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for line in refused_keys(work / "refused-out") if "keys" in parts else []:
            say(line)
        for line in upload_memory(work, args.upload_mb) if "upload" in parts else []:
            say(line)
        if "nodes" in parts:
            make_images(work / "in", args.images, width, height)
            model = export_onnx(args.weights, work / "x2.onnx", validate=False).path
            say(f"images: {args.images} x {args.size} (half PNG, half JPEG), x2, "
                "2 actors x 1 thread")  # fmt: skip
            node_loss(work, model, args.images, args.rounds, say)
    say(f"load average after: {os.getloadavg()[0]:.2f}; total {time.perf_counter() - start:.0f} s")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
