#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests marked `slurm` (a real
# `torchx run -s slurm`, tests/launchers/test_slurm_run.py).
#
# Usage: scripts/slurm_local.sh [start|stop|status]
#   start   (default) install Debian's slurm-wlm, slurmdbd, munge and mariadb-server with apt-get
#           where missing (needs root), write /etc/slurm/slurm.conf and slurmdbd.conf for this host
#           (one node named `hostname`, its CPUs and memory from `slurmd -C`, partition `local`),
#           start munged, mariadbd, slurmdbd, slurmctld and slurmd, and wait until sinfo shows the
#           node idle. Idempotent: a second run finds the cluster up and returns at once.
#   stop    stop the daemons (munged and mariadbd only if this script started them).
#   status  sinfo and the daemons; exit 0 if the node is up, 1 if not.
# Accounting (slurmdbd on MariaDB) is there because TorchX's slurm scheduler reads a job's state
# with `sacct` (torchx status, run --wait, log tailing) and Slurm 22.05's sacct has no other source.
# Logs: /var/log/slurm/. A slurm.conf this script did not write is left alone (exit 2).
set -euo pipefail

CLUSTER=nasrec-local
PARTITION=local
MARKER="# Written by nasrec_torchrec scripts/slurm_local.sh"
CONF_DIR=/etc/slurm
RUN_DIR=/run/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm
MARIADB_LOG="$LOG_DIR/mariadb.log"
APT_LOG=/tmp/slurm_local_apt.log
NODE="$(hostname -s)"

say() { echo "[slurm_local] $*"; }
die() { echo "[slurm_local] error: $*" >&2; exit "${2:-1}"; }

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every half second until it succeeds.
wait_for() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  say "$what"
}

pid_alive() {  # pid_alive PIDFILE
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_state() {
  sinfo --noheader --nodes "$NODE" --format %t 2>/dev/null | head -n 1
}

node_up() {
  case "$(node_state)" in idle|mix|mixed|alloc|allocated|comp|completing) return 0 ;; esac
  return 1
}

daemons_up() {
  pid_alive "$RUN_DIR/slurmctld.pid" && pid_alive "$RUN_DIR/slurmd.pid" \
    && pid_alive "$RUN_DIR/slurmdbd.pid" && sacct --noheader --allocations >/dev/null 2>&1
}

install_packages() {
  local missing=0 program
  for program in munged mariadbd slurmdbd slurmctld slurmd sbatch sacct; do
    command -v "$program" >/dev/null 2>&1 || missing=1
  done
  [ "$missing" = 1 ] || return 0
  [ "$(id -u)" = 0 ] || die "Slurm is not installed and installing it needs root" 3
  command -v apt-get >/dev/null 2>&1 || die "Slurm is not installed and there is no apt-get" 3
  local packages=(slurm-wlm slurmdbd munge mariadb-server)
  say "installing ${packages[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get install --yes --quiet --no-install-recommends "${packages[@]}")
  "${apt[@]}" >"$APT_LOG" 2>&1 && return 0
  say "apt-get install failed; updating the package lists and retrying"
  if ! { apt-get update --quiet && "${apt[@]}"; } >>"$APT_LOG" 2>&1; then
    tail -n 20 "$APT_LOG" >&2
    die "apt-get failed ($APT_LOG)" 3
  fi
}

