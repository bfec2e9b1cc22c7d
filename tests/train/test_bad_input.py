"""Bad input fails early with a message naming what was expected, what came, what to do."""

from __future__ import annotations

import errno
import re

import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main
from overnet.config import OverNetConfig
from overnet.errors import OverNetError
from overnet.model import OverNet
from overnet.train import CheckpointError, InitWeightsError, TrainDataError, train
from overnet.train import checkpoint as checkpoint_module
from overnet.train.checkpoint import load_checkpoint
from overnet.train.data import load_train_set
from overnet.weights import save_weights
from tests.train.conftest import file_size_limit, structured_image, tiny_config, write_images


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainDataError, match=r"no training images in .*empty.*Point --data"):
        train(tiny_config(tmp_path, tmp_path / "empty"))


def test_missing_folder(tmp_path):
    with pytest.raises(TrainDataError, match="training data folder not found"):
        train(tiny_config(tmp_path, tmp_path / "nope"))


def test_small_and_corrupt_images_are_skipped_and_counted(tmp_path):
    data = write_images(tmp_path / "hr", 2, (64, 64))
    Image.fromarray(structured_image((20, 40), 5)).save(data / "small.png")
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (data / "notes.txt").write_text("not an image")
    found = load_train_set([data], [2], patch=16, progress=False)
    assert [im.name for im in found.images] == ["img00", "img01"]
    assert {k: len(v) for k, v in found.skipped.items()} == {
        "smaller than the patch": 1,
        "corrupt": 1,
    }
    summary = found.summary()
    assert summary.startswith("2 training images")
    assert "1 skipped (smaller than the patch)" in summary and "1 skipped (corrupt)" in summary
    assert any("non-image" in note for note in found.notes)


def test_only_unusable_images_is_an_error_with_advice(tmp_path):
    data = tmp_path / "hr"
    data.mkdir()
    Image.fromarray(structured_image((20, 40), 5)).save(data / "small.png")
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(TrainDataError) as err:
        train(tiny_config(tmp_path, data))
    text = str(err.value)
    assert "no usable training images" in text
    assert "1 smaller than the patch" in text and "1 corrupt" in text
    assert "use a smaller --patch (now 16 LR pixels, so HR images need at least 32x32" in text


def test_lr_hr_size_mismatch(tmp_path):
    root = tmp_path / "set"
    write_images(root / "HR", 2, (64, 64))
    lr_dir = root / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    Image.fromarray(structured_image((32, 32), 0)).save(lr_dir / "img00x2.png")
    Image.fromarray(structured_image((21, 21), 1)).save(lr_dir / "img01x2.png")  # x3 size
    with pytest.raises(TrainDataError, match=r"img01x2.png is 21x21 .* needs LR 32x32"):
        train(tiny_config(tmp_path, root))


@pytest.fixture
def tiny_weights(tmp_path):
    model = OverNet(OverNetConfig(upscale=3, scale=2, channels=16))
    return save_weights(model, tmp_path / "tiny_x2.safetensors")


def test_init_not_a_checkpoint(tmp_path, train_images):
    fake = tmp_path / "weights.pth"
    Image.fromarray(structured_image((16, 16), 0)).save(fake, format="PNG")
    with pytest.raises(InitWeightsError, match=r"--init .*weights.pth cannot be used: .*PNG"):
        train(tiny_config(tmp_path, train_images, init=fake))


def test_init_with_wrong_upscale(tmp_path, train_images, tiny_weights):
    with pytest.raises(InitWeightsError, match="upscale 3, which cannot serve x4"):
        train(tiny_config(tmp_path, train_images, init=tiny_weights, scales=[4]))
    with pytest.raises(InitWeightsError, match="overscales by 3 .* --upscale 5 was asked"):
        train(tiny_config(tmp_path, train_images, init=tiny_weights, upscale=5))
    with pytest.raises(InitWeightsError, match="16 channels but the run asks for 32"):
        train(tiny_config(tmp_path, train_images, init=tiny_weights, channels=32))


def test_init_from_folded_weights_trains(tmp_path, train_images, tiny_weights):
    result = train(tiny_config(tmp_path, train_images, init=tiny_weights, steps=2, lr=None))
    assert result.step == 2 and result.model.upscale == 3


