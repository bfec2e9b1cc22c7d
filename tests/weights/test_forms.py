"""Every checkpoint form a user may have loads to the same network."""

from __future__ import annotations

import pytest
import torch

from overnet.model import OverNet, fold_weight_norm
from overnet.weights import load_model, load_weights, save_weights


@pytest.fixture(scope="module")
def upstream(x2_weights):
    sd = torch.load(x2_weights, weights_only=True)["model_state_dict"]
    x = torch.rand(1, 3, 13, 18, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = load_model(x2_weights)(x)
    return sd, x, expected


def _as_parametrized(sd):
    out = {}
    for k, v in sd.items():
        k = k.replace(".weight_g", ".parametrizations.weight.original0")
        out[k.replace(".weight_v", ".parametrizations.weight.original1")] = v
    return out


def _folded(sd):
    return fold_weight_norm(load_weights_from(sd)).state_dict()


def load_weights_from(sd):
    model = OverNet(weight_norm=True)
    model.load_state_dict(_as_parametrized(sd))
    return model


FORMS = {
    "upstream full checkpoint": lambda sd: {
        "step": 600000,
        "model_state_dict": sd,
        "best_psnr": 38.1,
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]},
    },
    "bare state dict": lambda sd: dict(sd),
    "DataParallel prefix": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "torch.compile prefix": lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
    "DDP + compile prefixes": lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},
    "parametrization keys": _as_parametrized,
    "folded weights": _folded,
    "state_dict wrapper": lambda sd: {"state_dict": _folded(sd), "epoch": 3},
    "fp16 folded": lambda sd: {k: v.half() for k, v in _folded(sd).items()},
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_checkpoint_forms_round_trip(form, upstream, tmp_path):
    sd, x, expected = upstream
    path = tmp_path / "ckpt.pth"
    torch.save(FORMS[form](sd), path)
    loaded = load_weights(path)
    assert loaded.config.upscale == 3 and loaded.config.scale == 2
    with torch.no_grad():
        out = loaded.build()(x)
    tol = 2e-3 if form.startswith("fp16") else 1e-6
    torch.testing.assert_close(out, expected, rtol=0, atol=tol)


def test_upscale_is_detected_from_shapes_not_the_name(x3_weights, tmp_path):
    misleading = tmp_path / "OverNet_x2.pth.tar"
    misleading.write_bytes(x3_weights.read_bytes())
    config = load_weights(misleading).config
    assert (config.upscale, config.scale) == (4, 3)


@pytest.mark.parametrize("fold", [True, False])
def test_safetensors_round_trip_keeps_config_and_outputs(fold, upstream, x2_weights, tmp_path):
    _, x, expected = upstream
    model = load_model(x2_weights, fold=False)
    path = save_weights(model, tmp_path / "x2.safetensors", fold=fold)
    loaded = load_weights(path)
    assert loaded.container == "safetensors"
    assert loaded.weight_norm is (not fold)
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.build()(x), expected, rtol=0, atol=1e-6)
    assert not list(tmp_path.glob("*.tmp"))


def test_safetensors_keeps_a_non_default_scale(x2_weights, tmp_path):
    model = load_model(x2_weights, scale=1.5)
    path = save_weights(model, tmp_path / "x1_5.safetensors")
    assert load_weights(path).config.scale == 1.5


def test_scale_override_is_checked_against_the_upscale(x2_weights):
    assert load_weights(x2_weights, scale=3).config.scale == 3
    from overnet.errors import InputError

    with pytest.raises(InputError, match="between 1 and the model's upscale 3"):
        load_weights(x2_weights, scale=4)
