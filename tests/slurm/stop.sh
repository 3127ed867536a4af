#!/usr/bin/env bash
# Stop the single-node SLURM cluster that tests/slurm/start.sh started: cancel its jobs, shut
# down slurmctld and slurmd, stop munged. Only daemons that start.sh itself started (recorded
# by PID in /run/fractalsweep-slurm) are touched; the packages and /etc/slurm/slurm.conf stay,
# so the next start is quick. Safe to run when nothing is running.
set -euo pipefail

STATE=/run/fractalsweep-slurm

say() { echo "slurm/stop.sh: $*"; }

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The PID recorded for daemon $1, if that process is still alive and still that daemon.
ours() {
    local name=$1 pid
    pid=$(cat "$STATE/$name" 2>/dev/null || true)
    alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] && echo "$pid"
    return 0
}

# Wait up to $1 seconds for the given PIDs to end; then TERM, then KILL what is left.
finish() {
    local wait=$1 pid left
    shift
    for _ in $(seq $((wait * 10))); do
        left=0
        for pid in "$@"; do alive "$pid" && left=1; done
        ((left)) || return 0
        sleep 0.1
    done
    for pid in "$@"; do alive "$pid" && { say "sending TERM to $pid"; kill -TERM "$pid" || true; }; done
    sleep 2
    for pid in "$@"; do alive "$pid" && { say "sending KILL to $pid"; kill -KILL "$pid" || true; }; done
    return 0
}

if [[ $(id -u) -ne 0 ]]; then
    say "not root: nothing of start.sh's can be running as this user"
    exit 0
fi
if [[ ! -d $STATE ]]; then
    say "nothing started by start.sh is recorded; nothing to stop"
    exit 0
fi

ctld=$(ours slurmctld)
slurmd_pid=$(ours slurmd)
if [[ -n $ctld ]] && timeout 10 scontrol ping 2>/dev/null | grep -q "is UP"; then
    jobs=$(timeout 15 squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
    if [[ -n ${jobs// } ]]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        timeout 15 scancel $jobs || true
    fi
    say "scontrol shutdown"
    timeout 15 scontrol shutdown || true
fi
pids=()
[[ -n $ctld ]] && pids+=("$ctld")
[[ -n $slurmd_pid ]] && pids+=("$slurmd_pid")
if ((${#pids[@]})); then
    finish 20 "${pids[@]}"
    say "stopped slurm daemons ${pids[*]}"
fi

munged_pid=$(ours munged)
if [[ -n $munged_pid ]]; then
    runuser -u munge -- /usr/sbin/munged --stop >/dev/null 2>&1 || true
    finish 10 "$munged_pid"
    say "stopped munged $munged_pid"
fi

rm -rf "$STATE"
