# A virtualenv of its own for the real Keystone the tests start (tests/keystone.py): Keystone
# pins its own SQLAlchemy, oslo.* and Flask, which must not meet segmentd's in .venv.
# Usage: . scripts/_keystone_venv.sh   (scripts/test does), or run it.
# Creates $ROOT/.venv-keystone (SEGMENTD_KEYSTONE_VENV elsewhere) when missing or when the pins
# below changed, and exports SEGMENTD_KEYSTONE_VENV for the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEYSTONE_PINS="keystone==30.0.0 gunicorn==27.0.1"
export SEGMENTD_KEYSTONE_VENV="${SEGMENTD_KEYSTONE_VENV:-$ROOT/.venv-keystone}"
(
  kvenv="$SEGMENTD_KEYSTONE_VENV"
  stamp="$kvenv/.segmentd-pins"
  mkdir -p "$(dirname "$kvenv")"
  flock 9  # two runs at once: one installs, the other finds it done
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$KEYSTONE_PINS" ] \
      && "$kvenv/bin/python" -c '' 2>/dev/null; then
    exit 0
  fi
  echo "scripts/_keystone_venv.sh: installing $KEYSTONE_PINS into $kvenv (about a minute)"
  rm -rf "$kvenv"
  python3 -m venv "$kvenv"
  # pip's output (and the warnings about this machine's extra indexes) only when it fails.
  # shellcheck disable=SC2086  # the pins are words
  if ! { "$kvenv/bin/pip" install -q --upgrade pip \
         && "$kvenv/bin/pip" install -q $KEYSTONE_PINS; } >"$kvenv/install.log" 2>&1; then
    cat "$kvenv/install.log" >&2
    echo "scripts/_keystone_venv.sh: installing Keystone failed (log above)" >&2
    exit 1
  fi
  echo "$KEYSTONE_PINS" >"$stamp"
) 9>"$SEGMENTD_KEYSTONE_VENV.lock"
