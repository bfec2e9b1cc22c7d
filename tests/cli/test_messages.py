"""No Python reprs (``PosixPath('x2')``, ``dict(...)``, ``{'a': 1}``, a dataclass's
``Name(field=...)``) in what the `overnet` commands say.

The scan covers every command the suite runs through click's CliRunner, the error cases
first among them: importing this module (pytest collects every test module before it runs
any) wraps ``CliRunner.invoke``, so a test whose command prints a repr fails there, naming
the command and the repr. The tests below run the error cases of this project's own
messages and check the scan itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from overnet.cli import main

#: what a Python repr looks like in a message, and what each pattern finds
REPR_PATTERNS = {
    r"\b\w*Path\(['\"]": "a pathlib repr: PosixPath('x2')",
    r"\b(?:dict|OrderedDict|defaultdict|namespace|mappingproxy)\(": "dict(...)",
    r"\{'[^'\n]*': ": "a dict printed as Python: {'key': ...}",
    r"\b[A-Z]\w*\((?:[a-z_]\w*=)": "a class repr: Name(field=...)",
    r"<[\w.]+ object at 0x[0-9a-f]+>": "<... object at 0x...>",
    r"<(?:class|function|module|enum) ": "<class ...>, <function ...>",
    r"\bnp\.(?:float|int|uint|bool|str)\w*\(": "a numpy scalar: np.float64(...)",
}
_FOUND = re.compile("|".join(f"(?:{p})" for p in REPR_PATTERNS))


def reprs_in(text: str) -> list[str]:
    """The repr-looking parts of ``text`` (with a little context), or []."""
    return [text[max(0, m.start() - 30) : m.end() + 30] for m in _FOUND.finditer(text)]


def _scanning(invoke):
    def scanned(self: CliRunner, cli, args=None, *more, **options) -> Result:
        result = invoke(self, cli, args, *more, **options)
        SCANNED.append(result.exit_code)
        found = reprs_in(result.output)
        if found:
            command = args if isinstance(args, str) else " ".join(map(str, args or []))
            raise AssertionError(
                f"`overnet {command}` (exit status {result.exit_code}) said a Python repr: "
                f"{found} (tests/cli/test_messages.py); its output:\n{result.output}"
            )
        return result

    scanned.scans_for_reprs = True
    return scanned


#: exit status of each command scanned so far in this session
SCANNED: list[int] = []
if not getattr(CliRunner.invoke, "scans_for_reprs", False):
    CliRunner.invoke = _scanning(CliRunner.invoke)


@pytest.mark.parametrize(
    "text",
    [
        "pretrained weights PosixPath('x2') are not cached yet",
        "options dict(a=1)",
        "got {'scale': 2}",
        "config OverNetConfig(upscale=3, scale=2, channels=64)",
        "a <overnet.runtime.base.Session object at 0x7f3a2b1c>",
        "expected <class 'int'>",
        "psnr np.float64(38.1)",
    ],
)
def test_the_scan_finds_reprs(text):
    assert reprs_in(text), text


@pytest.mark.parametrize(
    "text",
    [
        "pretrained weights x2 are not cached yet: fetching them once",
        "error: expected WIDTHxHEIGHT such as 320x180, got '320'",
        '{"parameters": 923358, "config": {"scale": 2}}',
        "1 image(s), 0 video(s) with openvino on CPU (bf16, 2 threads), x2",
        "Usage: overnet upscale [OPTIONS] INPUTS...",
        "upscale must be one of (2, 3, 4, 5, 8), got 6",
    ],
)
def test_the_scan_lets_plain_messages_through(text):
    assert reprs_in(text) == [], text


def test_every_cli_runner_call_is_scanned(tmp_path):
    before = len(SCANNED)
    result = CliRunner().invoke(main, ["info", str(tmp_path / "none.pth")])
    assert result.exit_code == 2 and len(SCANNED) == before + 1


def _image(folder: Path) -> str:
    Image.new("RGB", (8, 6)).save(folder / "in.png")
    return str(folder / "in.png")


#: error cases of the messages this project writes about models, weights and inputs
ERROR_CASES = [
    ["upscale", "{img}", "-o", "{tmp}/out", "--model", "{tmp}/a.onnx", "--weights", "x2"],
    ["upscale", "{img}", "-o", "{tmp}/out", "--model", "{tmp}/none.onnx"],
    ["upscale", "{img}", "-o", "{tmp}/out", "--weights", "{tmp}/none.pth"],
    ["upscale", "{tmp}/missing.png", "-o", "{tmp}/out", "--model", "{tmp}/none.onnx"],
    ["upscale", "{img}", "-o", "{tmp}/out", "--max-memory", "12"],
    ["upscale", "{img}", "-o", "{tmp}/out", "--scale", "zero"],
    ["upscale", "{img}", "-o", "{tmp}/out", "--model", "{tmp}/empty.onnx"],
    ["upscale", "{img}", "-o", "{tmp}/out", "--model", "{tmp}/notes.txt"],
    ["eval", "--weights", "{tmp}/none.pth", "--data", "{tmp}"],
    ["eval", "--weights", "x2", "--data", "{tmp}", "--scale", "2.5"],
    ["export", "--weights", "{tmp}/none.pth", "-o", "{tmp}/x.onnx"],
    ["info", "{tmp}/empty.pth"],
    ["weights", "fetch", "x9"],
    ["weights", "fetch", "x2", "--from", "{tmp}/notes.txt"],
    ["bench", "--scale", "2", "--scales", "2,3"],
    ["bench", "--sizes", "320"],
]


@pytest.mark.parametrize("args", ERROR_CASES, ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_error_messages_hold_no_repr(args, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a model\n")
    image = _image(tmp_path)
    args = [a.format(img=image, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, args)  # scanned for reprs by the wrapper above
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception  # no bug
