#!/usr/bin/env bash
# Installs cnndsl on a fresh machine into the project's virtual environment, .venv: the OS
# packages it lacks (graphviz's `dot`, cairo, chromium for the page test; python3.X-venv where
# the system Python has no venv module), then torch and torchvision at their pinned versions and cnndsl itself, editable,
# with its test dependencies. Nothing is installed into the system Python, which Debian 12
# and Ubuntu 24.04 mark externally managed (PEP 668).
#
# PYTHON (default python3) is the interpreter .venv is made from; VENV (default .venv) where.
# The venv sees that interpreter's packages (--system-site-packages): a torch already there
# at the pinned version (on this project's machines it lies on the local disk, 1.2 GB) is
# used as it is instead of copied or downloaded again; anything else pip puts into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH=2.14.1
TORCHVISION=0.29.1

say() { echo "== $*"; }
warn() { echo "install.sh: warning: $*" >&2; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo (asking for a password
# only where someone can type it). Fails when neither is possible.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
  else
    return 1
  fi
}

# Installs Debian/Ubuntu packages; fails (saying nothing) where apt-get or root is missing.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  say "installing $* (apt-get)"
  as_root apt-get update -qq >/dev/null || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# -- the interpreter ---------------------------------------------------------------------------
command -v "$PY" >/dev/null 2>&1 \
  || die "no '$PY' on PATH: install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "cnndsl needs Python 3.10 or newer; $PY is $("$PY" -V 2>&1)"
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# -- OS packages -------------------------------------------------------------------------------
# graphviz: `dot` for the graph-style diagrams (it brings libcairo2, which CairoSVG needs for
# the volume figure's PNG and PDF).
if ! command -v dot >/dev/null 2>&1; then
  apt_install graphviz || warn "graphviz's dot is missing and could not be installed here: \
run 'sudo apt-get install graphviz' (or your system's graphviz package); until then \
'cnndsl render' writes only .dot and .svg files"
fi
# chromium and its chromedriver: the explorer page's browser test (tests/test_explore.py)
# drives Debian's browser, as Playwright's own browser download cannot work offline.
browser=()
command -v chromium >/dev/null 2>&1 || browser+=(chromium)
command -v chromedriver >/dev/null 2>&1 || browser+=(chromium-driver)
if [ ${#browser[@]} -gt 0 ]; then
  apt_install "${browser[@]}" || warn "${browser[*]} missing and could not be installed \
here: run 'sudo apt-get install ${browser[*]}' for the HTML page's browser test"
fi

venv_works() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' >/dev/null 2>&1; }

if ! venv_works; then
  # Debian and Ubuntu ship the venv module's ensurepip in a package of its own.
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    package="python$PYVER-venv"
    apt_install "$package" || die "$PY cannot create a virtual environment: run 'sudo apt-get \
install $package' (Debian/Ubuntu; elsewhere use a Python with the venv module), then this again"
    "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1 || die "$PY still has no venv module \
after installing $package: name another Python, e.g. PYTHON=/usr/bin/python3 make test"
  fi
  if [ -e "$VENV" ]; then
    [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists and is not a virtual environment: move it away"
    say "$VENV no longer runs (its Python is gone?): making it again"
    rm -rf "$VENV"
  fi
  say "creating the virtual environment $VENV from $PY ($PYVER)"
  "$PY" -m venv --system-site-packages "$VENV" || die "'$PY -m venv $VENV' failed (above)"
fi
VPY=$VENV/bin/python

# -- Python packages, into the venv only -------------------------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1
pinned() {
  "$VPY" - "$TORCH" "$TORCHVISION" >/dev/null 2>&1 <<'CHECK'
import sys
import torch, torchvision
base = lambda v: v.split("+")[0]  # 2.14.1+cpu, 2.14.1+cu130: the same release
sys.exit(not (base(torch.__version__) == sys.argv[1]
              and base(torchvision.__version__) == sys.argv[2]))
CHECK
}
if pinned; then
  say "torch==$TORCH and torchvision==$TORCHVISION are there already"
else
  say "installing torch==$TORCH torchvision==$TORCHVISION into $VENV"
  "$VPY" -m pip install -q "torch==$TORCH" "torchvision==$TORCHVISION" \
    || die "pip could not install torch==$TORCH torchvision==$TORCHVISION (its message is \
above); cnndsl is tested with exactly these"
fi
say "installing cnndsl (editable, with its test and language-server dependencies) into $VENV"
"$VPY" -m pip install -q -e ".[test,lsp]"
# An editable install leaves the bytecode to Python's first import, which cannot write it
# where PYTHONDONTWRITEBYTECODE is set (as on this project's machines): every `cnndsl check`
# would then compile 30 modules from source, about 40 ms. Compile them now, as a regular
# install does.
"$VPY" -m compileall -q cnndsl >/dev/null
# Build lark's parse tables once now (0.7 s), into the per-user cache the first command would
# otherwise fill (cnndsl/parser.py), so that command answers at once too.
"$VPY" -c "from cnndsl.parser import parse; parse('input 1x1x1\nRELU')"
say "done: run '. $VENV/bin/activate' to put cnndsl on PATH, or call $VENV/bin/cnndsl"
