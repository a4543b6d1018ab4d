"""`cnndsl lsp` with a real client: pytest-lsp starts the server as a subprocess over stdio.

The numbers are the lecture's (LeNet-5's analysis table: CONV1 gives 28x28x6 with 156
parameters) and the VGG paper's (2x2/2 max pooling after each of five stages of 3x3/1/pad 1
convolutions: 224 -> 112 -> 56 -> 28 -> 14 -> 7). Diagnostics are held to the error
catalogue (tests/fixtures/errors/*.expected, what `cnndsl check` prints).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).resolve().parent.parent
ERRORS = ROOT / "tests" / "fixtures" / "errors"
LENET = (ROOT / "specs" / "lenet5.cnn").read_text(encoding="utf-8")
VGG16 = (ROOT / "specs" / "vgg16.cnn").read_text(encoding="utf-8")
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "cnndsl", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=t.ClientCapabilities(), initialization_options={"defines": {"K": 1}}))
    yield
    await lsp_client.shutdown_session()


async def open_doc(client: LanguageClient, name: str, text: str) -> str:
    """Open a document and wait for its diagnostics; the uri."""
    uri = f"file:///work/{name}"
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        t.TextDocumentItem(uri, "cnndsl", 1, text)))
    while uri not in client.diagnostics:
        await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


def expected_diagnostic(name: str) -> tuple[str, tuple[int, int, int, int], list[str]]:
    """The catalogue's message, caret range (0-based) and note/help lines for a fixture."""
    lines = (ERRORS / f"{name}.expected").read_text(encoding="utf-8").split("\n")
    where, message = re.match(r"[^:]+:(\d+):\d+: error: (.*)", lines[0]).groups()
    caret = lines[2].split("| ", 1)[1]
    start = len(caret) - len(caret.lstrip(" "))
    line = int(where) - 1
    return message, (line, start, line, len(caret.rstrip())), [
        s for s in lines[3:] if s.startswith(("note:", "help:"))]


@pytest.mark.parametrize("name", ["shape_alexnet_224", "name_unknown_layer",
                                  "syntax_unclosed_bracket"])
async def test_diagnostics_are_the_catalogues(client: LanguageClient, name):
    uri = await open_doc(client, f"{name}.cnn", (ERRORS / f"{name}.cnn").read_text())
    message, (line, start, end_line, end), related = expected_diagnostic(name)
    [d] = client.diagnostics[uri]
    assert d.message == message and d.severity == t.DiagnosticSeverity.Error
    assert (d.range.start.line, d.range.start.character) == (line, start)
    assert (d.range.end.line, d.range.end.character) == (end_line, end)
    assert [r.message for r in d.related_information or []] == related


async def test_a_change_updates_the_diagnostics(client: LanguageClient):
    uri = await open_doc(client, "edit.cnn", "input 7x7x3\nCONV(10, 3, s=2)\n")
    assert list(client.diagnostics[uri]) == []
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(version=2, uri=uri),
        [t.TextDocumentContentChangePartial(t.Range(t.Position(1, 14), t.Position(1, 15)),
                                            "3")]))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [d] = client.diagnostics[uri]
    # the README's example: (7 - 3 + 2*0)/3 + 1 = 2.33
    assert "2.33 is not an integer" in d.message
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (1, 0, 16)


async def test_hover_on_lenet5s_first_conv(client: LanguageClient):
    uri = await open_doc(client, "lenet5.cnn", LENET)
    line = LENET.split("\n").index("CONV(6, 5) - RELU - AVGPOOL(2)")
    hover = await client.text_document_hover_async(t.HoverParams(
        t.TextDocumentIdentifier(uri), t.Position(line, 2)))
    text = hover.contents.value
    assert "28x28x6" in text and "| 156 |" in text
    assert "(32 - 5 + 2*0)/1 + 1 = 28" in text  # the lecture's (N - F)/stride + 1
    assert (hover.range.start.line, hover.range.start.character) == (line, 0)


