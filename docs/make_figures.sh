#!/usr/bin/env bash
# Regenerates every figure the README shows, from the shipped sweeps and studies, into docs/img.
# Run from the repository root with netsim installed (about 25 minutes on two cores; the NetZIP
# study is 20 of them). Intermediate results go to sweeps_out/figures/ (replaced each time).
set -euo pipefail
cd "$(dirname "$0")/.."
out=sweeps_out/figures
rm -rf "$out" && mkdir -p "$out" docs/img
w=${WORKERS:-2}

netsim sweep sweeps/bandwidth.yaml --out "$out/bw" --workers "$w" --quiet
netsim plot "$out/bw/results.csv" --x bandwidth --y total_us --hue model --logx -o docs/img/sweep_bandwidth.png
netsim sweep sweeps/oversubscription.yaml --out "$out/ov" --workers "$w" --quiet
netsim plot "$out/ov/results.csv" --x leaf_oversubscription --y exposed_dp_us --hue model --logx \
  -o docs/img/sweep_oversubscription.png
netsim sweep sweeps/parallelism-175b.yaml --out "$out/par" --workers "$w" --quiet
netsim plot "$out/par/results.csv" --x pp --y total_us --hue tp --logx -o docs/img/sweep_parallelism_175b.png

netsim study checkpoint --out "$out/gemini" > /dev/null
cp "$out/gemini/effective_training_time.png" docs/img/gemini_effective_training_time.png
cp "$out/gemini/recovery_probability.png" docs/img/gemini_recovery_probability.png
netsim study libra --out "$out/libra" > /dev/null
cp "$out/libra/libra_speedup.png" docs/img/libra_speedup.png
netsim study cluster --out "$out/cluster" --workers "$w" --server-cost 300000 > /dev/null
cp "$out/cluster/cluster_knobs.png" docs/img/cluster_knobs.png
netsim study breakeven topologies/fat_tree_512.yaml --model 7B --codec docs/examples/gpu-100-250.yaml \
  --out "$out/breakeven" > /dev/null
cp "$out/breakeven/breakeven.png" docs/img/breakeven_7b_fat_tree.png
netsim study dlrm --plot docs/img/dlrm_speedup.png > /dev/null
netsim study engine --out "$out/engine" --workers "$w" --quiet > "$out/engine.txt"
cp "$out/engine/engine.png" docs/img/netzip_engine_rate.png
netsim study netzip --out "$out/netzip" --workers "$w" --quiet > "$out/netzip.txt"
cp "$out/netzip/comm_share.png" docs/img/netzip_comm_share.png
cp "$out/netzip/reduction.png" docs/img/netzip_training_time.png
echo "figures written to docs/img; the NetZIP study's summary is in $out/netzip.txt"
