#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost for the tests (tests/test_slurm_local.py): munge, MariaDB,
# slurmdbd (submitit asks sacct for job states, and sacct needs the accounting database), slurmctld and
# slurmd, all from Debian's packages, with their configuration and state under one folder.
#
#   scripts/slurm-local.sh install   apt-get install the packages (root; CI runs as root)
#   scripts/slurm-local.sh start     write the configuration, start the daemons, wait until the node is idle
#   scripts/slurm-local.sh stop      stop the daemons this script started
#   scripts/slurm-local.sh env       print the environment a client needs (SLURM_CONF=...)
#
# The folder is $T2S_SLURM_DIR (default /tmp/t2s-slurm). Exit 3 with a reason on stderr when the cluster
# cannot be had here (not root and the packages are missing, a daemon that does not start): the tests
# skip with that reason.
set -euo pipefail
DIR=${T2S_SLURM_DIR:-/tmp/t2s-slurm}
PKGS=(slurm-wlm slurmdbd munge mariadb-server)
CONF=$DIR/slurm.conf
NODE=$(hostname)

cannot() { echo "slurm-local: $*" >&2; exit 3; }

install() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || cannot "packages missing (${missing[*]}) and not root: sudo apt-get install -y ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } \
    || cannot "apt-get install ${missing[*]} failed"
}

write_config() {
  mkdir -p "$DIR"/{state,spool,log,mysql-run}
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$CONF" <<EOF
ClusterName=t2s
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
MinJobAge=30
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cat > "$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=$NODE
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=t2s-local
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/slurmdbd.conf"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  cannot "$what did not come up within ${t}s (logs in $DIR/log)"
}

start() {
  command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null \
    && command -v munged >/dev/null || cannot "Slurm packages not installed (scripts/slurm-local.sh install)"
  [ "$(id -u)" = 0 ] || cannot "the local cluster's daemons run as root (CI runs as root)"
  write_config
  export SLURM_CONF=$CONF
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged || cannot "munged did not start"
  fi
  if ! running "$DIR/mysql-run/mariadb.pid"; then
    chown mysql:mysql "$DIR/mysql-run"
    mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 --socket="$DIR/mysql-run/mysqld.sock" \
      --pid-file="$DIR/mysql-run/mariadb.pid" --log-error="$DIR/log/mariadb.log" >/dev/null 2>&1 &
    wait_for 60 "MariaDB" mariadb --socket="$DIR/mysql-run/mysqld.sock" -e "select 1"
    mariadb --socket="$DIR/mysql-run/mysqld.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 't2s-local';
      CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 't2s-local';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  fi
  # slurmdbd reads slurmdbd.conf beside $SLURM_CONF
  running "$DIR/slurmdbd.pid" || slurmdbd || cannot "slurmdbd did not start"
  wait_for 60 "slurmdbd" sacctmgr -i list cluster
  sacctmgr -i list cluster format=cluster -n | grep -qw t2s || sacctmgr -i add cluster t2s >/dev/null
  # -c: a fresh controller state (no job of an earlier run comes back)
  running "$DIR/slurmctld.pid" || slurmctld -c -f "$CONF" || cannot "slurmctld did not start"
  running "$DIR/slurmd.pid" || slurmd -f "$CONF" -N "$NODE" || cannot "slurmd did not start"
  wait_for 60 "the node" sh -c "sinfo -h -N -o %t | grep -qx idle"
}

stop() {
  export SLURM_CONF=$CONF
  if running "$DIR/slurmctld.pid"; then  # no job outlives the cluster
    scancel --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for p in slurmd slurmctld slurmdbd; do
    running "$DIR/$p.pid" && kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
  done
  running "$DIR/mysql-run/mariadb.pid" && kill "$(cat "$DIR/mysql-run/mariadb.pid")" 2>/dev/null || true
  for _ in $(seq 1 50); do
    running "$DIR/slurmctld.pid" || running "$DIR/slurmd.pid" || running "$DIR/mysql-run/mariadb.pid" || break
    sleep 0.2
  done
  pkill -9 -f "^slurmstepd" 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) echo "SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
