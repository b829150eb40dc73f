#!/usr/bin/env bash
# A multi-host mesoslite cluster on one Linux machine, with network namespaces.
#
#   sudo deploy/netns-cluster.sh up       # master + agents, wait until all are registered
#   sudo deploy/netns-cluster.sh status   # namespaces, links, daemons, `mesoslite agent list`
#   sudo deploy/netns-cluster.sh down     # stop everything it started, delete what it made
#
# Layout (defaults): a bridge NAME-br (10.77.0.1/24) in the root namespace, where the
# master listens on 10.77.0.1:5050. Agent i runs in namespace NAME-agent<i>, whose eth0
# (10.77.0.1<i>/24) is one end of a veth pair; the other end (NAME-v<i>) is on the
# bridge. Each agent reports hostname agent<i>, and its tasks run in its namespace (so
# `hostname -I` in a task prints the agent's address).
#
# Settings (environment, read by `up`; `down` and `status` reuse what `up` recorded):
#   NETNS_WORK          work dir: logs, pids, daemon state    [/tmp/mesoslite-netns]
#   NETNS_NAME          prefix of namespaces and links (<= 8 chars)   [mlnet]
#   NETNS_SUBNET        first three octets of the private /24 [10.77.0]
#   NETNS_AGENTS        how many agents (1-9)                  [2]
#   NETNS_MASTER_PORT   the master's port                      [5050]
#   NETNS_AGENT_RESOURCES  each agent's --resources; without it every agent would
#                       probe (and offer) the whole machine   [cpus:2;mem:1024;disk:2000]
#   MESOSLITE_BIN       directory with mesoslite-master, mesoslite-agent, mesoslite
#                       [the repository's .venv/bin if it exists, else from PATH]
#
# Agents run with --recover cleanup, as under `mesoslite local`: `down` stops them with SIGTERM,
# so each kills its tasks (SIGTERM, SIGKILL after the task's grace period) and reports them
# TASK_KILLED to the master, which is stopped last. Processes are ended only by the PIDs this
# script recorded, and after that any process still inside one of the namespaces this script
# created (a task whose agent died). Needs root and iproute2.
set -Eeuo pipefail

WORK=${NETNS_WORK:-/tmp/mesoslite-netns}
STATE_FILE=$WORK/netns.env
STOP_TIMEOUT_S=15

die() { echo "netns-cluster: $*" >&2; exit 1; }
say() { echo "netns-cluster: $*" >&2; }

load_settings() {
    if [[ -f $STATE_FILE ]]; then
        # shellcheck disable=SC1090
        source "$STATE_FILE"
    else
        NAME=${NETNS_NAME:-mlnet}
        SUBNET=${NETNS_SUBNET:-10.77.0}
        AGENTS=${NETNS_AGENTS:-2}
        MASTER_PORT=${NETNS_MASTER_PORT:-5050}
        AGENT_RESOURCES=${NETNS_AGENT_RESOURCES:-cpus:2;mem:1024;disk:2000}
        BIN=${MESOSLITE_BIN:-}
        if [[ -z $BIN ]]; then
            local repo_bin
            repo_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin"
            if [[ -x $repo_bin/mesoslite-master ]]; then
                BIN=$repo_bin
            elif command -v mesoslite-master >/dev/null; then
                BIN=$(dirname "$(command -v mesoslite-master)")
            fi
        fi
    fi
    BRIDGE=$NAME-br
    MASTER_IP=$SUBNET.1
    MASTER_ADDR=$MASTER_IP:$MASTER_PORT
}

ns_name() { echo "$NAME-agent$1"; }
ns_exists() { [[ -e /run/netns/$1 || -e /var/run/netns/$1 ]]; }
host_veth() { echo "$NAME-v$1"; }
agent_ip() { echo "$SUBNET.1$1"; }

save_settings() {
    mkdir -p "$WORK/pids"
    {
        printf 'NAME=%q\nSUBNET=%q\nAGENTS=%q\nMASTER_PORT=%q\n' \
            "$NAME" "$SUBNET" "$AGENTS" "$MASTER_PORT"
        printf 'AGENT_RESOURCES=%q\nBIN=%q\n' "$AGENT_RESOURCES" "$BIN"
    } >"$STATE_FILE"
}

# A daemon's /proc/PID/comm once it has exec'd: the kernel sets it at exec from the script's
# file name, cut to 15 bytes. Before that exec it is bash's, setsid's or ip's.
daemon_comm() { [[ $1 == master ]] && echo mesoslite-maste || echo mesoslite-agent; }

# The process's start time (clock ticks since boot): with the PID, it names one process.
# Fails for a process that has exited (a zombie not yet reaped by this shell included).
proc_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # the fields after "(comm) "; comm itself may hold spaces
    [[ ${stat:0:1} != Z ]] || return 1
    cut -d' ' -f20 <<<"$stat"
}

