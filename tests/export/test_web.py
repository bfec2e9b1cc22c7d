"""`overnet export --format web` without a browser: the pinned onnxruntime-web files
against the npm registry's tarball, refusals of other bytes, the site's files, the
server's headers and the CLI's option checks. The page itself: test_web_browser.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from overnet.cli import main
from overnet.errors import InputError
from overnet.export.web import exporter, ort
from overnet.export.web.serve import ISOLATION_HEADERS, SiteServer
from tests.export.web_fixtures import ort_package, ort_tarball  # noqa: F401


def test_pinned_hashes_are_those_of_the_npm_release(ort_tarball, ort_package, tmp_path):  # noqa: F811
    assert ort.sri(ort_tarball.read_bytes(), "sha512") == ort.TARBALL_INTEGRITY
    files = ort_package  # read_package checked each file against INTEGRITY
    assert sorted(files) == ort.page_files()
    assert {name: ort.sri(data) for name, data in files.items()} == ort.INTEGRITY
    with tarfile.open(ort_tarball) as tar:  # the unpacked package folder (node_modules)
        names = [f"package/dist/{name}" for name in ort.page_files()]
        tar.extractall(tmp_path, members=[tar.getmember(n) for n in names], filter="data")
    assert ort.read_package(tmp_path / "package") == files


def test_other_bytes_are_refused(ort_package, tmp_path):  # noqa: F811
    package = tmp_path / "package"
    (package / "dist").mkdir(parents=True)
    for name, data in ort_package.items():
        (package / "dist" / name).write_bytes(data)
    entry = package / "dist" / "ort.wasm.min.mjs"
    entry.write_bytes(entry.read_bytes() + b"\n// changed")
    with pytest.raises(InputError, match=r"ort\.wasm\.min\.mjs differ from onnxruntime-web 1\."):
        ort.read_package(package)
    entry.unlink()
    with pytest.raises(InputError, match=r"no dist/ort\.wasm\.min\.mjs"):
        ort.read_package(package)
    (tmp_path / "broken.tgz").write_bytes(b"not a tarball")
    with pytest.raises(InputError, match="not a readable npm tarball"):
        ort.read_package(tmp_path / "broken.tgz")


def test_a_download_that_is_not_the_release_is_not_kept(tmp_path):
    class Tarball(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"\x1f\x8b" + b"x" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tarball)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/onnxruntime-web.tgz"
        with pytest.raises(InputError, match="does not match the npm registry's integrity"):
            ort.fetch_tarball(tmp_path / "cache", url=url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def _site(folder: Path, base: str) -> Path:
    """The page's files and config.json as an export writes them (no model)."""
    folder.mkdir()
    exporter._copy_site(folder, base)
    config = exporter._config(2, 3, None, 16, 2_000_000_000, base)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_site_files_name_where_onnxruntime_web_comes_from(tmp_path):
    cdn = _site(tmp_path / "cdn", ort.CDN_BASE)
    local = _site(tmp_path / "local", ort.LOCAL_BASE)
    config = json.loads((cdn / "config.json").read_text())
    assert (
        config["ort"]["base"]
        == f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ort.ORT_VERSION}/dist/"
    )
    assert config["ort"]["integrity"] == ort.INTEGRITY
    assert config["plan"]["bytes_per_input_pixel"] > 0 and config["scale"] == 2
    html = (cdn / "index.html").read_text()
    # the page may reach its own origin and the CDN's, nothing else: no upload is possible
    assert "connect-src 'self' blob: https://cdn.jsdelivr.net;" in html
    local_html = (local / "index.html").read_text()
    assert "connect-src 'self' blob: ;" in local_html and "https://" not in local_html
    assert sorted(p.name for p in local.iterdir()) == sorted([*exporter.SITE_FILES, "config.json"])


