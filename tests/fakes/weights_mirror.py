"""A mirror of the upstream weights layout on 127.0.0.1 (the base-URL override of
``overnet.weights.pretrained``), serving the shared upstream ONNX files."""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from overnet.weights import pretrained
from tests.conftest import shared_file


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; ``mode`` "truncate" sends half a file under a full length."""

    mode = "ok"
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.mode != "truncate":
            return super().do_GET()
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        return None

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A mirror of the upstream layout on 127.0.0.1, and an empty overnet cache."""
    root = tmp_path / "mirror"
    for name, model in pretrained.PRETRAINED.items():
        target = root / model.remote_path
        target.parent.mkdir(parents=True)
        shutil.copyfile(shared_file("weights", "upstream-onnx", f"OverNet_{name}.onnx"), target)
    handler = type("Handler", (_Handler,), {"requests": [], "mode": "ok"})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(pretrained.BASE_URL_ENV, f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setattr(pretrained, "TIMEOUT_S", 10.0)
    try:
        yield root, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
