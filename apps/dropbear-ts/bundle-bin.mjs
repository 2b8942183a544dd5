// Bundle one program of the monorepo into apps/<program>/dist/bundle.cjs, which its bin/
// launcher loads instead of dist/main.js: one file of plain JS (the workspace packages inlined,
// third-party packages left as imports) starts in about a quarter of the time over 100 ES
// modules take to resolve and load (measured: `dbclient -h` 30 ms over a bare `node -e 0`,
// against 120 ms; docs/bench.md). Run by each program's `build` after `tsc -b`.
//
// CommonJS, not an ES module: the launcher compiles it as a vm.Script, the one way Node 20 has
// to give V8 a code cache (tools/launch-bin.cjs); ES modules get one only from Node 22's
// compile cache, which holds none of the functions compiled after the load.
//
// Beside it, dist/bundle.inputs.json names the tsc build-info file of every workspace package
// the bundle took code from, with its SHA-256. A later `tsc -b` alone (no bundling) that
// changes one makes the launcher load dist/main.js instead, so it never runs stale code; a
// build-info file only rewritten as it was (turbo's cache) leaves the bundle in use.
//
// The published package (bundle.mjs) ships the same file, made by `bundleProgram`.
//
//   node ../dropbear-ts/bundle-bin.mjs <program>
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const isThirdParty = (spec) => !spec.startsWith(".") && !spec.startsWith("/") && !spec.startsWith("node:") && !spec.startsWith("@dropbear-ts/");

/**
 * Everything that is not ours stays an import: its own package (with its native parts, licence
 * and engines) is installed beside the bundle.
 */
const thirdPartyExternal = {
  name: "third-party-external",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => (isThirdParty(args.path) ? { path: args.path, external: true } : undefined));
  },
};

/**
 * V8 keeps a script's source as long as the script, at one byte a character only if every
 * character fits in one. esbuild escapes non-ASCII characters in code, not in the comments it
 * keeps, where one "\u2016" doubled the source every process holds (about 360 KB); a \u escape
 * stands for the same character in code too.
 */
function asciiOnly(file) {
  const text = readFileSync(file, "utf8");
  const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (ascii !== text) writeFileSync(file, ascii);
}

/**
 * What every bundle of ours is built with, the programs' and the library's: one file of plain JS
 * for the oldest Node we support (esbuild then leaves nothing newer in it), workspace packages
 * inlined, third-party packages left as imports. No sourcemaps and no minifying: users who read
 * a stack trace see the C names.
 */
export const bundleBaseOptions = {
  bundle: true,
  platform: "node",
  target: "node20.19",
  external: ["node:*"],
  plugins: [thirdPartyExternal],
  minify: false,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
};

/**
 * Bundle apps/<program>/dist/main.js into `outfile`: by default the app's own dist/bundle.cjs,
 * with its bundle.inputs.json beside it; the published package (bundle.mjs) names a file of its
 * own, so that packing never rewrites a bundle that running programs may be reading. Returns
 * esbuild's metafile, whose input paths are relative to the working directory.
 */
export async function bundleProgram(program, outfile = join(root, "apps", program, "dist", "bundle.cjs")) {
  const appDir = join(root, "apps", program);
  const version = JSON.parse(readFileSync(join(here, "package.json"), "utf8")).version;
  const result = await build({
    ...bundleBaseOptions,
    entryPoints: [join(appDir, "dist", "main.js")],
    outfile,
    format: "cjs",
    // import() of a third-party package (libsodium) becomes require(): a vm.Script made
    // from V8's code cache loses Node 20's dynamic import callback. Node >= 20.19 requires ES
    // modules without a flag.
    supported: { "dynamic-import": false },
    // Code that loads CommonJS packages (koffi, bcrypt-pbkdf) through createRequire(import.meta.url)
    // resolves them from where the bundle is: the monorepo's node_modules, or the installed
    // package's.
    define: { __DROPBEAR_TS_VERSION__: JSON.stringify(version), "import.meta.url": "__dbtsImportMetaUrl" },
    // The file is already inside the function Node wraps a CommonJS file in, so the launcher
    // compiles it as read (one copy of the source in memory; its first line must be the same
    // as the launcher's HEAD). Strict, as the ES modules it was made from are.
    banner: {
      js: '(function (exports, require, module, __filename, __dirname) { "use strict";\nconst __dbtsImportMetaUrl = require("node:url").pathToFileURL(__filename).href;',
    },
    footer: { js: "})" },
  });

  asciiOnly(outfile);
  if (outfile !== join(appDir, "dist", "bundle.cjs")) {
    return { metafile: result.metafile };
  }

  const infos = new Set();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = /^((?:packages|apps)\/[^/]+)\/dist\//.exec(relative(root, join(process.cwd(), input)));
    if (m) infos.add(relative(join(appDir, "dist"), join(root, m[1], "tsconfig.tsbuildinfo")));
  }
  const inputs = [...infos].sort().map((file) => ({
    file,
    sha256: createHash("sha256").update(readFileSync(join(appDir, "dist", file))).digest("hex"),
  }));
  writeFileSync(join(appDir, "dist", "bundle.inputs.json"), `${JSON.stringify(inputs, null, 1)}\n`);
  return { metafile: result.metafile };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const program = process.argv[2];
  if (!program) {
    console.error("usage: bundle-bin.mjs <program>");
    process.exit(2);
  }
  await bundleProgram(program);
}