# True if the daemon recorded in pids/NAME.pid ("PID START") is still that process.
our_pid() {
    local name=$1 pid start comm
    [[ -f $WORK/pids/$name.pid ]] || return 1
    read -r pid start <"$WORK/pids/$name.pid" || return 1
    [[ $pid =~ ^[0-9]+$ && -n $start ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$(daemon_comm "$name")" && "$(proc_start "$pid")" == "$start" ]]
}

recorded_pid() { local pid _; read -r pid _ <"$WORK/pids/$1.pid" && echo "$pid"; }

# Start a daemon detached from this shell (own session, stdin from /dev/null). The process
# writes its own PID before it execs (setsid may fork), and the PID is recorded only once
# that process has become the daemon, so `our_pid` never sees setsid, ip or bash.
start_daemon() {
    local name=$1 spawned=$WORK/pids/$1.spawned pid="" start i
    shift
    echo "---- $(date -u +%FT%TZ) netns-cluster starting: $*" >>"$WORK/$name.log"
    rm -f "$spawned" "$WORK/pids/$name.pid"
    # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
    setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$spawned" "$@" \
        </dev/null >>"$WORK/$name.log" 2>&1 &
    for ((i = 0; i < 100; i++)); do
        [[ -z $pid && -f $spawned ]] && pid=$(<"$spawned")
        if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$(daemon_comm "$name")" ]] &&
            start=$(proc_start "$pid"); then
            echo "$pid $start" >"$WORK/pids/$name.pid"
            rm -f "$spawned"
            return 0
        fi
        if [[ -n $pid ]] && ! proc_start "$pid" >/dev/null; then
            say "$name exited at start:"
            tail -n 20 "$WORK/$name.log" >&2
            return 1
        fi
        sleep 0.05
    done
    say "$name did not start in 5s (see $WORK/$name.log)"
    return 1
}

# Send SIGTERM to the recorded daemons together, wait for each, SIGKILL what is left after
# STOP_TIMEOUT_S.
stop_daemons() {
    local name pid i alive
    local -a running=()
    for name in "$@"; do
        if our_pid "$name"; then
            pid=$(recorded_pid "$name")
            kill -TERM "$pid" 2>/dev/null || true
            running+=("$name")
        else
            rm -f "$WORK/pids/$name.pid"
        fi
    done
    for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
        alive=0
        for name in "${running[@]}"; do
            if our_pid "$name"; then alive=1; fi
        done
        ((alive)) || break
        sleep 0.1
    done
    for name in "${running[@]}"; do
        if our_pid "$name"; then
            say "$name did not stop in ${STOP_TIMEOUT_S}s: SIGKILL"
            kill -KILL "$(recorded_pid "$name")" 2>/dev/null || true
        fi
        rm -f "$WORK/pids/$name.pid"
    done
}

cmd_up() {
    [[ $(id -u) -eq 0 ]] || die "needs root (ip netns, ip link)"
    command -v ip >/dev/null || die "needs iproute2 (the ip command)"
    [[ -f $STATE_FILE ]] && die "already up (state in $STATE_FILE): run '$0 down' first"
    load_settings
    [[ -n $BIN && -x $BIN/mesoslite-master && -x $BIN/mesoslite-agent ]] ||
        die "mesoslite-master/mesoslite-agent not found: set MESOSLITE_BIN"
    [[ $AGENTS =~ ^[1-9]$ ]] || die "NETNS_AGENTS must be 1-9, got '$AGENTS'"
    [[ ${#NAME} -le 8 && $NAME =~ ^[a-z][a-z0-9]*$ ]] ||
        die "NETNS_NAME must be 1-8 lowercase letters and digits, got '$NAME'"
    [[ $SUBNET =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NETNS_SUBNET must look like 10.77.0"
    if ip -4 addr show | grep -F "inet $SUBNET." >/dev/null; then
        die "$SUBNET.0/24 is already used on this machine: pick another NETNS_SUBNET"
    fi
    if ip -4 route show | grep -F "$SUBNET.0/24" >/dev/null; then
        die "there is already a route to $SUBNET.0/24: pick another NETNS_SUBNET"
    fi
    ip link show "$BRIDGE" >/dev/null 2>&1 && die "link $BRIDGE exists: pick another NETNS_NAME"
    mkdir -p "$WORK/pids"
    save_settings
    trap 'say "up failed: cleaning up"; cmd_down' ERR

    say "network: bridge $BRIDGE $MASTER_IP/24, $AGENTS agent namespaces"
    ip link add "$BRIDGE" type bridge
    ip addr add "$MASTER_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local i ns
    for ((i = 1; i <= AGENTS; i++)); do
        ns=$(ns_name "$i")
        ip netns add "$ns"
        ip link add "$(host_veth "$i")" type veth peer name eth0 netns "$ns"
        ip link set "$(host_veth "$i")" master "$BRIDGE" up
        ip -n "$ns" addr add "$(agent_ip "$i")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    done

    say "master on $MASTER_ADDR (log $WORK/master.log)"
    rm -f "$WORK/master/master.json"
    # --insecure: plain text on the bridge's address, which is not loopback (a daemon refuses
    # that without TLS or --insecure). The bridge is private to this machine; for TLS, give
    # --tls-cert/--tls-key/--tls-ca here and to the agents (docs/security.md).
    start_daemon master "$BIN/mesoslite-master" --host "$MASTER_IP" --port "$MASTER_PORT" \
        --work-dir "$WORK/master" --insecure
    for ((i = 0; i < 100; i++)); do
        [[ -f $WORK/master/master.json ]] && break
        our_pid master || { tail -n 20 "$WORK/master.log" >&2; false; }
        sleep 0.1
    done
    [[ -f $WORK/master/master.json ]] || { say "master did not start in 10s"; false; }

    for ((i = 1; i <= AGENTS; i++)); do
        ns=$(ns_name "$i")
        say "agent$i in namespace $ns at $(agent_ip "$i") (log $WORK/agent$i.log)"
        start_daemon "agent$i" ip netns exec "$ns" "$BIN/mesoslite-agent" \
            --master "$MASTER_ADDR" --hostname "agent$i" --work-dir "$WORK/agent$i" \
            --resources "$AGENT_RESOURCES" --recover cleanup
    done
    local active=0 n
    for ((i = 0; i < 150; i++)); do
        for ((n = 1; n <= AGENTS; n++)); do
            our_pid "agent$n" ||
                { say "agent$n exited:"; tail -n 5 "$WORK/agent$n.log" >&2; false; }
        done
        active=$("$BIN/mesoslite" --master "$MASTER_ADDR" agent list --json 2>/dev/null |
            grep -c '"status": "active"' || true)
        [[ $active -ge $AGENTS ]] && break
        sleep 0.2
    done
    [[ $active -ge $AGENTS ]] || { say "only $active of $AGENTS agents registered in 30s"; false; }
    trap - ERR
    say "up: $AGENTS agents registered"
    echo "export MESOSLITE_MASTER=$MASTER_ADDR"
}

# "HOSTNAME TASKS" per agent, as the master counts them; nothing if it does not answer.
task_counts() {
    our_pid master || return 0
    timeout 10 "$BIN/mesoslite" --master "$MASTER_ADDR" agent list --json 2>/dev/null |
        python3 -c 'import json, sys
for a in json.load(sys.stdin): print(a["hostname"], a["task_count"])' 2>/dev/null || true
}

cmd_down() {
    load_settings
    local i ns pid left counts n
    local -a agents=()
    counts=$(task_counts)
    for ((i = 1; i <= AGENTS; i++)); do
        agents+=("agent$i")
        our_pid "agent$i" || continue
        n=$(awk -v h="agent$i" '$1 == h { print $2 }' <<<"$counts")
        if [[ $n == 0 ]]; then
            say "stopping agent$i (pid $(recorded_pid "agent$i")), with 0 tasks running"
            continue
        fi
        say "stopping agent$i (pid $(recorded_pid "agent$i")), with ${n:-its} tasks running:" \
            "it kills them (SIGTERM, SIGKILL after each task's grace period) and reports" \
            "them TASK_KILLED"
    done
    stop_daemons "${agents[@]}"
    if our_pid master; then
        say "stopping master (pid $(recorded_pid master))"
    fi
    stop_daemons master
    for ((i = 1; i <= AGENTS; i++)); do
        ns=$(ns_name "$i")
        if ns_exists "$ns"; then
            # Whatever is still inside a namespace we created is ours: a task whose agent
            # died without killing it. Kill it by PID before the namespace goes.
            left=$(ip netns pids "$ns" || true)
            for pid in $left; do
                say "killing leftover pid $pid in $ns: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
                kill -KILL "$pid" 2>/dev/null || true
            done
            ip netns del "$ns"
        fi
        ip link del "$(host_veth "$i")" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    rm -f "$STATE_FILE"
    rm -f "$WORK"/pids/*.spawned
    rmdir "$WORK/pids" 2>/dev/null || true
    say "down: no task left running; namespaces and links deleted; logs and daemon state" \
        "kept in $WORK"
}

daemon_status() {
    if our_pid "$1"; then echo "pid $(recorded_pid "$1") running"; else echo "NOT running"; fi
}

cmd_status() {
    [[ -f $STATE_FILE ]] || { say "not up (no $STATE_FILE)"; return 3; }
    load_settings
    echo "master  $MASTER_ADDR  $(daemon_status master)"
    local i ns
    for ((i = 1; i <= AGENTS; i++)); do
        ns=$(ns_name "$i")
        printf 'agent%s  %s  netns %s %s  %s\n' "$i" "$(agent_ip "$i")" "$ns" \
            "$(ns_exists "$ns" && echo present || echo MISSING)" "$(daemon_status "agent$i")"
    done
    echo
    "$BIN/mesoslite" --master "$MASTER_ADDR" agent list
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 up|down|status   (settings: see the comment at the top)" >&2
        exit 2
        ;;
esac
