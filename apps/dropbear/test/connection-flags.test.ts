import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { AMD_COPY_TUNABLES, cpuVendor } from "@dropbear-ts/dbutil";
import { READ_RING_SIZE } from "@dropbear-ts/netio";
import { CONNECTION_V8_FLAGS, connectionNodeFlags, connectionProgram, restoreConnectionEnv } from "../src/svr-main.js";

describe("connectionNodeFlags", () => {
  it("drops the daemon's profiler, inspector, report and watch flags, with a value given as the next argument", () => {
    expect(
      connectionNodeFlags([
        "--cpu-prof",
        "--cpu-prof-dir",
        "/tmp/p",
        "--cpu-prof-interval",
        "100",
        "--max-old-space-size=64",
        "--heap-prof-name=h",
        "--inspect=127.0.0.1:9229",
        "--diagnostic-dir",
        "/tmp/d",
        "--report-on-signal",
        "--report-signal",
        "SIGUSR2",
        "--stack-size=900",
      ]),
    ).toEqual(["--max-old-space-size=64", "--stack-size=900"]);
  });

  it("leaves out what the connection flags give already, as the bin scripts' --v8-pool-size=1", () => {
    expect(connectionNodeFlags(["--v8-pool-size=1", "--no-warnings"])).toEqual(["--no-warnings"]);
    expect(connectionNodeFlags(["--v8-pool-size=2"])).toEqual(["--v8-pool-size=2"]);
  });

  it("keeps every other flag as given", () => {
    expect(connectionNodeFlags(["--max-semi-space-size=2", "--no-warnings", "--enable-source-maps"])).toEqual([
      "--max-semi-space-size=2",
      "--no-warnings",
      "--enable-source-maps",
    ]);
  });
});

