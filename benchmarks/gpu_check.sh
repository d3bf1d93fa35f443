#!/usr/bin/env bash
# The GPU path, checked and measured in one go on a machine with CUDA (issue #28 item 5).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # from the repository root; logs go to OUT_DIR ($OUT, else /tmp)
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_ARGS="--train-subset 3000 --no-report" bash benchmarks/gpu_check.sh /tmp/dry
#                                                  # a dry run of the script itself on a machine without a GPU
#   GPU_CHECK_STEPS="install tests bench" bash benchmarks/gpu_check.sh   # only these steps
#   GPU_CHECK_SIDES=textbook,engine bash benchmarks/gpu_check.sh          # the benchmark's sides
# Measured with it on an NVIDIA H200, 2026-12-04, in 386 s of the device's time: docs/speed.md.
#
# It expects a python3 with torch built for CUDA (the GPU image's; reportgen's torch pin does not apply there).
# What that image lacks travels in .gpu/ (ignored by git; benchmarks/gpu_prepare.sh fills it): wheels of
# reportgen's other dependencies, installed with reportgen into a private folder, and the Fashion-MNIST files
# of the Debian package, copied where reportgen reads them when they are absent. Each step has its own time
# limit and log, so one that fails or hangs leaves the others' figures:
#   facts.log        GPU, driver, torch and CUDA versions, cores, whether WeasyPrint (Pango) loads
#   tests.log        tests/test_cuda.py and tests/test_train.py (CUDA cases run where a GPU is)
#   repeat.log       benchmarks/repeatability.py: does one seed give one set of weights on the GPU
#   bench.log        benchmarks/train_speed.py --device cuda, then `reportgen run --device cuda` timed
#   resume.log       kill and resume mid-epoch, bit-identical (tests/test_reliability.py, on the GPU by auto)
#   cpu.log          the default report on that machine's CPU cores instead (--device cpu --workers 3): whether
#                    `--device auto` should keep models this small off the GPU (not yet measured)
#   grid.log         seed 004's 18-trial grid (10 epochs, full data) on the device: `seed 004 grid: N s`
set -u
out=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site PATH="/tmp/site/bin:$PATH"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to NAME.log, one summary line
    local name=$1 limit=$2 started=$SECONDS
    shift 2
    case " ${GPU_CHECK_STEPS:-install facts tests repeat bench resume cpu grid} " in *" $name "*) ;; *) return ;; esac
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local code=$?
    echo "$name: exit $code after $((SECONDS - started)) s" | tee -a "$out/summary.txt"
}

facts() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
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

export -f facts install
step install 120 bash -c install
step facts 60 bash -c facts
pdf=$(python3 -c 'import weasyprint' >/dev/null 2>&1 || echo "--no-pdf")  # WeasyPrint needs Pango
step tests 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_cuda.py tests/test_train.py -rs
device=${GPU_CHECK_DEVICE:-cuda}
step repeat 60 python3 benchmarks/repeatability.py --device "$device"
# shellcheck disable=SC2086 # GPU_CHECK_ARGS is a list of options
step bench 270 python3 benchmarks/train_speed.py --device "$device" --epochs 1 --pairs 3 \
    --sides "${GPU_CHECK_SIDES:-textbook,engine,engine-fused,engine-bf16}" --report-args "--device $device $pdf" ${GPU_CHECK_ARGS:-}
step resume 100 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_reliability.py -k "sigkill"
cpu_report() {  # the default experiment on the CPU cores, in a fresh folder, timed like the benchmark's
    local folder started=$SECONDS
    folder=$(mktemp -d)
    (cd "$folder" && python3 -m reportgen run --device cpu --workers 3 "$@") && echo "default report on the CPU: $((SECONDS - started)) s"
}
export -f cpu_report
step cpu 150 bash -c "cpu_report $pdf"
# seed 004's 18-trial grid on the GPU (issue #38's target: under 3 minutes); last, as it is the longest step
step grid 240 python3 benchmarks/train_speed.py --device "$device" --sides engine --epochs 1 --no-report --grid \
    --grid-args "--device $device $pdf"
cat "$out/install.log" "$out/facts.log" >>"$out/summary.txt" 2>/dev/null || true
