#!/usr/bin/env bash
# A sweep as a Slurm job array: each task computes one slice, the last step collects them.
#   sbatch --array=0-7 examples/slurm_explore.sh examples/explore_fmnist.toml
#   (after all tasks:) qnnc explore --collect explore-parts/part* -o explore-fmnist
# Any batch scheduler works the same way: run slice i of N anywhere, then collect.
#SBATCH --job-name=qnnc-explore
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
set -euo pipefail
sweep=${1:?usage: slurm_explore.sh SWEEP.toml}
slices=${SLURM_ARRAY_TASK_COUNT:-8}
slice=${SLURM_ARRAY_TASK_ID:-0}
qnnc explore "$sweep" --shard "$slice/$slices" -o "explore-parts/part$slice"
