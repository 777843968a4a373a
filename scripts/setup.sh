#!/usr/bin/env bash
# Set up a fresh machine for hf-ssdd: Fashion-MNIST from Debian, then a virtualenv in .venv with the package.
# torch is pinned to the CPU build that this workplace serves; drop the pin to get a CUDA build elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[test,tensorboard,benchmark]"
