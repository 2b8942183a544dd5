import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "tests/**/*.test.ts"],
    // Real processes and sockets: give slow CI machines room, but never hang forever.
    testTimeout: 60_000,
    // Most files wait on processes, sockets and timers rather than the CPU: with two files at a
    // time a 2-core machine stood about 45 % idle through the suite (vmstat), with three about
    // 2 %, and the suite took 574 s instead of about 615 (vitest's default there is one). That
    // keeps CI, the suite twice, inside its time limit.
    maxWorkers: 3,
    hookTimeout: 60_000,
    setupFiles: ["./tests/helpers/own-home.ts", "./tests/helpers/guard-kill.ts"],
    globalSetup: ["./tests/helpers/leftovers.ts"],
    reporters: ["default", "./tools/summary-reporter.ts"],
  },
});
