// Runs the real built bin (npm test builds first; or run `npx tsc -b`).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ["apps/dbclient/bin/dbclient", ...args], { cwd: root, encoding: "utf8" });

describe("bin/dbclient", () => {
  it("-h prints the usage to stderr and exits 0", () => {
    const r = run("-h");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Dropbear SSH client v2026\.94/);
    expect(r.stderr).toContain("Usage: dbclient [options] [user@]host");
  });

  it("-V prints the version to stderr and exits 0", () => {
    const r = run("-V");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Dropbear v2026\.94 \(dropbear-ts \d+\.\d+\.\d+[^)]*\)\n$/);
  });

  it("no host: usage, then an exit message, status 1", () => {
    const r = run();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Usage: dbclient");
    expect(r.stderr).toMatch(/\n\ndbclient: Exited: Remote host needs to be provided\.\n$/);
  });

  it("-o help lists the options and exits 0", () => {
    const r = run("-o", "help");
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^dbclient: Available options:\n\tBatchMode\n/);
  });

  it("a bad forward exits 1 with Dropbear's message", () => {
    const r = run("-L", "1:2", "host");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("\ndbclient: Exited: Bad TCP forward '1:2'\n");
  });

  it("a valid command line connects, and reports a refused connection as Dropbear does", () => {
    const r = run("-T", "-p", "1", "user@127.0.0.1", "uptime");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dbclient: Connection to user@127\.0\.0\.1:1 exited: Connect failed: Connection refused\n$/);
  });

  it("names an IPv6 host in brackets in its exit line, as Dropbear 2026.94", () => {
    const r = run("-T", "-p", "1", "user@::1", "uptime");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dbclient: Connection to user@\[::1\]:1 exited: Connect failed: Connection refused\n$/);
  });
});
