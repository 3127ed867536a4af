#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for tests/test_slurm.py (as root):
# munge + slurmctld + slurmd from Debian's packages, controller and node on 127.0.0.1.
# The comments below say why each setting is there.
#
# Installs the packages if missing, writes /etc/slurm/slurm.conf, starts the daemons, waits
# until the node is idle and proves it with srun. Running it again while the cluster is up
# changes nothing. tests/slurm/stop.sh stops what this script started.
#
# Exit status: 0 up; 77 this machine cannot run it (not root, no apt-get, packages cannot be
# installed), which the tests report as a skip; anything else is an error.
set -euo pipefail

STATE=/run/fractalsweep-slurm        # which daemons this script started (read by stop.sh)
CONF=/etc/slurm/slurm.conf
HEADER="# Written by fractalsweep tests/slurm/start.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { echo "slurm/start.sh: $*"; }
die() { echo "slurm/start.sh: error: $*" >&2; exit 1; }
cannot() { echo "slurm/start.sh: cannot run here: $*" >&2; exit 77; }

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
pid_of() { cat "$1" 2>/dev/null || true; }

[[ $(id -u) -eq 0 ]] || cannot "must run as root (daemons, /etc/slurm, apt-get)"

# --- packages -------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || cannot "packages ${missing[*]} are missing and there is no apt-get"
    say "installing ${missing[*]}"
    # Keep the packages' maintainer scripts from starting daemons (no init system here).
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
        trap 'if [[ $made_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    log=/tmp/fractalsweep-slurm-apt.log
    apt_error() { tail -n 5 "$log" >&2; grep -E '^(E|Err):' "$log" | tail -n 1 || true; }
    apt-get update -q >"$log" 2>&1 \
        || cannot "apt-get update failed: $(apt_error) (log: $log)"
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$log" 2>&1 \
        || cannot "apt-get install ${PACKAGES[*]} failed: $(apt_error) (log: $log)"
    if [[ $made_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; made_policy=0; fi
fi
for cmd in slurmctld slurmd sinfo srun scontrol munged munge unmunge; do
    command -v "$cmd" >/dev/null || die "$cmd not found after installing ${PACKAGES[*]}"
done

mkdir -p "$STATE"

# --- munge ----------------------------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    runuser -u munge -- mungekey --create
fi
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munged already running"
else
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    pid_of /run/munge/munged.pid > "$STATE/munged"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munged started but 'munge -n | unmunge' fails"
fi

# --- slurm.conf -----------------------------------------------------------------------------
host=$(hostname -s)
node=$(slurmd -C 2>/dev/null | head -n 1) || true
[[ $node == NodeName=* ]] || die "'slurmd -C' did not describe this node: $node"
[[ $node == *RealMemory=* ]] || die "'slurmd -C' gave no RealMemory: $node"
node="NodeName=$host ${node#NodeName=* } NodeAddr=127.0.0.1 State=UNKNOWN"

new=$(cat <<EOF
$HEADER: a single-node test cluster on localhost.
ClusterName=fractalsweep-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
if [[ -e $CONF ]] && [[ $(head -n 1 "$CONF") != "$HEADER"* ]]; then
    die "$CONF exists and was not written by this script; refusing to replace it"
fi
changed=1
[[ -e $CONF ]] && [[ $(cat "$CONF") == "$new" ]] && changed=0

ctld=$(pid_of /run/slurmctld.pid)
slurmd_pid=$(pid_of /run/slurmd.pid)
up=0
if alive "$ctld" && alive "$slurmd_pid" && scontrol ping 2>/dev/null | grep -q "is UP"; then
    up=1
fi
if ((up && changed)); then
    say "configuration changed: restarting the cluster"
    "$HERE/stop.sh"
    up=0
    mkdir -p "$STATE"
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged || die "munged did not start"
        pid_of /run/munge/munged.pid > "$STATE/munged"
        sleep 0.5
    fi
fi
if ((changed)); then
    mkdir -p /etc/slurm
    printf '%s\n' "$new" > "$CONF"
    say "wrote $CONF ($node)"
fi

# --- daemons --------------------------------------------------------------------------------
if ((up)); then
    say "slurmctld and slurmd already running"
else
    install -d -m 0755 /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    say "starting slurmctld and slurmd"
    slurmctld -c || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
    for _ in $(seq 100); do
        scontrol ping 2>/dev/null | grep -q "is UP" && break
        sleep 0.1
    done
    scontrol ping | grep -q "is UP" \
        || die "slurmctld is not answering (see /var/log/slurm/slurmctld.log)"
    pid_of /run/slurmctld.pid > "$STATE/slurmctld"
    slurmd || die "slurmd did not start (see /var/log/slurm/slurmd.log)"
    for _ in $(seq 50); do
        alive "$(pid_of /run/slurmd.pid)" && break
        sleep 0.1
    done
    alive "$(pid_of /run/slurmd.pid)" || die "slurmd exited (see /var/log/slurm/slurmd.log)"
    pid_of /run/slurmd.pid > "$STATE/slurmd"
fi

# --- wait for the node ----------------------------------------------------------------------
state=""
for i in $(seq 120); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1)
    case $state in
        idle|mixed|allocated|completing) break ;;
        down*|drain*|fail*)
            say "node $host is $state: resuming it"
            scontrol update NodeName="$host" State=RESUME || true ;;
    esac
    sleep 0.5
done
case $state in
    idle|mixed|allocated|completing) ;;
    *) scontrol show node "$host" >&2 || true
       die "node $host is '${state:-unknown}', not idle, after 60 s (see /var/log/slurm/)" ;;
esac

out=$(timeout 60 srun -N1 -n1 -t 1 hostname 2>&1) \
    || die "srun -N1 -n1 -t 1 hostname failed: $out"
say "up: node $host is $state; srun ran on $out"
