#!/usr/bin/env bash
# A one-node SLURM cluster on loopback for laptops and tests (Debian's packages, no systemd).
#
#   sudo slurm/cluster.sh start    # install if missing (apt), write slurm.conf, start, wait for idle
#   sudo slurm/cluster.sh status   # daemons, node state, queue
#   sudo slurm/cluster.sh stop     # stop the daemons this script started (by their pid files)
#
# Idempotent: `start` on a running cluster only checks it; `stop` on a stopped one does nothing.
# The node has every CPU of the machine (nproc) and 90 % of its memory; one partition, `local`.
# State and spool live under /var/spool/slurm, pid files under /run/slurm, logs under
# /var/log/slurm. /etc/slurm/slurm.conf is written only if absent or written by this script
# (a real cluster's configuration is never replaced). Settings: docs/slurm.md.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by hens slurm/cluster.sh"
RUN=/run/slurm
SPOOL=/var/spool/slurm
LOG=/var/log/slurm
PARTITION=local
TIMEOUT=${HENS_SLURM_START_TIMEOUT:-60}   # seconds to wait for the node to become idle

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*"; }

# pid of a running daemon from its pid file, or nothing
live_pid() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "run as root: the daemons run as root and write /etc/slurm, /run and /var/spool"
}

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd sinfo munged; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them; install SLURM and munge"
    say "installing slurmctld slurmd slurm-client munge (apt)"
    # no systemd: the post-install "start denied" messages are expected
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null 2>&1 \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
}

start_munge() {
    mkdir -p /run/munge
    chown munge:munge /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    if ! live_pid /run/munge/munged.pid >/dev/null; then
        runuser -u munge -- /usr/sbin/munged
        touch "$RUN/munged.ours"   # `stop` stops munged only if this script started it
    fi
    munge -n | unmunge >/dev/null || die "munge does not work (munge -n | unmunge)"
}

write_conf() {
    local host cpus mem
    if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to replace it"
    fi
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)   # GNU nproc obeys OMP_NUM_THREADS
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
    mem=$(( ${mem:-1000} * 9 / 10 ))
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF.tmp" <<EOF
$MARK (one node on loopback); edit the script, not this file
ClusterName=hens-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
ReturnToService=2
SchedulerParameters=batch_sched_delay=0
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if cmp -s "$CONF.tmp" "$CONF"; then
        rm -f "$CONF.tmp"
        return 1
    fi
    mv "$CONF.tmp" "$CONF"   # changed (or new): daemons must (re)start to read it
}

node_state() { sinfo -h -N -o %t 2>/dev/null | head -n1; }

wait_idle() {
    local deadline=$((SECONDS + TIMEOUT)) state
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        case $state in
            idle|mix|alloc) return 0 ;;
            drain*|drng|down*|fail*)
                scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    die "the node did not become idle within ${TIMEOUT} s (state: ${state:-none}); see $LOG/slurmctld.log and $LOG/slurmd.log"
}

start() {
    need_root
    install_packages
    mkdir -p "$RUN" "$SPOOL/ctld" "$SPOOL/d" "$LOG"
    start_munge
    if write_conf && live_pid "$RUN/slurmctld.pid" >/dev/null; then
        say "slurm.conf changed: restarting the daemons"
        stop_pid_file "$RUN/slurmd.pid"
        stop_pid_file "$RUN/slurmctld.pid"
    fi
    if ! live_pid "$RUN/slurmctld.pid" >/dev/null; then
        slurmctld || die "slurmctld did not start; see $LOG/slurmctld.log"
    fi
    if ! live_pid "$RUN/slurmd.pid" >/dev/null; then
        slurmd || die "slurmd did not start; see $LOG/slurmd.log"
    fi
    wait_idle
    say "up: node $(hostname -s), $(sinfo -h -N -o %c | head -n1) CPUs, partition $PARTITION ($(node_state))"
}

stop_pid_file() {
    local pid n
    pid=$(live_pid "$1") || return 0
    kill "$pid" 2>/dev/null || true
    for ((n = 0; n < 100; n++)); do   # up to 10 s, then SIGKILL
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    need_root
    stop_pid_file "$RUN/slurmd.pid"
    stop_pid_file "$RUN/slurmctld.pid"
    if [[ -e $RUN/munged.ours ]]; then
        stop_pid_file /run/munge/munged.pid
        rm -f "$RUN/munged.ours"
    fi
    say "stopped"
}

status() {
    local name pid rc=0
    for name in slurmctld slurmd; do
        if pid=$(live_pid "$RUN/$name.pid"); then say "$name running (pid $pid)"; else say "$name stopped"; rc=3; fi
    done
    if ((rc == 0)); then
        sinfo
        squeue
    fi
    return $rc
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
