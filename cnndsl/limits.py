"""The nesting and size limits every stage enforces, and the conditions the pipeline runs in:
the recursion headroom the limits need, the garbage collector paused while it builds."""
from __future__ import annotations

import contextlib
import gc
import sys
import threading

MAX_NUMBER = 10 ** 12  # literals above this are refused (the expander keeps results below it)
# One expression nests at most this deep: each bracket (a call's included), unary `-` and `?`
# is a level. The parser refuses deeper text before anything recurses over it.
MAX_NESTING = 200
# Words, numbers and symbols in a spec (a comment counts as one), counted before parsing:
# the parser takes about 5 microseconds a token (lark's own loop took 10), so 4 MiB of `1,`
# (2M arguments) or `v=1` lines parsed for 20-30 s before any limit could see them (issue
# 17, F7). A 100,000-layer chain
# of `CONV(8, 3, pad=1) - RELU` pairs is 600,000.
MAX_TOKENS = 1_000_000
# The largest size on one axis (a padded input, a pooled output, an LRN window). PyTorch
# computes these sizes in 32 bits: CONV(3, 1, pad=10^12) checked and then its forward said
# "Calculated output size per channel: (-1454759928 x -1454759928)" (issue 17, F13).
MAX_AXIS = 2 ** 31 - 1
# Definitions and variables being evaluated inside one another (`def b1 = b0`, `v1 = v0`).
MAX_DEPTH = 400
# The two together: entering a definition, a variable or an argument costs its expression's
# nesting plus one, summed along the chain being evaluated. Without it, 400 definitions that
# each nest 200 brackets would recurse 80,000 levels deep. 400 plain definitions cost
# about 1,200 (each also evaluates its caller's argument); zoo specs cost under 50.
MAX_LEVELS = 4_000

# Python frames the pipeline may need within the limits above. The deepest measured (by
# bisection, over specs built to recurse most per level: nested max() calls, products,
# brackets in 400 defs) was 16,330 frames, a third of this; tests/test_limits.py checks
# that half of it suffices. Python's default of 1,000 fails a chain of 200 definitions.
RECURSION_LIMIT = 50_000

_lock = threading.Lock()
_users = 0
_saved = 0


@contextlib.contextmanager
def recursion_headroom():
    """Raise Python's recursion limit to RECURSION_LIMIT while the pipeline runs, then restore it.

    The limit is per process, so concurrent builds share one raise: the first to enter raises
    it and the last to leave restores what it found (a limit set higher is kept).
    """
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = sys.getrecursionlimit()
            if _saved < RECURSION_LIMIT:
                sys.setrecursionlimit(RECURSION_LIMIT)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and sys.getrecursionlimit() == max(_saved, RECURSION_LIMIT):
                sys.setrecursionlimit(_saved)  # unless someone set another limit meanwhile


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while the pipeline builds a spec (and the
    summary and diagram read it: the library pauses it as the command line does).

    Parsing and expanding allocate millions of small objects that all stay alive, so each
    full collection re-walks everything built so far for nothing: at 100,000 layers that
    doubled the time (bench/scale.py). Cycles made meanwhile are collected afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
