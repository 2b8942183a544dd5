// Module resolve hook for `npm run dev` (see dev-hooks.mjs): workspace package name -> its src/.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url);
const sources = new Map();
for (const group of ["packages", "apps"]) {
  const dir = new URL(`${group}/`, root);
  for (const name of readdirSync(dir)) {
    const pkgFile = new URL(`${name}/package.json`, dir);
    const index = new URL(`${name}/src/index.ts`, dir);
    if (!existsSync(pkgFile) || !existsSync(index)) continue;
    sources.set(JSON.parse(readFileSync(pkgFile, "utf8")).name, pathToFileURL(index.pathname).href);
  }
}

export async function resolve(specifier, context, next) {
  const url = sources.get(specifier);
  if (url) return { url, shortCircuit: true, format: "module" };
  return next(specifier, context);
}