def _torn_enospc(payload, path):
    with open(path, "wb") as fh:  # a torn write, as a full disk leaves it
        fh.write(b"PK\x03\x04partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _torch_save_past_the_limit(payload, path):
    # The real torch.save, made to fail as on a full disk: PyTorch raises RuntimeError
    # ("[enforce fail at inline_container.cc] unexpected pos" or "PytorchStreamWriter
    # failed writing file ...: file write failed"), not OSError.
    with file_size_limit(4096):
        checkpoint_module.torch.save(payload, path)


@pytest.mark.parametrize("failing", [_torch_save_past_the_limit, _torn_enospc])
def test_disk_full_while_saving_keeps_the_previous_checkpoint(
    tmp_path, train_images, monkeypatch, failing
):
    real = checkpoint_module._serialize
    raised = []

    def fail_second(payload, path):
        if not raised:
            raised.append(None)
            return real(payload, path)
        try:
            failing(payload, path)
        except Exception as exc:
            raised.append(exc)
            raise
        raise AssertionError("the write did not fail")

    monkeypatch.setattr(checkpoint_module, "_serialize", fail_second)
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(tmp_path, train_images, steps=4, save_every=2))
    cause = raised[-1]
    expected = RuntimeError if failing is _torch_save_past_the_limit else OSError
    assert type(cause) is expected, repr(cause)
    text = str(err.value)
    assert str(cause).splitlines()[0] in text and "previous last.pth is intact" in text
    assert "free disk space" in text and f"{tmp_path / 'run'} has " in text
    assert re.search(r"has [\d,]+ MiB free of [\d.,]+ GiB", text), text
    run = tmp_path / "run"
    assert load_checkpoint(run / "last.pth")["step"] == 2
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    monkeypatch.setattr(checkpoint_module, "_serialize", real)
    done = train(tiny_config(tmp_path, train_images, steps=4, save_every=2, resume=True))
    assert done.step == 4


def test_disk_full_while_writing_weights_keeps_the_previous_file(
    tmp_path, train_images, monkeypatch
):
    train(tiny_config(tmp_path, train_images, steps=2, save_every=2))
    run = tmp_path / "run"
    before = (run / "final.safetensors").read_bytes()
    real = checkpoint_module._write_weights

    def past_the_limit(model, path):  # safetensors raises SafetensorError, not OSError
        with file_size_limit(4096):
            real(model, path)

    monkeypatch.setattr(checkpoint_module, "_write_weights", past_the_limit)
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(tmp_path, train_images, steps=4, save_every=2, resume=True))
    text = str(err.value)
    assert f"saving weights {run / 'final.safetensors'} failed" in text, text
    assert "previous final.safetensors is intact" in text and "MiB free" in text
    assert (run / "final.safetensors").read_bytes() == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    monkeypatch.setattr(checkpoint_module, "_write_weights", real)
    done = train(tiny_config(tmp_path, train_images, steps=4, save_every=2, resume=True))
    assert done.step == 4 and (run / "final.safetensors").read_bytes() != before


def test_resume_with_other_images_is_refused(tmp_path, train_images):
    data = write_images(tmp_path / "hr", 2, (64, 64))
    train(tiny_config(tmp_path, data, steps=2, save_every=2))
    write_images(tmp_path / "hr", 3, (64, 64))  # a third image appears
    with pytest.raises(CheckpointError, match="training images differ"):
        train(tiny_config(tmp_path, data, steps=4, resume=True))


def test_bad_settings(tmp_path, train_images):
    for bad in ({"scales": [1]}, {"patch": 4}, {"optimizer": "sgd"}, {"upscale": 2,
                "scales": [3]}, {"clip": 0}):  # fmt: skip
        with pytest.raises(OverNetError):
            train(tiny_config(tmp_path, train_images, **bad))


def test_cli_reports_errors_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--data", str(tmp_path / "empty"), "--out",
                               str(tmp_path / "run"), "--no-progress", "--no-val"])  # fmt: skip
    assert res.exit_code == 2
    assert res.output.startswith("error: no training images in")
    res = runner.invoke(main, ["train", "--data", str(tmp_path), "--scale", "2",
                               "--scales", "2,3"])  # fmt: skip
    assert res.exit_code == 2 and "--scale or --scales" in res.output
    res = runner.invoke(main, ["train", "--data", str(tmp_path), "--scale", "2.5"])
    assert res.exit_code == 2 and "must be an integer such as 2 or 3, got 2.5" in res.output
    res = runner.invoke(main, ["train", "--data", str(tmp_path), "--val", str(tmp_path),
                               "--no-val"])  # fmt: skip
    assert res.exit_code == 2 and "--val or --no-val" in res.output
