import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { extractFromGit, extractSymbols } from "../tools/xref/extract-symbols.mjs";
import {
  INLINE,
  collectTags,
  loadSymbols,
  readSources,
  renderXref,
  validateTags,
  xrefPath,
  type XrefTag,
} from "../tools/xref/xref.mjs";

const symbols = loadSymbols();

describe("@dropbear tags in the tree", () => {
  const tags = collectTags(readSources());

  it("name a file and a symbol that Dropbear 2026.94 defines", () => {
    const problems = validateTags(tags, symbols);
    expect(problems, `unknown tags:\n${problems.join("\n")}`).toEqual([]);
  });

  it("match docs/xref.md (regenerate with `npm run xref`)", () => {
    const current = existsSync(xrefPath) ? readFileSync(xrefPath, "utf8") : "";
    expect(current === renderXref(tags, symbols), "docs/xref.md is stale: run `npm run xref`").toBe(true);
  });
});

describe("collectTags", () => {
  const src = [
    "/** One line. @dropbear buffer.c buf_new */",
    "export function buf_new(size: number): void {}",
    "",
    "/**",
    " * Several lines, tag last.",
    " * @dropbear queue.h Queue",
    " */",
    "export class Queue<T> {",
    "  /** A member. @dropbear queue.c isempty */",
    "  readonly isempty = true;",
    "}",
    "/** Dangling. @dropbear list.c list_new */",
    "",
    "/** `@dropbear` mentioned in prose is no tag; @dropbear-ts/x neither. */",
    "const noTag = 1;",
    "/** @dropbear dbutil.h dropbear_assert */ type T = 1;",
  ].join("\n");
  const tags = collectTags([{ path: "packages/x/src/x.ts", text: src }]);

  it("finds each tag with the declaration it documents", () => {
    expect(tags).toEqual<XrefTag[]>([
      { cFile: "buffer.c", cSymbol: "buf_new", tsFile: "packages/x/src/x.ts", line: 2, tsName: "buf_new" },
      { cFile: "queue.h", cSymbol: "Queue", tsFile: "packages/x/src/x.ts", line: 8, tsName: "Queue" },
      { cFile: "queue.c", cSymbol: "isempty", tsFile: "packages/x/src/x.ts", line: 10, tsName: "isempty" },
      { cFile: "list.c", cSymbol: "list_new", tsFile: "packages/x/src/x.ts", line: 12, tsName: INLINE },
      { cFile: "dbutil.h", cSymbol: "dropbear_assert", tsFile: "packages/x/src/x.ts", line: 16, tsName: "T" },
    ]);
  });

  it("renders the same document whatever the input order", () => {
    const doc = renderXref(tags, symbols);
    expect(renderXref([...tags].reverse(), symbols)).toBe(doc);
    expect(doc).toContain("| `buf_new` | `buf_new` | [packages/x/src/x.ts:2](../packages/x/src/x.ts#L2) |");
    expect(doc.indexOf("## buffer.c")).toBeLessThan(doc.indexOf("## queue.h"));
  });
});

describe("validateTags", () => {
  const tag = (cFile: string, cSymbol: string): XrefTag => ({
    cFile,
    cSymbol,
    tsFile: "packages/x/src/x.ts",
    line: 7,
    tsName: "x",
  });

  it("accepts a real file and symbol", () => {
    expect(validateTags([tag("buffer.c", "buf_new"), tag("queue.h", "Queue")], symbols)).toEqual([]);
  });

  it("rejects a file Dropbear does not have", () => {
    const problems = validateTags([tag("nosuch.c", "buf_new")], symbols);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^packages\/x\/src\/x\.ts:7: .*no file nosuch\.c/);
  });

  it("rejects a symbol the file does not define", () => {
    // buf_new is declared in buffer.h but defined in buffer.c: a prototype is not a definition.
    const problems = validateTags([tag("buffer.c", "no_such_symbol"), tag("buffer.h", "buf_new")], symbols);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/buffer\.c .*defines no no_such_symbol/);
    expect(problems[1]).toMatch(/buffer\.h .*defines no buf_new/);
  });

  it("rejects a malformed tag and inherited object keys", () => {
    expect(validateTags([tag("buffer.c", ""), tag("constructor", "x")], symbols)).toHaveLength(2);
  });
});

