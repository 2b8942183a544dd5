import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "tests/**/*.test.ts"],
    // Real processes and sockets: give slow CI machines room, but never hang forever.
    testTimeout: 60_000,
    // Most files wait on processes, sockets and timers rather than the CPU: two files at a time
    // take about 60 % of the serial wall time on a 2-core machine (vitest's default there is one),
    // which keeps CI, the suite twice, well inside its time limit.
    maxWorkers: 2,
    hookTimeout: 60_000,
    setupFiles: ["./tests/helpers/own-home.ts", "./tests/helpers/guard-kill.ts"],
    reporters: ["default", "./tools/summary-reporter.ts"],
  },
});
