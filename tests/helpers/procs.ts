import { readdirSync } from "node:fs";
import { capEff, parents, procStat, rssKiB, socketInodes, tcpInodes, threadNices, uptimeTicks } from "../../tools/procfs.mjs";

// What the tests learn about processes from /proc (tools/procfs.mjs reads it): the children of a
// daemon (its connection processes), their memory and the CPU time they use.

export { capEff, procStat, socketInodes, tcpInodes, threadNices, uptimeTicks };

/** The live processes whose parent is `ppid`. */
export function childrenOf(ppid: number): number[] {
  return [...parents()].filter(([, pp]) => pp === ppid).map(([pid]) => pid);
}

/** How many TCP connections (listening sockets aside) the process holds open. */
export function tcpConnectionsOf(pid: number): number {
  const listening = tcpInodes("0A");
  const tcp = tcpInodes();
  return socketInodes(pid).filter((i) => tcp.has(i) && !listening.has(i)).length;
}

/**
 * A daemon's connection processes: its children that hold a TCP connection. The warm spare (a
 * child waiting, with no socket yet, for the daemon to hand it the next one) is not one.
 */
export function connectionsOf(daemon: number): number[] {
  const tcp = tcpInodes();
  return childrenOf(daemon).filter((pid) => socketInodes(pid).some((i) => tcp.has(i)));
}

/**
 * The daemon's warm spare: its one child without a TCP connection, the same one throughout a
 * second of looking (a connection process that has just closed its socket is on its way out).
 * Looked at every 250 ms (each look reads all of /proc), so a spare that starts while we look
 * is taken a second after it is first seen, not at a later whole second. Bounded: 15 s.
 */
export async function waitSpare(daemon: number): Promise<number> {
  const idle = (): number[] => {
    const conns = connectionsOf(daemon);
    return childrenOf(daemon).filter((p) => !conns.includes(p));
  };
  const end = Date.now() + 15_000;
  let seen: { pid: number; since: number } | null = null;
  while (Date.now() < end) {
    const now = idle();
    if (now.length !== 1) seen = null;
    else if (seen === null || seen.pid !== now[0]) seen = { pid: now[0]!, since: Date.now() };
    else if (Date.now() - seen.since >= 1000) return seen.pid;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no single spare under ${daemon}`);
}

/** Resident memory in MiB, or null once the process is gone. */
export function rssMiB(pid: number): number | null {
  const kib = rssKiB(pid);
  return kib === null ? null : kib / 1024;
}

/** User plus system CPU time in clock ticks (utime + stime), or null once the process is gone. */
export function cpuTicks(pid: number): number | null {
  return procStat(pid)?.ticks ?? null;
}

/** When the process started, in clock ticks since boot (as /proc/uptime counts, at 100 a second), or null once gone. */
export function startTicks(pid: number): number | null {
  return procStat(pid)?.start ?? null;
}

/**
 * Whether process `pid` has let go of its descriptors: gone, or a zombie whose every thread has
 * exited (a killed process's main thread is a zombie while its other threads still hold them).
 */
export function filesReleased(pid: number): boolean {
  const st = procStat(pid);
  if (st === null) {
    return true;
  }
  try {
    return st.state === "Z" && readdirSync(`/proc/${pid}/task`).length === 1;
  } catch {
    return true; // gone meanwhile
  }
}

/** Open descriptors of a process (needs to be its owner or root). */
export function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/**
 * Open descriptors numbered below `below`: those a descriptor limit of up to `below` counts.
 * A descriptor inherited at a high number (the test runner's, such as 251) takes none of a low
 * limit's slots, so a limit set from openFds() would leave the process one more free per such.
 */
export function fdsBelow(pid: number, below: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) < below).length;
  } catch {
    return null;
  }
}
