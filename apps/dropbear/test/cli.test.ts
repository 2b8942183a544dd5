// Runs the real built bin (npm test builds first; or run `npx tsc -b`).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ["apps/dropbear/bin/dropbear", ...args], { cwd: root, encoding: "utf8" });

describe("bin/dropbear", () => {
  it("-h prints the usage to stderr and exits 0", () => {
    const r = run("-h");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Dropbear server v2026\.94/);
    expect(r.stderr).toContain("Usage: dropbear [options]");
  });

  it("-V prints the version to stderr and exits 0", () => {
    const r = run("-V");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("Dropbear v2026.94\n");
  });

  it("an unknown flag prints the usage and exits 1", () => {
    const r = run("-FX");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^Invalid option -X\nDropbear server/);
  });

  it("a bad argument is an early exit with status 1", () => {
    const r = run("-p", "host:");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^\[\d+\] \w{3} \d\d \d\d:\d\d:\d\d Early exit: Bad port\n$/);
  });

  it("a valid command line says plainly that the server is not implemented yet", () => {
    const r = run("-F", "-E", "-p", "2222");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("dropbear: not yet implemented in dropbear-ts: the SSH server\n");
  });
});
