import { readFileSync } from "node:fs";

// The user's process limit (RLIMIT_NPROC, `ulimit -u`). The kernel counts every thread of every
// process of the real user against it (root is not held to it), and refuses a thread or process
// past it with EAGAIN. C's programs are one thread each; a Node process is several, and Node or
// libuv meet a refused thread badly: libuv aborts, and Node's start waits for ever for a V8
// worker it failed to create.

/** The soft RLIMIT_NPROC from /proc/self/limits, or null: unlimited, root, or no /proc. */
function processLimit(): number | null {
  if (process.platform !== "linux" || process.getuid?.() === 0) {
    return null;
  }
  try {
    const m = /^Max processes\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "latin1"));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Whether the user may be within `margin` tasks of their process limit. The user cannot have
 * more tasks than the whole system has (/proc/loadavg's count), so while that total plus
 * `margin` is within the limit, as it nearly always is, the answer is no without counting.
 */
export function nearProcessLimit(margin: number): boolean {
  const limit = processLimit();
  if (limit === null) {
    return false;
  }
  try {
    const m = /^\S+ \S+ \S+ \d+\/(\d+)/.exec(readFileSync("/proc/loadavg", "latin1"));
    return m === null || Number(m[1]) + margin > limit;
  } catch {
    return true;
  }
}
