#!/usr/bin/env bash
# Makes GNU Radio Companion, grcc and /usr/bin/python3 find this checkout's blocks and package the
# way an installed out-of-tree module is found, with no environment variables and from any
# directory. Idempotent; `--uninstall` (make uninstall-grc) removes exactly these links:
#   ~/.grc_gnuradio/lgvsc_*.block.yml -> grc_flowgraphs/blocks/  GRC's per-user block library,
#       searched by GRC and grcc with no configuration. A link per file, since GRC's os.walk
#       does not descend into a linked directory; no edit to ~/.gnuradio/config.conf to undo.
#   ~/.grc_gnuradio/<id>.block.yml and <id>.py  the hier blocks, compiled (not links).
#   <user site-packages>/lgvsc_phy -> lgvsc_phy/  what the generated scripts import. The user
#       site needs no root and is read by /usr/bin/python3; linking only lgvsc_phy (not the
#       checkout, not the venv) shadows nothing else. Its imports (numpy, scipy, numba, zmq, pmt)
#       come from Debian's packages that tools/setup.sh installs.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd -P)"
BLOCKS_SRC="$REPO/grc_flowgraphs/blocks"
PACKAGE_SRC="$REPO/lgvsc_phy"
# GRC's default hier-block and user library (grc/core/Constants.py); runner.py points its own
# grcc runs elsewhere (GRC_HIER_PATH), so they do not load these blocks twice.
GRC_USER_LIB="$HOME/.grc_gnuradio"
SYSTEM_PYTHON=/usr/bin/python3

user_site() {
  "$SYSTEM_PYTHON" -c 'import site; print(site.getusersitepackages())'
}

# A link this script made, from this checkout or another (CI clones main elsewhere): a symlink
# whose target ends in /$1 (grc_flowgraphs/blocks/NAME, lgvsc_phy). Anything else is the user's.
is_our_link() {
  [ -L "$2" ] && case "$(readlink "$2")" in */"$1") return 0 ;; *) return 1 ;; esac
}

# ln -sfn, replacing only a link of ours (possibly into another checkout), never a user's file.
link() {
  local target="$1" name="$2" suffix="$3"
  if [ -e "$name" ] || [ -L "$name" ]; then
    if ! is_our_link "$suffix" "$name"; then
      echo "install_grc: $name exists and is not a link made by this script; move it away and rerun" >&2
      exit 1
    fi
    [ "$(readlink "$name")" = "$target" ] && return 0
  fi
  ln -sfn "$target" "$name"
  echo "install_grc: $name -> $target"
}

install_links() {
  mkdir -p "$GRC_USER_LIB"
  local block
  for block in "$BLOCKS_SRC"/*.block.yml; do
    link "$block" "$GRC_USER_LIB/$(basename "$block")" "grc_flowgraphs/blocks/$(basename "$block")"
  done
  # A block deleted or renamed in the checkout leaves a dangling link: GRC would warn about it.
  for block in "$GRC_USER_LIB"/*.block.yml; do
    if is_our_link "grc_flowgraphs/blocks/$(basename "$block")" "$block" && [ ! -e "$block" ]; then
      rm -f "$block"
      echo "install_grc: removed stale $block"
    fi
  done

  local site
  site="$(user_site)"
  if [ "$("$SYSTEM_PYTHON" -c 'import site; print(site.ENABLE_USER_SITE)')" != True ]; then
    echo "install_grc: $SYSTEM_PYTHON ignores its user site ($site), so GRC's scripts will not" \
      "find lgvsc_phy (PYTHONNOUSERSITE set?)" >&2
    exit 1
  fi
  mkdir -p "$site"
  link "$PACKAGE_SRC" "$site/lgvsc_phy" lgvsc_phy
  install_hier_blocks

  # The proof: what a generated flowgraph imports first, from another directory, no variables.
  (cd / && env -i HOME="$HOME" ${PYTHONUSERBASE:+PYTHONUSERBASE="$PYTHONUSERBASE"} PATH=/usr/bin:/bin "$SYSTEM_PYTHON" -c 'import lgvsc_phy.gr_blocks') \
    || { echo "install_grc: $SYSTEM_PYTHON cannot import lgvsc_phy.gr_blocks (see above)" >&2; exit 1; }
}

# The hier blocks (grc_flowgraphs/*.grc with generate_options hb, e.g. the OFDM transmitter that
# tx, tx_usrp and loopback use) compiled into GRC's library, by the runner's own function; again
# only when a source is newer than its compiled block. These are files, not links.
hier_sources() {
  grep -l "generate_options: hb" "$REPO"/grc_flowgraphs/*.grc || true
}

install_hier_blocks() {
  local grc yml stale=""
  for grc in $(hier_sources); do
    yml="$GRC_USER_LIB/$(basename "$grc" .grc).block.yml"
    # stale: older than its source, or compiled from another checkout
    if [ "$grc" -nt "$yml" ] || ! grep -q "^grc_source: $REPO/" "$yml" 2>/dev/null; then stale=1; fi
  done
  [ -z "$stale" ] && return 0
  (cd / && env -i HOME="$HOME" ${PYTHONUSERBASE:+PYTHONUSERBASE="$PYTHONUSERBASE"} PATH=/usr/bin:/bin \
    "$SYSTEM_PYTHON" -c 'import sys; from pathlib import Path; from lgvsc_phy.runner import compile_hier_blocks
for path in compile_hier_blocks(Path(sys.argv[1])): print("install_grc: compiled", path)' "$GRC_USER_LIB")
}

# A compiled hier block of ours: its YAML names a source .grc of a checkout of this project.
uninstall_hier_blocks() {
  local grc id
  for grc in $(hier_sources); do
    id="$(basename "$grc" .grc)"
    if grep -q "^grc_source: .*flowgraphs/$id.grc$" "$GRC_USER_LIB/$id.block.yml" 2>/dev/null; then
      rm -f "$GRC_USER_LIB/$id.block.yml" "$GRC_USER_LIB/$id.py"
      echo "install_grc: removed $GRC_USER_LIB/$id.block.yml and $id.py"
    fi
  done
}

uninstall_links() {
  local block site
  for block in "$GRC_USER_LIB"/*.block.yml; do
    if is_our_link "grc_flowgraphs/blocks/$(basename "$block")" "$block"; then
      rm -f "$block"
      echo "install_grc: removed $block"
    fi
  done
  uninstall_hier_blocks
  site="$(user_site)"
  if is_our_link lgvsc_phy "$site/lgvsc_phy"; then
    rm -f "$site/lgvsc_phy"
    echo "install_grc: removed $site/lgvsc_phy"
  fi
}

case "${1:-}" in
  "") install_links ;;
  --uninstall) uninstall_links ;;
  *) echo "usage: $0 [--uninstall]" >&2; exit 2 ;;
esac
