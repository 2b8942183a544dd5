// Which dropbear-ts this is, for `-V`: users who also have Debian's Dropbear installed must be able
// to tell the two apart, while Dropbear's own "Dropbear v<version>" stays first on the line for
// scripts that parse it.
import { readFileSync } from "node:fs";

// The published bundle has the version written in by esbuild's `define` (apps/dropbear-ts/bundle.mjs);
// there is no package.json of ours next to the code there to read.
declare const __DROPBEAR_TS_VERSION__: string | undefined;

function workspaceVersion(): string {
  // From packages/options/{src,dist}/ up to the repo root: compiled JS and `npm run dev` alike.
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../apps/dropbear-ts/package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** The dropbear-ts release (the `dropbear-ts` npm package's version). */
export const DROPBEAR_TS_VERSION: string =
  typeof __DROPBEAR_TS_VERSION__ === "string" ? __DROPBEAR_TS_VERSION__ : workspaceVersion();
