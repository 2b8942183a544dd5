import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
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

describe("a closed stdout (nodesignals.ts)", () => {
  it("kills the program by SIGPIPE, as C's default does", async () => {
    const r = await withClosedStdout(`${WRITES} process.stderr.write("still running\\n");`);
    expect(r).toEqual({ code: null, signal: "SIGPIPE", err: "" });
  });

  it("only loses the writes once SIGPIPE is ignored, as in dbclient and dropbear", async () => {
    const r = await withClosedStdout(`d.ignoreSigpipe(); ${WRITES} process.stderr.write("still running\\n");`);
    expect(r).toEqual({ code: 0, signal: null, err: "still running\n" });
  });
});

/**
 * Run `script` in a node of its own after keepIgnoredSignals and takeSigusr1FromInspector (with
 * `sigign` as the bin scripts pass SigIgn), send it SIGUSR1 once it says "ready", and resolve
 * with how it ended and what it printed.
 */
function afterSigusr1(
  sigign: string | null,
  script: string,
  asInit = false,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
  const body = `const d = await import(${mod}); d.keepIgnoredSignals(); d.takeSigusr1FromInspector(); ${script}`;
  const env = { ...process.env, DROPBEAR_TS_SIGIGN: sigign ?? "" };
  const node = [process.execPath, "--input-type=commonjs", "-e", `(async () => { ${body} })()`];
  // As the first process of a PID namespace of its own (a container's init): unshare forks it.
  const argv = asInit ? ["/usr/bin/unshare", "--pid", "--fork", ...node] : node;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env });
  // The program itself: unshare's child in the namespace case.
  const target = (): number => (asInit ? Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ")[0]) : child.pid!);
  let out = "";
  let err = "";
  let sent = false;
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    // Once only: Node sets every signal but SIGPIPE and SIGXFSZ back to SIG_DFL as it exits, so
    // a second SIGUSR1 that met the exit after "alive" would end even a program that ignores it.
    if (!sent && out.startsWith("ready")) {
      sent = true;
      process.kill(target(), "SIGUSR1");
    }
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
  return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, out, err })));
}

// Waits in small steps, up to 3 s, for the signal to end it; prints "alive" if it survives.
const READY_THEN_LIVE = `console.log("ready"); for (let i = 0; i < 30; i++) await new Promise((r) => setTimeout(r, 100)); console.log("alive");`;

describe("SIGUSR1 (nodesignals.ts)", () => {
  it("ends the program as its default does, where Node would start its inspector", async () => {
    const r = await afterSigusr1(null, READY_THEN_LIVE);
    expect(r.err).not.toMatch(/Debugger listening/);
    expect(r).toMatchObject({ code: null, signal: "SIGUSR1", out: "ready\n" });
  });

  it.runIf(process.getuid?.() === 0)("is discarded, the program running on, where it is a PID namespace's first process (a container's), as the kernel discards C's", async () => {
    const r = await afterSigusr1(null, READY_THEN_LIVE, true);
    expect(r.err).not.toMatch(/Debugger listening/);
    expect(r).toMatchObject({ code: 0, signal: null, out: "ready\nalive\n" });
  });

  it("stays ignored when the parent left it ignored, as in C", async () => {
    // Bit 9 of the SigIgn mask: signal 10, SIGUSR1.
    const r = await afterSigusr1("200", READY_THEN_LIVE);
    expect(r.err).not.toMatch(/Debugger listening/);
    expect(r).toMatchObject({ code: 0, signal: null, out: "ready\nalive\n" });
  });
});
