"""Telling videos by content, reading their facts, and the encoding choices."""

from __future__ import annotations

import pytest

from overnet.errors import InputError
from overnet.video.encode import (
    EncodeOptions,
    choose_pix_fmt,
    choose_suffix,
    encoder_options,
    plan_encoding,
)
from overnet.video.probe import is_video_file, probe_video, sniff_container, video_suffix
from tests.video.clips import Clip, make_clip

pytest.importorskip("av")


def test_videos_are_told_by_content(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    disguised = tmp_path / "holiday.png"
    disguised.write_bytes(clip.read_bytes())
    mkv = make_clip(tmp_path / "clip.mkv", Clip(audio=False))
    webm = make_clip(tmp_path / "clip.webm", Clip(codec="libvpx-vp9", audio=False))
    assert sniff_container(clip) == "mp4" and sniff_container(disguised) == "mp4"
    assert sniff_container(mkv) == "matroska" and sniff_container(webm) == "webm"
    assert is_video_file(disguised) and video_suffix(disguised) == ".mp4"
    image = tmp_path / "real.png"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(image)
    assert sniff_container(image) is None and not is_video_file(image)
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 40)
    assert not is_video_file(heic)  # an ISO-BMFF still image is not a video
    assert is_video_file(tmp_path / "missing.mkv")  # by name: opening it says what is wrong


def test_probe_reads_the_facts(tmp_path):
    facts = probe_video(
        make_clip(tmp_path / "c.mp4", Clip(width=321, height=181, frames=7, pix_fmt="yuv444p"))
    )
    assert (facts.width, facts.height, facts.frames) == (321, 181, 7)
    assert facts.codec == "h264" and facts.pix_fmt == "yuv444p" and facts.bits == 8
    assert facts.rate == 25 and facts.estimated_frames() == 7
    assert facts.others == ["#1 audio aac"]
    deep = probe_video(make_clip(tmp_path / "d.mkv", Clip(pix_fmt="yuv420p10le", audio=False)))
    assert deep.bits == 10 and deep.pix_fmt == "yuv420p10le"


@pytest.mark.parametrize(
    ("codec", "input_fmt", "bits", "requested", "expected"),
    [
        ("libx264", "yuv420p", 8, None, "yuv420p"),
        ("libx264", "yuv420p10le", 10, None, "yuv420p10le"),  # 10-bit stays 10-bit
        ("libx265", "yuv420p10le", 10, None, "yuv420p10le"),
        ("libsvtav1", "yuv444p", 8, None, "yuv420p"),  # not taken: the codec's default
        ("prores_ks", "yuv420p", 8, None, "yuv422p10le"),
        ("ffv1", "yuv420p", 8, "rgb24", "bgr0"),  # lossless RGB at the same depth
        ("ffv1", "yuv420p10le", 10, "rgb48le", "rgb48le"),
        ("libx264", "yuv420p", 8, "yuv444p", "yuv444p"),
    ],
)
def test_pixel_format_choice(codec, input_fmt, bits, requested, expected):
    assert choose_pix_fmt(codec, input_fmt, bits, requested)[0] == expected


def test_eight_bit_only_codecs_say_so():
    fmt, note = choose_pix_fmt("libvpx-vp9", "yuv420p10le", 10, None)
    assert fmt == "yuv420p" and "8 bits" in note
    assert plan_encoding(EncodeOptions(codec="libvpx-vp9"), "yuv420p10le", 10).deep is False
    assert plan_encoding(EncodeOptions(), "yuv420p10le", 10).deep is True


UP_TO_AVX2 = {"sse", "sse2", "pni", "ssse3", "sse4_1", "sse4_2", "abm", "avx", "fma", "bmi1"}
AVX512 = frozenset(UP_TO_AVX2 | {"bmi2", "avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq"}
                   | {"avx512vl"})  # fmt: skip


def with_cpu(monkeypatch, flags) -> None:
    monkeypatch.setattr("overnet.video.x264.cpu_flags", lambda: frozenset(flags))


def test_libx264_runs_its_code_up_to_avx2_only_on_avx512_cpus(monkeypatch):
    with_cpu(monkeypatch, AVX512)
    asm = encoder_options("libx264", None, None)["x264-params"]
    sets = "MMX2,SSE,SSE2,SSE2Fast,SSE3,SSSE3,SSE4.1,SSE4.2,LZCNT,AVX,FMA3,BMI1,BMI2,AVX2"
    assert asm == f"asm={sets}"
    with_cpu(monkeypatch, AVX512 - {"bmi2", "abm"})  # never a set the CPU lacks
    asm = encoder_options("libx264", None, None)["x264-params"]
    assert "BMI2" not in asm and "LZCNT" not in asm and "AVX2" in asm
    for flags in (AVX512 - {"avx512bw"}, frozenset()):  # no AVX-512 code, or flags unknown
        with_cpu(monkeypatch, flags)
        assert encoder_options("libx264", None, None) == {"crf": "18", "preset": "medium"}
    with_cpu(monkeypatch, AVX512)
    assert "x264-params" not in encoder_options("libx265", None, None)
    ours = f"asm={sets}"
    mine = encoder_options("libx264", None, None, [("x264-params", "aq-mode=3")])
    assert mine["x264-params"] == f"{ours}:aq-mode=3"  # entries merge: still repeatable
    auto = encoder_options("libx264", None, None, [("x264-params", "asm=auto:ref=2")])
    assert auto["x264-params"] == "asm=auto:ref=2"  # the user's own asm wins
    plan = plan_encoding(EncodeOptions(), "yuv420p", 8)
    assert plan.describe() == "libx264 yuv420p (crf 18, preset medium, x264-params asm up to AVX2)"
    plan = plan_encoding(EncodeOptions(extra=(("x264-params", "asm=auto"),)), "yuv420p", 8)
    assert plan.describe().endswith("x264-params asm=auto)")  # shown as given