def _get(url: str) -> tuple[int, Any, bytes]:
    """Status, headers (case-insensitive) and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, b""


def test_server_sends_cross_origin_isolation_headers(tmp_path):
    site = _site(tmp_path / "site", ort.LOCAL_BASE)
    (site / "ort").mkdir()
    (site / "ort" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    with SiteServer(site, port=0).start() as server:
        assert server.url.startswith("http://127.0.0.1:")
        for path, kind in (
            ("", "text/html"),
            ("worker.mjs", "text/javascript"),
            ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
        ):
            status, headers, body = _get(server.url + path)
            assert status == 200 and body, path
            assert headers["Content-Type"].startswith(kind), (path, headers["Content-Type"])
            for name, value in ISOLATION_HEADERS.items():
                assert headers[name] == value, (path, name)
        assert _get(server.url + "missing.onnx")[0] == 404
    with pytest.raises(InputError, match="not a web export"):
        SiteServer(tmp_path, port=0)


def test_serve_command_serves_a_site_until_stopped(tmp_path):
    site = _site(tmp_path / "site", ort.LOCAL_BASE)
    command = [sys.executable, "-m", "overnet.export.web.serve", str(site), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # bounded by the process: it prints, then serves
        assert line.startswith(f"serving {site} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        status, headers, body = _get(url + "config.json")
        assert status == 200 and json.loads(body)["scale"] == 2
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    result = subprocess.run([*command[:3], str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not a web export" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fp16"], "--fp16 does not apply to --format web"),
        (["--scale", "2.5"], "--scale 2.5 is fractional: a graph ending at a fractional"),
        (["--overscale", "--scale", "2"], "--overscale exports one graph that serves every"),
        (["--opset", "17"], "--opset would be ignored: --format web exports its own ONNX"),
        (["--ort", "missing.tgz"], "--ort missing.tgz: no such file or folder"),
    ],
)
def test_cli_refuses_what_the_web_export_cannot_do(x2_weights, tmp_path, args, message):
    out = tmp_path / "site"
    command = ["export", "--weights", str(x2_weights), "--format", "web", "-o", str(out)]
    result = CliRunner().invoke(main, [*command, "--no-validate", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_cli_keeps_web_options_to_the_web_and_folders_it_did_not_write(x2_weights, tmp_path):
    onnx = ["export", "--weights", str(x2_weights), "-o", str(tmp_path / "x2.onnx")]
    result = CliRunner().invoke(main, [*onnx, "--tile", "128", "--serve"])
    assert result.exit_code == 2
    assert "--tile, --serve would be ignored: they apply to --format web only" in result.output
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"keep me")
    web = ["export", "--weights", str(x2_weights), "--format", "web", "-o", str(mine)]
    result = CliRunner().invoke(main, [*web, "--overwrite"])
    assert result.exit_code == 2 and "is not a web export" in result.output
    assert (mine / "holiday.png").read_bytes() == b"keep me"
    result = CliRunner().invoke(main, web)
    assert result.exit_code == 2 and "pass --overwrite" in result.output
    shutil.rmtree(mine)


def test_web_defaults_are_the_upscalers():
    import inspect

    from overnet.runtime import upscaler
    from overnet.units import parse_memory

    defaults = inspect.signature(exporter.export_web).parameters
    assert defaults["overlap"].default == upscaler.DEFAULT_OVERLAP
    assert parse_memory(defaults["max_memory"].default) == parse_memory(upscaler.DEFAULT_MAX_MEMORY)


def test_ort_npm_uses_the_checked_tarball_in_the_overnet_cache(
    ort_tarball,  # noqa: F811
    ort_package,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """`--ort npm` reads the tarball from the overnet cache once it is there (no download)."""
    cache = tmp_path / "cache"
    (cache / "npm").mkdir(parents=True)
    shutil.copyfile(ort_tarball, cache / "npm" / ort_tarball.name)
    monkeypatch.setenv("OVERNET_CACHE", str(cache))

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached, checked tarball must be used without a download")

    monkeypatch.setattr(ort.urllib.request, "urlopen", no_download)
    assert exporter._ort_package("npm", None) == ort_package


def test_self_check_holds_onnxruntimes_output_for_the_pattern(x2_onnx):
    """config.json's self-check: the built-in pattern and every stride-th value of
    onnxruntime's output for it, which the page compares its provider's output with."""
    import base64

    import numpy as np
    import onnxruntime

    from overnet.export.validate import sample_pattern

    check = exporter.self_check(x2_onnx)
    side = exporter.SELF_CHECK_SIDE
    x = np.frombuffer(base64.b64decode(check["input"]), "<f4").reshape(check["shape"])
    assert check["shape"] == [1, 3, side, side] and np.array_equal(x, sample_pattern(side, side))
    session = onnxruntime.InferenceSession(str(x2_onnx), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x})[0].ravel()
    assert check["output_size"] == out.size == 3 * (2 * side) ** 2
    kept = np.frombuffer(base64.b64decode(check["output"]), "<f4")
    assert check["stride"] > 1 and len(kept) <= exporter.SELF_CHECK_VALUES
    np.testing.assert_array_equal(kept, out[:: check["stride"]])
    assert kept.std() > 0.05  # a picture, not a constant a broken graph might also give
    assert 0 < check["max_abs"] < 0.01
