import { spawnSync } from "node:child_process";
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
