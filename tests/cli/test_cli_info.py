import json

from click.testing import CliRunner

from overnet.cli import main


def test_info_reports_config_counts_and_paper(x2_weights):
    result = CliRunner().invoke(main, ["info", str(x2_weights)])
    assert result.exit_code == 0, result.output
    assert "upscale 3" in result.output and "scale x2" in result.output
    assert "923,358" in result.output and "paper: 0.9M" in result.output
    assert "913,197 per input pixel" in result.output
    assert "210.4 G for a 1280x720 output" in result.output


def test_info_json_without_weights_uses_the_default_architecture():
    result = CliRunner().invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["parameters"] == 923_358 and data["sha256"] is None
    assert data["bytes_fp16"] == 2 * 923_358


def test_info_on_a_bad_file_is_a_one_line_error(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"")
    result = CliRunner().invoke(main, ["info", str(tmp_path / "x.pth")])
    assert result.exit_code == 2
    assert "error:" in result.output and "empty" in result.output
