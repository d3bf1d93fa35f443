#!/usr/bin/env bash
# Fills .gpu/ (ignored by git) with what benchmarks/gpu_check.sh needs on a GPU machine that reaches no
# registry: the Fashion-MNIST files of the Debian package, and Python 3.12 x86-64 wheels of reportgen's
# dependencies that the GPU image lacks (the image has torch, matplotlib, pandas, Jinja2, SciPy, tqdm).
set -eu
mkdir -p .gpu/wheels .gpu/fashion-mnist
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >>.git/info/exclude
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fashion-mnist/
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels \
    torchinfo==1.8.0 weasyprint==70.0 pydyf==0.13.0 tinycss2==1.5.1 cssselect2==0.10.1 tinyhtml5==2.1.0 \
    webencodings==0.6.1 pyphen==0.18.1 cffi==2.1.1 pycparser==3.12
du -sh .gpu
