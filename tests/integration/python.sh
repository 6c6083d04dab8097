#!/usr/bin/env bash
# python.sh - python3 builds, sorts and JSON-round-trips large dicts and lists
# (plus threads building their own), under glibc and preloaded; the printed
# digests must match. Debian's /usr/bin/python3 is preferred over whatever
# python3 comes first in PATH (a pyenv shim would be a shell script).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || { need python3; PY=$(command -v python3); }

scenario() {
	PYTHONHASHSEED=0 "$PY" "$INTEG_SRC/python_work.py"
}
run_both python scenario 11
