import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { getrlimit } from "../src/libc.js";
import { softLimit } from "../src/limits.js";

const limitsModule = fileURLToPath(new URL("../dist/limits.js", import.meta.url));

describe("softLimit", () => {
  it("reads a soft limit as the kernel holds it", () => {
    // RLIMIT_NOFILE is 7 on Linux.
    expect(softLimit("Max open files")).toBe(Number(getrlimit(7)!.soft));
  });

  it("reads unlimited as Infinity and a lowered limit as its number", () => {
    const script = `import(${JSON.stringify(limitsModule)}).then((m) => console.log(String(m.softLimit("Max address space"))))`;
    const unlimited = spawnSync("prlimit", ["--as=unlimited", process.execPath, "-e", script], { encoding: "utf8" });
    expect(unlimited.stdout).toBe("Infinity\n");
    const limited = spawnSync("prlimit", ["--as=5000000000:unlimited", process.execPath, "-e", script], { encoding: "utf8" });
    expect(limited.stdout).toBe("5000000000\n");
  });

  it("gives null for a line the kernel does not have", () => {
    expect(softLimit("Max dreams")).toBeNull();
  });
});
