#!/usr/bin/env bash
# Installs the Debian packages reportgen needs, only those missing:
#   dataset-fashion-mnist  the real Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist)
#   fonts-noto-cjk         Korean text in PDFs and plots
#   poppler-utils          pdftotext/pdffonts/pdftoppm, used by the tests to read the PDF as a person would
#   chromium               headless browser the tests load the HTML report in
set -euo pipefail
packages=(dataset-fashion-mnist fonts-noto-cjk poppler-utils chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