async def inlay_hints(client, uri, text) -> dict[int, str]:
    hints = await client.text_document_inlay_hint_async(t.InlayHintParams(
        t.TextDocumentIdentifier(uri), t.Range(t.Position(0, 0),
                                               t.Position(len(text.split("\n")), 0))))
    return {h.position.line: h.label for h in hints}


async def test_inlay_hints_on_vgg16(client: LanguageClient):
    uri = await open_doc(client, "vgg16.cnn", VGG16)
    lines = VGG16.split("\n")
    hints = await inlay_hints(client, uri, VGG16)
    stages = next(i for i, s in enumerate(lines) if s.startswith("stage(64"))
    assert hints == {stages: "→ 7x7x512", stages + 1: "→ 1000"}
    # one stage a line: the paper's halving at each 2x2/2 max pool
    text = VGG16.replace(" - stage(", "\n  - stage(")
    uri = await open_doc(client, "vgg16_lines.cnn", text)
    hints = await inlay_hints(client, uri, text)
    assert list(hints.values()) == [f"→ {s}" for s in (
        "112x112x64", "56x56x128", "28x28x256", "14x14x512", "7x7x512", "1000")]
    first = text.split("\n")[stages]
    hint = (await client.text_document_inlay_hint_async(t.InlayHintParams(
        t.TextDocumentIdentifier(uri), t.Range(t.Position(stages, 0),
                                               t.Position(stages, 0)))))[0]
    assert hint.position == t.Position(stages, len(first))  # at the end of the line


async def test_completion_offers_the_kinds_keywords(client: LanguageClient):
    text = "input 32x32x3\nCONV(64, 3, s"
    uri = await open_doc(client, "complete.cnn", text)
    result = await client.text_document_completion_async(t.CompletionParams(
        t.TextDocumentIdentifier(uri), t.Position(1, 13)))
    labels = {item.label: item for item in result.items}
    assert "stride" in labels and labels["stride"].insert_text == "stride="
    assert "CONV" not in labels  # inside CONV( ... ): its arguments, not layers


async def test_formatting_gives_cnndsl_fmts_edit(client: LanguageClient):
    text = "input 32x32x3\nconv(10,3)-relu\n"
    uri = await open_doc(client, "fmt.cnn", text)
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        t.TextDocumentIdentifier(uri), t.FormattingOptions(4, True)))
    from cnndsl.fmt import format_text

    [edit] = edits
    assert edit.new_text == format_text(text) == "input 32x32x3\nCONV(10, 3) - RELU\n"
    assert edit.range == t.Range(t.Position(0, 0), t.Position(2, 0))


async def test_go_to_the_definition_of_a_def(client: LanguageClient):
    uri = await open_doc(client, "vgg16_def.cnn", VGG16)
    lines = VGG16.split("\n")
    use = next(i for i, s in enumerate(lines) if s.startswith("stage(64"))
    column = lines[use].index("stage(128") + 2
    [where] = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), t.Position(use, column)))
    line = next(i for i, s in enumerate(lines) if s.startswith("def stage"))
    assert where.uri == uri
    assert where.range == t.Range(t.Position(line, 4), t.Position(line, 9))
    refs = await client.text_document_references_async(t.ReferenceParams(
        text_document=t.TextDocumentIdentifier(uri), position=t.Position(use, column),
        context=t.ReferenceContext(include_declaration=False)))
    assert len(refs) == 5  # five stages


async def test_the_directive_sets_the_free_variables(client: LanguageClient):
    text = ("# cnndsl: -D N=2 -D M=3 --input 32x32x3 --classes 10\n"
            "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX\n")
    uri = await open_doc(client, "pattern.cnn", text)
    assert list(client.diagnostics[uri]) == []
    hints = await inlay_hints(client, uri, text)
    assert hints == {1: "→ 10"}
    line = text.split("\n")[1]
    hover = await client.text_document_hover_async(t.HoverParams(
        t.TextDocumentIdentifier(uri), t.Position(1, line.index("K"))))
    assert "`K` = 1" in hover.contents.value  # from the client's settings
    [where] = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), t.Position(1, line.index("*N") + 1)))
    assert where.range == t.Range(t.Position(0, 13), t.Position(0, 16))  # `N=2`


