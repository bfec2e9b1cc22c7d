"""A worker-process setup hook for Ray (``runtime_env={"worker_process_setup_hook":
...}``): a Ray actor that is handed an image carrying ``MARKER`` kills its own process
with SIGKILL before decoding it, as the kernel's OOM killer or a codec crash would. Only
the cause is staged: the process really dies, and Ray and overnet see a real death."""

from __future__ import annotations

#: bytes a poison input carries (in a PNG text chunk: the image itself is valid)
MARKER = b"overnet-test-poison"


def install() -> None:
    import os
    import signal

    from overnet.scaleout import actor

    run = actor.UpscaleActor._run

    def run_or_die(self, row):
        if MARKER in row["data"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return run(self, row)

    actor.UpscaleActor._run = run_or_die


def make_poison(path) -> None:
    """A valid 32x24 PNG that carries MARKER in a tEXt chunk."""
    import numpy as np
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKER.decode())
    pixels = (np.random.default_rng(7).random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, pnginfo=info)
