import { defineConfig } from "vitest/config";

// `npm run soak`: the long soak of the daemon (tests/soak.soak.ts), kept out of `npm test`.
export default defineConfig({
  test: {
    include: ["tests/**/*.soak.ts"],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    setupFiles: ["./tests/helpers/own-home.ts"],
    globalSetup: ["./tests/helpers/leftovers.ts"],
  },
});
