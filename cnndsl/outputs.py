"""Output files written safely, for every writer (saved models, source, drawings, fmt).

A write goes through a temporary file beside the target, renamed onto it only when complete,
so a failure or a kill never leaves half a file. On top of that (issue 17, F12 and F15-F18):
an existing file keeps its mode, a symlink is written through (its target is replaced, the
link stays), a directory, FIFO or device is refused, the spec being read is never the output,
the temporary file is removed on SIGTERM/SIGINT, and every OSError is a UsageError naming
the file, never a traceback.
"""
from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path

from .errors import UsageError

# The temporary name adds `.` before and `.XXXXXXXX.tmp` after the file's name; a name near
# NAME_MAX (255 bytes) would make it too long, so the copied part is cut to this many bytes.
_TEMP_NAME_BYTES = 200


def resolve(path: str | Path, inputs=()) -> tuple[Path, int | None]:
    """The file a write to `path` replaces, and its mode if it exists already.

    Refused (UsageError): a directory, anything but a regular file, a missing folder, and
    the same file as one of `inputs` (the spec being read: writing would destroy it).
    """
    shown = Path(path)
    # A symlink is written through, as `>` in a shell does: the link stays and names the new
    # file (fmt formats the real spec, not a copy where the link was).
    try:
        real = Path(os.path.realpath(shown)) if stat.S_ISLNK(os.lstat(shown).st_mode) else shown
    except FileNotFoundError:
        real = shown
    except OSError as exc:  # a name too long, a component that is not a folder, a loop
        raise UsageError(f"cannot write {shown}: {exc.strerror}") from None
    try:
        st = os.stat(real)
    except FileNotFoundError:
        folder = real.parent if str(real.parent) else Path(".")
        if not folder.is_dir():
            raise UsageError(f"cannot write {shown}: no such directory: {folder}") from None
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {exc.strerror}") from None
    else:
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"cannot write {shown}: it is a directory")
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or a device would be replaced by a regular file by the rename.
            raise UsageError(f"cannot write {shown}: it is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        for spec in inputs:
            if spec is not None and _same_file(real, spec):
                raise UsageError(f"cannot write {shown}: it is the spec being read "
                                 f"({spec}); choose another output name")
    return real, mode


def _same_file(a: Path, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError, TypeError):  # b is spec text, zoo:NAME, `-`, or missing
        return False


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, *, inputs=()):
    """A temporary path beside `path`'s target, renamed onto it only if the block succeeds.

    On any failure, or SIGTERM/SIGINT meanwhile, the temporary file is removed and the
    target is left as it was. OSErrors (a full disk, a read-only folder, a name too long)
    become UsageErrors naming `path`.
    """
    real, mode = resolve(path, inputs)
    folder = real.parent if str(real.parent) else Path(".")
    name = os.fsencode(real.name)[:_TEMP_NAME_BYTES].decode(errors="ignore")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    try:
        with _removed_on_signal(tmp):
            yield Path(tmp)
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
            os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def write_bytes(path: str | Path, data: bytes, *, inputs=()) -> None:
    with atomic_path(path, inputs=inputs) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str, *, inputs=()) -> None:
    write_bytes(path, text.encode("utf-8"), inputs=inputs)


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _removed_on_signal(tmp: str):
    """While the block runs, SIGTERM or SIGINT first removes `tmp`, then acts as before
    (the default SIGTERM kills the process, which would leave a half-written hidden file:
    half a gigabyte for a large model)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; the except clause still cleans up
        return
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def handler(signum, frame):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        old = previous[signum]
        signal.signal(signum, old if old is not None else signal.SIG_DFL)
        if callable(old):
            old(signum, frame)  # Python's SIGINT handler raises KeyboardInterrupt here
        else:
            signal.raise_signal(signum)  # the default action (or none, if it was ignored)

    for sig in _SIGNALS:
        if previous[sig] is not signal.SIG_IGN:
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
