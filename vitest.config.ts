import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "tests/**/*.test.ts"],
    // Real processes and sockets: give slow CI machines room, but never hang forever.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", "./tools/summary-reporter.ts"],
  },
});