slurm_conf() {
  local node_line
  node_line="$(slurmd -C | head -n 1)"  # NodeName=... CPUs=... RealMemory=...
  cat <<EOF
$MARKER: one node, this host.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# No cgroups (containers): processes tracked by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=5
# Job records in slurmdbd: sacct is how torchx reads a job's state.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

slurmdbd_conf() {
  cat <<EOF
$MARKER: job accounting in the local MariaDB, reached as the OS user slurm (unix socket).
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$RUN_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StorageLoc=slurm_acct_db
EOF
}

# write_conf FILE MODE CONTENT: writes FILE if its content differs; returns 0 if it wrote.
write_conf() {
  local file="$1" mode="$2" content="$3"
  if [ -e "$file" ] && ! grep -qF "$MARKER" "$file"; then
    die "$file exists and was not written by this script; leaving that cluster alone" 2
  fi
  if [ -e "$file" ] && [ "$(cat "$file")" = "$content" ]; then
    return 1
  fi
  printf '%s\n' "$content" >"$file"
  chown slurm:slurm "$file"
  chmod "$mode" "$file"
  say "wrote $file"
}

start_munged() {
  if munge --no-input 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- munged
  touch "$RUN_DIR/started-munged"
  wait_for 30 "munged up" sh -c 'munge --no-input | unmunge' || die "munged did not start"
}

start_mariadb() {
  if ! mariadb-admin --connect-timeout=2 ping >/dev/null 2>&1; then
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      mariadb-install-db --user=mysql >>"$MARIADB_LOG" 2>&1
    fi
    setsid -f mariadbd --user=mysql --skip-networking </dev/null >>"$MARIADB_LOG" 2>&1
    touch "$RUN_DIR/started-mariadb"
    wait_for 60 "mariadbd up" mariadb-admin --connect-timeout=2 ping \
      || { tail -n 20 "$MARIADB_LOG" >&2; die "mariadbd did not start ($MARIADB_LOG)"; }
  fi
  mariadb --execute "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket;
    GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

# start_slurm_daemon NAME: starts slurmdbd, slurmctld or slurmd unless its pid file names a
# live process; the daemon forks itself and logs to $LOG_DIR/NAME.log.
start_slurm_daemon() {
  local name="$1"
  pid_alive "$RUN_DIR/$name.pid" && return 0
  if ! "$name" </dev/null >>"$LOG_DIR/$name.start.log" 2>&1; then
    tail -n 20 "$LOG_DIR/$name.start.log" "$LOG_DIR/$name.log" >&2
    die "$name did not start"
  fi
  say "$name started"
}

start() {
  if [ -e "$CONF_DIR/slurm.conf" ] && grep -qF "$MARKER" "$CONF_DIR/slurm.conf" \
      && daemons_up && node_up; then
    say "already up: node $NODE is $(node_state)"
    return 0
  fi
  install_packages
  install -d -o slurm -g slurm -m 0755 "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/slurmctld" \
    "$STATE_DIR/slurmd"
  local changed=0
  write_conf "$CONF_DIR/slurm.conf" 0644 "$(slurm_conf)" && changed=1
  write_conf "$CONF_DIR/slurmdbd.conf" 0600 "$(slurmdbd_conf)" && changed=1
  if [ "$changed" = 1 ] && pid_alive "$RUN_DIR/slurmctld.pid"; then
    say "configuration changed: restarting the Slurm daemons"
    stop_slurm
  fi

  start_munged
  start_mariadb
  start_slurm_daemon slurmdbd
  wait_for 60 "slurmdbd up" sacctmgr --noheader list cluster \
    || die "slurmdbd does not answer ($LOG_DIR/slurmdbd.log)"
  if [ -z "$(sacctmgr --noheader --parsable2 list cluster "$CLUSTER" format=cluster)" ]; then
    sacctmgr --immediate add cluster "$CLUSTER" >/dev/null
  fi
  start_slurm_daemon slurmctld
  wait_for 60 "slurmctld up" sh -c 'scontrol ping | grep -q UP' \
    || die "slurmctld does not answer ($LOG_DIR/slurmctld.log)"
  start_slurm_daemon slurmd
  if ! wait_for 60 "node $NODE is idle" node_up; then
    say "node $NODE is $(node_state); resuming it"
    scontrol update nodename="$NODE" state=resume || true
    wait_for 30 "node $NODE is idle" node_up \
      || die "node $NODE stays $(node_state) ($LOG_DIR/slurmd.log, $LOG_DIR/slurmctld.log)"
  fi
  sinfo
}

# stop_pid NAME PIDFILE: SIGTERM and wait up to 30 s.
stop_pid() {
  local name="$1" pidfile="$2" pid
  pid_alive "$pidfile" || return 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  wait_for 30 "$name stopped" sh -c "! kill -0 $pid 2>/dev/null" \
    || die "$name (pid $pid) did not stop"
}

stop_slurm() {
  if pid_alive "$RUN_DIR/slurmctld.pid"; then
    scontrol shutdown >/dev/null 2>&1 || true  # slurmctld and every slurmd
  fi
  stop_pid slurmd "$RUN_DIR/slurmd.pid"
  stop_pid slurmctld "$RUN_DIR/slurmctld.pid"
  stop_pid slurmdbd "$RUN_DIR/slurmdbd.pid"
}

stop() {
  stop_slurm
  if [ -e "$RUN_DIR/started-mariadb" ]; then
    mariadb-admin shutdown 2>/dev/null || true
    wait_for 30 "mariadbd stopped" sh -c '! mariadb-admin --connect-timeout=2 ping' || true
    rm -f "$RUN_DIR/started-mariadb"
  fi
  if [ -e "$RUN_DIR/started-munged" ]; then
    stop_pid munged /run/munge/munged.pid
    rm -f "$RUN_DIR/started-munged"
  fi
  say "stopped"
}

status() {
  local name
  for name in slurmdbd slurmctld slurmd; do
    if pid_alive "$RUN_DIR/$name.pid"; then say "$name running"; else say "$name not running"; fi
  done
  sinfo 2>&1 || true
  node_up
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h|--help) sed -n '2,16p' "$0" ;;
  *) die "unknown command '$1' (start, stop or status)" 2 ;;
esac
