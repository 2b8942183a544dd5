import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  architecturePath,
  repoRoot,
  checkGraph,
  directEdges,
  importedPackages,
  layers,
  readPackages,
  withGraph,
  type WorkspacePackage,
} from "../tools/package-graph.mjs";

describe("the workspace package graph", () => {
  const pkgs = readPackages();

  it("has every package, each import declared to the build, and no cycle", () => {
    expect(pkgs.length).toBeGreaterThanOrEqual(23);
    const problems = checkGraph(pkgs);
    expect(problems, problems.join("\n")).toEqual([]);
  });

  it("matches docs/architecture.md (regenerate with `npm run graph`)", () => {
    const page = readFileSync(architecturePath, "utf8");
    expect(page === withGraph(page, pkgs), "docs/architecture.md is stale: run `npm run graph`").toBe(true);
  });

  /** Every package's src/*.ts, as repo-relative path and text. */
  const sources = (): { path: string; text: string }[] =>
    pkgs.flatMap((p) => {
      const src = join(repoRoot, p.dir, "src");
      let files: string[];
      try {
        files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
      } catch {
        return [];
      }
      return files.map((f) => ({ path: `${p.dir}/src/${f}`, text: readFileSync(join(src, f), "utf8") }));
    });

  it("loads koffi and the C library in one place only (dbutil's libc.ts)", () => {
    const loaders = sources().filter(({ text }) => /["']koffi["']|\.load\(/.test(text));
    expect(loaders.map((f) => f.path)).toEqual(["packages/dbutil/src/libc.ts"]);
  });

  it("changes no V8 flag once running: Node 24 crashed in a regexp compiled under flags set back since", () => {
    // docs/bench.md, "Forty-seventh round": --no-regexp-tier-up around one isIP() call, set back,
    // left a pattern whose later match segfaulted now and then. Flags belong on the command line.
    const setters = sources().filter(({ text }) => /setFlagsFromString/.test(text));
    expect(setters.map((f) => f.path)).toEqual([]);
  });

  it("names every package in the page's table of C files", () => {
    const page = readFileSync(architecturePath, "utf8");
    const table = page.slice(page.indexOf("## Packages and their C files"), page.indexOf("## Dependency direction"));
    for (const p of pkgs) {
      expect(table, `no row for ${p.name}`).toContain(`| \`${p.name}\` `);
    }
  });
});

describe("package-graph", () => {
  const pkg = (name: string, imports: string[], declared = imports): WorkspacePackage => ({ name, packageName: `@dropbear-ts/${name}`, dir: `packages/${name}`, imports, declared });

  it("finds static, type-only, re-exported and dynamic imports of workspace packages", () => {
    const src = [
      'import { a } from "@dropbear-ts/buffer";',
      'import type { b } from "@dropbear-ts/core";',
      'export * from "@dropbear-ts/options";',
      'const m = await import("@dropbear-ts/kex");',
      'import "@dropbear-ts/netio";',
      'import { c } from "node:fs";',
    ].join("\n");
    expect([...importedPackages(src)].sort()).toEqual(["buffer", "core", "kex", "netio", "options"]);
  });

  it("layers a package one above the highest it imports", () => {
    expect(layers([pkg("a", []), pkg("b", ["a"]), pkg("c", ["a", "b"]), pkg("d", ["a"])])).toEqual([["a"], ["b", "d"], ["c"]]);
  });

  it("reports a cycle and an undeclared import", () => {
    const problems = checkGraph([pkg("a", ["b"]), pkg("b", ["a"]), pkg("c", ["a"], [])]);
    expect(problems).toContain("packages/c: imports @dropbear-ts/a without declaring it (package.json or tsconfig.json references)");
    expect(problems.some((p) => p.startsWith("the imports form a cycle among: a, b"))).toBe(true);
  });

  it("draws only the edges no other path implies", () => {
    expect(directEdges([pkg("a", []), pkg("b", ["a"]), pkg("c", ["a", "b"])])).toEqual([
      ["b", "a"],
      ["c", "b"],
    ]);
  });
});
