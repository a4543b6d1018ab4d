"""Output files and the environment (issue 17, F12 and F15-F18): every bad place to write, a
full disk, stdout that cannot be written, stdin closed, numbers too long, exports that cannot
be made, models too large to allocate: a `cnndsl: error:` line and exit 2, never a
traceback, never a half-written or hidden temporary file."""
from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cnndsl import artifacts, outputs, torch_backend
from cnndsl.cli import main
from cnndsl.errors import UsageError

SPEC = "input 8x8x3\nCONV(4, 3, pad=1) - RELU - FC(10)\n"


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "net.cnn"
    path.write_text(SPEC)
    return path


def assert_clean_refusal(r, message):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- F12: places that cannot be written --------------------------------------------------------

@pytest.mark.parametrize("suffix", [".py", ".pt", ".svg.dot"])
def test_an_existing_directory_as_output_is_refused(spec, tmp_path, capsys, suffix):
    target = tmp_path / f"out{suffix}"
    target.mkdir()
    command = ["render", spec, "-o", target] if suffix.endswith(".dot") else \
        ["compile", spec, "-o", target]
    assert main([str(a) for a in command]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert target.is_dir() and not any(target.iterdir())


def test_an_unwritable_folder_is_a_usage_error(spec, tmp_path, capsys, monkeypatch):
    def refused(*args, **kwargs):  # as root every folder is writable: refuse as a mount would
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    for command in (["compile", spec, "-o", tmp_path / "m.py"],
                    ["compile", spec, "-o", tmp_path / "m.pt"],
                    ["render", spec, "-o", tmp_path / "m.dot"]):
        assert main([str(a) for a in command]) == 2
        assert "Permission denied" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.cnn"]


def test_a_full_disk_in_process_is_a_usage_error_and_leaves_nothing(tmp_path, monkeypatch):
    import torch

    def full(obj, f, *args, **kwargs):
        f.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UsageError, match="No space left on device"):
        artifacts.save_state_dict({"w": torch.zeros(3)}, tmp_path / "w.pth")
    assert list(tmp_path.iterdir()) == []


def _file_size_limit():
    # A file may not grow past 2 kB: writes past it fail (EFBIG) as on a full disk, in the C
    # code of torch's writers too, which turn it into a RuntimeError or abort the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, 2_000))


@pytest.mark.parametrize("suffix", [".pt", ".ts", ".py", ".onnx"])
def test_a_full_disk_for_real_is_a_usage_error_and_leaves_nothing(tmp_path, suffix):
    spec = tmp_path / "big.cnn"  # 30 different layers: every output is well over 2 kB
    spec.write_text("input 8x8x3\n" + " - ".join(f"CONV({16 + k}, 3, pad=1) - RELU"
                                                  for k in range(30)) + " - FC(10)\n")
    r = subprocess.run([sys.executable, "-m", "cnndsl", "compile", str(spec), "--device", "cpu",
                        "-o", str(tmp_path / f"m{suffix}")], capture_output=True, text=True,
                       timeout=300, preexec_fn=_file_size_limit,
                       check=False)
    assert_clean_refusal(r, f"cannot write {tmp_path / f'm{suffix}'}: File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.cnn"]


def test_a_name_near_name_max_is_written_and_one_past_it_refused(spec, tmp_path, capsys):
    longest = tmp_path / ("m" * 252 + ".py")  # 255 bytes: legal, but not with `.` + `.tmp`
    assert main(["compile", str(spec), "-o", str(longest)]) == 0
    assert longest.is_file() and leftovers(tmp_path) == []
    too_long = tmp_path / ("m" * 253 + ".py")
    assert main(["compile", str(spec), "-o", str(too_long)]) == 2
    assert "File name too long" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check"], ["summary"], ["compile"]])
def test_stdout_on_a_full_device_is_a_usage_error(spec, command):
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "cnndsl", *command, str(spec)],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                           check=False)
    assert_clean_refusal(r, "cannot write the output: No space left on device")


def test_check_with_stdin_closed_is_a_usage_error():
    r = subprocess.run(f"{sys.executable} -m cnndsl check - <&-", shell=True,
                       capture_output=True, text=True, timeout=120, check=False)
    assert_clean_refusal(r, "cannot read the spec from stdin: it is closed")


@pytest.mark.parametrize("args", [["-D", "N=" + "9" * 5000], ["--input", "9" * 5000 + "x3"],
                                  ["--input", "8x" + "9" * 5000]])
def test_numbers_of_5000_digits_are_usage_errors(spec, capsys, args):
    assert main(["check", str(spec), *args]) == 2
    assert "5,000 digits is too large" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["9" * 5000, "9" * 50, str(2**64)])
def test_a_seed_past_64_bits_is_a_usage_error(spec, tmp_path, capsys, seed):
    try:  # 5,000 digits: argparse's own `invalid int value` (it exits 2 itself)
        status = main(["compile", str(spec), "--seed", seed, "-o", str(tmp_path / "m.pt")])
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert "seed" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.cnn"]


def test_a_64_bit_seed_still_works(spec, tmp_path):
    assert main(["compile", str(spec), "--seed", str(2**64 - 1), "-o", str(tmp_path / "m.pt")]) == 0


