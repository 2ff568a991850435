#!/usr/bin/env bash
# Install nasrec_torchrec and its pinned stack into a virtual environment.
#
# Usage: scripts/install.sh [--cuda] [--venv DIR]
#   --cuda       install the CUDA builds (torch 2.13.0 from PyPI + fbgemm-gpu 1.8.0)
#                instead of the CPU builds (also: NASREC_CUDA=1)
#   --venv DIR   where to create the environment (default: .venv in the repository;
#                also: NASREC_VENV=DIR)
# Idempotent: a second run reuses the environment and only installs what is missing.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${NASREC_VENV:-$repo_dir/.venv}"
use_cuda="${NASREC_CUDA:-0}"
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) use_cuda=1 ;;
    --venv) venv_dir="$2"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

python_bin="${PYTHON:-python3}"
if [ ! -x "$venv_dir/bin/python" ]; then
  echo "[install] creating virtual environment in $venv_dir"
  "$python_bin" -m venv "$venv_dir"
fi
pip=("$venv_dir/bin/python" -m pip install --quiet)

if [ "$use_cuda" = "1" ]; then
  echo "[install] CUDA stack: torch 2.13.0 (PyPI CUDA build), fbgemm-gpu 1.8.0, torchrec 1.8.0"
  "${pip[@]}" "torch==2.13.0" "fbgemm-gpu==1.8.0"
else
  echo "[install] CPU stack: torch 2.13.0 (CPU), fbgemm-gpu-cpu 1.8.0, torchrec 1.8.0"
  # A local CPU wheel (pip's find-links) first; otherwise PyTorch's own CPU wheel index.
  "${pip[@]}" --no-index --no-deps "torch==2.13.0" 2>/dev/null \
    || "${pip[@]}" --no-deps "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  "${pip[@]}" "torch==2.13.0"   # torch's own dependencies, from PyPI
  "${pip[@]}" "fbgemm-gpu-cpu==1.8.0"
fi
# torchrec pins an unversioned fbgemm-gpu: install it without dependencies and list its own needs.
"${pip[@]}" --no-deps "torchrec==1.8.0"
"${pip[@]}" -r "$repo_dir/requirements.txt"
"${pip[@]}" --no-deps -e "$repo_dir"
echo "[install] done: activate with 'source $venv_dir/bin/activate'"
