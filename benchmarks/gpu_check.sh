#!/usr/bin/env bash
# The GPU path, checked and measured in one go on a machine with CUDA (issues #28 item 5, #38 item 3).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # from the repository root; logs go to OUT_DIR ($OUT, else /tmp)
#   GPU_CHECK_STEPS="install facts tests bench" bash benchmarks/gpu_check.sh   # only these steps, in this order
#   GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh /tmp/dry
#                                                  # a dry run of the script on a machine without a GPU: every
#                                                  # step but install, tests and resume, on the CPU, on
#                                                  # 3,000 images, one epoch, no PDF (PATH must find a python3
#                                                  # with reportgen: PATH=.venv/bin:$PATH)
# Measured with it on an NVIDIA H200, 2026-12-04, in 386 s of the device's time: docs/speed.md. The device
# allows 10 minutes a command: on a fresh machine run it as two commands, the figures issue #38 asks for first,
#   GPU_CHECK_STEPS="install facts tests bench" …   then   GPU_CHECK_STEPS="cpu grid local auto repeat resume" …
#
# It expects a python3 with torch built for CUDA (the GPU image's; reportgen's torch pin does not apply there).
# What that image lacks travels in .gpu/ (ignored by git; benchmarks/gpu_prepare.sh fills it): wheels of
# reportgen's other dependencies, installed with reportgen into a private folder, and the Fashion-MNIST files
# of the Debian package, copied where reportgen reads them when they are absent. Each step has its own time
# limit and log, so one that fails or hangs leaves the others' figures:
#   facts.log    GPU, driver, torch and CUDA versions, cores, whether WeasyPrint (Pango) loads
#   tests.log    tests/test_cuda.py (the CUDA graph: repeats, matches eager steps, resumes bit-identically,
#                falls back; concurrent trials archive what one process does; auto's estimates),
#                tests/test_gpu_plan.py and the CUDA cases of tests/test_train.py
#   repeat.log   benchmarks/repeatability.py: does one seed give one set of weights on the GPU
#   bench.log    benchmarks/train_speed.py: a LeNet-5 epoch (60,000 images, batch 64) in the textbook loop, the
#                eager engine and the CUDA graph (engine-graph), `engine speed-up`; then the default report
#                with --device cuda: `default report: N s`
#   cpu.log      the default report on that machine's CPU cores (--device cpu --workers 3)
#   local.log    the default report on the GPU in one process (--executor local): bench's, beside it, shares the
#                GPU between worker processes as `--executor auto` plans it
#   auto.log     the default report with --device auto: which device its estimate chose, and how long it took
#   resume.log   kill and resume mid-epoch, bit-identical (tests/test_reliability.py, on the GPU when auto picks it)
#   grid.log     seed 004's 18-trial grid (10 epochs, full data) on the device: `seed 004 grid: N s`
set -u
out=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
device=cuda subset=() epochs=() pairs=${GPU_CHECK_PAIRS:-1} steps="install facts tests repeat bench cpu local auto resume grid"
if [ -n "${GPU_CHECK_DRY:-}" ]; then  # the script itself, checked on the CPU in minutes: small data, no install
    device=cpu subset=(--train-subset 3000 --test-subset 500) epochs=(--epochs 1) steps="facts repeat bench cpu local auto grid"
else
    export PYTHONPATH=/tmp/site PATH="/tmp/site/bin:$PATH"
fi

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to NAME.log, one summary line
    local name=$1 limit=$2 started=$SECONDS
    shift 2
    case " ${GPU_CHECK_STEPS:-$steps} " in *" $name "*) ;; *) return ;; esac
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local code=$?
    echo "$name: exit $code after $((SECONDS - started)) s" | tee -a "$out/summary.txt"
}

facts() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
    python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
        "cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available())'
    echo "cores: $(nproc)"
    python3 -c 'import weasyprint; print("weasyprint", weasyprint.__version__, "loads")' 2>&1 | tail -1
}

install() {
    if [ ! -d /usr/share/datasets/fashion-mnist ]; then
        mkdir -p /usr/share/datasets/fashion-mnist && cp .gpu/fashion-mnist/*.gz /usr/share/datasets/fashion-mnist/
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl &&
        python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site . &&
        python3 -c 'import reportgen, torchinfo; print("reportgen from", reportgen.__file__)'
}

timed_report() {  # timed_report WHAT OPTIONS...: the default experiment in a fresh folder, its wall time
    local what=$1 folder started=$SECONDS
    shift
    folder=$(mktemp -d)
    (cd "$folder" && python3 -m reportgen run "$@") && echo "default report $what: $((SECONDS - started)) s"
    grep -h '"device_choice"' -A12 "$folder"/runs/*/environment.json 2>/dev/null | head -14
    rm -rf "$folder"
}

export -f facts install timed_report
step install 120 bash -c install
step facts 60 bash -c facts
pdf=$(python3 -c 'import weasyprint' >/dev/null 2>&1 || echo "--no-pdf")  # WeasyPrint needs Pango
[ -n "${GPU_CHECK_DRY:-}" ] && pdf=--no-pdf
step tests 240 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_cuda.py tests/test_gpu_plan.py \
    tests/test_train.py -k "cuda or gpu_plan" -rs
step repeat 90 python3 benchmarks/repeatability.py --device "$device" "${subset[@]:0:2}"
step bench 300 python3 benchmarks/train_speed.py --device "$device" --epochs 1 --pairs "$pairs" \
    --sides "${GPU_CHECK_SIDES:-textbook,engine,engine-graph}" "${subset[@]:0:2}" \
    --report-args "--device $device $pdf ${subset[*]} ${epochs[*]}"
step cpu 150 bash -c "timed_report 'on the CPU cores' --device cpu --workers 3 $pdf ${subset[*]} ${epochs[*]}"
# the concurrency A/B: bench's report let `auto` share the GPU between worker processes; this one trains in one
step local 150 bash -c "timed_report 'on $device in one process' --device $device --executor local $pdf ${subset[*]} ${epochs[*]}"
step auto 150 bash -c "timed_report 'with --device auto' $pdf ${subset[*]} ${epochs[*]}"
step resume 100 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_reliability.py -k "sigkill"
# seed 004's 18-trial grid (issue #38's target on a GPU: under 3 minutes); last, as it is the longest step
step grid 300 python3 benchmarks/train_speed.py --device "$device" --sides engine --epochs 1 --no-report \
    "${subset[@]:0:2}" --grid --grid-args "--device $device $pdf ${subset[*]} ${epochs[*]}"
grep -h "engine speed-up\|^engine\|step mode\|default report\|device auto\|seed 004 grid\|passed\|failed" \
    "$out"/*.log >>"$out/summary.txt" 2>/dev/null
cat "$out/install.log" "$out/facts.log" >>"$out/summary.txt" 2>/dev/null || true
