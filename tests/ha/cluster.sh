#!/usr/bin/env bash
# The reference HA deployment on one machine, on loopback: etcd (Patroni's consensus
# store), two PostgreSQL servers managed by Patroni with synchronous replication, and
# HAProxy in front, routing to whichever is primary by Patroni's REST health check.
#
#   tests/ha/cluster.sh start DIR   starts it all under DIR; prints the ferrokms store URL
#   tests/ha/cluster.sh stop DIR    stops it all
#   tests/ha/cluster.sh primary DIR prints the name of the current primary (pg1 or pg2)
#   tests/ha/cluster.sh kill DIR NAME   kill -9 that node's postmaster and Patroni
#   tests/ha/cluster.sh revive DIR NAME starts that node's Patroni again (it rejoins as a standby)
#
# Ports: etcd 2479/2480, PostgreSQL 5433/5434, Patroni REST 8433/8434, HAProxy 5440.
# PostgreSQL refuses to run as root: the servers run as the `postgres` user.
set -euo pipefail
cmd=${1:?start|stop|primary|kill|revive}
dir=${2:?directory}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
HAPROXY_PORT=5440
as_postgres() { runuser -u postgres -- "$@"; }

patroni_config() {
  local name=$1 pg_port=$2 rest_port=$3
  cat <<YAML
scope: ferrokms-ha
name: $name
restapi:
  listen: 127.0.0.1:$rest_port
  connect_address: 127.0.0.1:$rest_port
etcd3:
  hosts: 127.0.0.1:2479
bootstrap:
  dcs:
    # How long a dead primary keeps its leader key: the failover window (Patroni needs
    # loop_wait + 2 * retry_timeout <= ttl).
    ttl: 6
    loop_wait: 1
    retry_timeout: 2
    maximum_lag_on_failover: 0
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      parameters:
        synchronous_commit: "on"
        wal_level: replica
        hot_standby: "on"
        max_connections: 200
        max_wal_senders: 10
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$pg_port
  connect_address: 127.0.0.1:$pg_port
  data_dir: $dir/$name/data
  bin_dir: $PGBIN
  pgpass: $dir/$name/pgpass
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
    rewind:
      username: postgres
  parameters:
    unix_socket_directories: $dir/$name
tags:
  nofailover: false
  noloadbalance: false
YAML
}

start_patroni() {
  local name=$1
  as_postgres bash -c "nohup patroni '$dir/$name/patroni.yml' >>'$dir/$name/patroni.log' 2>&1 & echo \$! > '$dir/$name/patroni.pid'"
}

# The cluster last started, so that one a killed run left behind is stopped first: the
# ports are fixed.
LAST=/tmp/ferrokms-ha-cluster-last

case $cmd in
start)
  if [ -f "$LAST" ] && [ "$(cat "$LAST")" != "$dir" ]; then
    "$0" stop "$(cat "$LAST")" || true
  fi
  echo "$dir" > "$LAST"
  # Whatever this start began is stopped if it fails.
  trap '"$0" stop "$dir"' ERR
  mkdir -p "$dir"
  chown postgres "$dir"
  as_postgres mkdir -p "$dir/etcd" "$dir/pg1" "$dir/pg2"
  as_postgres bash -c "nohup etcd --name ha --data-dir '$dir/etcd/data' \
    --listen-client-urls http://127.0.0.1:2479 --advertise-client-urls http://127.0.0.1:2479 \
    --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
    --initial-cluster ha=http://127.0.0.1:2480 \
    >'$dir/etcd/etcd.log' 2>&1 & echo \$! > '$dir/etcd/etcd.pid'"
  for _ in $(seq 50); do
    curl -sf http://127.0.0.1:2479/health >/dev/null && break
    sleep 0.2
  done
  patroni_config pg1 5433 8433 | as_postgres tee "$dir/pg1/patroni.yml" >/dev/null
  patroni_config pg2 5434 8434 | as_postgres tee "$dir/pg2/patroni.yml" >/dev/null
  start_patroni pg1
  # The first node bootstraps the cluster; the second then copies it as a standby.
  for _ in $(seq 150); do
    curl -sf http://127.0.0.1:8433/primary >/dev/null && break
    sleep 0.2
  done
  start_patroni pg2
  cat >"$dir/haproxy.cfg" <<CFG
global
  maxconn 500
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
listen postgres_primary
  bind 127.0.0.1:$HAPROXY_PORT
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
  server pg1 127.0.0.1:5433 check port 8433
  server pg2 127.0.0.1:5434 check port 8434
CFG
  haproxy -D -f "$dir/haproxy.cfg" -p "$dir/haproxy.pid"
  # Ready when a standby streams synchronously and HAProxy reaches only a primary that
  # takes writes. HAProxy counts both servers up until their first checks fail (inter
  # 500ms, fall 2), so a connection may reach the standby for about a second: ask until
  # eight answers in a row (over more than two seconds) came from a writable primary.
  writable="select 1 where not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off'"
  in_a_row=0
  for _ in $(seq 300); do
    if curl -sf http://127.0.0.1:8433/cluster 2>/dev/null | grep -q '"sync_standby"' \
      && [ "$(psql -h 127.0.0.1 -p $HAPROXY_PORT -U postgres -Atc "$writable" 2>/dev/null)" = 1 ]; then
      in_a_row=$((in_a_row + 1))
    else
      in_a_row=0
    fi
    if [ "$in_a_row" -ge 8 ]; then
      echo "postgres://postgres@127.0.0.1:$HAPROXY_PORT/postgres"
      exit 0
    fi
    sleep 0.3
  done
  echo "the cluster did not become ready; see $dir/*/patroni.log" >&2
  "$0" stop "$dir"
  exit 1
  ;;
primary)
  for n in pg1:8433 pg2:8434; do
    if curl -sf "http://127.0.0.1:${n#*:}/primary" >/dev/null 2>&1; then
      echo "${n%%:*}"
      exit 0
    fi
  done
  exit 1
  ;;
kill)
  name=${3:?node}
  kill -9 "$(cat "$dir/$name/patroni.pid")" 2>/dev/null || true
  if [ -f "$dir/$name/data/postmaster.pid" ]; then
    kill -9 "$(head -n 1 "$dir/$name/data/postmaster.pid")" 2>/dev/null || true
  fi
  ;;
revive)
  name=${3:?node}
  start_patroni "$name"
  ;;
stop)
  [ -f "$dir/haproxy.pid" ] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
  for n in pg1 pg2; do
    [ -f "$dir/$n/patroni.pid" ] && kill "$(cat "$dir/$n/patroni.pid")" 2>/dev/null || true
  done
  sleep 1
  for n in pg1 pg2; do
    if [ -f "$dir/$n/data/postmaster.pid" ]; then
      kill -9 "$(head -n 1 "$dir/$n/data/postmaster.pid")" 2>/dev/null || true
    fi
  done
  [ -f "$dir/etcd/etcd.pid" ] && kill "$(cat "$dir/etcd/etcd.pid")" 2>/dev/null || true
  ;;
esac
