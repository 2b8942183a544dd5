// Checks (and repairs) package-lock.json for what `npm ci` needs on every platform.
//
// Why it can go wrong here: npm writes the lock from the tree it has in hand. Regenerated while
// node_modules exists (e.g. `rm package-lock.json && npm install`), that tree only holds this
// machine's platform packages (linux-x64), so the other platforms' optional packages — turbo's
// @turbo/darwin-64, koffi's @koromix/koffi-win32-x64, esbuild's @esbuild/* — drop out of the lock.
// Later installs take the lock as the truth and never add them back, and `npm ci` on macOS or
// Windows fails ("Missing: @turbo/darwin-64 from lock file") or installs koffi without its
// native part. (`omit-lockfile-registry-resolved` in the user's npmrc is not the cause: it only
// leaves the registry host out of the lock, which npm ci accepts.)
//
//   node tools/lockfile.mjs          report problems, exit 1 if any
//   node tools/lockfile.mjs --fix    drop each package whose optional platform packages are
//                                    incomplete and let npm resolve it again at the same version
//                                    (`npm install --package-lock-only` fetches all platforms'
//                                    manifests for a package it has to resolve anew)
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
export const lockPath = `${root}package-lock.json`;

export function readLock() {
  return JSON.parse(readFileSync(lockPath, "utf8"));
}

/** Where Node would find `name` required from the lock entry at `from` (a lock key), or null. */
export function resolveInLock(packages, from, name) {
  let base = from;
  for (;;) {
    const key = `${base ? `${base}/` : ""}node_modules/${name}`;
    if (packages[key]) return key;
    if (!base) return null;
    const i = base.lastIndexOf("/node_modules/");
    // A workspace folder (apps/x) resolves from the root's node_modules next.
    base = i < 0 ? "" : base.slice(0, i);
  }
}

/** Every optional dependency of a locked package that has no entry in the lock. */
export function missingOptionalPackages(lock) {
  const out = [];
  for (const [key, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      if (!resolveInLock(lock.packages, key, name)) out.push({ parent: key, name });
    }
  }
  return out;
}

/**
 * The packages a user's install of `dropbear-ts` brings in (its dependencies, transitively,
 * optional ones included), as lock keys.
 */
export function runtimePackages(lock, workspace = "apps/dropbear-ts") {
  const seen = new Set();
  const todo = [workspace];
  while (todo.length > 0) {
    const key = todo.pop();
    const entry = lock.packages[key];
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const dep = resolveInLock(lock.packages, key, name);
      if (dep && !seen.has(dep)) {
        seen.add(dep);
        todo.push(dep);
      }
    }
  }
  return [...seen].sort();
}

/** Runtime packages whose `engines.node` does not accept every Node in `range` (ours). */
export function engineProblems(lock, range) {
  const semver = createRequire(import.meta.url)("semver");
  const out = [];
  for (const key of runtimePackages(lock)) {
    const want = lock.packages[key].engines?.node;
    if (want && !semver.subset(range, want)) out.push({ key, engines: want });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const lock = readLock();
  const missing = missingOptionalPackages(lock);
  if (process.argv.includes("--fix") && missing.length > 0) {
    for (const parent of new Set(missing.map((m) => m.parent))) delete lock.packages[parent];
    writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
    execFileSync("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], {
      cwd: root,
      stdio: "inherit",
    });
  }
  const left = missingOptionalPackages(readLock());
  for (const m of left) console.error(`lockfile: ${m.parent} lists optional ${m.name}, which the lock lacks`);
  if (left.length > 0) {
    console.error("lockfile: run `node tools/lockfile.mjs --fix`");
    process.exit(1);
  }
  console.log("lockfile: every optional platform package is locked");
}
