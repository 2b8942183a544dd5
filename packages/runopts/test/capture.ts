// Run a parser with stdout, stderr and the log handler captured, catching its exit.
import { vi } from "vitest";
import { DropbearExit, set_debug_trace, setLogHandler } from "@dropbear-ts/dbutil";
import { QuietExit } from "@dropbear-ts/dbutil";

export interface Captured<T> {
  result: T | undefined;
  /** The DropbearExit (or QuietExit) thrown, if any. */
  exit: DropbearExit | undefined;
  stdout: string;
  stderr: string;
  logs: string[];
}

export function capture<T>(fn: () => T): Captured<T> {
  let stdout = "";
  let stderr = "";
  const logs: string[] = [];
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const prevLog = setLogHandler((_priority, msg) => logs.push(msg));
  let result: T | undefined;
  let exit: DropbearExit | undefined;
  try {
    result = fn();
  } catch (e) {
    if (!(e instanceof DropbearExit)) {
      throw e;
    }
    exit = e;
  } finally {
    out.mockRestore();
    err.mockRestore();
    setLogHandler(prevLog);
    set_debug_trace(0);
  }
  return { result, exit, stdout, stderr, logs };
}

/** The exit was a quiet one (C's plain exit()) with this status. */
export function isQuiet(exit: DropbearExit | undefined, status: number): boolean {
  return exit instanceof QuietExit && exit.exitcode === status;
}
