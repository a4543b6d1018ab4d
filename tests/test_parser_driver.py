"""cnndsl's LALR driver (parse_loop._Driver) against lark's own parse loop: the same syntax tree,
spans included, and the same error, message and location, for every spec in the repository,
every diagnostic in the catalogue, hand-picked edge cases and seeded random token soups."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from cnndsl import parse_loop, parser
from cnndsl.errors import CnnDslError

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted([*ROOT.glob("specs/**/*.cnn"), *ROOT.glob("tests/fixtures/**/*.cnn")])

EDGES = [
    "", "\n", "\n\n\n", "# only a comment", "# comment\n", "input 8x8x3", "input 8x8x3\n",
    "input 8x8x3;RELU;", ";;", "input = 32 x 32 x 3\nCONV(8, 3)", "INPUT: 8x8\nconv3-64 - FC-4096",
    "input 8x8x3\nRELU -\n  RELU\n- RELU\n", "input 8x8x3\n(RELU\n-\nRELU)\n",
    "input 8x8x3\r\nRELU\r\n", "\ufeffinput 8x8x3\nRELU", "input 8x8x3\nRELU\u00a0-\u00a0RELU",
    "input 8x8x3\nRELU # trailing", "input 8x8x3\nRELU #", "input 8x8x3\n\tRELU",
    "input 8x8x3\nRELU %", "input 8x8x3\nCONV(3×3)", "input 8x8x3\nCONV('a')",
    "input 8x8x3\nRELU)", "input 8x8x3\n(RELU]", "input 8x8x3\n(RELU", "input 8x8x3\nRELU -",
    "input 8x8x3\nRELU RELU", "input 8x8x3\nCONV(c=1, 2)", "input 8x8x3\nCONV(,)",
    "def f(a, b=2) = CONV(a) - CONV(b)\ninput 8x8x3\nf(1)", "def = 3", "def f = ",
    "v = 1.5e3\nw = .5\nx = 3e2\ninput 8x8x3\nCONV(v > 2 and w <= 1 or x != 3, 1)",
    "input 8x8x3\nconcat(identity, RELU?, -RELU)?", "input 8x8x3\nRELU" + "?" * 201,
    "input 8x8x3\nCONV(" + "-" * 202 + "4, 1)", "input 8x8x3\n" + "(" * 201 + ")" * 201,
    "input 8x8x3\n[RELU] - {RELU} -> RELU, RELU", "input 8x8x3\nCONV(in.c, 1)",
    "input 8x8x3\nRELU * 2 / 3 * N", "input 8x8x3\n" + "RELU? - " * 300 + "RELU",
    "input 8x8x3\nCONV(" + "9" * 40 + ")", "input 8x8x3\nCONV(99999999999999x3)",
    "and or def input", "input 8x8x3\nsoft-max", "input 8x8x3\nRELU → RELU",
    "input 8x8x3\n!", "input 8x8x3\nRELU - \n", "x = (1,\n 2)\n", "input\n8x8x3",
    # a held newline the parser refuses, before a bracket the postlexer refuses
    "def f\n)", "def f\n]", "def f\n(", "def f # c\n\n)", "input 8x8x3\nRELU\n)",
]

VOCABULARY = ["RELU", "CONV", "FC", "x", "N", "input", "def", "and", "or", "in.c",
              "conv3-64", "FC-4096", "3", "8x8x3", "1.5", "-", "+", "*", "/", "->", ",", "=",
              ":", "?", ";", "(", ")", "[", "]", "{", "}", "==", "<", " ", " ", "\n", "#c\n",
              "\t", "%"]


def outcome(text: str, *, lark_loop: bool):
    try:
        program = parser._parse(text, "t.cnn", lark_loop=lark_loop)
    except CnnDslError as exc:
        span = exc.span
        where = span and (span.line, span.column, span.end_line, span.end_column)
        return type(exc).__name__, str(exc), where, exc.help, tuple(exc.notes)
    return repr(program.statements)


def same(text: str) -> None:
    assert outcome(text, lark_loop=False) == outcome(text, lark_loop=True)


def test_the_driver_is_in_use():
    assert parse_loop._driver() is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_specs(path):
    same(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", EDGES)
def test_edge_cases(text):
    same(text)


@pytest.mark.parametrize("seed", range(20))
def test_random_token_soups(seed):
    rng = random.Random(seed)
    for _ in range(50):
        words = rng.choices(VOCABULARY, k=rng.randint(1, 30))
        same("input 8x8x3\n" + "".join(w if w in " \n\t" else w + rng.choice(["", " "])
                                       for w in words))


def expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression the grammar accepts (most of them: the point is the tree)."""
    def atom() -> str:
        if depth > 3:
            return rng.choice(["RELU", "3", "x", "1.5", "2x2"])
        pick = rng.randrange(9)
        if pick == 0:
            args = [expression(rng, depth + 1) for _ in range(rng.randint(0, 3))]
            if rng.random() < 0.5:
                args.append(f"k{rng.randint(0, 9)}={expression(rng, depth + 1)}")
            return rng.choice(["CONV", "f", "concat"]) + "(" + ", ".join(args) + ")"
        if pick == 1:
            return "(" + expression(rng, depth + 1) + ")"
        if pick == 2:
            opener, closer = rng.choice(["[]", "{}"])
            return opener + expression(rng, depth + 1) + closer
        return rng.choice(["RELU", "N", "7", "0.5", "3x3", "in.w", "conv3-64", "input",
                           "FC-4096"])

    def unary() -> str:
        return "-" * rng.choice([0, 0, 1, 2]) + atom() + "?" * rng.choice([0, 0, 1, 2])

    ops = [" - ", "-", " + ", " * ", "*", " / ", " -> ", ", ", " == ", " and ", " or ",
           " -\n  ", "\n  - "]
    text = unary()
    for _ in range(rng.randint(0, 4)):
        text += rng.choice(ops) + unary()
    return text


