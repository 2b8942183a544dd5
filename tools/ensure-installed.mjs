// `npm test` on a fresh clone: install the locked dependencies first if they are not there yet.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

// `npm install`, not `npm ci`: with this workplace's npm settings (registry URLs left out of the
// lock file) `npm ci` rejects a lock file that lacks other platforms' optional packages.
if (!existsSync(new URL("../node_modules/.bin/turbo", import.meta.url))) {
  console.log("dropbear-ts: installing dependencies (npm install)...");
  execFileSync("npm", ["install", "--no-audit", "--no-fund"], {
    stdio: "inherit",
    cwd: new URL("..", import.meta.url),
  });
}
