#!/usr/bin/env node
// Lists the identifiers each Dropbear src/*.c and src/*.h defines, as JSON on stdout:
//   node tools/xref/extract-symbols.mjs /path/to/dropbear.git [rev] > tools/xref/dropbear-2026.94-symbols.json
// It only reads the C text (git show); nothing is compiled or run. The output is the data
// `npm run xref` and tests/xref.test.ts check @dropbear tags against.
//
// Collected: function definitions (static too), struct/union/enum tags, enum members, typedef
// names, #define macro names and file-scope variables. Not collected: prototypes, extern
// declarations, struct members, locals.
//
// The parser is token based, not a C compiler: it removes comments, strings and preprocessor
// lines, then walks file-scope declarations by counting parentheses and braces. Where an
// #if/#else pair opens a brace in each branch (one function header per configuration), only
// the first branch's brace is counted, so the body is still seen once.

import { execFileSync } from "node:child_process";
import { basename } from "node:path";
import { pathToFileURL } from "node:url";

const DROPBEAR_VERSION = "2026.94";

const KEYWORDS = new Set([
  "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
  "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
  "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
  "unsigned", "void", "volatile", "while", "_Bool", "__inline", "__inline__", "__restrict",
  "_Noreturn", "_Static_assert", "static_assert", "__extension__",
]);

/** Attribute-like markers that may sit between a return type and a function's name. */
function isAttribute(name) {
  return /^(ATTRIB_\w+|__attribute__|__declspec|__asm__|asm|KRML_\w+|LIBCRUX_\w+_(ATTR|INLINE)\w*)$/.test(name);
}

/**
 * Replace comments, string and character literals with neutral text, keeping every newline so
 * preprocessor lines stay recognisable. A string becomes the token `""`.
 */
export function stripCommentsAndStrings(src) {
  let out = "";
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === "/" && d === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === "/" && d === "/") {
      while (i < n && src[i] !== "\n") {
        // A backslash-newline continues a // comment onto the next line.
        if (src[i] === "\\" && src[i + 1] === "\n") {
          out += " \n";
          i += 2;
          continue;
        }
        out += " ";
        i++;
      }
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let newlines = "";
      while (j < n && src[j] !== c) {
        if (src[j] === "\\") {
          if (src[j + 1] === "\n") newlines += "\n";
          j += 2;
          continue;
        }
        if (src[j] === "\n") break; // unterminated (e.g. an apostrophe in #error text)
        j++;
      }
      out += (c === '"' ? '""' : "''") + newlines;
      i = src[j] === c ? j + 1 : j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Pull out preprocessor directives (with their backslash continuations). Returns the code with
 * those lines blanked, the #define names, and the directives with their line numbers.
 */
export function splitPreprocessor(text) {
  const lines = text.split("\n");
  const macros = [];
  const directives = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*#/.test(lines[i])) continue;
    const start = i;
    let full = lines[i];
    lines[i] = "";
    while (full.endsWith("\\") && i + 1 < lines.length) {
      i++;
      full = full.slice(0, -1) + " " + lines[i];
      lines[i] = "";
    }
    const m = /^\s*#\s*(\w+)\s*(.*)$/.exec(full);
    if (!m) continue;
    const [, kind, rest] = m;
    if (kind === "define") {
      const name = /^([A-Za-z_]\w*)/.exec(rest);
      if (name) macros.push(name[1]);
    }
    directives.push({ line: start, kind });
  }
  return { code: lines, macros, directives };
}

/**
 * Tokenise code lines. Directive positions are kept as marker tokens so the parser can undo
 * brace counts from #else/#elif branches that repeat the #if branch's opening.
 */
function tokenize(lines, directives) {
  const byLine = new Map(directives.map((d) => [d.line, d.kind]));
  const tokens = [];
  const re = /([A-Za-z_]\w*)|(\d[\w.]*)|(""|'')|(\.\.\.)|(\S)/g;
  for (let ln = 0; ln < lines.length; ln++) {
    const kind = byLine.get(ln);
    if (kind !== undefined) {
      if (/^(if|ifdef|ifndef|elif|else|endif)$/.test(kind)) tokens.push({ t: `#${kind}`, pp: true, line: ln + 1 });
      continue;
    }
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(lines[ln])) !== null) {
      tokens.push({ t: m[0], id: m[1] !== undefined, line: ln + 1 });
    }
  }
  return tokens;
}

