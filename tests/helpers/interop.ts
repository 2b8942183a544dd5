import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import type { BytesResult } from "./servers.js";

/** One peer's way of running `command` over a new connection, `input` on its stdin. */
export type RunCommand = (command: string, input?: Buffer | string) => Promise<BytesResult>;

/**
 * What every interop test checks of a session: a command's stdout, stderr and exit status come
 * through apart, and 3 MB through `cat` come back intact (flow control both ways at once).
 */
export async function expectCommandStreams(runCommand: RunCommand): Promise<void> {
  const r = await runCommand("cat; echo err >&2; exit 42", "some input\n");
  expect(r.status, r.err).toBe(42);
  expect(r.out.toString()).toBe("some input\n");
  expect(r.err).toContain("err\n");
  const data = randomBytes(3_000_000);
  const b = await runCommand("cat", data);
  expect(b.status, b.err).toBe(0);
  expect(b.out.equals(data)).toBe(true);
}
