// Runs the real built bin (npm test builds first; or run `npx tsc -b`).
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ["apps/dropbearkey/bin/dropbearkey", ...args], { cwd: root, encoding: "utf8" });

describe("bin/dropbearkey", () => {
  it("-h prints the usage to stderr and exits 0", () => {
    const r = run("-h");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Usage: dropbearkey -t <type> -f <filename> \[-s bits\]\n/);
  });

  it("-V is not a dropbearkey flag in Dropbear: unknown argument, usage, status 1", () => {
    const r = run("-V");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^Unknown argument -V\nUsage: dropbearkey/);
  });

  it("needs a file name", () => {
    const r = run("-t", "rsa");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^Must specify a key filename\nUsage:/);
  });

  it("checks the type and size", () => {
    expect(run("-t", "dss", "-f", "k").stderr).toMatch(/^Unknown key type 'dss'\n/);
    expect(run("-t", "rsa", "-f", "k", "-s", "big").stderr).toBe("Bits must be an integer\n");
    const r = run("-t", "rsa", "-f", "k", "-s", "1000");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("Exited: Bits must satisfy 1024 <= bits <= 4096, and be a multiple of 8\n\n");
    expect(run("-f", "k", "-N", "secret").stderr).toBe("Only empty passphrase is supported\n");
  });

  it("-y without a readable file fails with Dropbear's message and status 255", () => {
    const r = run("-y", "-f", "/nonexistent/k");
    expect(r.status).toBe(255);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("Failed reading '/nonexistent/k'\n");
  });

  it("-y into a pipe its reader has left dies by SIGPIPE, silently, as C's does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-keypipe-"));
    try {
      expect(run("-t", "ed25519", "-f", join(dir, "k")).status).toBe(0);
      const child = spawn(process.execPath, ["apps/dropbearkey/bin/dropbearkey", "-y", "-f", join(dir, "k")], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.destroy();
      let err = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
      const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
      expect({ code, signal, err }).toEqual({ code: null, signal: "SIGPIPE", err: "" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
