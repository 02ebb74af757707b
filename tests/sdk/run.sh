#!/usr/bin/env bash
# Runs Pure's Python SDKs (purestorage 1.19.0, purity-fb 1.12.3) unchanged against flashvol-arraysim.
# Creates tests/sdk/.venv on first use, builds the simulator, then runs pytest; the pytest fixtures
# (conftest.py) start one FlashArray and one FlashBlade simulator on free ports with temporary state
# dirs, restart them when a test asks for it, and stop them at the end.
# Usage: tests/sdk/run.sh [pytest args...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import purestorage, purity_fb, pytest' 2>/dev/null; then
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi

(cd "$repo" && cargo build -p flashvol-arraysim)
target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export ARRAYSIM_BIN="${ARRAYSIM_BIN:-$target_dir/debug/flashvol-arraysim}"

cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