async def test_the_server_survives_text_that_is_not_a_spec(client: LanguageClient):
    uri = await open_doc(client, "junk.cnn", "\x00((((]]]\ufeff→ def = = zoo:")
    assert client.diagnostics[uri]
    hover = await client.text_document_hover_async(t.HoverParams(
        t.TextDocumentIdentifier(uri), t.Position(0, 3)))
    assert hover is None
    result = await client.text_document_completion_async(t.CompletionParams(
        t.TextDocumentIdentifier(uri), t.Position(0, 23)))
    assert result is not None


EDITORS = ROOT / "docs" / "editors.md"
EDITORS_HEAD = """# What an editor sees: the exchange with `cnndsl lsp`

A screenshot of VS Code cannot be taken here, so this page shows what the editor receives
instead: the requests a client sends for LeNet-5 (`specs/lenet5.cnn`, opened as
`file:///work/lenet5.cnn`) and the server's answers, exactly as JSON-RPC carries them.
The page is written by `tests/test_lsp_server.py` (`test_docs_editors_md_is_the_exchange`)
from a real session; `CNNDSL_WRITE_DOCS=1 pytest tests/test_lsp_server.py` rewrites it when
the answers change, and the test fails while the page and the server disagree.

The spec:

```cnn
{spec}```
"""


def exchange(title: str, text: str, method: str, params, result) -> str:
    from lsprotocol import converters

    conv = converters.get_converter()
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": conv.unstructure(params)}
    response = {"jsonrpc": "2.0", "id": 1, "result": conv.unstructure(result)}
    asked = json.dumps(request, indent=2, ensure_ascii=False)
    answered = json.dumps(response, indent=2, ensure_ascii=False)
    return (f"\n## {title}\n\n{text}\n\nRequest:\n\n```json\n{asked}"
            f"\n```\n\nResponse:\n\n```json\n{answered}\n```\n")


async def test_docs_editors_md_is_the_exchange(client: LanguageClient):
    uri = await open_doc(client, "lenet5.cnn", LENET)
    line = LENET.split("\n").index("CONV(6, 5) - RELU - AVGPOOL(2)")
    hover_params = t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(line, 2))
    hover = await client.text_document_hover_async(hover_params)
    hints_params = t.InlayHintParams(t.TextDocumentIdentifier(uri), t.Range(
        t.Position(0, 0), t.Position(len(LENET.split("\n")), 0)))
    hints = await client.text_document_inlay_hint_async(hints_params)
    page = EDITORS_HEAD.replace("{spec}", LENET) + exchange(
        "Hover on the first convolution",
        "The cursor on `CONV(6, 5)`. The answer is Markdown: the layer's name, label and "
        "output volume, its row of the analysis table, and the `--explain` arithmetic. The "
        "lecture's LeNet-5 table gives the same row: CONV1 (f=5, s=1), (28, 28, 6), 156 "
        "parameters.",
        t.TEXT_DOCUMENT_HOVER, hover_params, hover) + (
        "\nAs the editor shows it:\n\n" + "\n".join(
            f"> {s}".rstrip() for s in hover.contents.value.split("\n")) + "\n") + exchange(
        "Inlay hints: the shape at the end of each line",
        "The editor asks for the hints of the visible lines; the server answers with the "
        "volume that leaves each line of the network, placed after its last character: "
        "14x14x6 after the first pooling, 5x5x16 after the second, 10 after the softmax, "
        "as the lecture's table goes.",
        t.TEXT_DOCUMENT_INLAY_HINT, hints_params, hints)
    if os.environ.get("CNNDSL_WRITE_DOCS"):
        EDITORS.write_text(page, encoding="utf-8")
    assert EDITORS.read_text(encoding="utf-8") == page, \
        "docs/editors.md is out of date: CNNDSL_WRITE_DOCS=1 pytest tests/test_lsp_server.py"
    assert [h.label for h in hints] == ["→ 14x14x6", "→ 5x5x16", "→ 10"]
