#!/usr/bin/env node
// The C ↔ TS cross-reference. Every TS declaration that mirrors Dropbear carries a doc comment
// tag `@dropbear <file> <symbol>`; this script collects them, checks each against the symbols
// Dropbear 2026.94 really defines (dropbear-2026.94-symbols.json, made by extract-symbols.mjs)
// and renders docs/xref.md.
//
//   npm run xref             write docs/xref.md; exit 1 if a tag is unknown
//   npm run xref -- --check  write nothing; exit 1 if a tag is unknown or docs/xref.md is stale

import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root (this file lives in tools/xref/). */
export const repoRoot = join(here, "..", "..");
export const symbolsPath = join(here, "dropbear-2026.94-symbols.json");
export const xrefPath = join(repoRoot, "docs", "xref.md");

/** Declared name for a tag with no declaration right after its doc comment. */
export const INLINE = "(inline)";

/** Compare by UTF-16 code units, so the order never depends on the locale. */
export function compareStrings(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The symbols document: `{ dropbear, commit, files: { "<file>": ["<symbol>", …] } }`. */
export function loadSymbols(path = symbolsPath) {
  return JSON.parse(readFileSync(path, "utf8"));
}

/** Source roots whose .ts files may carry tags, relative to the repo root. */
const SOURCE_GLOBS = [
  ["packages", "src"],
  ["packages", "assembly"],
  ["apps", "src"],
];

function listTs(dir, out) {
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, ent.name);
    if (ent.isDirectory()) {
      if (ent.name !== "node_modules") listTs(full, out);
    } else if (ent.isFile() && ent.name.endsWith(".ts") && !ent.name.endsWith(".d.ts")) {
      out.push(full);
    }
  }
}

/**
 * Read packages/&#42;/src/**&#47;*.ts, packages/&#42;/assembly/**&#47;*.ts (AssemblyScript) and
 * apps/&#42;/src/**&#47;*.ts. Paths come back repo-relative with forward slashes, sorted.
 */
export function readSources(root = repoRoot) {
  const files = [];
  for (const [top, src] of SOURCE_GLOBS) {
    const topDir = join(root, top);
    if (!existsSync(topDir)) continue;
    for (const ent of readdirSync(topDir, { withFileTypes: true })) {
      const srcDir = join(topDir, ent.name, src);
      if (ent.isDirectory() && existsSync(srcDir)) listTs(srcDir, files);
    }
  }
  return files
    .map((full) => relative(root, full).split(sep).join("/"))
    .sort(compareStrings)
    .map((path) => ({ path, text: readFileSync(join(root, path), "utf8") }));
}

// What may follow a doc comment, and where the declared name sits.
const MODIFIERS = String.raw`(?:@[A-Za-z_$][\w$]*\s+)*(?:(?:export|default|declare|abstract|async|public|private|protected|static|readonly|override|accessor)\s+)*`;
const DECLARATIONS = [
  new RegExp(String.raw`^${MODIFIERS}function\s*\*?\s*([A-Za-z_$][\w$]*)`),
  new RegExp(String.raw`^${MODIFIERS}class\s+([A-Za-z_$][\w$]*)`),
  new RegExp(String.raw`^${MODIFIERS}interface\s+([A-Za-z_$][\w$]*)`),
  new RegExp(String.raw`^${MODIFIERS}type\s+([A-Za-z_$][\w$]*)`),
  new RegExp(String.raw`^${MODIFIERS}(?:const\s+)?enum\s+([A-Za-z_$][\w$]*)`),
  new RegExp(String.raw`^${MODIFIERS}(?:const|let|var)\s+([A-Za-z_$][\w$]*)`),
  new RegExp(String.raw`^${MODIFIERS}namespace\s+([A-Za-z_$][\w$]*)`),
  // A class member or object property: `name(`, `name:`, `name =`, `name?:`, `get name(`.
  new RegExp(String.raw`^${MODIFIERS}(?:(?:get|set)\s+)?\*?\s*(#?[A-Za-z_$][\w$]*)\s*[?!]?\s*[:=(<;]`),
];

/** The name declared at the start of `text` (leading whitespace allowed), or INLINE. */
export function declaredName(text) {
  const rest = text.trimStart();
  for (const re of DECLARATIONS) {
    const m = re.exec(rest);
    if (m) return m[1];
  }
  return INLINE;
}

