#!/bin/sh
# `make demo`: start a local cluster (a master and two agents), run work on it, stop it.
# Expects mesoslite's console scripts on PATH (the Makefile puts .venv/bin first).
set -eu
cd "$(dirname "$0")/.."

WORK=$(mktemp -d /tmp/mesoslite-demo-XXXXXX)
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MESOSLITE_MASTER="127.0.0.1:$PORT"

echo "==> mesoslite local --agents 2 --port $PORT --work-dir $WORK"
mesoslite local --agents 2 --port "$PORT" --work-dir "$WORK" > "$WORK/local.out" 2>&1 &
LOCAL_PID=$!
stop() {
    if kill -0 "$LOCAL_PID" 2>/dev/null; then
        kill -INT "$LOCAL_PID"
        wait "$LOCAL_PID" || true
    fi
}
trap stop EXIT INT TERM

# Ready once it prints its hint (it waits for both agents first).
i=0
until grep -q "Ctrl-C stops" "$WORK/local.out" 2>/dev/null; do
    if ! kill -0 "$LOCAL_PID" 2>/dev/null || [ $i -ge 300 ]; then
        cat "$WORK/local.out"; echo "demo: the local cluster did not start" >&2; exit 1
    fi
    i=$((i + 1)); sleep 0.1
done
cat "$WORK/local.out"

echo; echo "==> mesoslite run -- echo hello from mesoslite"
mesoslite run -- echo hello from mesoslite

echo; echo "==> mesoslite run --cpus 0.5 --mem 64 --name sleepy -- sh -c 'sleep 1; exit 3'"
code=0; mesoslite run --cpus 0.5 --mem 64 --name sleepy -- sh -c 'sleep 1; exit 3' || code=$?
echo "exit code: $code"

echo; echo "==> mesoslite job submit --wait examples/jobs/batch.yaml"
mesoslite job submit --wait examples/jobs/batch.yaml
mesoslite job status word-count

echo; echo "==> python examples/run_n_tasks.py --count 20 --command 'echo hi'"
python examples/run_n_tasks.py --count 20 --command 'echo hi'

echo; echo "==> mesoslite agent list"
mesoslite agent list
echo; echo "==> mesoslite framework list --all"
mesoslite framework list --all
echo; echo "==> mesoslite task list --all | head"
mesoslite task list --all | head -n 8

echo; echo "==> stopping the cluster (SIGINT to mesoslite local)"
stop
trap - EXIT INT TERM
echo "demo done; logs are in $WORK"