/**
 * Drop the #else/#elif branches whose braces would unbalance the count: for each conditional,
 * when the first branch has a net brace change, later branches are removed (they are the same
 * construct for another configuration). Balanced alternative branches are kept, since they may
 * define different names.
 */
function resolveConditionals(tokens, extraNames) {
  // Parse into a tree of conditionals.
  const root = [];
  const stack = [{ items: root }];
  for (const tok of tokens) {
    if (!tok.pp) {
      stack[stack.length - 1].items.push(tok);
      continue;
    }
    const kind = tok.t.slice(1);
    if (kind === "if" || kind === "ifdef" || kind === "ifndef") {
      const cond = { branches: [[]] };
      stack[stack.length - 1].items.push(cond);
      stack.push({ cond, items: cond.branches[0] });
    } else if (kind === "elif" || kind === "else") {
      const top = stack[stack.length - 1];
      if (!top.cond) continue;
      const branch = [];
      top.cond.branches.push(branch);
      top.items = branch;
    } else if (kind === "endif") {
      if (stack.length > 1) stack.pop();
    }
  }
  const flat = [];
  const emit = (items) => {
    for (const it of items) {
      if (!it.branches) {
        flat.push(it);
        continue;
      }
      const first = it.branches[0];
      if (braceDelta(first) !== 0) {
        emit(first);
        // The dropped branches usually hold the other configuration's function header.
        for (const b of it.branches.slice(1)) {
          const plain = b.filter((x) => !x.branches);
          if (plain.length > 0 && plain[plain.length - 1].t === "{") {
            const name = functionName(plain.slice(0, -1));
            if (name) extraNames.push(name);
          }
        }
      } else {
        for (const b of it.branches) emit(b);
      }
    }
  };
  emit(root);
  return flat;
}

function braceDelta(items) {
  let d = 0;
  for (const it of items) {
    if (it.branches) {
      d += braceDelta(it.branches[0]);
    } else if (it.t === "{") {
      d++;
    } else if (it.t === "}") {
      d--;
    }
  }
  return d;
}

