"""`overnet serve`: options checked before Ray starts, and the command end to end in a
subprocess (its own local Ray): ready, answering with the token, drained by SIGTERM."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from click.testing import CliRunner

from overnet.cli import main
from overnet.serve import Client
from tests.serve.conftest import encoded, free_port, noise


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--replicas", "2", "--min-replicas", "1", "--max-replicas", "3"], "not both"),
        (["--min-replicas", "1"], "both --min-replicas and --max-replicas"),
        (["--min-replicas", "3", "--max-replicas", "2"], "--min-replicas <= --max-replicas"),
        (["--tile", "0"], "--tile"),
        (["--max-body", "4096"], "a bare number is ambiguous"),
    ],
)
def test_options_are_checked_before_ray_starts(tmp_path, extra, message):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    result = CliRunner().invoke(main, ["serve", str(model), *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()


def test_a_missing_model_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "none.onnx")])
    assert result.exit_code == 2 and "model not found" in result.output


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_empty_token_is_refused_before_ray_starts(tmp_path, monkeypatch, how):
    """A secret template left unfilled must not open the service (fail closed)."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    monkeypatch.setenv("OVERNET_SERVE_TOKEN", "" if how == "environment" else "unused")
    extra = ["--token", " "] if how == "option" else []
    result = CliRunner().invoke(main, ["serve", str(model), *extra])
    assert result.exit_code == 2 and "the token is empty" in result.output, result.output
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()


def test_help_defaults_come_from_the_library():
    from overnet.serve.config import DEFAULT_HOST, DEFAULT_MAX_BATCH, DEFAULT_PORT, Limits

    result = CliRunner().invoke(main, ["serve", "--help"])
    text = " ".join(result.output.split())
    assert f"[default: {DEFAULT_HOST}]" in text and f"[default: {DEFAULT_PORT};" in text
    assert f"[default: {DEFAULT_MAX_BATCH};" in text and "[default: 50MB]" in text
    assert f"[default: {Limits().max_queue};" in text and "[default: overnet]" in text
    assert "env var: OVERNET_SERVE_TOKEN" in text and "MODEL..." in text


class _Output:
    """The lines a subprocess prints, collected by a thread (so the test can wait for one
    without blocking on the pipe)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def text(self, join_s: float = 0) -> str:
        self._thread.join(join_s)
        return "".join(self.lines)


def _wait_ready(url: str, process: subprocess.Popen, output: _Output, seconds: float) -> None:
    """Until the command says it serves (its application RUNNING for Ray Serve, which can
    lag behind the replica's first answer) and /healthz answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, output.text(5)[-3000:]
        if "serving " in output.text():
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, http.client.HTTPException):
                # not listening yet, or (while Ray starts its own processes on random
                # ports) something else answered on the port
                pass
        time.sleep(1)
    raise AssertionError(f"overnet serve was not ready within {seconds} s")


def test_overnet_serve_end_to_end(x2_onnx, tmp_path):
    pytest.importorskip("ray.serve")
    pytest.importorskip("onnxruntime")
    port = free_port()
    command = [
        sys.executable, "-m", "overnet.cli", "serve", str(x2_onnx), "--backend", "onnxruntime",
        "--threads", "1", "--tile", "32", "--port", str(port), "--name", "tiny",
    ]  # fmt: skip
    env = {**os.environ, "OVERNET_SERVE_TOKEN": "cli-token"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    lines = _Output(process)
    try:
        _wait_ready(url, process, lines, 150)
        client = Client(url, token="cli-token", timeout=60)
        assert client.models()[0]["name"] == "x2"
        result = client.upscale(encoded(noise(48, 40)))
        assert result.image().size == (96, 80)
        # a body over --max-body: the proxy answers from its length, reading none of it
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", "/v1/upscale")
        connection.putheader("Content-Length", str(10**9))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and b"body_too_large" in response.read()
        connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = lines.text(10)
    assert process.returncode == 0, output[-3000:]
    assert f"serving x2 as tiny at {url} with 1 replica(s)" in output
    assert "stopping: draining in-flight requests" in output


def test_sigterm_stops_a_service_whose_replicas_cannot_be_placed(x2_onnx):
    """Waiting for a GPU the node lacks: SIGTERM still stops the command at once (exit
    130), and it leaves no Ray behind."""
    pytest.importorskip("ray.serve")
    command = [
        sys.executable, "-m", "overnet.cli", "serve", str(x2_onnx), "--num-gpus", "1",
        "--port", str(free_port()), "--start-timeout", "300",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:  # until Serve runs and waits for the replica
            line = process.stdout.readline()
            lines.append(line)
            if "Started Serve" in line or not line:
                break
        assert any("Started Serve" in ln for ln in lines), "".join(lines)[-3000:]
        time.sleep(3)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
        stopped = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, "".join(lines) + output[-3000:]
    assert "interrupted while starting" in output and stopped < 60


def test_a_model_the_replicas_cannot_load_is_one_error_line(tmp_path):
    pytest.importorskip("ray.serve")
    pytest.importorskip("onnxruntime")
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not an onnx model" * 64)
    command = [
        sys.executable, "-m", "overnet.cli", "serve", str(model), "--backend", "onnxruntime",
        "--tile", "32", "--port", str(free_port()),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 2, result.stderr[-3000:]
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("error: "))
    assert "the replicas could not start" in line and "not a readable ONNX model" in line


def test_the_client_imports_without_numpy_or_ray():
    code = (
        "import sys, overnet.serve; from overnet.serve import Client, AsyncClient; "
        "print(sorted(m for m in ('numpy', 'PIL', 'ray', 'starlette') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
