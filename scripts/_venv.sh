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