@pytest.mark.parametrize("seed", range(20))
def test_random_expressions(seed):
    rng = random.Random(seed)
    for _ in range(30):
        lines = ["input 8x8x3"]
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(3)
            head = ("" if kind == 0 else f"v{rng.randint(0, 9)} = " if kind == 1
                    else f"def b{rng.randint(0, 9)}(a, c=2) = ")
            lines.append(head + expression(rng))
        same(rng.choice(["\n", ";", "\n\n"]).join(lines) + rng.choice(["", "\n", " # end"]))


RUN_ITEMS = ["RELU", "RELU?", "a", "b?", "x1", "RELU??", "soft-max", "FC-4096", "conv3-64",
             "in.c", "and", "or", "input", "def", "CONV(3)", "3", "(a)", "a?b"]
RUN_JOINS = [" - ", "-", " -\t", "\t- ", " -\n ", "\n- ", "\n\n  - ", " + ", " * ", "--", " -> ",
             " - # c\n  ", " # c - d\n  - ", "\n \n-\n\n", "-\u00a0", "\n-> ", " -\n-"]
RUN_CONTEXTS = ["{}", "({})", "f({}, k=1)", "f(k={})", "x = {}", "def b(c) = {}", "{} -> RELU",
                "[{}]?", "{{{}}}", "{} == 3", "{} ; RELU", "{}; RELU", "{} # c", "{}\n# c\n",
                "-{}", "{} * 2", "{}?", "a - {}", "{}, RELU", "RELU, {}", "{} and 1",
                "concat({}, {})", "{}\n  RELU", "{}\n  - RELU", "{}\n\u00a0- RELU", "({}\n- a)",
                "{}\n\n", "{} )", "{} ]", "{}\n)", "( {}", "{})"]


@pytest.mark.parametrize("seed", range(20))
def test_flat_runs(seed):
    """The flat runs _Driver.run reduces at once, in every context, with the names the
    lexer reads otherwise (paper tokens, keywords, `in.c`) and joins that end them."""
    rng = random.Random(seed)
    for _ in range(40):
        def run() -> str:
            n = rng.choice([1, 2, 3, 5, 40])
            items = [rng.choice(RUN_ITEMS[:5]) if rng.random() < 0.9 else rng.choice(RUN_ITEMS)
                     for _ in range(n)]
            joins = [" - " if rng.random() < 0.8 else rng.choice(RUN_JOINS) for _ in items]
            return "".join(i + j for i, j in zip(items, joins))[:-len(joins[-1])]
        context = rng.choice(RUN_CONTEXTS)
        body = context.format(*(run() for _ in range(context.count("{}"))))
        same("input 8x8x3\n" + body + rng.choice(["", "\n", " ", "\n\n"]))


def test_a_long_run_is_one_chain():
    program = parser.parse("input 8x8x3\n" + "RELU? - " * 1000 + "RELU\n")
    chain = program.statements[1]
    assert len(chain.items) == 1001 and chain.span.end_column == 8 * 1000 + 5