describe("the glibc settings a connection process starts with", () => {
  const NAMES = ["MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES", "DROPBEAR_TS_CONNECTION_ENV"];
  const amd = cpuVendor() === "AuthenticAMD";
  const saved = Object.fromEntries(NAMES.map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const k of NAMES) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it("are added where the daemon's environment lacks them, and taken out again as the process starts", () => {
    for (const k of NAMES) delete process.env[k];
    const { env } = connectionProgram();
    expect(env.MALLOC_ARENA_MAX).toBe("1");
    expect(env.MALLOC_TOP_PAD_).toBe("0");
    // Above the 320 KiB rings, which would otherwise each be an mmap and a munmap.
    expect(env.MALLOC_MMAP_THRESHOLD_).toBe(String(512 * 1024));
    // Above the buffer it is there for, with malloc's 16-byte chunk header: each socket's read
    // ring, which glibc would otherwise map and unmap one by one.
    expect(Number(env.MALLOC_MMAP_THRESHOLD_)).toBeGreaterThan(READ_RING_SIZE + 16);
    // On an AMD processor, copies without `rep movsb` (dbutil's tunables.ts).
    expect(env.GLIBC_TUNABLES).toBe(amd ? AMD_COPY_TUNABLES : undefined);
    expect(env.DROPBEAR_TS_CONNECTION_ENV).toBe(amd ? "MALLOC_ARENA_MAX,MALLOC_TOP_PAD_,MALLOC_MMAP_THRESHOLD_,GLIBC_TUNABLES" : "MALLOC_ARENA_MAX,MALLOC_TOP_PAD_,MALLOC_MMAP_THRESHOLD_");
    for (const k of NAMES) if (env[k] !== undefined) process.env[k] = env[k];
    restoreConnectionEnv();
    for (const k of NAMES) expect(process.env[k]).toBeUndefined();
  });

  it("keep a GLIBC_TUNABLES the daemon was given as it is", () => {
    for (const k of NAMES) delete process.env[k];
    process.env.GLIBC_TUNABLES = "glibc.malloc.arena_max=4";
    const { env } = connectionProgram();
    expect(env.GLIBC_TUNABLES).toBe("glibc.malloc.arena_max=4");
    expect(env.DROPBEAR_TS_CONNECTION_ENV).toBe("MALLOC_ARENA_MAX,MALLOC_TOP_PAD_,MALLOC_MMAP_THRESHOLD_");
  });

  it("leave a value the daemon was given alone, there and in the session's environment", () => {
    for (const k of NAMES) delete process.env[k];
    process.env.MALLOC_ARENA_MAX = "4";
    const { env } = connectionProgram();
    expect(env.MALLOC_ARENA_MAX).toBe("4");
    expect(env.DROPBEAR_TS_CONNECTION_ENV).toBe(amd ? "MALLOC_TOP_PAD_,MALLOC_MMAP_THRESHOLD_,GLIBC_TUNABLES" : "MALLOC_TOP_PAD_,MALLOC_MMAP_THRESHOLD_");
    Object.assign(process.env, { MALLOC_TOP_PAD_: env.MALLOC_TOP_PAD_, MALLOC_MMAP_THRESHOLD_: env.MALLOC_MMAP_THRESHOLD_, DROPBEAR_TS_CONNECTION_ENV: env.DROPBEAR_TS_CONNECTION_ENV });
    if (env.GLIBC_TUNABLES !== undefined) process.env.GLIBC_TUNABLES = env.GLIBC_TUNABLES;
    restoreConnectionEnv();
    expect(process.env.MALLOC_ARENA_MAX).toBe("4");
    expect(process.env.MALLOC_TOP_PAD_).toBeUndefined();
    expect(process.env.MALLOC_MMAP_THRESHOLD_).toBeUndefined();
    expect(process.env.GLIBC_TUNABLES).toBeUndefined();
    expect(process.env.DROPBEAR_TS_CONNECTION_ENV).toBeUndefined();
  });

  it("hold back what Node acts on as it starts, under another name, and give it back as the process starts", () => {
    const HELD = ["NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "DROPBEAR_TS_HELD_NODE_OPTIONS", "DROPBEAR_TS_HELD_NODE_EXTRA_CA_CERTS", "DROPBEAR_TS_HELD_PATH"];
    const before = Object.fromEntries(HELD.map((k) => [k, process.env[k]]));
    try {
      for (const k of [...NAMES, ...HELD]) delete process.env[k];
      Object.assign(process.env, { NODE_OPTIONS: "--max-old-space-size=200", NODE_EXTRA_CA_CERTS: "/etc/ca.pem", DROPBEAR_TS_HELD_PATH: "/daemon's/own" });
      const { env } = connectionProgram();
      expect(env.NODE_OPTIONS).toBeUndefined();
      expect(env.NODE_EXTRA_CA_CERTS).toBeUndefined();
      expect(env.DROPBEAR_TS_HELD_NODE_OPTIONS).toBe("--max-old-space-size=200");
      expect(env.DROPBEAR_TS_HELD_NODE_EXTRA_CA_CERTS).toBe("/etc/ca.pem");
      // A name already in the daemon's environment with the prefix is not passed on.
      expect(env.DROPBEAR_TS_HELD_PATH).toBeUndefined();

      for (const k of HELD) delete process.env[k];
      // ... and a prefixed name that is not one held back is dropped, not turned into PATH.
      Object.assign(process.env, { DROPBEAR_TS_HELD_NODE_OPTIONS: env.DROPBEAR_TS_HELD_NODE_OPTIONS, DROPBEAR_TS_HELD_NODE_EXTRA_CA_CERTS: env.DROPBEAR_TS_HELD_NODE_EXTRA_CA_CERTS, DROPBEAR_TS_HELD_PATH: "/x", DROPBEAR_TS_CONNECTION_ENV: env.DROPBEAR_TS_CONNECTION_ENV });
      const path = process.env.PATH;
      restoreConnectionEnv();
      expect(process.env.NODE_OPTIONS).toBe("--max-old-space-size=200");
      expect(process.env.NODE_EXTRA_CA_CERTS).toBe("/etc/ca.pem");
      expect(process.env.PATH).toBe(path);
      for (const k of HELD.slice(2)) expect(process.env[k]).toBeUndefined();
    } finally {
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe("collectYoungGeneration", () => {
  it("runs two young-generation collections in a fresh connection process, which leave its young generation all but empty", () => {
    // A process of its own with a connection process's flags, as the spare runs it: a test
    // worker's heap, grown by the files before this one, collects on its own terms.
    const mod = JSON.stringify(new URL("../dist/svr-main.js", import.meta.url).href);
    const script = [
      `const { collectYoungGeneration } = await import(${mod});`,
      `const { getHeapSpaceStatistics } = await import("node:v8");`,
      `const { PerformanceObserver, constants } = await import("node:perf_hooks");`,
      "const kinds = [];",
      "let t0 = Infinity, t1 = -Infinity;",
      // A "gc" entry's detail says which collector ran; only those the call made count (a loaded
      // machine may add V8's own scavenge while the result waits for its timer).
      `new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.startTime >= t0 && e.startTime <= t1) kinds.push(e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR ? "minor" : "other"); }).observe({ entryTypes: ["gc"] });`,
      `const used = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_used_size;`,
      "t0 = performance.now();",
      "collectYoungGeneration();",
      "t1 = performance.now();",
      "const after = used();",
      "setTimeout(() => console.log(JSON.stringify({ after, kinds })), 20);",
    ].join(" ");
    const r = spawnSync(process.execPath, [...CONNECTION_V8_FLAGS, "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const { after, kinds } = JSON.parse(r.stdout) as { after: number; kinds: string[] };
    // Two, or now and then three (4 of 30 fresh processes here): the used size is checked once
    // per 16 arrays, and a collection in a batch can go uncounted. Young-generation ones only.
    expect(kinds.length).toBeGreaterThanOrEqual(2);
    expect(kinds.length).toBeLessThanOrEqual(3);
    expect(kinds.every((k) => k === "minor")).toBe(true);
    // What the second collection left, and at most the last 16 throwaway arrays after it.
    expect(after).toBeLessThan(512 * 1024);
  });
});
