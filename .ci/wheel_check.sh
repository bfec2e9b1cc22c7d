#!/usr/bin/env bash
# The package as users get it, not as the editable install of `make test` shows it:
#  1. `python -m build`: the sdist, then the wheel built from the unpacked sdist (a file
#     the rebuild needs and the sdist lacks fails here);
#  2. both checked against the tree (.ci/check_dists.py: every file of overnet/ in the
#     wheel, the extras in its metadata, the console script; the sdist's exact contents);
#  3. the dev venv (torch) exports x2 to ONNX and fills a cache with the pretrained x2 and
#     its cached ONNX export (from ../shared/weights, no network);
#  4. a fresh venv gets the wheel with the `openvino` extra only, from the package index
#     with CI's pins; torch must be absent there. `overnet --version`, `overnet info`,
#     `overnet upscale --model x2.onnx` and `overnet upscale` with the default model (the
#     pretrained x2 through its cached export) run from it, outputs checked.
# Run by .ci/run after `make test` (its .venv); PY and SHARED override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
SHARED=${SHARED:-$ROOT/../shared}
DEV_BIN=$(dirname "$PY")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS
say() { echo "wheel check ($((SECONDS - started)) s): $*"; }
fail() {
    echo "wheel check FAILED: $*" >&2
    exit 1
}

x2_onnx=$SHARED/weights/upstream-onnx/OverNet_x2.onnx
[ -f "$x2_onnx" ] || fail "needs $x2_onnx (the project's ../shared folder; SHARED=DIR elsewhere)"

# 1. sdist, and the wheel built from it; pinned build tools. Built from a copy of the
#    repository's files: a stale overnet.egg-info in the working folder (an editable
#    install's) would add the files its SOURCES.txt lists to the sdist
"$PY" -m pip install -q -c constraints/ci.txt build
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' name; do
        if [ -f "$name" ]; then
            mkdir -p "$WORK/src/$(dirname "$name")"
            cp -p "$name" "$WORK/src/$name"
        fi
    done
PIP_CONSTRAINT=$ROOT/constraints/ci.txt PIP_BUILD_CONSTRAINT=$ROOT/constraints/ci.txt \
    "$PY" -m build --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log"; fail "python -m build"; }
wheel=$(ls "$WORK"/dist/*.whl)
say "built $(cd "$WORK/dist" && ls | tr '\n' ' ')"

# 2. what they hold
"$PY" .ci/check_dists.py "$WORK/dist" "$WORK/src" || fail "the sdist or the wheel misses files"

# 3. models made with torch (the dev venv), in a cache of this check's own
export OVERNET_CACHE=$WORK/cache
"$PY" - "$WORK/in.png" <<'EOF'
import sys

import numpy as np
from PIL import Image

rng = np.random.default_rng(0)
Image.fromarray((rng.random((30, 40, 3)) * 255).astype(np.uint8)).save(sys.argv[1])
EOF
"$DEV_BIN/overnet" weights fetch x2 --from "$x2_onnx" >/dev/null
"$DEV_BIN/overnet" export --weights x2 -o "$WORK/x2.onnx" >/dev/null
"$DEV_BIN/overnet" upscale "$WORK/in.png" -o "$WORK/dev-out" --no-progress >/dev/null 2>&1 ||
    fail "the dev venv's default-model upscale"
say "exported x2.onnx and cached the pretrained x2's export with the dev venv"

# 4. a fresh venv with the wheel and the runtime extra only
"$PY" -m venv "$WORK/venv" # a venv made from a venv's python starts from the base install
V=$WORK/venv/bin
"$V/python" -m pip install -c constraints/ci.txt "$wheel[openvino]" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; fail "pip install the wheel with [openvino]"; }
if grep -qi "does not provide the extra" "$WORK/install.log"; then
    fail "$(grep -i "does not provide the extra" "$WORK/install.log")"
fi
"$V/python" -m pip check || fail "pip check in the wheel's venv"
"$V/python" -c 'import openvino' || fail "the openvino extra did not install OpenVINO"
if "$V/python" -c 'import torch' 2>/dev/null; then fail "torch is installed in the wheel's venv"; fi
say "installed $(basename "$wheel")[openvino] into a fresh venv (no torch)"

cd "$WORK" # not the clone: nothing may come from its folder
where=$("$V/python" -c 'import overnet; print(overnet.__file__)')
case $where in "$WORK/venv/"*) ;; *) fail "overnet imported from $where, not the wheel's venv" ;; esac
version=$("$V/overnet" --version)
[[ $version == "overnet, version "* ]] || fail "overnet --version printed: $version"
"$V/overnet" info >info.txt || { cat info.txt; fail "overnet info"; }
grep -q "923,358" info.txt || { cat info.txt; fail "overnet info: no parameter count"; }

t0=$SECONDS
"$V/overnet" upscale in.png -o model-out --model x2.onnx --no-progress >model.log 2>&1 ||
    { cat model.log; fail "overnet upscale --model x2.onnx"; }
grep -q "with openvino" model.log || { cat model.log; fail "the upscale did not run on openvino"; }
"$V/overnet" upscale in.png -o default-out --no-progress >default.log 2>&1 ||
    { cat default.log; fail "overnet upscale with the default model"; }
first=$(head -n 1 default.log)
[[ $first == "no --model or --weights given: using the pretrained x2"* ]] ||
    { cat default.log; fail "the default model's first line: $first"; }
"$V/python" - <<'EOF' || fail "the wheel's outputs"
import numpy as np
from PIL import Image

def pixels(path):
    with Image.open(path) as img:
        assert img.size == (80, 60), (path, img.size)
        return np.asarray(img, dtype=np.int16)

model, default, dev = (pixels(f"{d}/in.png") for d in ("model-out", "default-out", "dev-out"))
# the same x2 weights by three routes (--model, the cached export of the default, the
# dev venv); they differ only by the last rounding of each backend's arithmetic
assert np.abs(model - default).max() <= 2 and np.abs(default - dev).max() <= 2
EOF
say "overnet --version, info, upscale --model x2.onnx and upscale (default x2) ran without" \
    "torch ($((SECONDS - t0)) s for the two upscales): $(sed -n 2p default.log)"
