# Shared by scripts/serve and scripts/test: create .venv if missing and install segmentd.
# Usage: VENV_EXTRAS=test . scripts/_venv.sh   (a sourced file sees the caller's "$@",
# so the extras come from a variable, never from positional arguments)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SEGMENTD_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
extras="${VENV_EXTRAS:-}"
stamp="$VENV/.segmentd-installed${extras:+-$extras}"
# Reinstall only when the project's dependency list changed.
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q -e "$ROOT${extras:+[$extras]}"
  touch "$stamp"
fi
# python-ovs (the OVSDB client under ovsdbapp) parses OVSDB's JSON in pure Python unless its
# C extension is present, and pip cannot build that without Open vSwitch's headers. Debian's
# python3-openvswitch ships it built; it is used when built for this venv's Python version.
ovs_dir="$(echo "$VENV"/lib/python3.*/site-packages/ovs)"
if [ -d "$ovs_dir" ] && ! ls "$ovs_dir"/_json.*.so >/dev/null 2>&1; then
  suffix="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
  if [ -f "/usr/lib/python3/dist-packages/ovs/_json$suffix" ]; then
    cp "/usr/lib/python3/dist-packages/ovs/_json$suffix" "$ovs_dir/"
    "$VENV/bin/python" -c 'import ovs.json, sys; sys.exit(ovs.json.PARSER != "C")' \
      || rm -f "$ovs_dir/_json$suffix"
  fi
fi
