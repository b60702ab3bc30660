#!/usr/bin/env bash
# Records the long commands as a user meets them in a terminal: each runs in a detached tmux
# session of a fixed size, whose pane is captured every 0.2 s while it runs. Checks that a
# live bar or spinner was on screen during train, sim (Verilator build and run), compile
# --target up5k and explore, and that train's epoch rows appeared one by one before the
# training ended. The frames are kept in build/progress-check/<command>/.
#
# Usage: bash tests/progress-check.sh  (from the repository; `make progress-check` builds first)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
qnnc="$root/target/release/qnnc"
work="$root/build/progress-check"
session="qnnc-progress-$$"
failures=0

rm -rf "$work"
mkdir -p "$work"
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; }
trap cleanup EXIT

# record NAME COMMAND...: runs COMMAND in the work folder in a 160x40 tmux pane and keeps each
# frame that differs from the one before as NAME/NNNN.txt, with its time since the start in
# NAME/times (the last frame is taken after the command ended).
record() {
    local name=$1
    shift
    local frames="$work/$name" start now frame last="" n=0
    mkdir -p "$frames"
    start=$(date +%s%N)
    tmux new-session -d -s "$session" -x 160 -y 40 \
        "cd '$work' && $* ; echo \"__exit \$?\"; sleep 600"
    while :; do
        frame=$(tmux capture-pane -p -t "$session")
        now=$(date +%s%N)
        if [ "$frame" != "$last" ]; then
            n=$((n + 1))
            printf '%s\n' "$frame" >"$frames/$(printf %04d $n).txt"
            printf '%04d %d ms\n' "$n" $(((now - start) / 1000000)) >>"$frames/times"
            last=$frame
        fi
        if grep -q '^__exit ' <<<"$frame"; then
            break
        fi
        sleep 0.2
    done
    tmux kill-session -t "$session"
    printf '%-8s %5d s, %3d frames' "$name" $(((now - start) / 1000000000)) "$n"
    if ! grep -q '^__exit 0' <<<"$frame"; then
        printf '  FAILED (%s)' "$(grep '^__exit' <<<"$frame")"
        failures=$((failures + 1))
    fi
}

# frames_with NAME PATTERN...: how many frames taken while NAME ran show every PATTERN (an
# extended regular expression matched against the frame's lines).
frames_with() {
    local name=$1 count=0 file pattern ok
    shift
    for file in "$work/$name"/[0-9]*.txt; do
        grep -q '^__exit ' "$file" && continue
        ok=1
        for pattern in "$@"; do
            grep -qE -- "$pattern" "$file" || ok=0
        done
        count=$((count + ok))
    done
    echo "$count"
}

# expect NAME WHAT PATTERN...: at least one frame during the run shows every PATTERN.
expect() {
    local name=$1 what=$2 count
    shift 2
    count=$(frames_with "$name" "$@")
    if [ "$count" -gt 0 ]; then
        printf '; %s: %d' "$what" "$count"
    else
        printf '; %s: NONE' "$what"
        failures=$((failures + 1))
    fi
}

elapsed='[0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
spinner="^[^ ]+ $elapsed "
count="$elapsed \\[[=> ]+\\] [0-9]+/[0-9]+ \\(eta [^)]*\\)"

cat >"$work/sweep.toml" <<EOF
name = "progress"
seed = 1
targets = [50.0]
profiles = ["moons-dram"]
train_limit = 20000
test_limit = 200
batch = 50
learning_rate = 0.005

[mlp]
spec = "$root/examples/fmnist_mlp.toml"
bits = [1, 4]
widths = [64]
depths = [1]
epochs = 2
EOF

record train "$qnnc" train "$root/examples/tiny_cnn.toml" --epochs 2 --train-limit 8000 \
    --test-limit 500 -o tiny.qnn
expect train "bar" "$count epoch [12]/2"
# Row 1 on screen while the bar of epoch 2 runs: the row was printed as its epoch ended.
expect train "row 1 during epoch 2" '^    1  [0-9.]+ +[0-9.]+% +[0-9.]+%' "$count epoch 2/2"
echo

record sim "$qnnc" compile tiny.qnn --pe 2 --simd 4 -o tiny ">/dev/null" "&&" \
    "$qnnc" sim tiny --images 500
expect sim "build spinner" "${spinner}building tiny_cnn_top with verilator"
expect sim "image count" "$count images simulated in verilator"
echo

record compile "$qnnc" compile tiny.qnn --pe 2 --simd 4 --target up5k --clock-mhz 24 -o tiny-up5k
expect compile "yosys spinner" "${spinner}yosys synth_ice40"
expect compile "nextpnr spinner" "${spinner}nextpnr-ice40 place and route at 24 MHz"
echo

record explore "$qnnc" explore sweep.toml -o sweep
expect explore "point count" "$count training mlp"
echo

if [ "$failures" -gt 0 ]; then
    echo "progress check: $failures failed (frames in $work)"
    exit 1
fi
echo "progress check: every command showed its progress live (frames in $work)"
