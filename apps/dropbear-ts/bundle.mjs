// Build the `dropbear-ts` npm package: each program, and the library (src/index.ts, whose
// declarations `tsc -b` wrote to dist/ just before), bundled by esbuild into one plain-JS file in
// dist/, with the workspace packages inlined and third-party packages left as imports, declared
// in this package.json. A global install then needs nothing of the monorepo, and native or
// WebAssembly dependencies (koffi) are still found where npm put them.
import { build } from "esbuild";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { bundleBaseOptions, bundleProgram } from "./bundle-bin.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const pkg = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const programs = Object.keys(pkg.bin);
const readJson = (p) => JSON.parse(readFileSync(p, "utf8"));
const { SHELL_HEAD } = createRequire(import.meta.url)(join(root, "tools", "launch-bin.cjs"));

// Everything is made in a staging folder and renamed into dist/ at the end: the tests import
// the library from dist/index.js while another test packs, and a rename is never seen half done.
const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });
const staging = mkdtempSync(join(dist, ".bundle-"));

// Each program is the bundle its own bin runs in the monorepo (bundle-bin.mjs: CommonJS, so the
// launcher can hand V8 its code cache), as dist/<program>.bundle.cjs, with the launcher beside it
// (dist/launch.cjs, tools/launch-bin.cjs as it is) and a short command, dist/<program>.cjs,
// that runs the one through the other (sh first, as the monorepo's bins: SHELL_HEAD). A global
// install's dist/ is root's, so root's first run makes the cache and every user's run reads it
// (docs/process-model.md, "Code cache").
const programMetafiles = [];
for (const p of programs) {
  const { metafile } = await bundleProgram(p, join(staging, `${p}.bundle.cjs`));
  programMetafiles.push(metafile);
  const command = join(staging, `${p}.cjs`);
  writeFileSync(
    command,
    `${SHELL_HEAD}"use strict";\nrequire("./launch.cjs").runBundle(require("node:path").join(__dirname, ${JSON.stringify(`${p}.bundle.cjs`)}));\n`,
  );
  chmodSync(command, 0o755);
}
copyFileSync(join(root, "tools", "launch-bin.cjs"), join(staging, "launch.cjs"));
// The library: an ES module (users import it).
const libraryBuild = await build({
  ...bundleBaseOptions,
  outdir: staging,
  format: "esm",
  define: { __DROPBEAR_TS_VERSION__: JSON.stringify(pkg.version) },
  entryPoints: { index: join(here, "src", "index.ts") },
  banner: { js: 'import { createRequire as __dbtsCreateRequire } from "node:module";\nconst require = __dbtsCreateRequire(import.meta.url);' },
});

// The third-party packages the bundled workspace code depends on must be exactly what this
// package declares, at the same ranges: a dependency added to (or dropped from) a workspace
// package has to reach the published package too.
const workspaceDirs = new Set();
for (const input of [...programMetafiles.flatMap((m) => Object.keys(m.inputs)), ...Object.keys(libraryBuild.metafile.inputs)]) {
  const m = /^(?:\.\.\/)*(packages|apps)\/([^/]+)\//.exec(relative(root, join(here, input)));
  if (m) workspaceDirs.add(join(root, m[1], m[2]));
}
const needed = {};
for (const dir of workspaceDirs) {
  for (const [name, range] of Object.entries(readJson(join(dir, "package.json")).dependencies ?? {})) {
    if (name.startsWith("@dropbear-ts/")) continue;
    if (needed[name] && needed[name] !== range) {
      throw new Error(`bundle: ${name} is wanted at ${needed[name]} and at ${range} by the workspace packages`);
    }
    needed[name] = range;
  }
}
const declared = pkg.dependencies ?? {};
const problems = [];
for (const [name, range] of Object.entries(needed)) {
  if (declared[name] !== range) problems.push(`  "${name}": "${range}" is needed (declared: ${declared[name] ?? "nothing"})`);
}
for (const name of Object.keys(declared)) {
  if (!(name in needed)) problems.push(`  "${name}" is declared but no bundled package uses it`);
}
if (problems.length > 0) {
  rmSync(staging, { recursive: true, force: true });
  console.error(`bundle: apps/dropbear-ts/package.json "dependencies" must match the bundled code's:\n${problems.join("\n")}`);
  process.exit(1);
}

// Into place, one rename a file; then away with what this build did not make (an old name, a
// code cache of an old bundle, a staging folder a killed run left). The .d.ts files are tsc's.
const made = new Set(readdirSync(staging));
for (const f of made) renameSync(join(staging, f), join(dist, f));
rmSync(staging, { recursive: true, force: true });
for (const f of readdirSync(dist, { withFileTypes: true })) {
  const ours = f.isFile() ? /\.(js|cjs|v8cache|tmp)$/.test(f.name) : f.name.startsWith(".bundle-");
  if (ours && !made.has(f.name)) rmSync(join(dist, f.name), { recursive: true, force: true });
}

// npm takes the licence from the package folder; the one source of it is the repo root's.
copyFileSync(join(root, "LICENSE"), join(here, "LICENSE"));
console.log(`bundle: ${[...programs.map((p) => `dist/${p}.cjs`), "dist/index.js"].join(", ")} (dropbear-ts ${pkg.version})`);
