"""Bad weights files fail with a specific WeightsError and never run code."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from overnet.errors import WeightsError
from overnet.weights import load_weights


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "nope.pth")


def test_directory(tmp_path):
    with pytest.raises(WeightsError, match="directory"):
        load_weights(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_weights(tmp_path / "empty.pth")


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_file(keep, x2_weights, tmp_path):
    data = x2_weights.read_bytes()
    path = tmp_path / "cut.pth.tar"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_weights(path)


def test_truncated_safetensors(x2_weights, tmp_path):
    from overnet.weights import load_model, save_weights

    path = save_weights(load_model(x2_weights), tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match="damaged .safetensors"):
        load_weights(path)


def test_png_is_not_a_checkpoint(set5):
    with pytest.raises(WeightsError, match="is a PNG image, not a checkpoint"):
        load_weights(set5 / "HR" / "bird.png")


def test_random_bytes(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"hello world, not a model")
    with pytest.raises(WeightsError, match="not a checkpoint"):
        load_weights(tmp_path / "junk.bin")


def test_another_architecture_reports_keys(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Conv2d(64, 3, 3))
    torch.save(other.state_dict(), tmp_path / "edsr.pth")
    with pytest.raises(WeightsError, match="not an OverNet checkpoint"):
        load_weights(tmp_path / "edsr.pth")


def test_missing_and_unexpected_keys_are_listed(x2_weights, tmp_path):
    sd = torch.load(x2_weights, weights_only=True)["model_state_dict"]
    del sd["GDG2.RB3.body.0.bias"]
    sd["extra_head.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "edited.pth")
    with pytest.raises(WeightsError) as info:
        load_weights(tmp_path / "edited.pth").build()
    message = str(info.value)
    assert "1 missing keys" in message and "GDG2.RB3.body.0.bias" in message
    assert "1 unexpected keys" in message and "extra_head.weight" in message


def test_mismatched_shapes(x2_weights, tmp_path):
    sd = torch.load(x2_weights, weights_only=True)["model_state_dict"]
    sd["GDG1.RB1.body.0.bias"] = torch.zeros(100)
    torch.save(sd, tmp_path / "shapes.pth")
    with pytest.raises(
        WeightsError, match=r"GDG1.RB1.body.0.bias: expected \(384,\), got \(100,\)"
    ):
        load_weights(tmp_path / "shapes.pth").build()


class _Payload:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_pickle_with_code_payload_is_refused_and_never_runs(container, tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = str(marker)
    path = tmp_path / "evil.pth"
    if container == "zip":
        torch.save({"model_state_dict": {"x": payload}}, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump({"x": payload}, fh, protocol=2)
    assert not marker.exists()
    with pytest.raises(WeightsError, match="refused to load"):
        load_weights(path)
    assert not marker.exists(), "the payload ran"


def test_non_dict_pickle(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_weights(tmp_path / "list.pth")
