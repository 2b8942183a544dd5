import { readFileSync, readdirSync } from "node:fs";
import { softLimit } from "./limits.js";

// The user's process limit (RLIMIT_NPROC, `ulimit -u`). The kernel counts every thread of every
// process of the real user against it (root is not held to it), and refuses a thread or process
// past it with EAGAIN. C's programs are one thread each; a Node process is several, and Node or
// libuv meet a refused thread badly: libuv aborts, and Node's start waits for ever for a V8
// worker it failed to create.

/** The soft RLIMIT_NPROC from /proc/self/limits, or null: unlimited, root, or no /proc. */
function processLimit(): number | null {
  if (process.getuid?.() === 0) {
    return null;
  }
  const limit = softLimit("Max processes");
  return limit === Infinity ? null : limit;
}

/**
 * Whether the user may be within `margin` tasks of their process limit. The user cannot have
 * more tasks than the whole system has (/proc/loadavg's count), so while that total plus
 * `margin` is within the limit, as it nearly always is, the answer is no without counting.
 */
export function nearProcessLimit(margin: number): boolean {
  return nearLimit(processLimit(), margin);
}

/** nearProcessLimit for a limit already read. */
function nearLimit(limit: number | null, margin: number): boolean {
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

/** The tasks (threads) of the processes whose real uid is ours, as the kernel counts them for the limit. */
function userTasks(): number {
  const uid = String(process.getuid!());
  let tasks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "latin1");
      if (/^Uid:\s+(\d+)/m.exec(status)?.[1] === uid) {
        tasks += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return tasks;
}

/**
 * The threads a Node process must start before any of its code runs: its main thread, the
 * platform's delayed-task thread and one V8 worker (the bins run Node with --v8-pool-size=1).
 * Without the second Node aborts with an assertion; without the third it waits for ever.
 */
const NODE_START_TASKS = 3;

/**
 * Null when a new Node process (a copy of this program) can get through its start under the
 * user's process limit; else the error spawn's EAGAIN would have given, for the caller to
 * report as C reports its failed fork. Counted only near the limit (nearProcessLimit).
 */
export function nodeStartRefused(): Error | null {
  const limit = processLimit();
  if (limit === null || !nearLimit(limit, NODE_START_TASKS + 16) || userTasks() + NODE_START_TASKS <= limit) {
    return null;
  }
  return Object.assign(new Error(`spawn ${process.execPath} EAGAIN`), { code: "EAGAIN" });
}
