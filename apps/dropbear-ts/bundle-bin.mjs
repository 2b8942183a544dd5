// Bundle one program of the monorepo into apps/<program>/dist/bundle.js, which its bin/
// launcher loads instead of dist/main.js: one file of plain JS (the workspace packages inlined,
// third-party packages left as imports) starts in about a quarter of the time over 100 ES
// modules take to resolve and load (measured: `dbclient -h` 30 ms over a bare `node -e 0`,
// against 120 ms; docs/bench.md). Run by each program's `build` after `tsc -b`.
//
// Beside it, dist/bundle.inputs.json names the tsc build-info file of every workspace package
// the bundle took code from. A later `tsc -b` alone (no bundling) rewrites those, and the
// launcher then sees the bundle is older and loads dist/main.js, so it never runs stale code.
//
//   node ../dropbear-ts/bundle-bin.mjs <program>
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const program = process.argv[2];
if (!program) {
  console.error("usage: bundle-bin.mjs <program>");
  process.exit(2);
}
const appDir = join(root, "apps", program);
const version = JSON.parse(readFileSync(join(here, "package.json"), "utf8")).version;
const isThirdParty = (spec) => !spec.startsWith(".") && !spec.startsWith("/") && !spec.startsWith("node:") && !spec.startsWith("@dropbear-ts/");

const result = await build({
  entryPoints: [join(appDir, "dist", "main.js")],
  outfile: join(appDir, "dist", "bundle.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  external: ["node:*"],
  plugins: [
    {
      name: "third-party-external",
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => (isThirdParty(args.path) ? { path: args.path, external: true } : undefined));
      },
    },
  ],
  minify: false,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  define: { __DROPBEAR_TS_VERSION__: JSON.stringify(version) },
  // Code that loads CommonJS packages (koffi, bcrypt-pbkdf) through createRequire(import.meta.url)
  // resolves them from here, in the monorepo's node_modules.
  banner: { js: 'import { createRequire as __dbtsCreateRequire } from "node:module";\nconst require = __dbtsCreateRequire(import.meta.url);' },
});

const infos = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /^((?:packages|apps)\/[^/]+)\/dist\//.exec(relative(root, join(process.cwd(), input)));
  if (m) infos.add(relative(join(appDir, "dist"), join(root, m[1], "tsconfig.tsbuildinfo")));
}
writeFileSync(join(appDir, "dist", "bundle.inputs.json"), `${JSON.stringify([...infos].sort(), null, 1)}\n`);
