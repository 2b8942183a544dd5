import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";

// In a process of its own: keepIgnoredSignals changes the process's signal dispositions.
function inChild(env: Record<string, string>, script: string): { out: string; err: string } {
  const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
  const body = `const d = await import(${mod}); d.keepIgnoredSignals(); ${script}`;
  const r = spawnSync(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${body} })()`], { encoding: "utf8", env: { ...process.env, ...env } });
  return { out: r.stdout.trim(), err: r.stderr };
}

const report = `console.log(JSON.stringify([d.ignoredSignals(), d.ignoredSignalsEnv(), process.env.DROPBEAR_TS_SIGIGN ?? null]));`;

describe("signals inherited ignored (sigign.ts)", () => {
  it("ignores again the kept signals of the mask, takes the variable out of the environment and hands the set on", () => {
    // HUP, QUIT, USR1, PIPE (Node's own) and CHLD (never kept): HUP, QUIT and USR1 come back.
    const r = inChild({ DROPBEAR_TS_SIGIGN: (1 | 4 | (1 << 9) | (1 << 12) | (1 << 16)).toString(16) }, report);
    expect(r.err).toBe("");
    expect(JSON.parse(r.out)).toEqual([["SIGHUP", "SIGQUIT", "SIGUSR1"], { DROPBEAR_TS_SIGIGN: "205" }, null]);
  });

  it("a listener replaces SIG_IGN, as a C handler does: that signal is no longer handed on", () => {
    const r = inChild({ DROPBEAR_TS_SIGIGN: "3" }, `process.on("SIGINT", () => {}); ${report} process.exit(0);`);
    expect(JSON.parse(r.out)).toEqual([["SIGHUP"], { DROPBEAR_TS_SIGIGN: "1" }, null]);
  });

  it("an ignored signal does nothing; the process lives on", () => {
    const r = inChild({ DROPBEAR_TS_SIGIGN: "1" }, `process.kill(process.pid, "SIGHUP"); setTimeout(() => console.log("alive"), 50);`);
    expect(r.out).toBe("alive");
  });

  it("no variable, an empty one (no /proc) or garbage: nothing is ignored", () => {
    for (const v of [undefined, "", "xyz", "1".repeat(17), "-1"]) {
      const r = inChild(v === undefined ? {} : { DROPBEAR_TS_SIGIGN: v }, report);
      expect(JSON.parse(r.out), String(v)).toEqual([[], {}, null]);
    }
  });
});

describe("readAnswerLine (sigign.ts)", () => {
  // A signal landing between two reads of an answer interrupts neither: the line reader must see
  // it before its next read, or that read waits for an Enter that may never come. raise(3) here
  // delivers it before the first read, with "ab" waiting and no newline behind it.
  it("stops before its next read once a signal readInterruptibly catches has come", async () => {
    const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
    const body =
      `const d = await import(${mod}); process.on("SIGINT", () => { console.log("SIGINT"); process.exit(3); }); ` +
      `const raise = d.libcFunc("int raise(int sig)"); ` +
      `const line = d.readInterruptibly(() => { raise(2); return d.readAnswerLine(0, 100); }); console.log("returned " + line.length);`;
    // stdin stays open behind "ab": a read after them would wait.
    const child = spawn(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${body} })()`], { stdio: ["pipe", "pipe", "inherit"] });
    child.stdin.write("ab");
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    const [status] = (await once(child, "exit")) as [number | null];
    clearTimeout(timer);
    child.stdin.destroy();
    expect(out.trim()).toBe("SIGINT");
    expect(status).toBe(3);
  });

  it("reads up to and with the newline, no further; at most max bytes; nothing at end of file", () => {
    const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
    const body = `const d = await import(${mod}); const r = []; for (let i = 0; i < 4; i++) r.push(d.readAnswerLine(0, 4).toString()); console.log(JSON.stringify(r));`;
    const child = spawnSync(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${body} })()`], { input: "y\nabcdef", encoding: "utf8", timeout: 10_000 });
    expect(JSON.parse(child.stdout)).toEqual(["y\n", "abcd", "ef", ""]);
  });
});
