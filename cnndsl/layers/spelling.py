"""'Did you mean' for layer names that knows an opposite is not a typo.

`UPSAMPLE` is one letter-edit family away from `SUBSAMPLE`, `DECONV` from `DWCONV` and
`MAXUNPOOL` from `MAXPOOL`, but each names the inverse (or another) operation: suggesting it
would send the reader to the wrong layer. A name is split into known modifiers and a core
(`MAX` + `UN` + `POOL`); a close spelling whose core is the same but whose modifiers say
the opposite (up/down/sub, an inverse marker one of them lacks, depthwise/de-) is not
offered. Names of other frameworks' constructs that a kind stands for are declared on the
kind (`LayerKind.foreign_names`) and answered with what to write.
"""
from __future__ import annotations

from ..errors import did_you_mean

# Word parts that change what a layer does, longest first so `DEPTHWISE` is not `DE`+...
_MODIFIERS = ("depthwise", "transposed", "transpose", "average", "inverse", "global", "pixel",
              "down", "max", "avg", "sub", "up", "un", "de", "dw")
# Parts that invert an operation: a name with one and a name without are opposites.
_INVERSE = {"un", "de", "inverse", "transpose", "transposed"}
# Parts that contradict each other outright.
_OPPOSED = [("up", "down"), ("up", "sub"), ("max", "avg"), ("de", "dw"), ("de", "depthwise")]


def _parts(name: str) -> tuple[frozenset[str], str]:
    """(modifiers, core): `MAXUNPOOL2D` -> ({max, un}, pool2d); `_` and digits kept in core."""
    word = name.lower().replace("_", "")
    mods = set()
    stripped = True
    while stripped:
        stripped = False
        for mod in _MODIFIERS:
            if word.startswith(mod) and len(word) > len(mod) + 1:
                mods.add("avg" if mod == "average" else mod)
                word = word[len(mod):]
                stripped = True
                break
    # the core's suffixes that do not change the operation: CONV2D is CONV, CONV_TRANSPOSE
    # is a transposed CONV
    for tail in ("transpose2d", "transposed", "transpose"):
        if word.endswith(tail) and len(word) > len(tail):
            mods.add("transpose")
            word = word[:-len(tail)]
    return frozenset(mods), word.removesuffix("2d")


def opposite(name: str, candidate: str) -> bool:
    """Whether `candidate` names the opposite (or another) operation of the same core."""
    (mine, core), (theirs, other) = _parts(name), _parts(candidate)
    if core != other or mine == theirs:
        return False
    differ = mine ^ theirs
    if differ & _INVERSE and bool(mine & _INVERSE) != bool(theirs & _INVERSE):
        return True
    return any((a in mine and b in theirs) or (b in mine and a in theirs) for a, b in _OPPOSED)


def suggest(name: str, candidates) -> str | None:
    """The closest candidate that is not the opposite of `name` (case-insensitive first)."""
    return did_you_mean(name, candidates, reject=lambda candidate: opposite(name, candidate))


def foreign_help(name: str, kinds) -> str | None:
    """What to write for another framework's or paper's name a kind declares (`DEPTHTOSPACE`
    -> PIXELSHUFFLE, with how they differ)."""
    for kind in kinds:
        for foreign, text in kind.foreign_names.items():
            if _bare(foreign) == _bare(name):
                return text
    return None


def _bare(name: str) -> str:
    """`MaxUnpool2d`, `MAX_UNPOOL` -> `maxunpool`."""
    return name.lower().replace("_", "").removesuffix("2d")
