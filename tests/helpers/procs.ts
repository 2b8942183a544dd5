import { readFileSync, readdirSync, readlinkSync } from "node:fs";

// What the tests learn about processes from /proc: the children of a daemon (its connection
// processes), their memory and the CPU time they use.

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces). */
function statFields(pid: number): string[] | null {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return st.slice(st.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** The live processes whose parent is `ppid`. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const f = statFields(Number(p));
    // f[0] is the state: a zombie has already ended.
    if (f !== null && Number(f[1]) === ppid && f[0] !== "Z") out.push(Number(p));
  }
  return out;
}

/** The inodes of every TCP socket on the machine (IPv4 and IPv6), or only those in `state` (hex, e.g. "0A" listening). */
export function tcpInodes(state?: string): Set<string> {
  const out = new Set<string>();
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    // Column 4 is the state, column 10 the inode; the first line is the header.
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const inode = cols[9];
      if (inode !== undefined && inode !== "0" && (state === undefined || cols[3] === state)) out.add(inode);
    }
  }
  return out;
}

/** The inodes of the sockets a process holds (empty once it is gone). */
export function socketInodes(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m === null ? [] : [m[1]!];
      } catch {
        return []; // closed meanwhile
      }
    });
  } catch {
    return [];
  }
}

/** How many TCP connections (listening sockets aside) the process holds open. */
export function tcpConnectionsOf(pid: number): number {
  const listening = tcpInodes("0A");
  const tcp = tcpInodes();
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m !== null && tcp.has(m[1]!) && !listening.has(m[1]!);
      } catch {
        return false; // closed meanwhile
      }
    }).length;
  } catch {
    return 0; // gone
  }
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
 * The daemon's warm spare: its one child without a TCP connection, still the same a second
 * later (a connection process that has just closed its socket is on its way out). Bounded: 15 s.
 */
export async function waitSpare(daemon: number): Promise<number> {
  for (let i = 0; i < 15; i++) {
    const idle = (): number[] => {
      const conns = connectionsOf(daemon);
      return childrenOf(daemon).filter((p) => !conns.includes(p));
    };
    const first = idle();
    await new Promise((r) => setTimeout(r, 1000));
    if (first.length === 1 && idle().join() === String(first[0])) return first[0]!;
  }
  throw new Error(`no single spare under ${daemon}`);
}

/** Resident memory in MiB, or null once the process is gone. */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** User plus system CPU time in clock ticks (utime + stime), or null once the process is gone. */
export function cpuTicks(pid: number): number | null {
  const f = statFields(pid);
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
  return f === null ? null : Number(f[11]) + Number(f[12]);
}

/** Open descriptors of a process (needs to be its owner or root). */
export function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}
