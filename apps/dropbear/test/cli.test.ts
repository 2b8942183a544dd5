// Runs the real built bin (npm test builds first; or run `npx tsc -b`).
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
    expect(r.stderr).toMatch(/^Dropbear v2026\.94 \(dropbear-ts \d+\.\d+\.\d+[^)]*\)\n$/);
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

  it("refuses to start without any host key, as Dropbear does", () => {
    const r = run("-F", "-E", "-r", "/nonexistent/key", "-p", "127.0.0.1:0");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Failed loading \/nonexistent\/key\n/);
    expect(r.stderr).toMatch(/Early exit: No hostkeys available\. 'dropbear -R' may be useful or run dropbearkey\.\n$/);
  });

  it("-i with stdin that is not a socket (a file, /dev/null) is C's early exit, not a stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-inetd-"));
    try {
      const hk = join(dir, "hk");
      expect(spawnSync(process.execPath, ["apps/dropbearkey/bin/dropbearkey", "-t", "ed25519", "-f", hk], { cwd: root }).status).toBe(0);
      for (const stdin of ["/dev/null", hk]) {
        const fd = openSync(stdin, "r");
        const r = spawnSync(process.execPath, ["apps/dropbear/bin/dropbear", "-F", "-E", "-i", "-r", hk], { cwd: root, encoding: "utf8", stdio: [fd, "pipe", "pipe"] });
        closeSync(fd);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/^\[\d+\] \w{3} \d\d \d\d:\d\d:\d\d Early exit: Failed socket address: Socket operation on non-socket\n$/);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
