import { readFileSync } from "node:fs";

/**
 * A soft resource limit as /proc/self/limits shows it, by the name on its line ("Max processes",
 * "Max address space"): a number, Infinity for "unlimited", or null where it cannot be read (no
 * /proc, another system). Read afresh each call: a program may lower its own limits.
 */
export function softLimit(name: string): number | null {
  if (process.platform !== "linux") {
    return null;
  }
  let text: string;
  try {
    text = readFileSync("/proc/self/limits", "latin1");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    if (line.startsWith(name)) {
      // Columns are padded to fixed widths: the name, then the soft and hard limits.
      const soft = line.slice(name.length).trim().split(/\s+/)[0];
      return soft === "unlimited" ? Infinity : soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : null;
    }
  }
  return null;
}
