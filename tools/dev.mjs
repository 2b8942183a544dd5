// `npm run dev -- <program> [args...]`: run dbclient, dropbear, dropbearkey or dropbearconvert
// straight from the TypeScript in src/ (every workspace package too), through tsx, with no build
// step. For stepping through beside the C in a debugger (`npm run dev -- --inspect-brk dbclient
// ...`); every user path (bin/, the published package, the demo, the tests) runs compiled JS.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const programs = ["dropbear", "dbclient", "dropbearkey", "dropbearconvert"];

const args = process.argv.slice(2);
// Node's own flags (--inspect, --inspect-brk=...) may come before the program's name.
const nodeFlags = [];
while (args.length > 0 && args[0].startsWith("--")) nodeFlags.push(args.shift());
const program = args.shift();
if (!program || !programs.includes(program)) {
  console.error(`usage: npm run dev -- [node flags] <${programs.join("|")}> [args...]`);
  process.exit(2);
}
const main = `${root}apps/${program}/src/main.ts`;
if (!existsSync(main)) {
  console.error(`dev: ${main} does not exist`);
  process.exit(2);
}

// tsx compiles TypeScript on load; dev-hooks points @dropbear-ts/* at src/ instead of dist/.
// Both go into the child's execArgv, so the copies a program spawns of itself (dbclient -f, the
// server's connection processes) run from source as well.
const child = spawn(
  process.execPath,
  [...nodeFlags, "--import", "tsx", "--import", new URL("./dev-hooks.mjs", import.meta.url).href, main, ...args],
  { stdio: "inherit" },
);
// Signals reach the child from the terminal's process group; the wrapper just mirrors its end.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => {});
child.on("exit", (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  process.exit(code ?? 1);
});
