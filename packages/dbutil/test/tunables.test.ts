import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { AMD_COPY_TUNABLES, LAUNCHER_HELD_CA_ENV, LAUNCHER_TUNABLES_ENV, cpuVendor, launcherEnv, restoreLauncherEnv } from "../src/tunables.js";

describe("glibc's copies on AMD processors (tunables.ts)", () => {
  const names = ["GLIBC_TUNABLES", LAUNCHER_TUNABLES_ENV, "NODE_EXTRA_CA_CERTS", LAUNCHER_HELD_CA_ENV] as const;
  const saved = names.map((k) => [k, process.env[k]] as const);
  afterEach(() => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("takes out what the bin script added, so a child of ours starts without it, and gives it to a copy of the program", () => {
    delete process.env.NODE_EXTRA_CA_CERTS;
    expect(launcherEnv({ A: "1" })).toEqual({ A: "1" });
    Object.assign(process.env, { GLIBC_TUNABLES: AMD_COPY_TUNABLES, [LAUNCHER_TUNABLES_ENV]: "1" });
    restoreLauncherEnv();
    expect(process.env.GLIBC_TUNABLES).toBeUndefined();
    expect(process.env[LAUNCHER_TUNABLES_ENV]).toBeUndefined();
    // dbclient's -f and multihop copies and dropbear's daemonized one start through node.
    expect(launcherEnv({ A: "1" })).toEqual({ A: "1", GLIBC_TUNABLES: AMD_COPY_TUNABLES, [LAUNCHER_TUNABLES_ENV]: "1" });
  });

  it("puts NODE_EXTRA_CA_CERTS back, as it was (empty too), and holds it back from a copy's start", () => {
    for (const v of ["/etc/ssl/certs/ca-certificates.crt", ""]) {
      delete process.env.NODE_EXTRA_CA_CERTS;
      process.env[LAUNCHER_HELD_CA_ENV] = v;
      restoreLauncherEnv();
      expect(process.env.NODE_EXTRA_CA_CERTS).toBe(v);
      expect(process.env[LAUNCHER_HELD_CA_ENV]).toBeUndefined();
      const env = launcherEnv({ ...process.env });
      expect(env.NODE_EXTRA_CA_CERTS).toBeUndefined();
      expect(env[LAUNCHER_HELD_CA_ENV]).toBe(v);
    }
  });

  it("leaves GLIBC_TUNABLES alone when the program was given it", () => {
    delete process.env[LAUNCHER_TUNABLES_ENV];
    process.env.GLIBC_TUNABLES = "glibc.malloc.arena_max=4";
    restoreLauncherEnv();
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
