"""Language-server latency: from an edit of the ResNet-152 spec to its diagnostics.

A pygls client starts `cnndsl lsp` over stdio (as an editor does), opens specs/resnet152.cnn
and makes 100 edits, each changing one digit of a stage's block count (36 -> 35 -> 36 ...),
each sent as an incremental didChange; the time is from sending it to receiving the
publishDiagnostics for it. The in-process analysis of the same text (parse, expand, check;
cnndsl.lsp.analyze) is timed alongside. Target: median < 100 ms.

    python bench/lsp.py [--edits 100] [--record]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from results import median, record

TARGET_MS = 100.0
SPEC = Path(__file__).resolve().parent.parent / "specs" / "resnet152.cnn"


async def round_trips(edits: int) -> list[float]:
    from lsprotocol import types as t
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("bench", "1")
    arrived: asyncio.Queue = asyncio.Queue()

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params):
        arrived.put_nowait((time.perf_counter(), params))

    await client.start_io(sys.executable, "-m", "cnndsl", "lsp")
    await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities()))
    client.initialized(t.InitializedParams())
    text = SPEC.read_text(encoding="utf-8")
    uri = SPEC.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        t.TextDocumentItem(uri, "cnndsl", 1, text)))
    await arrived.get()
    lines = text.split("\n")
    line = next(i for i, s in enumerate(lines) if "stage(256, 36)" in s)
    column = lines[line].index("stage(256, 36)") + len("stage(256, 3")
    times = []
    for version in range(2, edits + 2):
        digit = "5" if version % 2 == 0 else "6"
        sent = time.perf_counter()
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [t.TextDocumentContentChangePartial(
                t.Range(t.Position(line, column), t.Position(line, column + 1)), digit)]))
        while True:
            received, params = await arrived.get()
            if params.version == version:
                break
        if params.diagnostics:
            sys.exit(f"the edit broke the spec: {params.diagnostics[0].message}")
        times.append(received - sent)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return times


def in_process(runs: int) -> list[float]:
    from cnndsl import lsp

    text = SPEC.read_text(encoding="utf-8")
    lsp.analyze(text)  # the parser's tables, built once per process
    times = []
    for i in range(runs):
        edited = text.replace("stage(256, 36)", f"stage(256, {35 + i % 2})")
        start = time.perf_counter()
        lsp.analyze(edited, str(SPEC))
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=100, help="edits timed (default 100)")
    ap.add_argument("--record", action="store_true", help="append the result to RESULTS.md")
    args = ap.parse_args()
    trips = asyncio.run(round_trips(args.edits))
    local = in_process(args.edits)
    ms = 1000 * median(trips)
    over_stdio = (f"lsp  resnet152 edit -> diagnostics (cnndsl lsp over stdio)  median "
                  f"{ms:6.1f} ms  max {1000 * max(trips):6.1f} ms  (n={len(trips)})")
    analysis = (f"lsp  resnet152 analysis in process (parse, expand, check)   median "
                f"{1000 * median(local):6.1f} ms  (n={len(local)})")
    lines = [
        over_stdio,
        analysis,
        f"lsp  target < {TARGET_MS:.0f} ms: {'ok' if ms < TARGET_MS else 'MISSED'}",
    ]
    print("\n".join(lines))
    if args.record:
        record("Front end", "bench/lsp.py: edit to diagnostics, cnndsl lsp (issue 16)", lines)
    return 0 if ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
