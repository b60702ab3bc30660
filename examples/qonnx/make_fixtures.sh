#!/usr/bin/env bash
# Train small Brevitas networks on Fashion-MNIST and export them as QONNX
# fixtures into tests/fixtures/qonnx/.
#
# Usage (from anywhere; paths are relative to the repository root):
#   bash examples/qonnx/make_fixtures.sh [extra args for make_fixtures.py]
#   bash examples/qonnx/make_fixtures.sh --venv-only   # only set up the venv
#   bash examples/qonnx/make_fixtures.sh --finn [--only tfc_w1a1,...]
#       # Brevitas's FINN examples (bnn_pynq TFC/SFC/LFC/CNV): make_finn_fixtures.py
#   bash examples/qonnx/make_fixtures.sh --scale
#       # an MLP trained on pixel / 256, with and without a Mul on its input:
#       # make_scale_fixtures.py
#   bash examples/qonnx/make_fixtures.sh --residual
#       # a residual network (Add, GlobalAveragePool): make_residual_fixtures.py
#
# Creates (or reuses) a venv at build/brevitas-venv with the versions pinned in
# examples/qonnx/requirements.txt. Needs PyPI and the Fashion-MNIST IDX files
# (Debian package dataset-fashion-mnist, or FMNIST_DIR=/path/to/idx-gz-files).
# Environment: PYTHON (interpreter used to create the venv, default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

venv="build/brevitas-venv"
python="${PYTHON:-python3}"
data_dir="${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"

missing=0
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [[ -f "$data_dir/$f" ]] || missing=1
done
if [[ $missing -eq 1 ]]; then
    if [[ -z "${FMNIST_DIR:-}" && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "Fashion-MNIST not found in $data_dir; installing dataset-fashion-mnist" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
    else
        echo "error: Fashion-MNIST IDX files not found in $data_dir" >&2
        echo "  install them with: apt-get install dataset-fashion-mnist (as root)" >&2
        echo "  or point FMNIST_DIR at a folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz" >&2
        exit 1
    fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" - <<'PY'
import sys
if not ((3, 10) <= sys.version_info[:2] <= (3, 12)):
    sys.exit(f"error: need Python 3.10-3.12 for the pinned packages, got {sys.version.split()[0]}")
PY
    echo "creating venv $venv" >&2
    mkdir -p build
    "$python" -m venv "$venv"
fi

echo "installing pinned requirements into $venv" >&2
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$here/requirements.txt"

# `--venv-only`: stop here (make qonnx-check needs the venv, not new fixtures).
if [[ "${1:-}" == "--venv-only" ]]; then
    exit 0
fi

export FMNIST_DIR="$data_dir"
if [[ "${1:-}" == "--finn" ]]; then
    shift
    exec "$venv/bin/python" "$here/make_finn_fixtures.py" "$@"
fi
if [[ "${1:-}" == "--scale" ]]; then
    shift
    exec "$venv/bin/python" "$here/make_scale_fixtures.py" "$@"
fi
if [[ "${1:-}" == "--residual" ]]; then
    shift
    exec "$venv/bin/python" "$here/make_residual_fixtures.py" "$@"
fi
exec "$venv/bin/python" "$here/make_fixtures.py" "$@"
