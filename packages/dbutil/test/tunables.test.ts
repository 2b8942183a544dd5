import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { AMD_COPY_TUNABLES, LAUNCHER_TUNABLES_ENV, cpuVendor, dropLauncherTunables, launcherTunablesEnv } from "../src/tunables.js";

describe("glibc's copies on AMD processors (tunables.ts)", () => {
  const saved = { t: process.env.GLIBC_TUNABLES, m: process.env[LAUNCHER_TUNABLES_ENV] };
  afterEach(() => {
    for (const [k, v] of [["GLIBC_TUNABLES", saved.t], [LAUNCHER_TUNABLES_ENV, saved.m]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("takes out what the bin script added, so a child of ours starts without it, and gives it to a copy of the program", () => {
    expect(launcherTunablesEnv()).toEqual({});
    Object.assign(process.env, { GLIBC_TUNABLES: AMD_COPY_TUNABLES, [LAUNCHER_TUNABLES_ENV]: "1" });
    dropLauncherTunables();
    expect(process.env.GLIBC_TUNABLES).toBeUndefined();
    expect(process.env[LAUNCHER_TUNABLES_ENV]).toBeUndefined();
    // dbclient's -f and multihop copies and dropbear's daemonized one start through node.
    expect(launcherTunablesEnv()).toEqual({ GLIBC_TUNABLES: AMD_COPY_TUNABLES, [LAUNCHER_TUNABLES_ENV]: "1" });
  });

  it("leaves GLIBC_TUNABLES alone when the program was given it", () => {
    delete process.env[LAUNCHER_TUNABLES_ENV];
    process.env.GLIBC_TUNABLES = "glibc.malloc.arena_max=4";
    dropLauncherTunables();
    expect(process.env.GLIBC_TUNABLES).toBe("glibc.malloc.arena_max=4");
  });

  it("reads the vendor from /proc/cpuinfo on x86-64 only", () => {
    const line = process.arch === "x64" ? /^vendor_id\s*:\s*(\S+)/m.exec(readFileSync("/proc/cpuinfo", "latin1"))?.[1] : undefined;
    expect(cpuVendor()).toBe(line ?? null);
  });

  it("is a setting glibc knows: `rep movsb` from 1 TiB up, that is never", () => {
    expect(AMD_COPY_TUNABLES).toBe("glibc.cpu.x86_rep_movsb_threshold=1099511627776");
  });
});
