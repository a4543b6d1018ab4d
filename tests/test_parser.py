"""The grammar and parser: LALR without conflicts, positions, and awkward source text."""
from __future__ import annotations

import pytest

from cnndsl import ast
from cnndsl.errors import CnnSyntaxError
from cnndsl.parse_tables import _grammar_text
from cnndsl.parser import parse

from conftest import build


def test_grammar_is_conflict_free_lalr_in_strict_mode():
    from lark import Lark

    Lark(_grammar_text(), parser="lalr", lexer="basic", strict=True)


def test_statements_and_expression():
    program = parse("input 32x32x3\nN = 2\ndef b(c, k=3) = CONV(c, k)\nb(8) * N")
    kinds = [type(s) for s in program.statements]
    assert kinds == [ast.InputStmt, ast.Assign, ast.Def, ast.Product]
    assert program.statements[0].dims == (32, 32, 3)
    assert [p.name for p in program.statements[2].params] == ["c", "k"]


def test_precedence_repeat_binds_tighter_than_then():
    expr = parse("CONV - RELU * 2 - POOL").statements[0]
    assert isinstance(expr, ast.Chain) and len(expr.items) == 3
    assert isinstance(expr.items[1], ast.Product)


def test_vgg_tokens_are_single_tokens_that_the_registry_reads():
    from cnndsl import layers

    expr = parse("conv3-64 - conv1-256 - FC-4096 - soft-max").statements[0]
    tokens = [c.alias for c in expr.items]
    assert tokens == ["conv3-64", "conv1-256", "FC-4096", "soft-max"]
    meaning = [(kind.name, args, kwargs) for kind, args, kwargs in map(layers.paper_token, tokens)]
    assert meaning == [("CONV", (64,), {"kernel": 3, "pad": "same"}),
                       ("CONV", (256,), {"kernel": 1, "pad": "same"}),
                       ("FC", (4096,), {}), ("SOFTMAX", (), {})]


def test_crlf_bom_and_tabs_keep_columns_right():
    text = "\ufeffinput 7x7x3\r\n\tCONV(10, 3, s=3)\r\n"
    with pytest.raises(Exception) as info:
        build(text)
    err = info.value
    assert (err.span.line, err.span.column) == (2, 2)
    rendered = err.render().split("\n")
    assert rendered[1] == " 2 | \tCONV(10, 3, s=3)"
    assert rendered[2] == "   | \t^^^^^^^^^^^^^^^^"


def test_unicode_in_comments_is_fine_and_elsewhere_is_located():
    assert build("# größe: 32×32\ninput 8x8x3\nCONV(4, 3)")
    with pytest.raises(CnnSyntaxError) as info:
        build("input 8x8x3\nCONV(4, 3) - ReLÜ")
    assert (info.value.span.line, info.value.span.column) == (2, 17)


def test_end_of_input_is_reported_at_the_last_character_not_minus_one():
    with pytest.raises(CnnSyntaxError) as info:
        parse("input 8x8x3\nCONV(4, 3) -")
    assert info.value.span.line == 2 and info.value.span.column == 13


def test_deep_nesting_is_refused_before_recursion():
    from cnndsl.errors import CnnLimitError

    with pytest.raises(CnnLimitError) as info:
        parse("(" * 100_000 + "CONV" + ")" * 100_000)
    assert "nested deeper" in info.value.message


def test_paper_tokens_keep_their_spellings_spaces_and_case():
    # case-insensitive, and only a token when written without spaces and not part of a name
    expr = parse("CONV3-64 - Fc-10 - SOFT-MAX").statements[0]
    assert [c.alias for c in expr.items] == ["CONV3-64", "Fc-10", "SOFT-MAX"]
    spaced = parse("conv3 - 64").statements[0]
    assert isinstance(spaced, ast.Chain) and [type(i) for i in spaced.items] == [ast.Name, ast.Num]
    assert parse("N-1").statements[0].ops == ("-",)
    call = parse("CONV(N-1)").statements[0]
    assert isinstance(call.args[0], ast.Chain) and call.alias is None


def test_the_grammar_takes_its_paper_tokens_from_the_layer_registry():
    from cnndsl import layers

    grammar = _grammar_text()
    assert "@PAPER_TOKENS@" not in grammar
    for kind in layers.REGISTRY.values():
        if kind.paper_token:
            assert kind.paper_token in grammar, kind.name


def test_the_parse_table_cache_is_named_by_the_complete_grammar(tmp_path, monkeypatch):
    from cnndsl.parse_tables import _cache_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    grammar = _grammar_text()
    assert _cache_file(grammar) != _cache_file(grammar.replace("soft-max", "soft_max"))


