"""`overnet upscale` with a slow nearest-neighbour session, for the interrupt tests:

python tests/video/slow_cli.py SECONDS_PER_RUN [upscale arguments...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import overnet.runtime
from overnet.cli import main
from tests.runtime.doubles import NearestSession


class SlowNearest(NearestSession):
    def _run(self, batch):
        time.sleep(DELAY)
        return super()._run(batch)


DELAY = float(sys.argv[1])
overnet.runtime.open_session = lambda *args, **kwargs: SlowNearest(2)
main(["upscale", "--model", "unused.onnx", *sys.argv[2:]], prog_name="overnet")
