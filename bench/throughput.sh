#!/usr/bin/env bash
# The mesoslite half of ../shared/peers/side-by-side.sh's throughput rows, without Slurm:
#   bench/throughput.sh [CHECKOUT]      (N=1000 AGENTS=4 ROUNDS=1 by default)
# Starts `mesoslite local --agents $AGENTS` from CHECKOUT (default: this one, venv at $VENV),
# then per round times, in one run on one machine:
#   job:  `mesoslite job submit --wait` of one batch job of N `true` instances (cpus 0.05, mem 16)
#   SDK:  `python examples/run_n_tasks.py --count N` (includes the framework's start)
#   bare: N x subprocess.run(['true']) from Python, the machine's limit for one launcher
# and prints the rates, and each as a share of bare. The agents take their default
# --task-launcher unless MESOSLITE_AGENT_TASK_LAUNCHER says otherwise (they inherit it).
# Bounded: N tasks a measure, every wait times out; the cluster is stopped by its pid.
set -euo pipefail
CHECKOUT=$(cd "${1:-.}" && pwd); cd "$CHECKOUT"
VENV=${VENV:-$CHECKOUT/.venv}; export PATH="$VENV/bin:$PATH"
N=${N:-1000}; AGENTS=${AGENTS:-4}; ROUNDS=${ROUNDS:-1}
W=$(mktemp -d /tmp/throughput.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
export MESOSLITE_MASTER=127.0.0.1:$PORT
setsid mesoslite local --agents "$AGENTS" --port "$PORT" --work-dir "$W/local" >"$W/local.log" 2>&1 </dev/null &
LP=$!
# SIGTERM: the local cluster's agents (--recover cleanup) kill their tasks; then the group.
# The work dir goes too, unless KEEP=1 (its logs).
trap 'kill -TERM $LP 2>/dev/null || true; for _ in $(seq 100); do kill -0 $LP 2>/dev/null || break; sleep 0.1; done; kill -KILL -- -$LP 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] || rm -rf "$W"' EXIT
up=0
for _ in $(seq 120); do
  n=$(mesoslite agent list --json 2>/dev/null | python3 -c 'import json,sys;print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0)
  [ "$n" -ge "$AGENTS" ] && { up=1; break; }
  sleep 0.5
done
[ "$up" = 1 ] || { echo "the local cluster did not come up: $W/local.log" >&2; exit 1; }
launcher=${MESOSLITE_AGENT_TASK_LAUNCHER:-$(python3 -c 'from mesoslite.agent.config import AgentConfig as C; print(C.__dataclass_fields__["task_launcher"].default)')}
ms() { python3 -c "import sys;print(round((float(sys.argv[2])-float(sys.argv[1]))*1000,1))" "$1" "$2"; }
rate() { python3 -c "print(round($N*1000/$1))"; }
share() { python3 -c "print(round($1/$2,2))"; }
echo "throughput, $(date -u +%FT%TZ), mesoslite $(git rev-parse --short HEAD), $AGENTS agents, task launcher $launcher, N=$N"
echo "| round | load at start | job of $N | SDK, $N tasks | bare fork/exec | job / bare | SDK / bare |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for r in $(seq "$ROUNDS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  cat >"$W/job.yaml" <<Y
name: tput-$$-$r
type: batch
command: "true"
instances: $N
resources: {cpus: 0.05, mem: 16}
Y
  t=$(date +%s.%N)
  timeout 600 mesoslite job submit --wait "$W/job.yaml" >"$W/job-$r.out" 2>&1
  job=$(rate "$(ms "$t" "$(date +%s.%N)")")
  t=$(date +%s.%N)
  timeout 600 python3 examples/run_n_tasks.py --count "$N" >"$W/sdk-$r.out" 2>&1
  sdk=$(rate "$(ms "$t" "$(date +%s.%N)")")
  bare=$(python3 -c "
import subprocess,time
t=time.perf_counter()
for _ in range($N): subprocess.run(['true'])
print(round($N/(time.perf_counter()-t)))")
  echo "| $r | $load | $job/s | $sdk/s | $bare/s | $(share "$job" "$bare") | $(share "$sdk" "$bare") |"
done
