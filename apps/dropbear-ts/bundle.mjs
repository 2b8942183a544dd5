// Build the `dropbear-ts` npm package: each program, and the library (src/index.ts, whose
// declarations `tsc -b` wrote to dist/ just before), bundled by esbuild into one plain-JS file in
// dist/, with the workspace packages inlined and third-party packages left as imports, declared
// in this package.json. A global install then needs nothing of the monorepo, and native or
// WebAssembly dependencies (koffi) are still found where npm put them.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const pkg = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const programs = Object.keys(pkg.bin);
const readJson = (p) => JSON.parse(readFileSync(p, "utf8"));

// Only our bundles: the .d.ts files beside them are tsc's.
mkdirSync(join(here, "dist"), { recursive: true });
for (const f of readdirSync(join(here, "dist"), { withFileTypes: true })) {
  if (f.isFile() && f.name.endsWith(".js")) rmSync(join(here, "dist", f.name));
}

// Everything that is not ours stays an import: its own package (with its native parts, licence
// and engines) is installed beside the bundle.
const isThirdParty = (spec) => !spec.startsWith(".") && !spec.startsWith("/") && !spec.startsWith("node:") && !spec.startsWith("@dropbear-ts/");
const externalsPlugin = {
  name: "third-party-external",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => (isThirdParty(args.path) ? { path: args.path, external: true } : undefined));
  },
};

const common = {
  outdir: join(here, "dist"),
  bundle: true,
  platform: "node",
  format: "esm",
  // The oldest Node we support; esbuild then leaves nothing newer in the output.
  target: "node20.19",
  external: ["node:*"],
  plugins: [externalsPlugin],
  // No sourcemaps and no minifying: users who read a stack trace see the C names.
  minify: false,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  define: { __DROPBEAR_TS_VERSION__: JSON.stringify(pkg.version) },
};
const programsBuild = await build({
  ...common,
  entryPoints: Object.fromEntries(programs.map((p) => [p, join(root, "apps", p, "src", "main.ts")])),
  banner: {
    // One line makes the file its own command; the require shim serves code that loads
    // CommonJS packages (koffi, bcrypt-pbkdf) through createRequire(import.meta.url).
    js: "#!/usr/bin/env node\nimport { createRequire as __dbtsCreateRequire } from \"node:module\";\nconst require = __dbtsCreateRequire(import.meta.url);",
  },
});
const libraryBuild = await build({
  ...common,
  entryPoints: { index: join(here, "src", "index.ts") },
  banner: { js: 'import { createRequire as __dbtsCreateRequire } from "node:module";\nconst require = __dbtsCreateRequire(import.meta.url);' },
});

// The third-party packages the bundled workspace code depends on must be exactly what this
// package declares, at the same ranges: a dependency added to (or dropped from) a workspace
// package has to reach the published package too.
const workspaceDirs = new Set();
for (const input of [...Object.keys(programsBuild.metafile.inputs), ...Object.keys(libraryBuild.metafile.inputs)]) {
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
  console.error(`bundle: apps/dropbear-ts/package.json "dependencies" must match the bundled code's:\n${problems.join("\n")}`);
  process.exit(1);
}

// npm takes the licence from the package folder; the one source of it is the repo root's.
copyFileSync(join(root, "LICENSE"), join(here, "LICENSE"));
console.log(`bundle: ${[...programs, "index"].map((p) => `dist/${p}.js`).join(", ")} (dropbear-ts ${pkg.version})`);
