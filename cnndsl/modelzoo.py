"""The bundled specs (the package cnndsl.zoo, from specs/): names, texts and one-line summaries.

A source of spec text below the API (read_spec resolves `zoo:NAME` here), so it never checks a
spec itself: cnndsl.api.zoo_entry does, for the listing."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError, did_you_mean

PREFIX = "zoo:"


def _folder():
    from .resources import data_folder  # specs/ is installed as cnndsl/zoo

    return data_folder("zoo", "specs")


# A family spec names its members in comment lines: `# variant efficientnet_b3: wm=1.2, dm=1.4`
_VARIANT = re.compile(r"^# variant ([A-Za-z0-9_]+): (.*)$", re.M)
_SETTING = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^,]+?)\s*(?:,|$)")


def _files() -> list[str]:
    return sorted(entry.name[:-4] for entry in _folder().iterdir()
                  if entry.name.endswith(".cnn") and entry.is_file())


def variants() -> dict[str, tuple[str, dict[str, str]]]:
    """Members of the families: name -> (family spec, {variable: value as written})."""
    found = {}
    for family in _files():
        text = (_folder() / f"{family}.cnn").read_text(encoding="utf-8")
        for match in _VARIANT.finditer(text):
            found[match.group(1)] = (family, dict(_SETTING.findall(match.group(2))))
    return found


def names() -> list[str]:
    """The bundled spec names, sorted (`resnet50` for zoo/resnet50.cnn), with the members of
    the family specs (`efficientnet_b3` of zoo/efficientnet.cnn)."""
    return sorted({*_files(), *variants()})


def read(name: str) -> str:
    """The text of a bundled spec; UsageError (with 'did you mean') for an unknown name.

    A family's member is the family's text with its variables set to the member's values
    (the assignments rewritten in place), so the text stands alone: a saved model keeps it.
    """
    name = name.removeprefix(PREFIX).removesuffix(".cnn")
    entry = _folder() / f"{name}.cnn"
    members = variants() if name and not entry.is_file() else {}
    if not name or "/" in name or "\\" in name or not (entry.is_file() or name in members):
        hint = did_you_mean(name, names())
        raise UsageError(f"no spec `{name}` in the zoo" +
                         (f"; did you mean `{hint}`?" if hint else "") +
                         " (`cnndsl zoo` lists them)")
    if entry.is_file():
        return entry.read_text(encoding="utf-8")
    family, settings = members[name]
    text = (_folder() / f"{family}.cnn").read_text(encoding="utf-8")
    for variable, value in settings.items():
        text, count = re.subn(rf"^{variable} = .*$", f"{variable} = {value}", text, count=1,
                              flags=re.M)
        if not count:
            raise UsageError(f"zoo:{name}: the family spec `{family}` has no variable "
                             f"`{variable}` to set")
    return f"# {name}: " + text.removeprefix("# ")


def description(text: str, width: int = 100) -> str:
    """A spec's one-line description: its first comment sentence, cut to `width` characters.

    The sentence may run over several comment lines; it ends at a line that ends in `.`, `:`
    or `;`, or where the comment ends.
    """
    words: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped or words:
                break
            continue
        words += stripped.lstrip("#").split()
        if not words or words[-1][-1] in ".:;":
            break
    sentence = " ".join(words).rstrip()
    if sentence.endswith((":", ";")):  # a sentence that introduces the layer list ends here
        sentence = sentence[:-1].rstrip() + "."
    if len(sentence) <= width:
        return sentence
    return sentence[:width - 1].rsplit(" ", 1)[0].rstrip(",;:(") + "…"


@dataclass(frozen=True)
class Entry:
    """A bundled spec's line in the listing (cnndsl.api.zoo_entry checks the spec for it)."""

    name: str
    description: str
    layers: int
    params: int
    macs: int
    input: str
    output: str
