# Shared by scripts/serve and scripts/test: create .venv if missing and install segmentd.
# Usage: . scripts/_venv.sh [EXTRA]   (EXTRA: pip extras such as "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SEGMENTD_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
extras="${1:-}"
stamp="$VENV/.segmentd-installed${extras:+-$extras}"
# Reinstall only when the project's dependency list changed.
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q -e "$ROOT${extras:+[$extras]}"
  touch "$stamp"
fi