@pytest.mark.parametrize("text, options, reason", [
    ("input 7x9x3\nADAPTIVEAVGPOOL(3x2)\n", [], "adaptive_avg_pool2d"),
    ("input 8x8x3\nLRN(5)\n", ["--dtype", "float16"], "Half"),
])
def test_an_onnx_export_torch_cannot_make_is_a_usage_error(tmp_path, capsys, text, options,
                                                           reason):
    spec = tmp_path / "s.cnn"
    spec.write_text(text)
    out = tmp_path / "m.onnx"
    assert main(["compile", str(spec), "--device", "cpu", *options, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot export this model to ONNX" in err and reason in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.cnn"]


def test_a_model_too_large_for_memory_is_refused_with_the_figure(tmp_path, capsys):
    spec = tmp_path / "huge.cnn"
    spec.write_text("input 1x1x1\nFC(100000000000)\n")  # 200 billion parameters, 800 GB
    assert main(["compile", str(spec), "--device", "cpu", "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "200,000,000,000 parameters and buffers need about 745.1 GiB" in err
    assert "GiB of memory" in err


def test_the_memory_estimate_counts_the_dtype_and_the_buffers(monkeypatch):
    import cnndsl

    text = "input 4x4x3\nCONV(8, 3) - BN - FC(10)\n"  # BN: 16 buffers, 1 more (num_batches)
    graph = cnndsl.api.check_text(text, "<spec>", cnndsl.api.make_options())
    count = graph.totals["params"] + graph.totals["buffers"]
    monkeypatch.setattr(torch_backend, "memory_limit", lambda: count * 8 - 1)
    torch_backend.check_memory(graph, torch_backend.resolve_dtype("float32"))
    with pytest.raises(UsageError, match=rf"{count * 8:,} bytes"):
        torch_backend.check_memory(graph, torch_backend.resolve_dtype("float64"))


# -- F15-F18: what an output is -------------------------------------------------------------

def test_an_existing_output_keeps_its_mode(spec, tmp_path):
    for name in ("m.pt", "m.py", "m.dot"):
        out = tmp_path / name
        out.write_text("old")
        out.chmod(0o600)
        command = "render" if name.endswith(".dot") else "compile"
        assert main([command, str(spec), "-o", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600, name
        assert out.read_bytes() != b"old"


def test_a_new_output_gets_the_umask_mode(spec, tmp_path):
    old = os.umask(0o027)
    try:
        assert main(["compile", str(spec), "-o", str(tmp_path / "m.py")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.py").stat().st_mode) == 0o640


def test_a_symlinked_output_is_written_through(spec, tmp_path):
    real = tmp_path / "real" / "m.py"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "m.py"
    link.symlink_to(real)
    assert main(["compile", str(spec), "-o", str(link)]) == 0
    assert link.is_symlink() and "class" in real.read_text()
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


def test_fmt_formats_the_file_a_symlink_names(tmp_path):
    real = tmp_path / "real.cnn"
    real.write_text("input 8x8x3\nconv(4,3)->relu\n")
    link = tmp_path / "link.cnn"
    link.symlink_to(real)
    assert main(["fmt", str(link)]) == 0
    assert link.is_symlink()
    assert real.read_text() == "input 8x8x3\nCONV(4, 3) - RELU\n"


def test_a_fifo_output_is_refused_and_kept(spec, tmp_path, capsys):
    fifo = tmp_path / "m.py"
    os.mkfifo(fifo)
    assert main(["compile", str(spec), "-o", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("command, name", [("compile", "net.py"), ("render", "r.dot"),
                                           ("compile", "net.pt")])
def test_the_spec_being_read_is_never_the_output(tmp_path, capsys, command, name):
    path = tmp_path / name
    path.write_text(SPEC)
    assert main([command, str(path), "-o", str(path)]) == 2
    assert "it is the spec being read" in capsys.readouterr().err
    assert path.read_text() == SPEC
    alias = tmp_path / ("alias" + Path(name).suffix)
    alias.symlink_to(path)  # the same file by another name
    assert main([command, str(path), "-o", str(alias)]) == 2
    assert path.read_text() == SPEC


def test_sigterm_during_a_write_removes_the_temporary_file(tmp_path):
    code = f"""
import os, signal, time
from cnndsl import outputs
with outputs.atomic_path({str(tmp_path / 'm.pt')!r}) as tmp:
    tmp.write_bytes(b"x" * 1000)
    print(tmp, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == -signal.SIGTERM
    assert r.stdout.strip().startswith(str(tmp_path / ".m.pt."))
    assert list(tmp_path.iterdir()) == []


def test_sigint_during_a_write_removes_the_temporary_file(tmp_path):
    # a shell starts background jobs with SIGINT ignored, and Python keeps that: give the
    # test the handler an interactive run has, whatever started the suite
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), outputs.atomic_path(tmp_path / "m.pt") as tmp:
            tmp.write_bytes(b"x")
            signal.raise_signal(signal.SIGINT)
        assert list(tmp_path.iterdir()) == []
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, started_with)


def test_ctrl_c_is_a_one_line_message_and_status_130(spec, capsys, monkeypatch):
    from cnndsl.commands import check

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(check, "run", interrupted)
    assert main(["check", str(spec)]) == 130
    assert capsys.readouterr().err == "cnndsl: interrupted\n"
