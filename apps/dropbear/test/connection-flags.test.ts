import { describe, expect, it } from "vitest";
import { connectionNodeFlags } from "../src/svr-main.js";

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
