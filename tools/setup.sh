#!/usr/bin/env bash
# Idempotent set-up on Debian 12: apt GNU Radio + FFmpeg, a .venv that sees Debian's gnuradio and
# numpy, and the project installed editable. A second run only checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gnuradio ffmpeg python3-venv python3-dev python3-scipy python3-numba)
VENV=.venv
STAMP="$VENV/.lgvsc-setup"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV from /usr/bin/python3 (--system-site-packages, sees gnuradio)"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

# Re-install only when the dependency list changed since the last successful run.
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "setup: pip installing (numpy pinned to Debian's, torch CPU build)"
  pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt)
  "${pip[@]}" "torch==2.13.0"
  "${pip[@]}" -e ".[dev]"
  echo "$want" > "$STAMP"
fi

"$VENV/bin/python" -c "import gnuradio, numpy, torch, av, zmq; assert numpy.__version__ == '1.24.2', numpy.__version__" \
  || { echo "setup: the venv is broken (numpy/gnuradio mismatch?); delete $VENV and rerun" >&2; exit 1; }
echo "setup: ok"