describe("Dropbear 2026.94 symbol data", () => {
  it("is for the pinned release", () => {
    expect(symbols.dropbear).toBe("2026.94");
    expect(symbols.commit).toBe("1442f00d3f0d755d9f8ba83c5edcd893aa4d71db");
    expect(Object.keys(symbols.files).length).toBeGreaterThan(140);
  });

  it.each([
    ["common-session.c", "session_loop"],
    ["svr-tcpfwd.c", "newtcpdirect"],
    ["tcp-accept.c", "tcp_acceptor"],
    ["netio.c", "connect_try_next"],
    ["netio.c", "dropbear_progress_connection"],
    ["channel.h", "Channel"],
    ["channel.h", "ChanType"],
    ["listener.h", "Listener"],
    // 2026.94 calls the forwarding listener FwdListener (older releases: TCPListener in tcpfwd.h).
    ["forward.h", "FwdListener"],
    ["cli-tcpfwd.c", "cli_localtcp"],
    ["list.h", "m_list_elem"],
    ["queue.h", "Link"],
    ["dbutil.c", "dropbear_exit"],
    ["sysoptions.h", "DROPBEAR_VERSION"],
    ["common-session.c", "ses"],
    ["session.h", "sshsession"],
    ["session.h", "KEXINIT_RCVD"],
    ["cli-main.c", "main"],
    ["cli-main.c", "cli_main"],
  ])("%s defines %s", (file, symbol) => {
    expect(symbols.files[file]).toContain(symbol);
  });

  it("holds definitions only, not prototypes or externs", () => {
    expect(symbols.files["buffer.h"]).not.toContain("buf_new");
    expect(symbols.files["session.h"]).not.toContain("ses");
    expect(symbols.files["queue.h"]).not.toContain("queue");
  });
});

describe("extractSymbols", () => {
  it("finds every kind of definition in Dropbear's styles and nothing else", () => {
    const src = [
      '#include "includes.h"',
      "#define MACRO(a) \\",
      "\t((a) + 1)",
      "/* not_a_fn(int) { } */",
      "static int counter = 0, *other;",
      "extern int declared_elsewhere;",
      'const char *names[] = { "{", "}" };',
      "struct tagged { int member; struct inner { int m2; } in; enum { E_ONE, E_TWO = 2 } e; };",
      "typedef struct { int field; } Anon;",
      "typedef void (*callback_fn)(int, char *);",
      "void prototype_only(struct tagged *param);",
      "static void (*fnptr)(int) = NULL;",
      "static void",
      "next_line(int a)",
      "{",
      "\tif (a) { return; }",
      "}",
      "int knr(a, b)",
      "\tint a;",
      "\tchar *b;",
      "{",
      "\treturn a;",
      "}",
      "void ATTRIB_NORETURN attributed(const char* fmt, ...) ATTRIB_PRINTF(1,2) {",
      "}",
      "#if MULTI",
      "int multi_main(int argc, char **argv) {",
      "#else",
      "int main(int argc, char **argv) {",
      "#endif",
      "\treturn 0;",
      "}",
      "#if A",
      "static int only_a(void) { return 1; }",
      "#else",
      "static int only_b(void) { return 2; }",
      "#endif",
    ].join("\n");
    const { symbols: found, warnings } = extractSymbols(src);
    expect(warnings).toEqual([]);
    expect(found).toEqual(
      [
        "Anon", "E_ONE", "E_TWO", "MACRO", "attributed", "callback_fn", "counter", "fnptr", "inner",
        "knr", "main", "multi_main", "names", "next_line", "only_a", "only_b", "other", "tagged",
      ].sort(),
    );
  });

  // Set DROPBEAR_GIT_DIR to a clone of mkj/dropbear to check the JSON against the C source.
  const gitDir = process.env.DROPBEAR_GIT_DIR;
  it.skipIf(gitDir === undefined)("reproduces the committed data from Dropbear's source", () => {
    const { doc } = extractFromGit(gitDir ?? "", symbols.commit);
    expect(doc).toEqual(symbols);
  });
});
