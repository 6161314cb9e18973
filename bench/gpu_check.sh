#!/usr/bin/env bash
# The GPU check (issue 10), one script: compile, MFU at depth 12 and 20 with and without
# torch.compile, the loss benchmark, the engine against HF generate, and a 2-minute golf run with
# its export and evaluation; the figures go to OUT/gpu_check.json (bench/gpu_check_report.py).
#
#   bash bench/gpu_check.sh                 # one GPU; about 6 minutes (DEADLINE_S)
#   bash bench/gpu_check.sh --cpu           # the same steps at tiny sizes on CPU (a smoke run,
#                                           # limits and deadline doubled for a slow shared CPU)
#
# Every step runs under its own `timeout`, never past what is left of DEADLINE_S (default 360 s),
# so one failure or hang does not eat the rest; a step with under 10 s left is skipped. The order
# is by what the issue needs most. Steps log to OUT/NAME.log and record rc / seconds in
# OUT/steps.jsonl. Nothing is installed or downloaded: data is prepared from the stdlib and
# site-packages sources on the machine. On CPU, torch.compile uses the aot_eager backend
# (CRUCIBLE_COMPILE_BACKEND): it traces the same graphs without inductor's minutes of codegen.
# Env: PYTHON (default python), OUT (default runs/gpu_check), DEADLINE_S.
set -u
cd "$(dirname "$0")/.."
MODE=gpu
if [ "${1:-}" = "--cpu" ]; then MODE=cpu; fi
PY=${PYTHON:-python}
OUT=${OUT:-runs/gpu_check}
SCALE=1                               # step limits x SCALE (2 on a slow shared CPU)
if [ "$MODE" = cpu ]; then SCALE=2; fi
DEADLINE_S=${DEADLINE_S:-$((360 * SCALE))}
START=$(date +%s)
mkdir -p "$OUT"
: > "$OUT/steps.jsonl"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
STDLIB=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')

if [ "$MODE" = gpu ]; then
  DEVICE=cuda
  DATA_ARGS="--vocab-size 32768 --max-mb 24"
  GOLF_DATA_ARGS="--vocab-size 4096 --max-mb 24"
  D12="--depth 12 --seq-len 2048 --batch-size 32 --max-steps 16 --log-every 4 --val-tokens 131072"
  D20="--depth 20 --seq-len 2048 --batch-size 16 --max-steps 12 --log-every 4 --val-tokens 131072"
  LOSS="--device cuda --impls naive,chunked,compiled,liger --repeats 2"
  ENGINE="--device cuda --depth 12 --width 768 --samples 64 --new-tokens 256 --repeats 2 --skip-prefill"
  GOLF="--max-minutes 2"
  GOLF_EVAL="--device cuda --val-tokens 262144"
else
  DEVICE=cpu
  export CRUCIBLE_COMPILE_BACKEND=aot_eager
  SRC="--source $STDLIB/json --source $STDLIB/textwrap.py --source $STDLIB/string.py"
  DATA_ARGS="$SRC --vocab-size 512 --val-fraction 0.2 --max-mb 0"
  GOLF_DATA_ARGS="$DATA_ARGS"
  D12="--depth 2 --n-embd 64 --seq-len 64 --batch-size 4 --max-steps 6 --log-every 2 --val-tokens 2048 --threads 1"
  D20="--depth 3 --n-embd 64 --seq-len 64 --batch-size 4 --max-steps 6 --log-every 2 --val-tokens 2048 --threads 1"
  LOSS="--device cpu --tokens 1024 --dim 64 --vocab 4096 --impls naive,chunked,liger --repeats 2"
  ENGINE="--device cpu --depth 2 --width 128 --vocab 512 --samples 4 --new-tokens 16 --repeats 2 --skip-prefill"
  GOLF="--depth 2 --n-embd 128 --seq-len 64 --batch-size 4 --max-minutes 0.1 --val-tokens 2048 --eval-every 0 --threads 1"
  GOLF_EVAL="--device cpu --val-tokens 2048"
fi

step() {   # step NAME LIMIT_S COMMAND...: run it under timeout, record rc and seconds
  local name=$1 limit=$2
  shift 2
  local left=$(( DEADLINE_S - ($(date +%s) - START) ))
  if [ "$left" -lt 10 ]; then
    echo "{\"name\": \"$name\", \"skipped\": true}" >> "$OUT/steps.jsonl"
    echo "== $name: skipped (${left}s left of ${DEADLINE_S}s)"
    return
  fi
  limit=$((limit * SCALE))
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  echo "== $name (limit ${limit}s)"
  local t0 rc ms secs
  t0=$(date +%s%N)
  if declare -F "$1" > /dev/null; then   # a function of this script: timeout needs a process
    timeout -k 10 "$limit" bash -c '"$@"' _ "$@" > "$OUT/$name.log" 2>&1
  else
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  fi
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  secs=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  echo "{\"name\": \"$name\", \"rc\": $rc, \"seconds\": $secs, \"limit_s\": $limit, \"timed_out\": $([ $rc -eq 124 ] && echo true || echo false)}" \
    >> "$OUT/steps.jsonl"
  echo "   rc $rc in ${secs}s; tail of $OUT/$name.log:"
  tail -n 4 "$OUT/$name.log" | sed 's/^/   | /'
}

pretrain() {   # pretrain NAME ARGS...: a short run of `crucible pretrain` logging tokens/s, MFU, peak memory
  local name=$1
  shift
  rm -rf "${OUT:?}/$name"
  $PY -m crucible pretrain --data "$OUT/data" --out "$OUT/$name" --device $DEVICE --eval-every 0 --no-progress "$@"
}

prepare_both() {   # the two corpora at once (CPU-bound: tokenizer training and encoding)
  $PY -m crucible data prepare --out "$OUT/data" $DATA_ARGS --no-progress &
  local a=$!
  $PY -m crucible data prepare --out "$OUT/data_golf" $GOLF_DATA_ARGS --no-progress
  local b=$?
  wait $a && [ $b -eq 0 ]
}

export PY OUT DEVICE DATA_ARGS GOLF_DATA_ARGS
export -f pretrain prepare_both

$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
        torch.cuda.get_device_name() if torch.cuda.is_available() else "")' > "$OUT/env.txt" 2>&1
$PY -c 'import liger_kernel; print("liger-kernel installed")' >> "$OUT/env.txt" 2>/dev/null || echo "liger-kernel not installed" >> "$OUT/env.txt"

step data 90 prepare_both
step d12_compile 150 pretrain d12_compile $D12 --compile yes
step d12_eager 45 pretrain d12_eager $D12 --compile no
step loss 75 $PY bench/chunked_ce_memory.py $LOSS --json "$OUT/loss.json"
step engine 75 $PY bench/engine_throughput.py $ENGINE --out "$OUT/engine.jsonl"
step golf_train 170 $PY -m crucible pretrain --config golf --data "$OUT/data_golf" --out "$OUT/golf" \
  --device $DEVICE --no-progress $GOLF
step golf_export 30 $PY -m crucible golf export "$OUT/golf" --out "$OUT/golf.bin"
step golf_eval 45 $PY -m crucible golf eval "$OUT/golf.bin" --data "$OUT/data_golf" --json --no-progress $GOLF_EVAL
step d20_compile 150 pretrain d20_compile $D20 --compile yes
step d20_eager 45 pretrain d20_eager $D20 --compile no

$PY bench/gpu_check_report.py "$OUT" --mode $MODE > "$OUT/gpu_check.json"
echo "== figures: $OUT/gpu_check.json ($(( $(date +%s) - START ))s in all)"
cat "$OUT/gpu_check.json"
