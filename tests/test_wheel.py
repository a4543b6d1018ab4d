"""The grammar ships inside the wheel: build it, install it in a venv outside the tree, check."""
from __future__ import annotations

import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel into a fresh venv; `make test-fast` skips it

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_checks_outside_the_source_tree(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(dist), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("cnndsl-*.whl"))
    from cnndsl import __version__  # pyproject.toml reads it from cnndsl/version.py

    assert wheel.name.startswith(f"cnndsl-{__version__}-"), wheel.name
    env_dir = tmp_path / "venv"
    # The dependencies (lark, networkx, torch) come from the environment running the tests,
    # which may itself be a virtual environment: its site-packages are put on the new venv's
    # path (system_site_packages would reach the base interpreter's instead). A plain path in
    # a .pth runs none of that folder's own .pth files, so cnndsl's editable install there
    # stays out: the wheel itself must bring the grammar and the zoo.
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    ours = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    theirs = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(ours.stdout.strip(), "test-dependencies.pth").write_text("\n".join(theirs) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "net.cnn").write_text("input 32x32x3\nCONV(10, 5, pad=2) - RELU - POOL - FC(10)\n")
    probe = ("import cnndsl, sys; print(cnndsl.__file__)")
    where = subprocess.run([str(py), "-c", probe], cwd=work, capture_output=True, text=True,
                           check=True).stdout.strip()
    assert str(env_dir) in where, where  # the installed wheel, not the source checkout
    r = subprocess.run([str(env_dir / "bin" / "cnndsl"), "check", "net.cnn"], cwd=work,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "net.cnn: ok: 4 layers, output 10" in r.stdout
    # the bundled specs travel with the wheel too
    r = subprocess.run([str(env_dir / "bin" / "cnndsl"), "check", "zoo:resnet50"], cwd=work,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "25,557,032 parameters" in r.stdout, r.stderr
    r = subprocess.run([str(env_dir / "bin" / "cnndsl"), "zoo"], cwd=work, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "vgg16" in r.stdout and "lenet5" in r.stdout
    listing = subprocess.run([str(py), "-m", "zipfile", "-l", str(wheel)], capture_output=True,
                             text=True, check=True).stdout
    assert "cnndsl/grammar/cnn.lark" in listing
