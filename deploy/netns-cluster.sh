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
# Processes are ended only by the PIDs this script recorded (agents first, so that they kill
# their tasks, then the master), and after that any process still inside one of the
# namespaces this script created (tasks an agent left behind). Needs root and iproute2.
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

# True if the recorded PID is alive and is still the mesoslite daemon we started.
our_pid() {
    local pidfile=$1 pid
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") =~ mesoslite-(master|agent) ]]
}

# Start a daemon detached from this shell (own session, stdin from /dev/null), record its PID.
start_daemon() {
    local name=$1; shift
    echo "---- $(date -u +%FT%TZ) netns-cluster starting: $*" >>"$WORK/$name.log"
    setsid "$@" </dev/null >>"$WORK/$name.log" 2>&1 &
    echo $! >"$WORK/pids/$name.pid"
}

# Send SIGTERM to a recorded daemon, wait for it, SIGKILL it after STOP_TIMEOUT_S.
stop_daemon() {
    local name=$1 pidfile=$WORK/pids/$1.pid pid i
    if our_pid "$pidfile"; then
        pid=$(<"$pidfile")
        say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
            our_pid "$pidfile" || break
            sleep 0.1
        done
        if our_pid "$pidfile"; then
            say "$name did not stop in ${STOP_TIMEOUT_S}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
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
    start_daemon master "$BIN/mesoslite-master" --host "$MASTER_IP" --port "$MASTER_PORT" \
        --work-dir "$WORK/master"
    for ((i = 0; i < 100; i++)); do
        [[ -f $WORK/master/master.json ]] && break
        our_pid "$WORK/pids/master.pid" || { tail -n 20 "$WORK/master.log" >&2; false; }
        sleep 0.1
    done
    [[ -f $WORK/master/master.json ]] || { say "master did not start in 10s"; false; }

    for ((i = 1; i <= AGENTS; i++)); do
        ns=$(ns_name "$i")
        say "agent$i in namespace $ns at $(agent_ip "$i") (log $WORK/agent$i.log)"
        start_daemon "agent$i" ip netns exec "$ns" "$BIN/mesoslite-agent" \
            --master "$MASTER_ADDR" --hostname "agent$i" --work-dir "$WORK/agent$i" \
            --resources "$AGENT_RESOURCES"
    done
    local active=0 n
    for ((i = 0; i < 150; i++)); do
        for ((n = 1; n <= AGENTS; n++)); do
            our_pid "$WORK/pids/agent$n.pid" && continue
            sleep 0.2 # `ip netns exec` may not have exec'd the agent yet
            our_pid "$WORK/pids/agent$n.pid" ||
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

cmd_down() {
    load_settings
    local i ns pid left
    for ((i = 1; i <= AGENTS; i++)); do
        stop_daemon "agent$i"
    done
    stop_daemon master
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
    rmdir "$WORK/pids" 2>/dev/null || true
    say "down: namespaces and links deleted; logs and daemon state kept in $WORK"
}

cmd_status() {
    [[ -f $STATE_FILE ]] || { say "not up (no $STATE_FILE)"; return 3; }
    load_settings
    echo "master  $MASTER_ADDR  $(our_pid "$WORK/pids/master.pid" && echo "pid $(<"$WORK/pids/master.pid") running" || echo "NOT running")"
    local i ns
    for ((i = 1; i <= AGENTS; i++)); do
        ns=$(ns_name "$i")
        printf 'agent%s  %s  netns %s %s  %s\n' "$i" "$(agent_ip "$i")" "$ns" \
            "$(ns_exists "$ns" && echo present || echo MISSING)" \
            "$(our_pid "$WORK/pids/agent$i.pid" && echo "pid $(<"$WORK/pids/agent$i.pid") running" || echo "NOT running")"
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
