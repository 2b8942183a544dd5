// The committed lock file must serve `npm ci` on every platform npm supports, and what a user's
// install brings in must run on every Node we claim. See tools/lockfile.mjs for why the lock can
// lose other platforms' packages on this machine.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { engineProblems, missingOptionalPackages, readLock, resolveInLock } from "../tools/lockfile.mjs";

const lock = readLock();
const json = (p: string) => JSON.parse(readFileSync(new URL(p, import.meta.url), "utf8"));

// Runtime packages known not to meet our engines yet, each with what removes it. A listed package
// that is gone (or fixed) fails the test below too, so the list cannot go stale.
const KNOWN_ENGINE_GAPS: Record<string, string> = {};

describe("package-lock.json", () => {
  it("locks every optional (platform) package of every locked package", () => {
    const missing = missingOptionalPackages(lock).map((m) => `${m.parent} -> ${m.name}`);
    expect(missing, "run `node tools/lockfile.mjs --fix`").toEqual([]);
  });

  it("locks all of turbo's platform binaries, not only this machine's", () => {
    const turbo = json("../node_modules/turbo/package.json") as { optionalDependencies: Record<string, string> };
    const names = Object.keys(turbo.optionalDependencies);
    expect(names.length).toBeGreaterThan(1);
    for (const name of names) {
      const key = resolveInLock(lock.packages, "node_modules/turbo", name);
      expect(key, `${name} is not in the lock`).not.toBeNull();
      expect(lock.packages[key!].version).toBe(turbo.optionalDependencies[name]);
    }
  });

  it("matches the root package.json (what npm ci checks first)", () => {
    const pkg = json("../package.json");
    expect(lock.packages[""].devDependencies).toEqual(pkg.devDependencies);
    expect(lock.packages[""].engines).toEqual(pkg.engines);
  });
});

describe("engines", () => {
  const ours = json("../apps/dropbear-ts/package.json").engines.node as string;

  it("the published package and the repo claim the same Node range", () => {
    expect(ours).toBe(json("../package.json").engines.node);
  });

  it("no runtime dependency of dropbear-ts requires a newer Node than our engines range", () => {
    const problems = engineProblems(lock, ours).filter((p) => !(p.key in KNOWN_ENGINE_GAPS));
    expect(problems.map((p) => `${p.key} wants node ${p.engines}`)).toEqual([]);
  });

  it("every known gap is still real (drop it from KNOWN_ENGINE_GAPS once fixed)", () => {
    const real = new Set(engineProblems(lock, ours).map((p) => p.key));
    expect(Object.keys(KNOWN_ENGINE_GAPS).filter((k) => !real.has(k))).toEqual([]);
  });
});
