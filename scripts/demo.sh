#!/usr/bin/env bash
# The demo: every step cnndsl offers, on the example specs. Outputs go to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Run by `make demo` after scripts/install.sh, in the environment it made (VENV, .venv).
PY=${VENV:-.venv}/bin/python
[ -x "$PY" ] || { echo "demo.sh: no $PY: run 'make demo' or 'bash scripts/install.sh' first" >&2; exit 1; }
cnndsl() { "$PY" -m cnndsl "$@"; }
mkdir -p out

echo "== check every bundled spec"
for spec in specs/*.cnn; do
  cnndsl check "$spec"
done

echo; echo "== the lecture's pattern [(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX, N=2 M=3 K=1"
cnndsl expand "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX" \
  -D N=2 -D M=3 -D K=1 --input 32x32x3 --classes 10

echo; echo "== a stride that doesn't fit (the lecture's 7x7 input, 3x3 filter, stride 3)"
cnndsl check "input 7x7x3
CONV(10, 3, s=3)" || true

echo; echo "== the lecture's arithmetic, layer by layer (AlexNet's first layers)"
cnndsl expand --explain "input 227x227x3
CONV(96, 11, s=4) - RELU - MAXPOOL(3, 2)"

echo; echo "== summary of LeNet-5, as the lecture's table"
cnndsl summary specs/lenet5.cnn

echo; echo "== the whole family at 32x32x3: N=1..3, M=1..6, K=0..2"
# --top, not `| head`: the table and sweep's closing line (on stderr) stay in order.
cnndsl sweep "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX" -D N=1..3 -D M=1..6 -D K=0..2 \
  --input 32x32x3 --classes 10 --sort params --top 15 2>&1

echo; echo "== the lecture's AlexNet ablation: layers 3, 4, 6 and 7 kept or removed"
cnndsl sweep zoo:alexnet_ablation --optional both

echo; echo "== diagrams -> out/*.svg"
for name in lenet5 vgg16 resnet50 googlenet; do
  cnndsl render "specs/$name.cnn" -o "out/$name.svg"
done
ls -la out/*.svg

echo; echo "== compile to PyTorch: readable source, weights, ONNX"
cnndsl compile specs/lenet5.cnn -o out/lenet5.py --seed 0
cnndsl compile specs/lenet5.cnn -o out/lenet5.pt --seed 0
cnndsl compile specs/resnet18.cnn -o out/resnet18.onnx --seed 0 --logits
"$PY" - <<'PY'
import torch, cnndsl
model = cnndsl.load("out/lenet5.pt").eval()
with torch.no_grad():
    probs = model(torch.randn(4, 1, 32, 32))
print("LeNet-5 from out/lenet5.pt:", tuple(probs.shape), "probabilities sum to",
      [round(float(s), 4) for s in probs.sum(1)])
PY
head -30 out/lenet5.py
