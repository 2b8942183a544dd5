import { afterEach, describe, expect, it } from "vitest";
import { connectionNodeFlags, connectionProgram, dropConnectionEnv } from "../src/svr-main.js";

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

  it("keeps every other flag as given", () => {
    expect(connectionNodeFlags(["--max-semi-space-size=2", "--no-warnings", "--enable-source-maps"])).toEqual([
      "--max-semi-space-size=2",
      "--no-warnings",
      "--enable-source-maps",
    ]);
  });
});

describe("the malloc settings a connection process starts with", () => {
  const NAMES = ["MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_", "DROPBEAR_TS_CONNECTION_ENV"];
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
    expect(env.DROPBEAR_TS_CONNECTION_ENV).toBe("MALLOC_ARENA_MAX,MALLOC_TOP_PAD_");
    Object.assign(process.env, { MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX, MALLOC_TOP_PAD_: env.MALLOC_TOP_PAD_, DROPBEAR_TS_CONNECTION_ENV: env.DROPBEAR_TS_CONNECTION_ENV });
    dropConnectionEnv();
    for (const k of NAMES) expect(process.env[k]).toBeUndefined();
  });

  it("leave a value the daemon was given alone, there and in the session's environment", () => {
    for (const k of NAMES) delete process.env[k];
    process.env.MALLOC_ARENA_MAX = "4";
    const { env } = connectionProgram();
    expect(env.MALLOC_ARENA_MAX).toBe("4");
    expect(env.DROPBEAR_TS_CONNECTION_ENV).toBe("MALLOC_TOP_PAD_");
    Object.assign(process.env, { MALLOC_TOP_PAD_: env.MALLOC_TOP_PAD_, DROPBEAR_TS_CONNECTION_ENV: env.DROPBEAR_TS_CONNECTION_ENV });
    dropConnectionEnv();
    expect(process.env.MALLOC_ARENA_MAX).toBe("4");
    expect(process.env.MALLOC_TOP_PAD_).toBeUndefined();
    expect(process.env.DROPBEAR_TS_CONNECTION_ENV).toBeUndefined();
  });
});
