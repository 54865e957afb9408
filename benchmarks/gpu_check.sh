#!/usr/bin/env bash
# The GPU checks of one short device lease, in one go (docs/speed.md, "Measured on one H200"):
#   1. the real online loop on CUDA (benchmarks/dreamer_loop.py); stops the script if CUDA training breaks;
#   2. update speed per preset, fp32 and bf16 autocast (benchmarks/dreamer.py --device cuda [--amp]);
#   3. k learning runs sharing the one GPU for RUN_S seconds (benchmarks/learning.py --device cuda --jobs k),
#      the references' MinAtar rules with epsilon 0.05: env steps/s per run under sharing, and early curves;
#   4. update speed with compile_rssm (torch.compile of the RSSM steps), start-up included, COMPILE_S at most;
#   5. the switches in the real loop: Space Invaders runs in fp32, with dreamer.bf16 and with compile_rssm,
#      side by side to SWITCH_STEPS env steps (losses finite, the latent still reading the frame, the rates).
#      (2026-12-04 these ran as train-agent commands of their own, evaluating 3 episodes every 4k steps.)
# Everything it writes lands in OUTDIR (results.tgz and the log), since the device's checkout is thrown away.
#
#   bash benchmarks/gpu_check.sh OUTDIR                                 # on the GPU machine
#   DEVICE=cpu UPDATES=5 RUN_S=40 COMPILE_S=20 PRESETS=minatar bash benchmarks/gpu_check.sh /tmp/gc  # dry run
set -u
OUTDIR=$(realpath "${1:?usage: gpu_check.sh OUTDIR}")
DEVICE=${DEVICE:-cuda} RUN_S=${RUN_S:-200} COMPILE_S=${COMPILE_S:-120} SWITCH_STEPS=${SWITCH_STEPS:-9000}
PRESETS=${PRESETS:-minatar_dense atari rajghugare_minatar}
RUNS=${RUNS:-/tmp/gpu_runs}
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
mkdir -p "$OUTDIR/results" "$RUNS"
# the committed CPU figures that dreamer_loop.py and learning.py rewrite stay as they are
KEPT=(benchmarks/results/dreamer_loop.json benchmarks/results/learning.json docs/figures/learning_minatar.png)
KEEP=$(mktemp -d) && cp "${KEPT[@]}" "$KEEP"
pack() {
    for f in "${KEPT[@]}"; do cp "$KEEP/$(basename "$f")" "$f"; done
    $PY benchmarks/gpu_sharing.py "$RUNS" --out "$OUTDIR/results/gpu_sharing.json" \
        --note "learning runs side by side on one $DEVICE for ${RUN_S}s (benchmarks/gpu_check.sh phase 3)"
    $PY benchmarks/gpu_sharing.py "$RUNS/switches" --out "$OUTDIR/results/gpu_switches.json" \
        --note "fp32, bf16, compile_rssm side by side on one $DEVICE (benchmarks/gpu_check.sh phase 5)"
    find "$RUNS" \( -name metrics.csv -o -name config.json -o -name '*.log' -o -name summary.json \) -print0 \
        | tar czf "$OUTDIR/results/runs.tgz" --null -T - 2>/dev/null
    tar czf "$OUTDIR/results.tgz" -C "$OUTDIR" results && rm -rf "$OUTDIR/results"
}
trap pack EXIT
phase() { echo "=== $(date +%T) $*"; }

phase "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
$PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'numpy', numpy.__version__)"
nproc

phase "1. the online loop on $DEVICE (minatar_dense, one update every 12 env steps)"
$PY benchmarks/dreamer_loop.py --device "$DEVICE" --preset minatar_dense --train-every 12 \
    --updates "${UPDATES:-150}" --allow-load || { echo "the loop failed on $DEVICE: stopping"; exit 1; }
cp benchmarks/results/dreamer_loop.json "$OUTDIR/results/dreamer_loop_$DEVICE.json"

for amp in "" "--amp"; do
    phase "2. updates per preset on $DEVICE ${amp:-fp32}"
    tag=${amp:+_bf16}
    # shellcheck disable=SC2086
    $PY benchmarks/dreamer.py --device "$DEVICE" $amp --presets $PRESETS --repeats 10 --allow-load \
        --out "$OUTDIR/results/dreamer_${DEVICE}${tag}.json"
done

phase "3. learning runs sharing the device for ${RUN_S}s"
common=(--dreamer '{"preset": "minatar_dense", "expl_noise": 0.05}' --algos dreamer --threads 1
        --game-settings '{"sticky_action_prob": 0, "action_set": "minimal"}' --device "$DEVICE" --runs "$RUNS")
timeout "$RUN_S" $PY benchmarks/learning.py --games minatar-space_invaders minatar-breakout minatar-freeway \
    minatar-asterix minatar-seaquest --seeds 0 --variant gymnax_eps --train-every 12 --jobs 5 "${common[@]}" &
timeout "$RUN_S" $PY benchmarks/learning.py --games minatar-space_invaders --seeds 0 1 \
    --variant gymnax_eps_2x --train-every 6 --jobs 2 "${common[@]}" &
wait
nvidia-smi --query-gpu=memory.used --format=csv 2>&1

phase "4. compile_rssm on $DEVICE (start-up included, ${COMPILE_S}s at most)"
start=$(date +%s)
timeout "$COMPILE_S" $PY benchmarks/dreamer.py --device "$DEVICE" --presets minatar_dense --repeats 10 \
    --allow-load --overrides '{"compile_rssm": true}' --out "$OUTDIR/results/dreamer_${DEVICE}_compiled.json"
echo "compile phase: rc $? after $(( $(date +%s) - start ))s"

phase "5. fp32, bf16 and compile_rssm in the loop, side by side, to $SWITCH_STEPS env steps"
for v in fp32:'' bf16:', "bf16": true' compile:', "compile_rssm": true'; do
    timeout 300 $PY benchmarks/learning.py --games minatar-space_invaders --seeds 0 --variant "${v%%:*}" \
        --env-steps "$SWITCH_STEPS" --prefill 1000 --train-every 12 --jobs 1 "${common[@]}" \
        --dreamer "{\"preset\": \"minatar_dense\", \"expl_noise\": 0.05${v#*:}}" --runs "$RUNS/switches" &
done
wait
tail -n 1 "$RUNS"/switches/*/*/*.log
phase "done"
