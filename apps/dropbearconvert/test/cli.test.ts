// Runs the real built bin (npm test builds first; or run `npx tsc -b`).
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ["apps/dropbearconvert/bin/dropbearconvert", ...args], { cwd: root, encoding: "utf8" });

describe("bin/dropbearconvert", () => {
  // dropbearconvert takes no flags in Dropbear: -h and -V are a wrong argument count.
  it.each(["-h", "-V"])("%s prints the usage to stderr and exits 1, as Dropbear does", (flag) => {
    const r = run(flag);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^All arguments must be specified\nUsage: dropbearconvert <inputtype> <outputtype> <inputfile> <outputfile>\n/,
    );
  });

  it("checks the types by their first letter", () => {
    expect(run("x", "d", "in", "out").stderr).toMatch(/^Invalid input key type\nUsage:/);
    expect(run("openssh", "zz", "in", "out").stderr).toMatch(/^Invalid output key type\nUsage:/);
  });

  it("a missing input file is reported with Dropbear's messages, status 1", () => {
    const r = run("o", "dropbear", "/nonexistent/in", "/nonexistent/out");
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("Error: Unable to open key file\nError reading key from '/nonexistent/in'\n");
    // A directory opens, as C's fopen() opens it, and its first read fails.
    const d = run("o", "dropbear", tmpdir(), "/nonexistent/out");
    expect(d.status).toBe(1);
    expect(d.stderr).toBe(`Error: Short input\nError reading key from '${tmpdir()}'\n`);
  });

  it("a failed write of the output ('-' on a full disk) is an error, status 1, not a stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-convfull-"));
    const full = openSync("/dev/full", "w");
    try {
      const key = join(dir, "k");
      expect(spawnSync(process.execPath, ["apps/dropbearkey/bin/dropbearkey", "-t", "ed25519", "-f", key], { cwd: root }).status).toBe(0);
      const r = spawnSync(process.execPath, ["apps/dropbearconvert/bin/dropbearconvert", "dropbear", "openssh", key, "-"], { cwd: root, encoding: "utf8", stdio: ["ignore", full, "pipe"] });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe("Key is a ssh-ed25519 key\nFailed writing output file: No space left on device\nError writing key to '-'\n");
    } finally {
      closeSync(full);
      rmSync(dir, { recursive: true });
    }
  });
});
