"""The command line: exit statuses, spec sources, -D, and a torch-free start-up."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "specs" / "lenet5.cnn")


def cnndsl(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "cnndsl", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=120)


def test_check_prints_one_line_with_layers_output_and_params():
    r = cnndsl("check", LENET)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1
    assert "12 layers" in r.stdout and "output 10" in r.stdout
    assert "61,706 parameters" in r.stdout  # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850


def test_check_reads_stdin_and_spec_text():
    text = "input 32x32x3\nCONV(10, 5, pad=2)\n"
    r = cnndsl("check", "-", stdin=text)
    assert r.returncode == 0 and "output 32x32x10" in r.stdout and "760 parameters" in r.stdout
    r = cnndsl("check", text)
    assert r.returncode == 0 and "760 parameters" in r.stdout


def test_defines_input_and_classes_options():
    r = cnndsl("check", "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX", "-D", "N=2", "-D", "M=3",
               "-D", "K=1", "--input", "32x32x3", "--classes", "10")
    assert r.returncode == 0, r.stderr
    assert "output 10" in r.stdout


def test_spec_error_exits_1_with_a_diagnostic_and_no_traceback():
    r = cnndsl("check", "input 7x7x3\nCONV(10, 3, s=3)")
    assert r.returncode == 1
    assert r.stderr.startswith("<spec>:2:1: error: ")
    assert "2.33 is not an integer" in r.stderr and "help:" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [
    ["check"],
    ["check", "missing-file.cnn"],
    ["check", LENET, "-D", "N"],
    ["check", LENET, "--input", "axb"],
    ["check", LENET, "--classes", "0"],
    ["frobnicate", LENET],
])
def test_usage_errors_exit_2(args):
    r = cnndsl(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_expand_lists_every_layer_with_its_shape():
    r = cnndsl("expand", LENET)
    assert r.returncode == 0
    lines = r.stdout.strip().split("\n")
    assert len(lines) == 13  # the input and 12 layers
    assert lines[1].split()[0] == "conv1" and lines[1].split()[-1] == "28x28x6"
    assert lines[-1].split()[-1] == "10"


@pytest.mark.parametrize("command", ["check", "expand", "summary"])
def test_check_does_not_import_torch_or_networkx(command):
    # networkx costs 0.1 s to import: the pipeline keeps its graph in cnndsl.ir instead.
    code = ("import sys\nfrom cnndsl.cli import main\n"
            f"rc = main([{command!r}, {LENET!r}])\n"
            "assert rc == 0\n"
            "heavy = [m for m in ('torch', 'graphviz', 'numpy', 'networkx') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout


def test_console_script_is_installed():
    """Beside the interpreter that runs the tests (a virtual environment's bin/, activated or
    not), else on PATH."""
    import shutil

    beside = Path(sys.executable).parent / "cnndsl"
    exe = str(beside) if beside.exists() else shutil.which("cnndsl")
    assert exe, f"the cnndsl console script is neither in {beside.parent} nor on PATH"
    r = subprocess.run([exe, "check", LENET], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "61,706" in r.stdout


def test_a_define_the_spec_never_uses_is_a_warning():
    r = cnndsl("check", "input 8x8x3\nN = 2\nCONV(4, 3) * N", "-D", "n=3")
    assert r.returncode == 0
    assert "warning: the spec never uses `n`; -D n changes nothing (did you mean `N`?)" in r.stderr
    r = cnndsl("check", "input 8x8x3\nN = 2\nCONV(4, 3) * N", "-D", "N=3")
    assert r.returncode == 0 and r.stderr == ""


def test_the_library_warns_about_an_unused_variable_as_the_command_line_does(capsys):
    import warnings

    import cnndsl as package
    from cnndsl.cli import main

    spec = "input 8x8x3\nN = 2\nCONV(4, 3) * N"
    with pytest.warns(package.UnusedVariableWarning, match="did you mean `N`") as record:
        package.build_graph(spec, n=3)
    assert [(w.message.name, w.message.hint) for w in record] == [("n", "N")]
    assert record[0].filename == __file__  # it names the caller's line, not cnndsl's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a variable the spec uses: no warning
        package.build_graph(spec, N=3)
    # main() in one process, twice: the warning is printed both times, in the CLI's words
    for _ in range(2):
        assert main(["check", spec, "-D", "n=3"]) == 0
        assert "cnndsl: warning: the spec never uses `n`; -D n changes nothing (did you mean " \
               "`N`?)" in capsys.readouterr().err


def test_paths_that_are_not_spec_files(tmp_path):
    r = cnndsl("check", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr
    r = cnndsl("check", "./no-such-spec")
    assert r.returncode == 2 and "no such spec file: ./no-such-spec" in r.stderr
    r = cnndsl("check", "/dev/null")  # readable, but empty
    assert r.returncode == 1 and r.stderr.startswith("/dev/null:1:1: error: the spec is empty")
    r = cnndsl("check", "input 8x8x3; CONV(16/2, 3)")  # a `/` inside spec text is arithmetic
    assert r.returncode == 0 and "output 6x6x8" in r.stdout


def test_the_command_line_skips_larks_optional_imports():
    # lark imports regex and interegular when installed (~40 ms); a parse from the cached
    # tables needs neither, so the command line's own process hides them from lark, and
    # only from lark: afterwards they import as usual.
    code = ("import sys, atexit, importlib.util\n"
            "def report():\n"
            "    print('LOADED', [m for m in ('regex', 'interegular') if sys.modules.get(m)])\n"
            "    print('PLACEHOLDERS', [m for m in ('regex', 'interegular') if m in sys.modules])\n"
            "    print('LARK', 'lark' in sys.modules)\n"
            "atexit.register(report)\n"
            f"sys.argv = ['cnndsl', 'check', {LENET!r}]\n"
            "from cnndsl.cli import run\n"
            "run()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "61,706 parameters" in r.stdout
    assert "LOADED []" in r.stdout and "PLACEHOLDERS []" in r.stdout and "LARK True" in r.stdout


def test_python_dash_m_runs_the_command_line():
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", LENET], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "61,706 parameters" in r.stdout
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", "CONV-"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "error" in r.stderr


def test_one_layer_is_singular():
    r = cnndsl("check", "input 8x8x3\nFC(1, bias=false) - BIAS")
    assert r.stdout.strip() == "<spec>: ok: 2 layers, output 1, 193 parameters"
    r = cnndsl("check", "input 1x1x1\nFC(1, bias=false)")
    assert r.stdout.strip() == "<spec>: ok: 1 layer, output 1, 1 parameter"
    r = cnndsl("summary", "input 8x8x3\nRELU")
    assert "-> output 8x8x3; 1 layer\n" in r.stdout


def test_the_readmes_first_examples_are_what_the_commands_print():
    import shlex

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```\n", 2)[1]
    sessions = [s for s in ("\n" + block).split("\n$ ")[1:]]
    assert len(sessions) == 3
    for session in sessions:
        lines = session.rstrip("\n").split("\n")
        command, rest = lines[0], lines[1:]
        while True:  # a quoted spec may run over several lines
            try:
                argv = shlex.split(command)
                break
            except ValueError:
                command += "\n" + rest.pop(0)
        r = cnndsl(*argv[1:])
        assert (r.stdout + r.stderr).rstrip("\n") == "\n".join(rest), command


def test_a_define_that_only_names_a_defs_parameter_says_so():
    """resnet's `c` is a parameter of its blocks: every call's argument shadows -D c."""
    r = cnndsl("check", "zoo:resnet18", "-D", "c=3")
    assert r.returncode == 0
    assert ("cnndsl: warning: `c` is only a parameter of `basic` and `stage`: each call's "
            "argument sets it, so -D c changes nothing") in r.stderr


def test_an_unused_define_is_not_told_to_mean_a_function():
    r = cnndsl("check", "zoo:resnet18", "-D", "foo=3")
    assert "the spec never uses `foo`; -D foo changes nothing" in r.stderr
    assert "floor" not in r.stderr
    r = cnndsl("check", "zoo:resnet18", "-D", "widht=3")
    assert "(did you mean `width`?)" in r.stderr


def test_check_names_each_output_as_the_summary_does():
    """A network with several outputs: `check`'s line gives each output's shape by name, the
    main one first, as `summary`'s totals line does (the main output alone is not all)."""
    spec = ("input 8x8x3\ndef head = GAP - FC(5)\n"
            "CONV(4, 3, pad=1) as a - RELU - CONV(8, 2, s=2) as b - head\n"
            "  - outputs(main=identity, aux=@a - head, map=@b - CONV(2, 1))\n")
    r = cnndsl("check", spec)
    assert r.stdout.strip() == ("<spec>: ok: 8 layers, outputs main 5, aux 5, map 4x4x2, "
                                "336 parameters")
    r = cnndsl("summary", spec)
    assert "-> outputs main 5 (fc1), aux 5 (fc2), map 4x4x2 (conv3); 8 layers" in r.stdout
