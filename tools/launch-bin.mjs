// What apps/<program>/bin/<program> runs: load the program's compiled JS through require().
// Node then reads an ES module graph one file at a time, where import() opens every file of it
// at once (over a hundred), which fails with EMFILE under a small descriptor limit before main
// runs, in the daemon and in each connection process it starts. (Node >= 20.19 requires ES
// modules without a flag.)
//
// The program is dist/bundle.js, one file built by `npm run build` (bundle-bin.mjs), when it is
// at least as new as every package it was made from: it starts ~90 ms sooner than the module
// graph of dist/main.js, which is loaded instead after a `tsc -b` that did not bundle.
// Node >= 22.1 also keeps compiled code in its compile cache between runs; Node 20 has none.
import module, { createRequire } from "node:module";
import { readFileSync, statSync } from "node:fs";

module.enableCompileCache?.();

/** The file to load, relative to the bin script. */
function program(binUrl) {
  try {
    const dist = new URL("../dist/", binUrl);
    // A second of slack: turbo restores a cached build's files in no set order.
    const built = statSync(new URL("bundle.js", dist)).mtimeMs + 1000;
    for (const info of JSON.parse(readFileSync(new URL("bundle.inputs.json", dist), "utf8"))) {
      if (statSync(new URL(info, dist)).mtimeMs > built) {
        return "../dist/main.js";
      }
    }
    return "../dist/bundle.js";
  } catch {
    return "../dist/main.js";
  }
}

/** Run the program whose bin script is at `binUrl` (its import.meta.url). */
export async function launch(binUrl) {
  const main = program(binUrl);
  try {
    createRequire(binUrl)(main);
  } catch (e) {
    // A module with top-level await cannot be required; import() still can load it.
    if (e?.code !== "ERR_REQUIRE_ASYNC_MODULE") throw e;
    await import(new URL(main, binUrl).href);
  }
}
