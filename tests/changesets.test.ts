// The pending changesets must be ones `changeset version` can apply: each names only workspace
// packages, and none mixes packages the config ignores (the internal @dropbear-ts/* ones) with
// packages it releases, which the changesets CLI refuses outright ("Mixed changesets ...").
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPackages, repoRoot } from "../tools/package-graph.mjs";

const dir = join(repoRoot, ".changeset");
const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { ignore: string[] };

/** A config "ignore" entry as the CLI reads it: a package name, or a scope with `*`. */
function ignored(name: string): boolean {
  return config.ignore.some((p) => (p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** The packages a changeset's front matter names. */
function packagesOf(text: string): string[] {
  const m = /^---\n([\s\S]*?)\n---/.exec(text);
  expect(m, "front matter").not.toBeNull();
  return m![1]!
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const e = /^"([^"]+)":\s*(major|minor|patch)\s*$/.exec(l);
      expect(e, `bump line ${JSON.stringify(l)}`).not.toBeNull();
      return e![1]!;
    });
}

describe(".changeset", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".md") && f !== "README.md");
  const known = new Set(readPackages().map((p) => p.packageName));

  it("has pending changesets to check", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const f of files) {
    it(`${f}: names workspace packages, all ignored or all released`, () => {
      const pkgs = packagesOf(readFileSync(join(dir, f), "utf8"));
      expect(pkgs.length).toBeGreaterThan(0);
      for (const p of pkgs) expect(known, `${p} is not a workspace package`).toContain(p);
      expect(new Set(pkgs.map(ignored)).size, `mixes ignored and released packages: ${pkgs.join(", ")}`).toBe(1);
    });
  }
});
