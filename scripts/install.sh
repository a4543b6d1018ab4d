#!/usr/bin/env bash
# Installs everything cnndsl needs on a fresh machine: graphviz's `dot`, cairo and chromium
# (apt), then the package with its test dependencies. Prefers the torch/torchvision wheels that lie on this machine's disk
# (pip takes torch==2.14.1 and torchvision==0.29.1 from there) over a multi-GB download.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# graphviz: `dot` for the graph-style diagrams (it brings libcairo2, which CairoSVG needs for
# the volume figure's PNG and PDF); chromium and its chromedriver: the page test
# (tests/test_explore.py) drives Debian's browser, as Playwright's own download cannot work here.
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
ldconfig -p 2>/dev/null | grep -q 'libcairo\.so\.2' || missing+=(libcairo2)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: missing ${missing[*]}: install these Debian packages to render SVG/PNG" \
         "and to run the page's browser test" >&2
  fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if ! "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
  echo "== installing torch and torchvision"
  "$PY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" \
    || "$PY" -m pip install -q torch torchvision
fi
echo "== installing cnndsl"
"$PY" -m pip install -q -e ".[test,lsp]"
# An editable install leaves the bytecode to Python's first import, which cannot write it
# where PYTHONDONTWRITEBYTECODE is set (as on this sandbox): every `cnndsl check` would then
# compile 30 modules from source, about 40 ms. Compile them now, as a regular install does.
"$PY" -m compileall -q cnndsl >/dev/null
# Build lark's parse tables once now (0.7 s), into the per-user cache the first command would
# otherwise fill (cnndsl/parser.py), so that command answers at once too.
"$PY" -c "from cnndsl.parser import parse; parse('input 1x1x1\nRELU')"
