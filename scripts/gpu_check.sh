#!/usr/bin/env bash
# GPU verification on a lent 2-GPU machine (issues 5, 7, 8, 9). Every figure in results/gpu_*
# comes from one of these jobs (each results/*.json names its command). Usage:
#   bash scripts/gpu_check.sh OUT_DIR job [job ...]
# Jobs:
#   notebooks-trl      notebooks 05 + 06, gpu profile, TRL backend, on GPU 0
#   notebooks-unsloth  notebooks 05 + 06, a few GRPO steps, Unsloth backend, on GPU 1
#   bench              benchmarks/run_all.py --full on GPU 1
#   ddp                scripts/train_grpo.py on 1 GPU, then on 2 GPUs (accelerate launch), same settings
#   memory             peak GPU memory of GRPO + evaluation for every model of the table (random weights of
#                      the published shapes; BACKEND=unsloth|trl, default unsloth), on GPU 0
set -u
R=${1:?output folder}; shift
mkdir -p "$R"
PY=${PYTHON:-python}
export NCCL_NVLS_ENABLE=0  # NVLink multicast off (device README)
STEPS_NB=${STEPS_NB:-30}
STEPS_DDP=${STEPS_DDP:-8}
for job in "$@"; do
  echo "=== $job $(date -u +%H:%M:%S)"
  case $job in
    notebooks-trl)
      CUDA_VISIBLE_DEVICES=0 COURSE_BACKEND=trl COURSE_OUTPUT_DIR=$R/trl \
        COURSE_OVERRIDES="grpo.steps=$STEPS_NB,grpo.save_steps=10" \
        $PY scripts/run_course.py --profile gpu --only 05 --only 06 ;;
    notebooks-unsloth)
      CUDA_VISIBLE_DEVICES=1 COURSE_BACKEND=unsloth COURSE_OUTPUT_DIR=$R/unsloth \
        COURSE_OVERRIDES="grpo.steps=6,grpo.save_steps=3,data.n_train=64,warm_start.n_problems=64,warm_start.epochs=1" \
        $PY scripts/run_course.py --profile gpu --only 05 --only 06 ;;
    bench)
      CUDA_VISIBLE_DEVICES=1 $PY benchmarks/run_all.py --full --json "$R/bench_full.json" ;;
    ddp)
      BASE=$(ls -d "$R"/trl/sft-*/final | head -1)
      for n in 1 2; do
        $PY -m accelerate.commands.launch --num_processes $n --num_machines 1 --mixed_precision no --dynamo_backend no \
          scripts/train_grpo.py --profile gpu --backend trl --base "$BASE" --steps $STEPS_DDP --save-steps 1000 \
          --skip-eval base --skip-eval sft --skip-eval grpo --out "$R/ddp$n"
      done ;;
    memory)
      CUDA_VISIBLE_DEVICES=0 $PY scripts/measure_memory.py --models all --backend "${BACKEND:-unsloth}" \
        --json "$R/memory.json" ;;
    *) echo "unknown job $job"; exit 2 ;;
  esac
  echo "=== $job finished $(date -u +%H:%M:%S) rc=$?"
done