/** Index just past the bracket that closes the one at `i`. */
function skipBalanced(tokens, i) {
  const open = tokens[i].t;
  const close = open === "{" ? "}" : open === "(" ? ")" : "]";
  let depth = 0;
  for (let j = i; j < tokens.length; j++) {
    if (tokens[j].t === open) depth++;
    else if (tokens[j].t === close) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return tokens.length;
}

/** Enum members from the tokens between an enum's braces. */
function enumMembers(body, out) {
  let expectName = true;
  let depth = 0;
  for (const tok of body) {
    if (tok.t === "(" || tok.t === "[" || tok.t === "{") depth++;
    else if (tok.t === ")" || tok.t === "]" || tok.t === "}") depth--;
    else if (depth === 0 && tok.t === ",") expectName = true;
    else if (expectName && tok.id) {
      out.add(tok.t);
      expectName = false;
    }
  }
}

/** Tags and enum members nested anywhere inside a struct/union body. */
function nestedAggregates(body, out) {
  for (let i = 0; i < body.length; i++) {
    const kw = body[i].t;
    if (kw !== "struct" && kw !== "union" && kw !== "enum") continue;
    let j = i + 1;
    let tag = null;
    if (body[j] && body[j].id) {
      tag = body[j].t;
      j++;
    }
    if (!body[j] || body[j].t !== "{") continue;
    const end = skipBalanced(body, j);
    if (tag) out.add(tag);
    const inner = body.slice(j + 1, end - 1);
    if (kw === "enum") enumMembers(inner, out);
    else nestedAggregates(inner, out);
    i = end - 1;
  }
}

/** Split a token list at commas outside brackets. */
function splitTopLevel(tokens, sep) {
  const parts = [[]];
  let depth = 0;
  for (const tok of tokens) {
    if (tok.t === "(" || tok.t === "[" || tok.t === "{") depth++;
    else if (tok.t === ")" || tok.t === "]" || tok.t === "}") depth--;
    if (depth === 0 && tok.t === sep) parts.push([]);
    else parts[parts.length - 1].push(tok);
  }
  return parts;
}

/**
 * The name a declarator declares, and whether it declares a function (a prototype).
 * `tokens` is one declarator, possibly still carrying the declaration's type specifiers.
 */
function declaratorName(tokens) {
  // Cut the initializer.
  const eq = indexAtDepth0(tokens, "=");
  const decl = eq < 0 ? tokens : tokens.slice(0, eq);
  // Drop `struct tag`, `struct tag {…}` (the body was replaced by a BODY token) and attributes.
  const kept = [];
  let depth = 0;
  for (let i = 0; i < decl.length; i++) {
    const tok = decl[i];
    if (tok.t === "(" || tok.t === "[") depth++;
    else if (tok.t === ")" || tok.t === "]") depth--;
    if (depth === 0 && (tok.t === "struct" || tok.t === "union" || tok.t === "enum")) {
      if (decl[i + 1] && decl[i + 1].id && decl[i + 1].t !== "BODY") i++;
      if (decl[i + 1] && decl[i + 1].t === "BODY") i++;
      continue;
    }
    if (tok.t === "BODY") continue;
    if (tok.id && isAttribute(tok.t)) {
      if (decl[i + 1] && decl[i + 1].t === "(") i = skipBalanced(decl, i + 1) - 1;
      continue;
    }
    kept.push(tok);
  }
  // A parenthesised declarator, `(*name)(…)` or `(*name)[…]`.
  for (let i = 0; i < kept.length; i++) {
    if (kept[i].t !== "(") continue;
    const end = skipBalanced(kept, i);
    const inner = kept.slice(i + 1, end - 1);
    if (inner.length > 0 && inner[0].t === "*") {
      const name = inner.find((t) => t.id && !KEYWORDS.has(t.t));
      return { name: name ? name.t : null, isFunction: false };
    }
    const prev = kept[i - 1];
    if (prev && prev.id && !KEYWORDS.has(prev.t)) return { name: prev.t, isFunction: true };
    i = end - 1;
  }
  // Otherwise the last identifier outside [] is the name, if there is more than a type.
  depth = 0;
  let name = null;
  for (const tok of kept) {
    if (tok.t === "[") depth++;
    else if (tok.t === "]") depth--;
    else if (depth === 0 && tok.id && !KEYWORDS.has(tok.t)) name = tok.t;
  }
  return { name, isFunction: false };
}

function indexAtDepth0(tokens, what) {
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i].t;
    if (t === "(" || t === "[" || t === "{") depth++;
    else if (t === ")" || t === "]" || t === "}") depth--;
    else if (depth === 0 && t === what) return i;
  }
  return -1;
}

/** The function name in a definition's head (the tokens before its body). */
function functionName(head) {
  let depth = 0;
  for (let i = 0; i < head.length; i++) {
    const t = head[i].t;
    if (t === "(") {
      if (depth === 0) {
        const prev = head[i - 1];
        if (prev && prev.id && !KEYWORDS.has(prev.t) && !isAttribute(prev.t)) return prev.t;
        // `void (*f(args))(args)`: the name is inside the first group.
        if (head[i + 1] && head[i + 1].t === "*") {
          const inner = head.slice(i + 1, skipBalanced(head, i) - 1);
          const k = inner.findIndex((x) => x.t === "(");
          if (k > 0 && inner[k - 1].id) return inner[k - 1].t;
        }
      }
      depth++;
    } else if (t === ")") {
      depth--;
    }
  }
  return null;
}

/**
 * True when a ';'-terminated head is really the start of an old-style definition,
 * `name(a, b) int a; char *b; {`: a parameter list of bare names followed by declarations.
 */
function isKnRHead(stmt) {
  const open = stmt.findIndex((t) => t.t === "(");
  if (open < 1 || !stmt[open - 1].id) return false;
  const end = skipBalanced(stmt, open);
  const params = stmt.slice(open + 1, end - 1);
  if (params.length === 0) return false;
  const bare = params.every((t, k) => (k % 2 === 0 ? t.id && !KEYWORDS.has(t.t) : t.t === ","));
  // What follows must be parameter declarations, not just attributes on a prototype.
  return bare && stmt.slice(end).some((t) => t.id && !isAttribute(t.t));
}

