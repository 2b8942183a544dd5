// Runs the real built bin (npm test builds first; or run `npx tsc -b`).
import { spawnSync } from "node:child_process";
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
  });
});
