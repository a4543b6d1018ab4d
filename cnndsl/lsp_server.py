"""`cnndsl lsp`: the Language Server Protocol over stdio (pygls), a thin shell over the answers
of cnndsl/lsp.py and cnndsl/lsp_names.py; pygls is imported only when the server starts."""
from __future__ import annotations

import os
import traceback

# What the server offers; `settings` are the client's initializationOptions (or its
# `cnndsl` configuration section): {"defines": {"N": 2}, "input": "32x32x3", "classes": 10}.
COMPLETION_TRIGGERS = ["(", ",", ":"]  # a space would open the list at every word


def serve() -> None:
    """Answer one client over stdin and stdout until it exits."""
    import gc

    # The command line pauses the collector for a one-shot command (cnndsl.cli); a server
    # lives for hours, so it collects between answers (each analysis pauses it again).
    gc.enable()
    # The protocol gets its own handles on stdin and stdout, and file 1 becomes stderr: a
    # stray print cannot corrupt the protocol, and pygls closing its handles at exit leaves
    # sys.stdout open for the command line's last flush.
    reader, writer = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    make_server().start_io(reader, writer)


def make_server():
    from lsprotocol import types as t
    from pygls.lsp.server import LanguageServer

    from . import lsp, lsp_hover, lsp_names
    from .version import __version__

    server = LanguageServer("cnndsl", __version__,
                            text_document_sync_kind=t.TextDocumentSyncKind.Incremental)
    state = {"settings": {}, "analyses": {}}
    k = t.CompletionItemKind
    kinds = {"layer": k.Class, "argument": k.Property, "block": k.Function,
             "variable": k.Variable, "function": k.Function, "keyword": k.Keyword,
             "zoo": k.File}

    def analysis(uri: str):
        """The document's analysis, made again only when its text changed."""
        doc = server.workspace.get_text_document(uri)
        held = state["analyses"].get(uri)
        if held is None or held[0] != doc.source:
            name = doc.path or uri
            held = doc.source, lsp.analyze(doc.source, name, state["settings"]), doc
            state["analyses"][uri] = held
        return held[1], held[2]

    def position(doc, pos) -> tuple[int, int]:
        at = doc.position_from_client_units(pos)
        return at.line, at.character

    def to_range(doc, r) -> t.Range:
        return doc.range_to_client_units(t.Range(t.Position(r[0], r[1]), t.Position(r[2], r[3])))

    def guarded(feature):
        """A bug in an answer is logged to the client and answered with nothing: the server
        keeps running whatever the text."""
        def run(params):
            try:
                return feature(params)
            except Exception:  # noqa: BLE001 - a bug in cnndsl, reported, never fatal
                server.window_log_message(t.LogMessageParams(
                    t.MessageType.Error, f"cnndsl lsp: {traceback.format_exc()}"))
                return None
        run.__name__ = feature.__name__
        return run

    def publish(uri: str) -> None:
        result, doc = analysis(uri)
        items = []
        for d in result.diagnostics:
            where = to_range(doc, d.range)
            items.append(t.Diagnostic(
                where, d.message, t.DiagnosticSeverity.Error if d.severity == "error" else
                t.DiagnosticSeverity.Warning, code=d.code or None, source="cnndsl",
                related_information=[t.DiagnosticRelatedInformation(t.Location(uri, where), r)
                                     for r in d.related] or None))
        server.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
            uri, items, version=doc.version))

    @server.feature(t.INITIALIZE)
    def initialize(params: t.InitializeParams):
        state["settings"] = _settings(params.initialization_options)

    @server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded
    def configuration(params: t.DidChangeConfigurationParams):
        settings = params.settings or {}
        state["settings"] = _settings(settings.get("cnndsl", settings)
                                      if isinstance(settings, dict) else None)
        state["analyses"].clear()
        for uri in list(server.workspace.text_documents):
            publish(uri)

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(params: t.DidOpenTextDocumentParams):
        publish(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(params: t.DidChangeTextDocumentParams):
        publish(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(params: t.DidCloseTextDocumentParams):
        state["analyses"].pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(
            t.PublishDiagnosticsParams(params.text_document.uri, []))

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    @guarded
    def hover(params: t.HoverParams):
        result, doc = analysis(params.text_document.uri)
        found = lsp_hover.hover(result, *position(doc, params.position))
        if found is None:
            return None
        text, where = found
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text), to_range(doc, where))

    @server.feature(t.TEXT_DOCUMENT_INLAY_HINT, t.InlayHintOptions())
    @guarded
    def inlay_hint(params: t.InlayHintParams):
        result, doc = analysis(params.text_document.uri)
        first, last = params.range.start.line, params.range.end.line
        return [t.InlayHint(to_range(doc, (line, ch, line, ch)).start, f"→ {shape}",
                            kind=t.InlayHintKind.Type, padding_left=True)
                for line, ch, shape in lsp.inlay_hints(result) if first <= line <= last]

    @server.feature(t.TEXT_DOCUMENT_COMPLETION,
                    t.CompletionOptions(trigger_characters=COMPLETION_TRIGGERS))
    @guarded
    def completion(params: t.CompletionParams):
        result, doc = analysis(params.text_document.uri)
        line, character = position(doc, params.position)
        items = []
        for c in lsp_names.complete(result.text, line, character, result.directive.defines):
            edit = None if c.replace is None else t.TextEdit(to_range(doc, c.replace), c.insert)
            items.append(t.CompletionItem(
                c.label, kind=kinds.get(c.kind), detail=c.detail or None,
                documentation=c.doc or None, insert_text=None if edit else c.insert,
                text_edit=edit))
        return t.CompletionList(is_incomplete=False, items=items)

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    @guarded
    def definition(params: t.DefinitionParams):
        result, doc = analysis(params.text_document.uri)
        uri = params.text_document.uri
        return [t.Location(uri, to_range(doc, r))
                for r in lsp.definition(result, *position(doc, params.position))]

    @server.feature(t.TEXT_DOCUMENT_REFERENCES)
    @guarded
    def references(params: t.ReferenceParams):
        result, doc = analysis(params.text_document.uri)
        uri = params.text_document.uri
        return [t.Location(uri, to_range(doc, r)) for r in lsp.references(
            result, *position(doc, params.position), params.context.include_declaration)]

    @server.feature(t.TEXT_DOCUMENT_FORMATTING)
    @guarded
    def formatting(params: t.DocumentFormattingParams):
        doc = server.workspace.get_text_document(params.text_document.uri)
        edit = lsp.formatting(doc.source, doc.path or doc.uri)
        if edit is None:
            return []
        where, text = edit
        return [t.TextEdit(to_range(doc, where), text)]

    return server


def _settings(options) -> dict:
    """The client's settings, as far as they are the shape cnndsl reads."""
    return dict(options) if isinstance(options, dict) else {}
