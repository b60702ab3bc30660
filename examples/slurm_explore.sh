#!/usr/bin/env bash
# The manual route to a sweep on Slurm, for a job script of your own; `qnnc explore SWEEP
# --slurm 8 --wait -o DIR` submits the same tasks and the collect job in one command. Each task
# computes one slice into DIR/shards/<i>, every task into the one cache DIR/cache, so DIR must be
# on a file system that all nodes share; submitting again computes only the missing points.
#   sbatch --array=0-7 examples/slurm_explore.sh examples/explore_fmnist.toml explore-fmnist
#   (after all tasks:) qnnc explore --collect explore-fmnist/shards/* -o explore-fmnist
#SBATCH --job-name=qnnc-explore
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
set -euo pipefail
sweep=${1:?usage: slurm_explore.sh SWEEP.toml [OUTPUT_DIR]}
out=${2:-explore-parts}
slices=${SLURM_ARRAY_TASK_COUNT:-8}
slice=${SLURM_ARRAY_TASK_ID:-0}
qnnc explore "$sweep" --shard "$slice/$slices" -o "$out/shards/$slice" --cache "$out/cache"
