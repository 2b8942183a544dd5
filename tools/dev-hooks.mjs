// Loaded with `node --import` by tools/dev.mjs. Registers a resolve hook that sends each
// `@dropbear-ts/<name>` import to that workspace package's src/index.ts (their package.json
// exports point at dist/, the compiled JS that users run). Registered after tsx, so it runs first
// and tsx then compiles the .ts it returns.
import { register } from "node:module";

if (!globalThis.__dropbearTsDevHooks) {
  globalThis.__dropbearTsDevHooks = true;
  register("./dev-resolve.mjs", import.meta.url);
}
