import pytest
import torch

from overnet.config import OverNetConfig, output_size
from overnet.errors import InputError
from overnet.model import (
    OverNet,
    count_macs,
    count_parameters,
    fold_weight_norm,
    is_folded,
    weight_norm_convs,
)
from overnet.model.network import target_size


def test_parameter_counts_match_the_upstream_models():
    assert count_parameters(OverNetConfig(upscale=3, scale=2)) == 923_358
    assert count_parameters(OverNetConfig(upscale=4, scale=3)) == 914_078


def test_multiply_adds_per_input_pixel_at_x2():
    macs = count_macs(OverNetConfig(upscale=3, scale=2), 16, 20)
    assert macs.per_input_pixel == 913_197
    assert round(count_macs(OverNetConfig(3, 2), 360, 640).total / 1e9, 1) == 210.4


@pytest.mark.parametrize("upscale", [2, 3, 4, 5, 8])
def test_every_upscale_builds_and_serves_scales_up_to_it(upscale):
    torch.manual_seed(0)
    model = OverNet(OverNetConfig(upscale=upscale, scale=upscale)).eval()
    x = torch.rand(1, 3, 9, 13)
    with torch.no_grad():
        for scale in (2, upscale, 1.5):
            assert model(x, scale).shape[-2:] == output_size(9, 13, scale)


def test_fractional_scale_rounds_half_up():
    assert output_size(9, 13, 2.5) == (23, 33)  # 22.5 -> 23, 32.5 -> 33
    model = OverNet(OverNetConfig(4, 3)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 9, 13), 2.5).shape == (2, 3, 23, 33)


@pytest.mark.parametrize("bad", [0.5, 3.5, float("nan"), "two"])
def test_scale_outside_the_model_range_is_refused(bad):
    model = OverNet(OverNetConfig(3, 2))
    with pytest.raises(InputError, match="scale"):
        model(torch.rand(1, 3, 8, 8), bad)


def test_weight_norm_wraps_the_upstream_set_of_convs():
    model = OverNet(OverNetConfig(3, 2))
    # entry, 9 RBs x 3 convs, 3 LDGs x 3 reductions, 3 + 1 body reductions, 1 upsample, exit.
    assert len(weight_norm_convs(model)) == 1 + 27 + 9 + 4 + 1 + 1
    keys = model.state_dict().keys()
    assert "entry_1.parametrizations.weight.original0" in keys
    assert "GDG1.RB1.SE.conv.0.weight" in keys  # SE is not weight-normed
    assert "Global_skip.1.weight" in keys


def test_folding_weight_norm_keeps_outputs():
    torch.manual_seed(1)
    model = OverNet(OverNetConfig(3, 2)).eval()
    # Randomise g so folding is not the identity.
    with torch.no_grad():
        for conv in weight_norm_convs(model):
            conv.parametrizations.weight.original0.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, 11, 7)
    with torch.no_grad():
        before = model(x)
        fold_weight_norm(model)
        after = model(x)
    assert is_folded(model)
    assert not any("parametrizations" in k for k in model.state_dict())
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"upscale": 6}, {"upscale": 3, "scale": 4}, {"channels": 40}])
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(InputError):
        OverNetConfig(**kwargs)


@pytest.mark.parametrize(
    ("height", "width", "scale", "want"),
    [
        (5, 5, 2.5, (13, 13)),  # 12.5 -> 13 (round() would give 12)
        (3, 1, 1.5, (5, 2)),  # 4.5 -> 5, 1.5 -> 2
        (15, 25, 2.1, (32, 53)),  # 31.5 -> 32, 52.5 -> 53
        (25, 45, 2.3, (58, 104)),  # 57.5 -> 58: 25 * 2.3 is 57.4999... in float64
        (45, 85, 1.3, (59, 111)),  # 58.5 -> 59: 45 * 1.3 is 58.49999... in float32
        (7, 9, 3, (21, 27)),
    ],
)
def test_output_size_rounds_exact_halves_up(height, width, scale, want):
    assert output_size(height, width, scale) == want
    x = torch.rand(1, 3, height, width)
    assert target_size(x, scale) == want
    model = OverNet(OverNetConfig(4, 3)).eval()
    with torch.no_grad():
        assert model(x, scale).shape[-2:] == want
