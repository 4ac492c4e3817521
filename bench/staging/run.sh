#!/usr/bin/env bash
# Channel staging throughput (the channel-cache issue): how fast a trial's s3:// channel lands in
# its input/data directory through the worker's own code, with and without the worker-local
# channel cache, next to the aws CLI (`aws s3 cp --recursive`) on the same data.
#
#   bench/staging/run.sh          # radosgw on loopback, two data sets, every way, a table
#
# A single-node radosgw (tests/worker/with_radosgw.sh, data in memory) is started for the run;
# two data sets are uploaded: LARGE_N objects of LARGE_MB MiB (default 64 x 8 MiB = 512 MiB) and
# SMALL_N objects of SMALL_KB KiB (default 2000 x 64 KiB = 125 MiB). bench/staging/staging_bench
# (built with -DHPO_BUILD_BENCH=ON in $BUILD) stages each one as successive trials on one worker:
# no cache, cold cache, cached File (copy/reflink), cached FastFile (hard link); see its header.
# The client and the server share the machine, so "download" is loopback HTTP plus radosgw's
# own CPU, not a network.
# Knobs: LARGE_N LARGE_MB SMALL_N SMALL_KB REPEAT=3 RECORD=1 (append to bench/RESULTS.md)
#        BUILD=build PEER=1 (aws CLI rows, when `aws` is installed)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
LARGE_N="${LARGE_N:-64}" LARGE_MB="${LARGE_MB:-8}" SMALL_N="${SMALL_N:-2000}" SMALL_KB="${SMALL_KB:-64}"
REPEAT="${REPEAT:-3}" RECORD="${RECORD:-1}" BUILD="${BUILD:-build}" PEER="${PEER:-1}"
export LARGE_N LARGE_MB SMALL_N SMALL_KB REPEAT RECORD BUILD PEER

if [[ "${1:-}" != --inner ]]; then
  cmake -S . -B "$BUILD" -DHPO_BUILD_BENCH=ON >/dev/null
  nice cmake --build "$BUILD" --target staging_bench >/dev/null
  # Room for both data sets in the OSD's memory store.
  export HPO_RGW_MEMSTORE_BYTES=$(( (LARGE_N * LARGE_MB + SMALL_N * SMALL_KB / 1024) * 2 * 1048576 + (1 << 30) ))
  exec tests/worker/with_radosgw.sh "$0" --inner
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/hpo-staging.XXXXXX")"
trap 'rm -rf "$work"' EXIT
bench="$BUILD/bench/staging_bench"
ep="$AWS_ENDPOINT_URL_S3"
aws_ok=0
if [[ "$PEER" == 1 ]] && command -v aws >/dev/null; then aws_ok=1; fi

# The data sets, written locally and uploaded once (aws CLI when there, else the bench's client).
mkdir -p "$work/large" "$work/small"
for i in $(seq -f %03g 1 "$LARGE_N"); do head -c $((LARGE_MB << 20)) /dev/urandom > "$work/large/part-$i.bin"; done
for i in $(seq -f %05g 1 "$SMALL_N"); do head -c $((SMALL_KB << 10)) /dev/urandom > "$work/small/rec-$i.bin"; done
if [[ $aws_ok == 1 ]]; then
  aws --endpoint-url "$ep" s3 mb s3://bench >/dev/null
  aws --endpoint-url "$ep" s3 cp --recursive --quiet "$work/large" s3://bench/large
  aws --endpoint-url "$ep" s3 cp --recursive --quiet "$work/small" s3://bench/small
else
  echo "staging: the aws CLI is not installed: no peer rows, and nothing to upload with" >&2
  exit 1
fi
rm -rf "$work/large" "$work/small"

rows=()
for set in large small; do
  while IFS= read -r line; do rows+=("$line"); done < <("$bench" --uri "s3://bench/$set" --dir "$work/stage" --repeat "$REPEAT")
  if [[ $aws_ok == 1 ]]; then
    times=()
    for _ in $(seq "$REPEAT"); do
      rm -rf "$work/peer"
      t0=$(date +%s.%N)
      aws --endpoint-url "$ep" s3 cp --recursive --quiet "s3://bench/$set" "$work/peer"
      t1=$(date +%s.%N)
      times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    bytes=$(du -sb "$work/peer" | cut -f1)
    n=$(find "$work/peer" -type f | wc -l)
    med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (REPEAT + 1) / 2 ))p")
    rows+=("$(printf '| s3://bench/%s | aws s3 cp --recursive (%s) | %d | %.1f | %.3f | %.1f | %d |' "$set" \
      "$(aws --version 2>&1 | cut -d' ' -f1)" "$n" "$(echo "$bytes / 1048576" | bc -l)" "$med" \
      "$(echo "$bytes / 1000000 / $med" | bc -l)" "$n")")
    rm -rf "$work/peer"
  fi
done

header="| data set | way | objects | MiB | s (median of $REPEAT) | MB/s | GETs |
|---|---|---|---|---|---|---|"
table="$header"
for r in "${rows[@]}"; do table+=$'\n'"$r"; done
echo "$table"

if [[ "$RECORD" == 1 ]]; then
  {
    echo
    echo "## Channel staging throughput: channel cache vs download vs aws CLI ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r); shared with other engineers' builds; load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Command: \`bench/staging/run.sh\` (LARGE_N=$LARGE_N LARGE_MB=$LARGE_MB SMALL_N=$SMALL_N SMALL_KB=$SMALL_KB REPEAT=$REPEAT), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- worker bench || echo ' + uncommitted changes')"
    echo "- Server: single-node Ceph radosgw on loopback, OSD in memory (tests/worker/with_radosgw.sh); client and server share the 2 cores"
    echo "- Ways: bench/staging/staging_bench.cc header; MB/s = 10^6 bytes/s; GETs = objects downloaded (counted by the cache)"
    echo
    echo "$table"
  } >> bench/RESULTS.md
fi
