"""The honest gate's parts without NNCF: disjoint image sets by pixel hash (overlaps taken
out, a set not given split from the calibration images, an empty set refused), the drop's
bootstrap interval and the pass rule on its upper bound, and the small-set warning."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("scipy")

from overnet.errors import InputError
from overnet.export.int8_gate import MIN_CONFIDENT_IMAGES, drop_stats
from overnet.export.int8_report import Int8Report, QualityGateError
from overnet.export.int8_sets import content_hash, plan_sets


def _pictures(folder, count, seed, size=(40, 48)):
    """``count`` distinct random RGB pictures as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        paths.append(folder / f"p{seed}-{i}.png")
        Image.fromarray(rgb).save(paths[-1])
    return paths


def test_the_same_pixels_under_another_name_and_format_are_one_image(tmp_path):
    (first,) = _pictures(tmp_path / "a", 1, 0)
    copy = tmp_path / "renamed.bmp"
    Image.open(first).save(copy)
    assert content_hash(first) == content_hash(copy)
    (other,) = _pictures(tmp_path / "b", 1, 1)
    assert content_hash(first) != content_hash(other)


def test_unsplit_calibration_gives_three_disjoint_sets_by_hash_order(tmp_path):
    _pictures(tmp_path / "cal", 8, 0)
    sets = plan_sets(tmp_path / "cal", None, None, tmp_path / "stage")
    assert (len(sets.calibration), len(sets.search), len(sets.validation)) == (4, 2, 2)
    roles = [set(sets.hashes[r]) for r in ("calibration", "search", "validation")]
    assert sum(map(len, roles)) == 8 and len(set().union(*roles)) == 8
    # the split follows the pixel hashes, not the names: the validation set holds the
    # two smallest hashes, and its folder links exactly those files for the gate
    every = sorted(content_hash(p)[:16] for p in (tmp_path / "cal").iterdir())
    assert sorted(sets.hashes["validation"]) == every[:2]
    linked = sorted(p.name for p in sets.validation_folder.iterdir())
    assert linked == sorted(p.name for p in sets.validation)
    assert any("split by hash" in note for note in sets.notes)
    again = plan_sets(tmp_path / "cal", None, None, tmp_path / "stage2")
    assert again.hashes == sets.hashes


def test_plain_int8_splits_no_search_set(tmp_path):
    _pictures(tmp_path / "cal", 8, 0)
    sets = plan_sets(tmp_path / "cal", None, None, tmp_path / "stage", needs_search=False)
    assert (len(sets.calibration), len(sets.search), len(sets.validation)) == (6, 0, 2)
    assert sets.hashes["search"] == () and not any("search" in n for n in sets.notes)
    with pytest.raises(InputError, match="plain INT8 scores none"):
        plan_sets(tmp_path / "cal", tmp_path / "cal", None, tmp_path / "s2", needs_search=False)


def test_an_image_in_two_sets_stays_in_the_later_one(tmp_path):
    cal = _pictures(tmp_path / "cal", 4, 0)
    _pictures(tmp_path / "val", 3, 1)
    Image.open(cal[0]).save(tmp_path / "val" / "same-pixels.png")  # overlap, other name
    search = _pictures(tmp_path / "search", 2, 2)
    Image.open(cal[1]).save(tmp_path / "search" / "also.png")
    sets = plan_sets(tmp_path / "cal", tmp_path / "search", tmp_path / "val", tmp_path / "s")
    assert cal[0] not in sets.calibration and cal[1] not in sets.calibration
    assert len(sets.validation) == 4 and len(sets.search) == 3 and len(sets.calibration) == 2
    assert sets.validation_folder == tmp_path / "val"
    assert any("kept for validation only" in n and cal[0].name in n for n in sets.notes)
    assert not set(sets.hashes["calibration"]) & set(sets.hashes["validation"])
    assert len(search) == 2


def test_calibrating_on_the_validation_set_is_refused(tmp_path):
    """The issue's case: --calibration Set5/HR with the gate on Set5 itself."""
    cal = _pictures(tmp_path / "val" / "HR", 5, 0)
    with pytest.raises(InputError, match="calibration set has 0 image") as err:
        plan_sets(tmp_path / "val" / "HR", None, tmp_path / "val", tmp_path / "s")
    assert cal[0].name in str(err.value) and "--validation" in str(err.value)


def test_too_few_images_to_split_is_refused(tmp_path):
    _pictures(tmp_path / "cal", 3, 0)
    with pytest.raises(InputError, match="at least 1 needed"):
        plan_sets(tmp_path / "cal", None, None, tmp_path / "s")


def test_the_interval_holds_the_mean_and_the_worst_image_is_named():
    rng = np.random.default_rng(3)
    fp32 = {f"img{i}": 30 + rng.random() for i in range(12)}
    drops = rng.normal(0.05, 0.03, 12)
    drops[7] = 0.2
    int8 = {k: v - d for (k, v), d in zip(fp32.items(), drops, strict=True)}
    stats = drop_stats(fp32, int8)
    assert stats.low < stats.mean < stats.high
    assert stats.mean == pytest.approx(drops.mean())
    assert stats.worst == ("img7", pytest.approx(0.2))
    assert stats.warning() is None  # 12 images
    few = ("img0", "img1", "img2", "img7")  # the outlier weighs more among four
    wider = drop_stats({k: fp32[k] for k in few}, {k: int8[k] for k in few})
    assert wider.high - wider.low > stats.high - stats.low
    assert "only 4 validation images" in wider.warning()
    assert str(MIN_CONFIDENT_IMAGES) in wider.warning()


def test_one_image_or_mismatched_names_give_no_gate():
    with pytest.raises(InputError, match="at least 2 validation images"):
        drop_stats({"a": 30.0}, {"a": 29.9})
    with pytest.raises(InputError, match="different images"):
        drop_stats({"a": 30.0, "b": 31.0}, {"a": 29.9, "c": 31.0})


def _report(drops: list[float], max_drop: float) -> Int8Report:
    fp32 = {f"i{k}": 30.0 + k for k in range(len(drops))}
    int8 = {k: v - d for (k, v), d in zip(fp32.items(), drops, strict=True)}
    stats = drop_stats(fp32, int8)
    return Int8Report("val", 0, 0, max_drop, "bf16", 10, [], "", 0, stats=stats)


def test_a_mean_within_the_gate_with_an_upper_bound_beyond_it_fails():
    report = _report([0.01, 0.02, 0.15, 0.03, 0.01], 0.1)
    assert report.drop < 0.1 < report.drop_upper
    assert not report.passed
    message = str(QualityGateError(report))
    assert "upper bound of the mean drop" in message and "warning: only 5" in message
    props = _report([0.01, 0.02, 0.03, 0.02, 0.01], 0.1).props()
    assert float(props["overnet.int8_drop_upper_db"]) <= 0.1
    assert props["overnet.int8_worst"].startswith("i2=")
