import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

/**
 * Run `script` in a node of its own whose stdout is a pipe closed before it writes (the reader
 * went away, as `| head` does), after watchStdioErrors. Resolves with how it ended and its stderr.
 */
function withClosedStdout(script: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }> {
  const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
  const body = `const d = await import(${mod}); d.watchStdioErrors(); ${script}`;
  const child = spawn(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${body} })()`], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.destroy();
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
  return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, err })));
}

// Enough writes that one lands after the pipe is gone, whatever the scheduling.
const WRITES = `for (let i = 0; i < 200; i++) { process.stdout.write("x".repeat(4096)); await new Promise((r) => setImmediate(r)); }`;

describe("a closed stdout (sigpipe.ts)", () => {
  it("kills the program by SIGPIPE, as C's default does", async () => {
    const r = await withClosedStdout(`${WRITES} process.stderr.write("still running\\n");`);
    expect(r).toEqual({ code: null, signal: "SIGPIPE", err: "" });
  });

  it("only loses the writes once SIGPIPE is ignored, as in dbclient and dropbear", async () => {
    const r = await withClosedStdout(`d.ignoreSigpipe(); ${WRITES} process.stderr.write("still running\\n");`);
    expect(r).toEqual({ code: 0, signal: null, err: "still running\n" });
  });
});
