#!/usr/bin/env bash
# The demo: every step cnndsl offers, on the example specs. Outputs go to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p out
for spec in specs/*.cnn; do
  echo "== $spec"
  "$PY" -m cnndsl check "$spec"
done
echo "== the lecture's pattern [(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX, N=2 M=3 K=1"
"$PY" -m cnndsl expand "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX" \
  -D N=2 -D M=3 -D K=1 --input 32x32x3 --classes 10
