import type fc from "fast-check";
import { DropbearExit, setLogHandler } from "@dropbear-ts/dbutil";

// Shared by the property tests of every package that reads bytes from the network. `npm test`
// runs each property a small, fixed number of times from a fixed seed, so CI sees the same
// inputs every time; `npm run fuzz` sets FUZZ_SCALE (runs are multiplied by it, and the seed is
// random) and FUZZ_SECONDS (each property stops there, passing, if it is not done). FUZZ_SEED
// replays a seed fast-check printed.

function envNumber(name: string): number | null {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : null;
}

/** fast-check parameters for a property worth `runs` runs in `npm test`. */
export function fuzzParams<T>(runs: number): fc.Parameters<T> {
  const scale = envNumber("FUZZ_SCALE");
  const seconds = envNumber("FUZZ_SECONDS");
  return {
    numRuns: scale === null ? runs : Math.ceil(runs * scale),
    ...fuzzSeed(),
    ...(seconds === null ? {} : { interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false }),
  };
}

/** The seed a run uses: FUZZ_SEED, else fixed for `npm test` and random (fast-check's) when fuzzing. */
function fuzzSeed(): { seed?: number } {
  const given = Number(process.env["FUZZ_SEED"]);
  if (process.env["FUZZ_SEED"] !== undefined && Number.isInteger(given)) return { seed: given };
  return envNumber("FUZZ_SCALE") === null ? { seed: FIXED_SEED } : {};
}

/** What `npm test` runs every property from. */
export const FIXED_SEED = 20261130;

/** vitest's timeout for a property test: room for FUZZ_SECONDS when fuzzing. */
export function fuzzTimeout(ms = 60_000): number {
  const seconds = envNumber("FUZZ_SECONDS");
  return seconds === null ? ms : Math.max(ms, seconds * 1000 + 60_000);
}

/**
 * Run fn with logging silenced. A DropbearExit (the session ends cleanly) is an allowed
 * outcome and returned; anything else thrown fails the property.
 */
export function cleanly(fn: () => void): DropbearExit | null {
  const prev = setLogHandler(() => undefined);
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof DropbearExit) {
      return e;
    }
    throw e;
  } finally {
    setLogHandler(prev);
  }
}

/** cleanly for async work: resolves to the DropbearExit it ended with, or null. */
export async function cleanlyAsync(fn: () => Promise<void>): Promise<DropbearExit | null> {
  const prev = setLogHandler(() => undefined);
  try {
    await fn();
    return null;
  } catch (e) {
    if (e instanceof DropbearExit) {
      return e;
    }
    throw e;
  } finally {
    setLogHandler(prev);
  }
}
