"""Fixtures of the web export tests: the pinned onnxruntime-web tarball (downloaded once
from the npm registry into the git-ignored ``.cache/npm`` of the repository, checked
against the registry's integrity) and an x2 site exported with it and served on
127.0.0.1 by the product's own command, `overnet export --format web --serve`."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from overnet.errors import InputError
from tests.conftest import ROOT

#: where the tests keep the npm tarball (git-ignored): CI downloads it once per clone
NPM_CACHE = ROOT / ".cache" / "npm"
#: the tile side the browser test forces: butterfly (128x128) becomes 4 tiles of 80x80
#: overlapping by 16 pixels on both axes
TILE, OVERLAP = 80, 16
#: the export (about 20 s on a busy 2-core machine) and the server's start
EXPORT_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def ort_tarball() -> Path:
    from overnet.export.web.ort import fetch_tarball

    try:
        return fetch_tarball(NPM_CACHE)
    except InputError as exc:
        if "cannot download" in str(exc):
            pytest.skip(f"the npm registry is out of reach: {exc}")
        raise


@pytest.fixture(scope="session")
def ort_package(ort_tarball) -> dict[str, bytes]:
    """The page's onnxruntime-web files from the tarball (checked against their pins)."""
    from overnet.export.web.ort import read_package

    return read_package(ort_tarball)


@pytest.fixture(scope="module")
def served_site(tmp_path_factory, x2_weights, ort_tarball) -> Iterator[tuple[Path, str]]:
    """(folder, URL): the x2 weights exported by `overnet export --format web --serve`
    (onnxruntime-web copied from the npm tarball) and served by that same command on
    127.0.0.1; the process is stopped after the module's tests."""
    folder = tmp_path_factory.mktemp("web") / "site"
    command = [
        sys.executable, "-m", "overnet.cli", "export", "--weights", str(x2_weights),
        "--format", "web", "-o", str(folder), "--ort", str(ort_tarball),
        "--tile", str(TILE), "--overlap", str(OVERLAP), "--no-validate",
        "--serve", "--port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout])
    reader.start()
    try:
        said, url = [], None
        deadline = time.monotonic() + EXPORT_TIMEOUT_S
        while url is None and time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            said.append(line)
            if line.startswith("serving "):
                url = line.split(" at ")[1].split()[0]
        assert url is not None, f"`overnet export --serve` did not serve: {''.join(said)}"
        yield folder, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=10)
        process.stdout.close()


@pytest.fixture(scope="module")
def x2_site(served_site) -> Path:
    return served_site[0]


@pytest.fixture(scope="module")
def site_url(served_site) -> str:
    return served_site[1]


@pytest.fixture(scope="module")
def overscale_site(tmp_path_factory, x2_weights, ort_tarball) -> Iterator[tuple[Path, str]]:
    """(folder, URL): the x2 weights exported with --overscale (any scale in [1, 3]),
    served by SiteServer on 127.0.0.1."""
    from overnet.export.web import export_web
    from overnet.export.web.serve import SiteServer

    folder = tmp_path_factory.mktemp("web") / "overscale"
    export_web(x2_weights, folder, overscale=True, ort=ort_tarball, validate=False)
    with SiteServer(folder, port=0).start() as server:
        yield folder, server.url
