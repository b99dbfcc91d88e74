#!/usr/bin/env bash
# Make the MONAI Label environment: a venv (default .venv-label at the repository root) with
# monailabel 0.8.5, spcxr_monai and the pins of monailabel_app/requirements.txt.
#   bash monailabel_app/install.sh [VENV_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$repo/.venv-label}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# One pip command for torch and the rest, so pip keeps the pinned torch.
"$venv/bin/pip" install -q -r "$repo/monailabel_app/requirements.txt" -e "$repo"
"$venv/bin/pip" install -q --no-deps monailabel==0.8.5
"$venv/bin/python" -c "import monailabel, spcxr_monai, pydicom; print('MONAI Label', monailabel.__version__, '| pydicom', pydicom.__version__)"
