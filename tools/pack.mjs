// `npm run pack`: build everything, then write exactly one installable tarball,
// pack/dropbear-ts-<version>.tgz (the `dropbear-ts` package of apps/dropbear-ts: the four
// programs bundled, third-party packages as declared dependencies).
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const packDir = `${root}pack`;
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1" };

// Old tarballs would make "pack/dropbear-ts-*.tgz" match more than one file.
rmSync(packDir, { recursive: true, force: true });
mkdirSync(packDir);
// turbo builds the apps' compiled JS first (dropbear-ts devDepends on them), then bundles.
execFileSync("npx", ["turbo", "run", "build", "--filter=dropbear-ts...", "--output-logs=errors-only"], {
  cwd: root,
  env,
  stdio: "inherit",
});
// npm pack runs the package's prepack (the bundle again: cheap, and right even without turbo).
execFileSync("npm", ["pack", "--workspace", "dropbear-ts", "--pack-destination", packDir, "--silent"], {
  cwd: root,
  env,
  stdio: ["ignore", "ignore", "inherit"],
});
const made = readdirSync(packDir).filter((f) => f.endsWith(".tgz"));
if (made.length !== 1) {
  console.error(`pack: expected one tarball in pack/, found ${made.length}: ${made.join(" ")}`);
  process.exit(1);
}
console.log(`pack/${made[0]}`);