def test_threads_parsing_at_once_keep_their_own_sources():
    # The parser is shared; each parse's spans must point into its own text (issue 11: four
    # threads parsing 20 times each gave 73 statements located in another thread's spec).
    import threading

    texts = [f"input {8 + i}x8x3\nN{i} = {i + 1}\ndef b{i}(c) = CONV(c, 3, pad=1) - RELU?\n"
             f"b{i}({i + 4}) * N{i} - (POOL - -1 - {{FC(10)}})" for i in range(6)]
    wrong = []
    start = threading.Barrier(len(texts))

    def work(text):
        start.wait()
        for _ in range(40):
            program = parse(text, f"spec{texts.index(text)}.cnn")
            for node in ast.walk(program.statements):
                spans = [node.span] + [getattr(node, "name_span", node.span)]
                wrong.extend(s for s in spans if s.source is not program.source)

    threads = [threading.Thread(target=work, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


# -- the parse-table cache is a pickle: only a file no one else could write is read (F4) -----

def _cache(tmp_path, monkeypatch, base):
    from cnndsl.parse_tables import _cache_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(base))
    return _cache_file(_grammar_text())


def test_the_cache_is_used_in_a_private_folder(tmp_path, monkeypatch):
    path = _cache(tmp_path, monkeypatch, tmp_path / "cache")
    assert path and path.startswith(str(tmp_path / "cache" / "cnndsl"))
    assert (tmp_path / "cache" / "cnndsl").stat().st_mode & 0o777 == 0o700


def test_a_cache_in_a_sticky_world_writable_folder_is_used(tmp_path, monkeypatch):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o1777)  # /tmp: only an entry's owner may rename it
    assert _cache(tmp_path, monkeypatch, tmp_path / "shared")


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757], ids=oct)
def test_a_group_or_world_writable_cache_folder_is_not_used(tmp_path, monkeypatch, mode):
    (tmp_path / "cache" / "cnndsl").mkdir(parents=True)
    (tmp_path / "cache" / "cnndsl").chmod(mode)
    assert _cache(tmp_path, monkeypatch, tmp_path / "cache") is False


def test_a_symlinked_cache_folder_is_not_used(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cnndsl").symlink_to(tmp_path / "elsewhere")
    assert _cache(tmp_path, monkeypatch, tmp_path / "cache") is False


def test_a_cache_reached_through_a_world_writable_home_is_not_used(tmp_path, monkeypatch):
    from cnndsl.parse_tables import _cache_file

    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)  # anyone could have planted .cache here
    (tmp_path / "planted").mkdir()
    (home / ".cache").symlink_to(tmp_path / "planted")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    assert _cache_file(_grammar_text()) is False
    assert not (tmp_path / "planted" / "cnndsl").exists()


@pytest.mark.parametrize("problem", ["other owner", "group writable", "symlink", "folder"])
def test_a_cache_file_someone_else_could_have_written_is_not_used(tmp_path, monkeypatch,
                                                                  problem):
    import os

    path = _cache(tmp_path, monkeypatch, tmp_path / "cache")
    if problem == "other owner":
        open(path, "wb").close()
        if os.getuid() != 0:
            pytest.fail("this case needs root to give the file away")  # the suite runs as root
        os.chown(path, 65534, 65534)
    elif problem == "group writable":
        open(path, "wb").close()
        os.chmod(path, 0o620)
    elif problem == "symlink":
        (tmp_path / "target").write_bytes(b"")
        os.symlink(tmp_path / "target", path)
    else:
        os.mkdir(path)
    assert _cache(tmp_path, monkeypatch, tmp_path / "cache") is False


def test_a_planted_pickle_does_not_run(tmp_path):
    import os
    import pathlib
    import pickle
    import subprocess
    import sys

    class Planted:
        def __reduce__(self):
            return pathlib.Path.touch, (pathlib.Path(tmp_path / "RAN"),)

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = ("import os, sys\nfrom cnndsl.parse_tables import _cache_file, _grammar_text\n"
            "sys.stdout.write(_cache_file(_grammar_text()))")
    path = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout
    os.chmod(tmp_path / "cache" / "cnndsl", 0o777)  # as another user could have left it
    with open(path, "wb") as f:  # lark unpickles what follows its first line
        f.write(b"planted\n" + pickle.dumps(Planted()))
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", "input 4x4x3\nRELU"], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "RAN").exists()
