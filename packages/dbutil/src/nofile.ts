import { type Rlimit, getrlimit, setrlimit } from "./libc.js";

// The soft limit on open descriptors a program was started with. Node raises its own soft limit
// to the hard one (at most 2^20) before any JavaScript runs and keeps no note of the old value;
// Dropbear's programs leave it alone, so the commands they start (a session's shell, a proxy
// command) get the limit the program was given: with systemd's default, 1024, the limit select()
// needs. So the bin scripts read it from /proc first (their first line is sh) and pass it here in
// the environment, and each child that is not one of our programs starts with it again.

/** Where the bin scripts pass /proc/self/limits's soft "Max open files" (a number, or "unlimited"). */
export const NOFILE_ENV = "DROPBEAR_TS_NOFILE";

/** RLIMIT_NOFILE, as Linux numbers it. */
const RLIMIT_NOFILE = 7;

/** The soft limit the program was started with, if a bin script said; else null. */
let inherited: bigint | null = null;

/**
 * Take the started-with limit out of the environment (so no child sees it unless we pass it) and
 * keep it. It is compared with the limit now only when a child starts: that takes the FFI
 * library, which most runs never load. dropbearMain calls it first, for every program.
 */
export function keepInheritedNofile(): void {
  const v = process.env[NOFILE_ENV];
  delete process.env[NOFILE_ENV];
  inherited = v !== undefined && /^[0-9]{1,19}$/.test(v) ? BigInt(v) : null;
}

/** The environment entry that hands the started-with limit to another copy of our own program. */
export function inheritedNofileEnv(): Record<string, string> {
  return inherited === null ? {} : { [NOFILE_ENV]: inherited.toString() };
}

/**
 * Run `start` (a synchronous fork or spawn of a program that is not ours) with the soft limit
 * the program was started with, so the child inherits it as a forked C child would, then raise
 * ours again. Whatever the process holds stays open meanwhile; only new descriptors above the
 * limit would fail, for the moment of the spawn.
 */
export function withInheritedNofile<T>(start: () => T): T {
  const now = inherited === null ? null : readNofile();
  if (now === null || inherited === null || inherited >= now.soft || !writeNofile({ soft: inherited, hard: now.hard })) {
    return start();
  }
  try {
    return start();
  } finally {
    writeNofile(now);
  }
}

/** The soft limit on open descriptors now, read afresh (prlimit(1) may move it), or Infinity if unknown. */
export function nofileSoftLimit(): number {
  const soft = readNofile()?.soft;
  return soft === undefined || soft > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(soft);
}

function readNofile(): Rlimit | null {
  try {
    return getrlimit(RLIMIT_NOFILE);
  } catch {
    return null; // no FFI here: nothing can be changed either
  }
}

function writeNofile(lim: Rlimit): boolean {
  try {
    return setrlimit(RLIMIT_NOFILE, lim);
  } catch {
    return false;
  }
}
