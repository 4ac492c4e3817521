#!/usr/bin/env bash
# Runs a command against a real S3 implementation: a single-node Ceph radosgw (one mon, one
# memstore OSD) on 127.0.0.1, started for this run and stopped by PID afterwards
# (recipe: reference/test-components.md). The command gets AWS_ENDPOINT_URL_S3,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION in its environment.
#
# Usage: with_radosgw.sh COMMAND [ARGS...]
# Exit: the command's status; 77 (CTest SKIP_RETURN_CODE) when radosgw is not installed or does
# not come up, so machines without Ceph skip these tests instead of failing them.
# If HPO_S3_ENDPOINT is already set (a radosgw someone else runs), it is used as is, with
# HPO_S3_ACCESS_KEY / HPO_S3_SECRET_KEY. The OSD keeps its data in memory: 1 GiB, or
# HPO_RGW_MEMSTORE_BYTES (benchmarks that upload more).
set -uo pipefail

if [[ -n "${HPO_S3_ENDPOINT:-}" ]]; then
  export AWS_ENDPOINT_URL_S3="$HPO_S3_ENDPOINT" AWS_ACCESS_KEY_ID="$HPO_S3_ACCESS_KEY" \
         AWS_SECRET_ACCESS_KEY="$HPO_S3_SECRET_KEY" AWS_REGION=us-east-1
  exec "$@"
fi

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool ceph; do
  if ! command -v "$tool" >/dev/null; then
    echo "with_radosgw: $tool is not installed (scripts/install-deps.sh --test installs Ceph); skipping" >&2
    exit 77
  fi
done

pids=()
dir=""
port_free() { ! (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then echo "$p"; return; fi
  done
  echo 0
}

stop_cluster() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  pids=()
  [[ -n "$dir" ]] && rm -rf "$dir"
  dir=""
}
trap stop_cluster EXIT

log() { echo "with_radosgw: $*" >&2; }
# A start that cannot succeed on any port: say why and skip.
fail() { log "$*; skipping (logs in $dir/log were:)"; tail -n 5 "$dir"/log/*.log >&2 2>/dev/null; exit 77; }
# A start that lost a race for its port (the ports are picked free, but another test may take one
# before the daemon binds it): the caller tries again on fresh ports.
lost() { log "$*; trying again on other ports"; return 1; }

# Starts mon, OSD and radosgw on fresh ports in a fresh directory; sets rgw_port, access, secret.
start_cluster() {
  dir=$(mktemp -d /tmp/hpo-rgw.XXXXXX)
  local mon_port
  mon_port=$(pick_port)
  rgw_port=$(pick_port)
  while [[ "$rgw_port" == "$mon_port" ]]; do rgw_port=$(pick_port); done

  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat > "$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
mon allow pool size one = true
osd objectstore = memstore
memstore device bytes = ${HPO_RGW_MEMSTORE_BYTES:-1073741824}
osd crush chooseleaf type = 0
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
keyring = $dir/keyring
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
rgw data = $dir/rgw/\$cluster-\$id
CONF
  mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/rgw"
  export CEPH_CONF="$dir/ceph.conf"

  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null 2>&1 || fail "ceph-authtool failed"
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null 2>&1 || fail "monmaptool failed"
  ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" -c "$CEPH_CONF" >/dev/null 2>&1 || fail "ceph-mon --mkfs failed"
  ceph-mon -i a -c "$CEPH_CONF" -f >/dev/null 2>&1 &
  local mon_pid=$!
  pids+=($mon_pid)
  local osd_uuid id=""
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  for _ in $(seq 60); do
    # A monitor that exited (its port taken meanwhile by another test) never answers.
    kill -0 "$mon_pid" 2>/dev/null || { lost "ceph-mon exited at start (port $mon_port taken?)"; return 1; }
    id=$(timeout 10 ceph -c "$CEPH_CONF" osd new "$osd_uuid" 2>/dev/null) && break
    sleep 0.5
  done
  [[ -n "$id" ]] || fail "the monitor did not answer"
  mkdir -p "$dir/osd/ceph-$id"
  ceph-osd -i "$id" --mkfs --osd-uuid "$osd_uuid" -c "$CEPH_CONF" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
  ceph-osd -i "$id" -c "$CEPH_CONF" -f >/dev/null 2>&1 &
  pids+=($!)
  radosgw -n client.rgw.a -c "$CEPH_CONF" -f --rgw-frontends "beast endpoint=127.0.0.1:$rgw_port" >/dev/null 2>&1 &
  local rgw_pid=$!
  pids+=($rgw_pid)
  access=hpoci$RANDOM
  secret=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
  local up=""
  for _ in $(seq 240); do
    kill -0 "$rgw_pid" 2>/dev/null || { lost "radosgw exited at start (port $rgw_port taken?)"; return 1; }
    if curl -s -o /dev/null "http://127.0.0.1:$rgw_port/"; then up=1; break; fi
    sleep 0.25
  done
  [[ -n "$up" ]] || fail "radosgw did not listen on 127.0.0.1:$rgw_port within 60 s"
  radosgw-admin -c "$CEPH_CONF" user create --uid=ci --display-name=ci --access-key="$access" --secret-key="$secret" \
    >/dev/null 2>&1 || fail "radosgw-admin user create failed"
}

started=""
for attempt in 1 2 3; do
  if start_cluster; then started=1; break; fi
  stop_cluster
done
[[ -n "$started" ]] || { log "three starts lost their ports; skipping"; exit 77; }
log "radosgw up on http://127.0.0.1:$rgw_port"

export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$rgw_port" AWS_ACCESS_KEY_ID="$access" AWS_SECRET_ACCESS_KEY="$secret" \
       AWS_REGION=us-east-1 HPO_S3_ENDPOINT="http://127.0.0.1:$rgw_port" HPO_S3_ACCESS_KEY="$access" \
       HPO_S3_SECRET_KEY="$secret"
"$@"
rc=$?
exit $rc
