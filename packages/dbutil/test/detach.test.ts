import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// In a process of its own: runDetachedCopy starts a copy of the running program and listens for
// signals. `-e` scripts have no program file, so the copy is a `node -e` of the same script.
function inChild(script: string): { out: string; err: string } {
  const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
  const body = `const d = await import(${mod}); ${script}`;
  const r = spawnSync(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${body} })()`], {
    encoding: "utf8",
    timeout: 20_000,
  });
  return { out: r.stdout.trim(), err: r.stderr };
}

describe("a detached copy (detach.ts)", () => {
  it("the foreground process resolves 0 once the copy reports, and the copy's status if it ends first", () => {
    const ready = inChild(
      `if (d.isDetachedCopy()) { d.detachedCopyReady(); setTimeout(() => {}, 200); }
       else { console.log(await d.runDetachedCopy(["ignore", "ignore", "inherit"], "Backgrounding failed")); }`,
    );
    expect(ready.out).toBe("0");
    const failed = inChild(
      `if (d.isDetachedCopy()) process.exit(3);
       else console.log(await d.runDetachedCopy(["ignore", "ignore", "inherit"], "Backgrounding failed"));`,
    );
    expect(failed.out).toBe("3");
  });

  it("a copy that cannot be started ends the program with the given message, as C's failed daemon() does", () => {
    // (ENOENT here; EAGAIN or ENOMEM from a real fork failure take the same path.)
    const r = inChild(
      `process.execPath = "/nonexistent/node";
       try { await d.runDetachedCopy(["ignore", "ignore", "inherit"], "Failed to daemonize"); console.log("resolved"); }
       catch (e) { console.log(e.name + ": " + e.exitcode + ": " + e.message); }
       console.log(process.listenerCount("SIGINT"));`,
    );
    expect(r.err).toBe("");
    expect(r.out.split("\n")).toEqual(["DropbearExit: 1: Failed to daemonize: spawn /nonexistent/node ENOENT", "0"]);
  });
});
