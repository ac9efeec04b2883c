#!/usr/bin/env bash
# Idempotent set-up on Debian 12: apt GNU Radio + FFmpeg, a .venv that sees Debian's gnuradio and
# numpy, and the project installed editable. A second run only checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# gir1.2-gtk-3.0 and xterm: gnuradio-companion needs both (GTK bindings to start, xterm to run
# a flowgraph) and Debian's gnuradio package pulls neither.
APT_PACKAGES=(gnuradio ffmpeg python3-venv python3-dev python3-scipy python3-numba gir1.2-gtk-3.0 xterm)
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

# GRC runs a flowgraph (F6) in the terminal that [grc] xterm_executable names. Debian sets it to
# "x-terminal-emulator", which GRC 3.10.5 looks up relative to its working directory, so the
# first run warns that the terminal is missing however it is installed: name xterm by its full
# path in the user's own config, unless the user has chosen a terminal there.
grc_conf="$HOME/.gnuradio/config.conf"
if ! grep -qs '^[[:space:]]*xterm_executable' "$grc_conf"; then
  mkdir -p "$(dirname "$grc_conf")"
  if grep -qs '^\[grc\]' "$grc_conf"; then
    sed -i '/^\[grc\]/a xterm_executable = /usr/bin/xterm' "$grc_conf"
  else
    printf '\n[grc]\nxterm_executable = /usr/bin/xterm\n' >> "$grc_conf"
  fi
  echo "setup: GRC runs flowgraphs in /usr/bin/xterm ($grc_conf)"
fi

# GRC, grcc and /usr/bin/python3 find the blocks and lgvsc_phy from anywhere, with no variables
# (`make uninstall-grc` removes the links).
bash tools/install_grc.sh

"$VENV/bin/python" -c "import gnuradio, numpy, torch, av, zmq; assert numpy.__version__ == '1.24.2', numpy.__version__" \
  || { echo "setup: the venv is broken (numpy/gnuradio mismatch?); delete $VENV and rerun" >&2; exit 1; }
echo "setup: ok"
