"""Fixtures of the web export tests: the pinned onnxruntime-web tarball (downloaded once
from the npm registry into the git-ignored ``.cache/npm`` of the repository, checked
against the registry's integrity) and an x2 site exported with it, served on 127.0.0.1
by the product's own server."""

from __future__ import annotations

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
def x2_site(tmp_path_factory, x2_weights, ort_tarball) -> Path:
    """The x2 weights as a web export with the onnxruntime-web files copied in."""
    from overnet.export.web import export_web

    folder = tmp_path_factory.mktemp("web") / "site"
    export_web(x2_weights, folder, tile=TILE, overlap=OVERLAP, ort=ort_tarball, validate=False)
    return folder


@pytest.fixture(scope="module")
def site_url(x2_site) -> Iterator[str]:
    from overnet.export.web.serve import SiteServer

    with SiteServer(x2_site, port=0).start() as server:
        yield server.url
