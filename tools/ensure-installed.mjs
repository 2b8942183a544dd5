// `npm test` on a fresh clone: install the locked dependencies first if they are not there yet.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

// `npm ci`, as the README says: exactly the lock file, which carries every platform's optional
// packages (tests/lockfile.test.ts keeps it so).
if (!existsSync(new URL("../node_modules/.bin/turbo", import.meta.url))) {
  console.log("dropbear-ts: installing dependencies (npm ci)...");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], {
    stdio: "inherit",
    cwd: new URL("..", import.meta.url),
  });
}
