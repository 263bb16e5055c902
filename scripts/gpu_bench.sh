#!/usr/bin/env bash
# The GPU benchmarks in the order the README reports them; each stage logs to $OUT/<stage>.log.
#
#   bash scripts/gpu_bench.sh minnorm sin original sweep         # MinNorm-OG step cost, Table 1, original, sweep
#   bash scripts/gpu_bench.sh original engine cifar          # engine speed and the CIFAR-10 benchmark
#   bash scripts/gpu_bench.sh recipes                        # 128 px recipes toward a >= 90 % original
#
# Needs CUDA, and CIFAR-10 at $HF_UNLEARN_CIFAR10 (default ../shared/data/cifar10).
# A stage that fails is reported and the next one still runs.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_UNLEARN_CACHE=${HF_UNLEARN_CACHE:-/tmp/hf_unlearn_cache} HF_HOME=${HF_HOME:-/tmp/hf_home}
ORIGINAL=${ORIGINAL:-$HF_UNLEARN_CACHE/originals/cifar10-resnet18}
TENSORS=$HF_UNLEARN_CACHE/tensors

stage() {  # name, seconds allowed, command...
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "=== $name: rc $rc, $((SECONDS - t0)) s"
    tail -n "${TAIL:-25}" "$OUT/$name.log"
}

for s in "$@"; do
    case $s in
        minnorm)
            stage minnorm-64 90 python3 scripts/bench_minnorm.py --size 64 --batch 512 --amp --channels-last
            stage minnorm-64-eager 90 python3 scripts/bench_minnorm.py --size 64 --batch 512 --amp --channels-last \
                --path hooks
            stage minnorm-64-vmap 90 python3 scripts/bench_minnorm.py --size 64 --batch 512 --amp --channels-last \
                --path vmap
            stage minnorm-32 90 python3 scripts/bench_minnorm.py --size 32 --batch 128 --amp --channels-last ;;
        cuda-tests)
            stage cuda-tests 120 python3 -m pytest -q -p no:cacheprovider tests/test_minnorm.py tests/test_sin_experiment.py \
                -k cuda ;;
        sin)
            stage sin "${SIN_LIMIT:-300}" python3 scripts/reproduce_sin.py --json "$OUT/sin.json" ;;
        original)
            stage original "${ORIGINAL_LIMIT:-240}" python3 scripts/train_original.py --out "$ORIGINAL" --cache-dir "$TENSORS" \
                ${ORIGINAL_ARGS:-} ;;  # e.g. ORIGINAL_ARGS="--size 128 --epochs 30"; Retrain follows original.json
        recipes)  # candidate recipes for a >= 90 % original, one training each; RECIPES="args;args;..."
            # (the 96 and 128 px figures of 2026-11-23 are RECIPES="--size 96;--size 128")
            trained=()
            IFS=';' read -ra recipes <<<"${RECIPES:-"--size 128 --epochs 30 --lr 0.2 --warmup 0.05;--size 128 --epochs 30 --lr 0.4 --warmup 0.1;--size 128 --epochs 40 --lr 0.4 --warmup 0.1"}"
            for r in "${recipes[@]}"; do
                trained+=("$HF_UNLEARN_CACHE/originals/cifar10-resnet18-r$((${#trained[@]} + 1))")
                stage "recipe-${#trained[@]}" "${RECIPE_LIMIT:-200}" python3 scripts/train_original.py $r \
                    --out "${trained[-1]}" --cache-dir "$TENSORS"
            done
            # the later stages of this call use the most accurate of these (not of older folders in the cache)
            best=$(python3 scripts/best_original.py "${trained[@]}") && ORIGINAL=$best
            echo "=== best recipe: $ORIGINAL" ;;
        export-original)  # $ORIGINAL as tar parts of 15 MB under $OUT (a device call returns files of <= 16 MiB),
            # so later calls can carry one and the same original: here `mkdir -p .orig && cat original.tar.part-* |
            # tar -xf - -C .orig`, then carry .orig and run with ORIGINAL=$PWD/.orig
            tar -cf - -C "$ORIGINAL" . | split -b 15M - "$OUT/original.tar.part-"
            ls -l "$OUT"/original.tar.part-* ;;
        sweep)
            stage sweep "${SWEEP_LIMIT:-400}" python3 scripts/bench_cifar10.py --original "$ORIGINAL" --sweep ${SWEEP_ARGS:-} \
                --cache-dir "$TENSORS" --json "$OUT/sweep.json" --md "$OUT/sweep.md" ;;
        engine)
            stage engine 200 python3 scripts/bench_engine.py --original "$ORIGINAL" --cache-dir "$TENSORS" ${ENGINE_ARGS:-} ;;
        cifar)
            stage cifar "${CIFAR_LIMIT:-420}" python3 scripts/bench_cifar10.py --original "$ORIGINAL" \
                --cache-dir "$TENSORS" --json "$OUT/cifar10.json" --md "$OUT/cifar10.md" ${CIFAR_ARGS:-} ;;
        *) echo "unknown stage $s"; exit 2 ;;
    esac
done