/** 1-based line of offset `index` in `text`. */
function lineAt(text, index) {
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < index; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

/**
 * Every `@dropbear <file> <symbol>` tag in the doc comments of the given sources.
 * Returns `{ cFile, cSymbol, tsFile, line, tsName }` records in source order; `line` is the line
 * of the declaration the comment documents (the tag's own line for an inline tag). A tag with a
 * missing part keeps an empty string there, for the validator to report.
 */
export function collectTags(sources) {
  const tags = [];
  for (const { path, text } of sources) {
    const docRe = /\/\*\*(?!\/)([\s\S]*?)\*\//g;
    let doc;
    while ((doc = docRe.exec(text)) !== null) {
      const body = doc[1];
      if (!body.includes("@dropbear")) continue;
      const after = text.slice(docRe.lastIndex);
      const tsName = declaredName(after);
      const declOffset = docRe.lastIndex + (after.length - after.trimStart().length);
      const tagRe = /(?<![\w`@])@dropbear(?![\w-])([^\n]*)/g;
      let tag;
      while ((tag = tagRe.exec(body)) !== null) {
        const [cFile = "", cSymbol = ""] = tag[1].replace(/\*+\s*$/, "").trim().split(/\s+/).filter(Boolean);
        const tagOffset = doc.index + 3 + tag.index;
        tags.push({
          cFile,
          cSymbol,
          tsFile: path,
          line: lineAt(text, tsName === INLINE ? tagOffset : declOffset),
          tsName,
        });
      }
    }
  }
  return tags;
}

/** Problems with tags that do not name a file and a symbol Dropbear defines, one string each. */
export function validateTags(tags, symbols) {
  const problems = [];
  for (const t of tags) {
    const where = `${t.tsFile}:${t.line}: @dropbear ${t.cFile} ${t.cSymbol}`.trimEnd();
    if (t.cFile === "" || t.cSymbol === "") {
      problems.push(`${where}: malformed tag (want "@dropbear <file> <symbol>")`);
      continue;
    }
    const defined = Object.hasOwn(symbols.files, t.cFile) ? symbols.files[t.cFile] : undefined;
    if (defined === undefined) {
      problems.push(`${where}: no file ${t.cFile} in Dropbear ${symbols.dropbear} src/`);
    } else if (!defined.includes(t.cSymbol)) {
      problems.push(`${where}: ${t.cFile} in Dropbear ${symbols.dropbear} defines no ${t.cSymbol}`);
    }
  }
  return problems;
}

function cell(s) {
  return s.replace(/\|/g, "\\|");
}

/** docs/xref.md for the given tags: deterministic, so regenerating an unchanged tree is a no-op. */
export function renderXref(tags, symbols) {
  const byFile = new Map();
  for (const t of tags) {
    const key = t.cFile === "" ? "(malformed)" : t.cFile;
    if (!byFile.has(key)) byFile.set(key, []);
    byFile.get(key).push(t);
  }
  const files = [...byFile.keys()].sort(compareStrings);
  const out = [
    "# C ↔ TS cross-reference",
    "",
    `Generated by \`npm run xref\` from the \`@dropbear <file> <symbol>\` doc comment tags in`,
    "`packages/*/src`, `packages/*/assembly` (AssemblyScript) and `apps/*/src`; do not edit by hand.",
    `Each row maps a definition in Dropbear ${symbols.dropbear}'s \`src/\` to the TypeScript declaration`,
    `that mirrors it (${tags.length} tags over ${files.length} C files).`,
    "",
  ];
  for (const file of files) {
    const rows = byFile.get(file).slice().sort(
      (a, b) =>
        compareStrings(a.cSymbol, b.cSymbol) ||
        compareStrings(a.tsFile, b.tsFile) ||
        a.line - b.line ||
        compareStrings(a.tsName, b.tsName),
    );
    out.push(`## ${file}`, "", "| C symbol | TS | where |", "|---|---|---|");
    for (const r of rows) {
      const ts = r.tsName === INLINE ? INLINE : `\`${cell(r.tsName)}\``;
      const sym = r.cSymbol === "" ? "" : `\`${cell(r.cSymbol)}\``;
      out.push(`| ${sym} | ${ts} | [${r.tsFile}:${r.line}](../${r.tsFile}#L${r.line}) |`);
    }
    out.push("");
  }
  return out.join("\n");
}

/** Run the CLI; returns the exit code. */
export function main(args, root = repoRoot) {
  const check = args.includes("--check");
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    process.stderr.write(`usage: node tools/xref/xref.mjs [--check]\n`);
    return 2;
  }
  const symbols = loadSymbols();
  const tags = collectTags(readSources(root));
  const problems = validateTags(tags, symbols);
  const rendered = renderXref(tags, symbols);
  const target = join(root, "docs", "xref.md");
  const rel = relative(root, target).split(sep).join("/");
  if (check) {
    const current = existsSync(target) ? readFileSync(target, "utf8") : null;
    if (current !== rendered) problems.push(`${rel} is out of date: run \`npm run xref\``);
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, rendered);
    process.stdout.write(`wrote ${rel}: ${tags.length} tags\n`);
  }
  for (const p of problems) process.stderr.write(`${p}\n`);
  return problems.length > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