def test_encoder_options_given_by_the_user_are_checked_by_the_encoder():
    plan = plan_encoding(EncodeOptions(extra=(("tune", "film"), ("crf", "23"))), "yuv420p", 8)
    assert plan.options["tune"] == "film" and plan.options["crf"] == "23"
    with pytest.raises(InputError, match="libx264 has no option nosuch"):
        plan_encoding(EncodeOptions(extra=(("nosuch", "1"),)), "yuv420p", 8)
    with pytest.raises(InputError, match="libx264 refused --encoder-option tune=notatune"):
        plan_encoding(EncodeOptions(extra=(("tune", "notatune"),)), "yuv420p", 8)
    with pytest.raises(InputError, match="libx265 has no option tune2"):
        plan_encoding(EncodeOptions(codec="libx265", extra=(("tune2", "x"),)), "yuv420p", 8)
    # entries of the *-params lists are parsed by the encoder library, which only logs
    for codec, key in (("libx264", "x264-params"), ("libx265", "x265-params")):
        with pytest.raises(InputError, match=f"{codec} did not take --encoder-option.*nosuch"):
            plan_encoding(EncodeOptions(codec=codec, extra=((key, "nosuch=1"),)), "yuv420p", 8)
    x265 = plan_encoding(
        EncodeOptions(codec="libx265", extra=(("x265-params", "aq-mode=2"),)), "yuv420p", 8
    )
    assert x265.options["x265-params"] == "log-level=error:aq-mode=2"
    both = (("x264-params", "aq-mode=3"), ("x264-params", "ref=2"))
    assert (
        plan_encoding(EncodeOptions(extra=both), "yuv420p", 8)
        .options["x264-params"]
        .endswith("aq-mode=3:ref=2")
    )
    with pytest.raises(InputError, match="tune is given twice"):
        plan_encoding(EncodeOptions(extra=(("tune", "film"), ("tune", "grain"))), "yuv420p", 8)
    with pytest.raises(InputError, match="give --encoder-threads N instead"):
        plan_encoding(EncodeOptions(extra=(("threads", "3"),)), "yuv420p", 8)


def test_options_that_passed_are_not_opened_again(monkeypatch):
    from overnet.video import user_options

    opened = []
    real = user_options._trial_open
    monkeypatch.setattr(user_options, "_trial_open", lambda *a: opened.append(a[1]) or real(*a))
    options = EncodeOptions(extra=(("g", "37"),))
    for _ in range(3):  # three videos of one batch
        assert plan_encoding(options, "yuv420p", 8).options["g"] == "37"
    assert opened == ["libx264"]
    with pytest.raises(InputError, match="no option nosuch"):  # a refusal is not kept
        plan_encoding(EncodeOptions(extra=(("nosuch", "1"),)), "yuv420p", 8)
    with pytest.raises(InputError, match="no option nosuch"):
        plan_encoding(EncodeOptions(extra=(("nosuch", "1"),)), "yuv420p", 8)
    assert opened == ["libx264"] * 3


def test_a_hardware_encoder_without_its_device_is_not_blamed_on_the_options():
    import av

    try:
        av.codec.Codec("h264_nvenc", "w")
    except Exception:
        pytest.skip("this PyAV build has no h264_nvenc")
    try:
        plan_encoding(EncodeOptions(codec="h264_nvenc", extra=(("cq", "20"),)), "yuv420p", 8)
    except InputError as exc:  # no GPU here: say so, not "refused cq=20"
        assert "could not open h264_nvenc" in str(exc) and "GPU and driver" in str(exc)
    # with a GPU and driver the trial open succeeds and there is nothing to assert


def test_encoder_options_and_refusals(monkeypatch):
    with_cpu(monkeypatch, ())
    assert encoder_options("libx264", None, None) == {"crf": "18", "preset": "medium"}
    assert encoder_options("libx265", 24, "slow")["crf"] == "24"
    assert encoder_options("libvpx-vp9", 30, None) == {"b": "0", "crf": "30", "cpu-used": "4"}
    with pytest.raises(InputError, match="--crf does not apply to ffv1"):
        encoder_options("ffv1", 10, None)
    with pytest.raises(InputError, match="no encoder 'libnothing'"):
        plan_encoding(EncodeOptions(codec="libnothing"), "yuv420p", 8)
    with pytest.raises(InputError, match="not a video encoder"):
        plan_encoding(EncodeOptions(codec="aac"), "yuv420p", 8)
    with pytest.raises(InputError, match="cannot encode --pix-fmt rgb48le"):
        plan_encoding(EncodeOptions(pix_fmt="rgb48le"), "yuv420p", 8)


def test_container_choice():
    assert choose_suffix(".mp4", None, "libx264") == (".mp4", "")
    suffix, note = choose_suffix(".webm", None, "libx264")  # webm takes VP9/AV1 only
    assert suffix == ".mkv" and "cannot hold libx264" in note
    assert choose_suffix(".mp4", None, "prores_ks")[0] == ".mkv"
    assert choose_suffix(".mkv", "mov", "prores_ks") == (".mov", "")
    with pytest.raises(InputError, match="containers that can: .*mkv"):
        choose_suffix(".mp4", "webm", "libx264")
    with pytest.raises(InputError, match="unknown video format"):
        choose_suffix(".mp4", "flv", "libx264")
