"""The INT8 run-time guard's mechanics on real sessions: per-tile statistics, tiles above
the threshold recomputed by the float session (with a halo) and pasted, the rest left as
the INT8 session made it, the counts, the whole image in float when most of it is flagged,
and the metadata round trip. (The guard of a real INT8 IR: tests/export/test_int8.py.)"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

from overnet.errors import InputError
from overnet.runtime import open_session
from overnet.runtime.int8_guard import (
    METADATA_KEY,
    GuardedSession,
    GuardSpec,
    calibrate_guard,
    tile_grid,
    tile_statistics,
)


def _half_noise(h: int = 64, w: int = 128) -> np.ndarray:
    """Left half a smooth ramp, right half uniform noise (NCHW float32 [0, 1])."""
    x = np.empty((1, 3, h, w), np.float32)
    x[..., : w // 2] = np.linspace(0.2, 0.8, w // 2, dtype=np.float32)
    x[..., w // 2 :] = np.random.default_rng(0).random((1, 3, h, w // 2), dtype=np.float32)
    return x


def test_noise_tiles_stand_out_in_the_texture_statistics():
    x = _half_noise()
    assert tile_grid(64, 128, 32)[-1] == (32, 64, 96, 128) and len(tile_grid(70, 70, 32)) == 9
    for name in ("laplacian", "gradient", "std"):
        values = tile_statistics(x, name, 32)[0]  # 2 rows x 4 columns of tiles
        smooth, noisy = values.reshape(2, 4)[:, :2], values.reshape(2, 4)[:, 2:]
        assert noisy.min() > 3 * smooth.max(), name
    with pytest.raises(InputError, match="guard statistic must be one of"):
        tile_statistics(x, "entropy", 32)


def test_flagged_tiles_run_in_float_and_the_rest_stay(x2_onnx):
    x = _half_noise()
    calibrated = calibrate_guard([x[..., :64], x[..., 64:]], "laplacian", 2.0, tile=32)
    assert calibrated.threshold == pytest.approx(2.0 * calibrated.calibrated["max"])
    # a threshold between the ramp's tiles (the one at the seam sees a noisy neighbour in
    # its last column) and the noise's
    spec = GuardSpec("laplacian", 0.1, tile=32)
    fast = open_session(x2_onnx, "openvino")
    reference = open_session(x2_onnx, "onnxruntime")
    whole_fast, whole_ref = fast.run(x), reference.run(x)
    opened = []

    def open_float():
        opened.append(True)
        return open_session(x2_onnx, "onnxruntime")

    with GuardedSession(fast, open_float, spec) as guarded:
        out = guarded.run(x)
        assert (guarded.counts.tiles, guarded.counts.float_tiles) == (8, 4)
        assert guarded.counts.whole_float_images == 0 and "4 of 8 tiles" in guarded.counts.format()
        # the smooth half is the fast session's own output; each noisy tile the float
        # session's output for that tile with 16 px of context (the model's squeeze-
        # excitation pools the whole input, so a tile differs a little from the whole run)
        np.testing.assert_array_equal(out[..., :120], whole_fast[..., :120])
        window = reference.run(np.ascontiguousarray(x[..., 0:48, 80:128]))  # tile (0,32,96,128)
        np.testing.assert_array_equal(out[..., 0:64, 192:256], window[..., 0:64, 32:96])
        mse = float(np.mean((out[..., 128:] - whole_ref[..., 128:]) ** 2))
        assert 10 * np.log10(1 / mse) > 30
        assert not np.array_equal(out[..., 136:], whole_fast[..., 136:])
        noise = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
        np.testing.assert_allclose(guarded.run(noise), reference.run(noise), atol=1e-4)
        assert guarded.counts.whole_float_images == 1
        # a batch of both kinds: INT8 (and patches) for the first, float for the second
        other = np.random.default_rng(2).random((1, 3, 64, 128), dtype=np.float32)
        both = guarded.run(np.concatenate([x, other]))
        np.testing.assert_array_equal(both[0], out[0])
        np.testing.assert_allclose(both[1], reference.run(other)[0], atol=1e-4)
        assert guarded.counts.whole_float_images == 2 and guarded.counts.images == 4
    assert opened == [True] and reference.run(x).shape == (1, 3, 128, 256)
    reference.close()


def test_the_spec_round_trips_through_metadata_and_bad_ones_are_refused():
    spec = GuardSpec("gradient", 0.5, 64, 16, {"max": 0.25})
    assert GuardSpec.from_metadata({METADATA_KEY: spec.to_json()}) == spec
    assert GuardSpec.from_metadata({}) is None
    with pytest.raises(InputError, match="not valid"):
        GuardSpec.from_metadata({METADATA_KEY: '{"statistic": "x", "threshold": 1}'})
    with pytest.raises(InputError, match="not valid"):
        GuardSpec.from_metadata({METADATA_KEY: "{not json"})
