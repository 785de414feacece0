// Parses Mermaid diagrams with the real Mermaid library (the one that renders them on the web).
// Input on stdin: a JSON array of {"id": ..., "text": ...}. Output on stdout: a JSON array of
// {"id": ..., "ok": bool, "type": diagram type or null, "error": message or null}.
// Mermaid's parse() needs a DOM for its sanitizer, so a jsdom window is installed first.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ["Element", "HTMLElement", "Node", "DOMParser", "SVGElement", "navigator"]) {
  if (!(name in globalThis)) {
    try { globalThis[name] = dom.window[name]; } catch { /* read-only globals are fine as they are */ }
  }
}

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let input = "";
for await (const chunk of process.stdin) input += chunk;
const blocks = JSON.parse(input);
const results = [];
for (const block of blocks) {
  try {
    const parsed = await mermaid.parse(block.text);
    results.push({ id: block.id, ok: true, type: parsed && parsed.diagramType ? parsed.diagramType : null, error: null });
  } catch (err) {
    results.push({ id: block.id, ok: false, type: null, error: String(err && err.message ? err.message : err) });
  }
}
process.stdout.write(JSON.stringify(results));
