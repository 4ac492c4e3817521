#!/usr/bin/env bash
# Torn checkpoints: what the worker's uploads leave at CheckpointConfig.S3Uri while a trainer
# rewrites its checkpoint in place (torch.save to the same name), with --checkpoint-settle-ms 0
# (each pass sends files as they are, as SageMaker's uploads do) and 200 (hpo's default). See
# bench/checkpoints/torn.py for what is measured.
#
#   bench/checkpoints/run.sh            # 20 saves of 64 MiB, about 2 minutes per setting
#   SAVES=10 SIZE_MB=256 bench/checkpoints/run.sh
#
# Knobs: HPO (default: a Release build in build-bench), SAVES, SIZE_MB, CHUNK_MS (pause between
# 1 MiB chunks: how long a save takes), EPOCH_S, SETTLE (comma list), RECORD=1 (append to
# bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source bench/common.sh
HPO="${HPO:-$(bench_hpo build-bench)}"
SAVES="${SAVES:-20}" SIZE_MB="${SIZE_MB:-64}" CHUNK_MS="${CHUNK_MS:-5}" EPOCH_S="${EPOCH_S:-1}"
SETTLE="${SETTLE:-0,200}" RECORD="${RECORD:-0}"
out="$(/usr/bin/python3 bench/checkpoints/torn.py --hpo "$HPO" --settle-ms "$SETTLE" --saves "$SAVES" \
        --size-mb "$SIZE_MB" --chunk-ms "$CHUNK_MS" --epoch-s "$EPOCH_S")"
echo "$out"
if [[ "$RECORD" == 1 ]]; then
  {
    echo
    echo "## Torn checkpoints at the destination, settle 0 vs 200 ms ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'). Command: \`SAVES=$SAVES SIZE_MB=$SIZE_MB CHUNK_MS=$CHUNK_MS EPOCH_S=$EPOCH_S bench/checkpoints/run.sh\` at $(git rev-parse --short HEAD)."
    echo
    echo '```'
    echo "$out"
    echo '```'
  } >> bench/RESULTS.md
fi
