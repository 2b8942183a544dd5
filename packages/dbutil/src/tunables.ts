import { readFileSync } from "node:fs";
import { inheritedNofileEnv } from "./nofile.js";
import { ignoredSignalsEnv } from "./sigign.js";

// glibc's copies on AMD processors. glibc 2.36 (Debian 12's) copies 2 KiB and more with `rep
// movsb` on processors that have ERMS. On the AMD EPYC these programs were measured on (Zen 3 or
// later: it has FSRM), a 64 KiB copy that way ran at 1.7 GB/s instead of 20-40 when the
// destination sat in a window of some 40 offsets within a page relative to the source; later
// glibc releases stopped using `rep movsb` on those processors. Our programs copy every byte they
// read from a socket into the socket's ring, and whether those copies fell in the window followed
// from how the process had allocated its buffers: `dropbear -i` hit it on every connection,
// spending a fifth of its busy time in memmove under a bulk upload, and the daemon's connection
// processes did not (docs/process-model.md, "Copies on AMD processors"). glibc reads its tunables
// only as a process starts, so they are set in the environment of a program's start: by the bin
// scripts' sh line (tools/launch-bin.cjs) and by the daemon for its connection processes.

/** The tunable: `rep movsb` never (vector loops copy at the full rate at any offset). */
export const AMD_COPY_TUNABLES = "glibc.cpu.x86_rep_movsb_threshold=1099511627776";

/** Set to 1 beside GLIBC_TUNABLES by the bin scripts when they added it. */
export const LAUNCHER_TUNABLES_ENV = "DROPBEAR_TS_GLIBC_TUNABLES";

/** The processor's vendor_id from /proc/cpuinfo (x86 only), or null. */
export function cpuVendor(): string | null {
  if (process.arch !== "x64") return null;
  try {
    return /^vendor_id\s*:\s*(\S+)/m.exec(readFileSync("/proc/cpuinfo", "latin1"))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * The prefix a variable Node acts on as it starts is passed under, held back from that start,
 * and put back under its own name once the program runs: by the bin scripts for
 * NODE_EXTRA_CA_CERTS (LAUNCHER_HELD_CA_ENV) and by the daemon for its connection processes
 * (apps/dropbear's HELD_ENV).
 */
export const HELD_ENV_PREFIX = "DROPBEAR_TS_HELD_";

/**
 * Where the bin scripts hold NODE_EXTRA_CA_CERTS while Node starts (their sh line spells the
 * name out). Node parses that CA bundle as it starts, for TLS, which none of our programs
 * speaks: about 35 ms of every start with Debian's bundle here (dbclient `true`, 0.17 against
 * 0.20 s).
 */
export const LAUNCHER_HELD_CA_ENV = `${HELD_ENV_PREFIX}NODE_EXTRA_CA_CERTS`;

/** What the bin script added to this process's environment and restoreLauncherEnv took out. */
let launcherTunables: string | null = null;

/**
 * Undo what the bin script did to the environment for Node's and glibc's start: take out
 * GLIBC_TUNABLES if it added it (this process already runs with it) and put NODE_EXTRA_CA_CERTS
 * back, so every child of ours, a user's command included, gets the environment it would have
 * had. dropbearMain calls it first, for every program.
 */
export function restoreLauncherEnv(): void {
  if (process.env[LAUNCHER_TUNABLES_ENV] === "1") {
    launcherTunables = process.env.GLIBC_TUNABLES ?? null;
    delete process.env.GLIBC_TUNABLES;
  }
  delete process.env[LAUNCHER_TUNABLES_ENV];
  const ca = process.env[LAUNCHER_HELD_CA_ENV];
  if (ca !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = ca;
    delete process.env[LAUNCHER_HELD_CA_ENV];
  }
}

/**
 * `env` as a copy of this program that we start through `node` (dbclient's -f and multihop
 * copies, dropbear's daemonized one) needs it: with what the bin script gave us for the start
 * (the glibc tunable, the signals left ignored, the descriptor limit), and NODE_EXTRA_CA_CERTS
 * held back from it as the bin script holds it.
 */
export function launcherEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, ...ignoredSignalsEnv(), ...inheritedNofileEnv() };
  if (launcherTunables !== null) {
    out.GLIBC_TUNABLES = launcherTunables;
    out[LAUNCHER_TUNABLES_ENV] = "1";
  }
  if (out.NODE_EXTRA_CA_CERTS !== undefined) {
    out[LAUNCHER_HELD_CA_ENV] = out.NODE_EXTRA_CA_CERTS;
    delete out.NODE_EXTRA_CA_CERTS;
  }
  return out;
}

/**
 * The start of a count that may pass 2^31 over a process's life (bytes handed to a socket or
 * queued on a session): -0, which V8 holds as a double, so the field is a double from its first
 * value. A field that starts as a small integer is widened when its count passes 2^31 (2 GiB),
 * and V8 then retires its objects' shape and the optimized code of every function that uses
 * them: some 30 functions on each side deoptimized and compiled again in the middle of a transfer.
 */
export const LARGE_COUNT_ZERO = -0;
