#!/usr/bin/env bash
# Runs coca-wgpu's benchmark (examples/bench.rs) and open_clip's (scripts/bench_open_clip.py) one
# after the other on the same machine, on coca_ViT-B-32 with the same synthesized weights, and
# prints both JSON result lines. Needs the reference Python environment for open_clip:
#   eval "$(../shared/tools/reference-env.sh)"   # or any Python with open-clip-torch==3.3.0
#   bash scripts/bench_compare.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cargo run --quiet --no-default-features --example bench -- coca_ViT-B-32 "$runs" 8
python scripts/bench_open_clip.py --runs "$runs" --only encode_image greedy_b1 beam6_b1
# The batch of 8 takes minutes in open_clip; it runs once, without a warm-up call.
python scripts/bench_open_clip.py --runs 1 --no-warm-up --only greedy_b8 beam6x3_b8
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
