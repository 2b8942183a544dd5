import { readFileSync } from "node:fs";

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

/** What the bin script added to this process's environment and dropLauncherTunables took out. */
let launcherTunables: string | null = null;

/**
 * Take GLIBC_TUNABLES out of the environment if the bin script added it (this process already
 * runs with it), so no child of ours inherits it: a user's command gets the environment it
 * would have had. dropbearMain calls it first, for every program.
 */
export function dropLauncherTunables(): void {
  if (process.env[LAUNCHER_TUNABLES_ENV] === "1") {
    launcherTunables = process.env.GLIBC_TUNABLES ?? null;
    delete process.env.GLIBC_TUNABLES;
  }
  delete process.env[LAUNCHER_TUNABLES_ENV];
}

/**
 * The environment a copy of this program that we start through `node` (dbclient's -f and
 * multihop copies, dropbear's daemonized one) needs to run with what the bin script gave us.
 */
export function launcherTunablesEnv(): Record<string, string> {
  return launcherTunables === null ? {} : { GLIBC_TUNABLES: launcherTunables, [LAUNCHER_TUNABLES_ENV]: "1" };
}
