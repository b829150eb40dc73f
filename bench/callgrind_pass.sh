#!/bin/sh
# Instructions per allocation pass, counted by callgrind (a script, not a test): a figure
# that a loaded machine does not change, unlike CPU time.
#
#     bench/callgrind_pass.sh POLICY [AGENTS FRAMEWORKS]      (default 10000 1000)
#
# Runs `bench_allocator.py` (full pass) under `valgrind --tool=callgrind` with --repeat 1 and
# --repeat 4 and prints (I4 - I1) / 3: one pass's instructions, without the interpreter's
# start and the view's build. PYTHONHASHSEED is fixed so that both runs hash alike. Set
# PYTHONPATH to time another tree (`git archive` of main into /tmp, say); PYTHON picks the
# interpreter (default .venv/bin/python).
set -eu
policy=${1:?policy: drf, fair or ssf}
agents=${2:-10000}
frameworks=${3:-1000}
python=${PYTHON:-.venv/bin/python}
here=$(dirname "$0")

count() {
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$python" "$here/bench_allocator.py" --policy "$policy" --agents "$agents" \
        --frameworks "$frameworks" --repeat "$1" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

one=$(count 1)
four=$(count 4)
echo "$policy agents=$agents frameworks=$frameworks instructions/pass $(((four - one) / 3))"