/** All identifiers a C file defines (see the header comment for what counts). */
export function extractSymbols(src) {
  const { code, macros, directives } = splitPreprocessor(stripCommentsAndStrings(src));
  const extraNames = [];
  const tokens = resolveConditionals(tokenize(code, directives), extraNames);
  const names = new Set([...macros, ...extraNames]);
  const warnings = [];
  let i = 0;
  let stmt = [];
  let externC = 0;
  const finishDecl = () => {
    if (stmt.length > 0) {
      const first = stmt.findIndex((t) => t.t !== "__extension__");
      const extern = stmt.some((t) => t.t === "extern");
      const typedef = stmt[first] && stmt[first].t === "typedef";
      if (!extern) {
        for (const part of splitTopLevel(stmt, ",")) {
          const { name, isFunction } = declaratorName(part);
          if (name && (typedef || !isFunction)) names.add(name);
        }
      }
    }
    stmt = [];
  };
  while (i < tokens.length) {
    const tok = tokens[i];
    if (tok.t === ";") {
      if (isKnRHead(stmt)) {
        stmt.push(tok);
        i++;
        continue;
      }
      finishDecl();
      i++;
      continue;
    }
    if (tok.t === "(" || tok.t === "[") {
      const end = skipBalanced(tokens, i);
      stmt.push(...tokens.slice(i, end));
      i = end;
      continue;
    }
    if (tok.t === "}") {
      if (externC > 0) externC--;
      else warnings.push(`stray '}' at line ${tok.line}`);
      i++;
      continue;
    }
    if (tok.t !== "{") {
      stmt.push(tok);
      i++;
      continue;
    }
    // An opening brace at file scope.
    const end = skipBalanced(tokens, i);
    const body = tokens.slice(i + 1, end - 1);
    const prev = stmt[stmt.length - 1];
    const prev2 = stmt[stmt.length - 2];
    if (stmt.length === 2 && prev.t === '""' && prev2.t === "extern") {
      // extern "C" { … } in a C++-aware header: its contents are at file scope.
      externC++;
      stmt = [];
      i++;
      continue;
    }
    if (prev && (prev.t === "=" || prev.t === ",")) {
      // An initializer.
      stmt.push({ t: "INIT" });
      i = end;
      continue;
    }
    const kwAt = prev && /^(struct|union|enum)$/.test(prev.t)
      ? stmt.length - 1
      : prev && prev.id && prev2 && /^(struct|union|enum)$/.test(prev2.t)
        ? stmt.length - 2
        : -1;
    if (kwAt >= 0) {
      const kw = stmt[kwAt].t;
      if (kwAt === stmt.length - 2) names.add(prev.t);
      if (kw === "enum") enumMembers(body, names);
      else nestedAggregates(body, names);
      stmt.push({ t: "BODY" });
      i = end;
      continue;
    }
    // A function definition.
    const name = functionName(stmt);
    if (name) names.add(name);
    else warnings.push(`unrecognised block at line ${tok.line}: ${stmt.map((t) => t.t).join(" ")}`);
    stmt = [];
    i = end;
  }
  if (stmt.length > 0) warnings.push(`trailing tokens: ${stmt.map((t) => t.t).join(" ").slice(0, 80)}`);
  return { symbols: [...names].sort(compareCodeUnits), warnings };
}

function compareCodeUnits(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function git(gitDir, ...args) {
  return execFileSync("git", [`--git-dir=${gitDir}`, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
}

/** Build the whole symbols document from a Dropbear git dir. */
export function extractFromGit(gitDir, rev = "HEAD") {
  const commit = git(gitDir, "rev-parse", `${rev}^{commit}`).trim();
  const paths = git(gitDir, "ls-tree", "--name-only", commit, "src/")
    .split("\n")
    .filter((p) => /\.(c|h)$/.test(p))
    .sort(compareCodeUnits);
  const files = {};
  const warnings = [];
  for (const path of paths) {
    const { symbols, warnings: w } = extractSymbols(git(gitDir, "show", `${commit}:${path}`));
    files[basename(path)] = symbols;
    for (const msg of w) warnings.push(`${path}: ${msg}`);
  }
  return { doc: { dropbear: DROPBEAR_VERSION, commit, files }, warnings };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [gitDir, rev] = process.argv.slice(2);
  if (!gitDir) {
    process.stderr.write("usage: node tools/xref/extract-symbols.mjs <dropbear git dir> [rev]\n");
    process.exit(2);
  }
  const { doc, warnings } = extractFromGit(gitDir, rev);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}
