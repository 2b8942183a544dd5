// What the tests and the benchmark learn about processes from /proc (Linux): parents, sockets,
// memory and CPU time. One home for both; tests/helpers/procs.ts builds on it.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

/** The fields of /proc/<pid>/stat (or of /proc/<pid>/task/<tid>/stat, given "<pid>/task/<tid>") after the command name (which may hold spaces), or null once gone. */
export function statFields(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return st.slice(st.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** The nice value of each thread of a process (stat field 19), by thread id; empty once gone. */
export function threadNices(pid) {
  const out = new Map();
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const f = statFields(`${pid}/task/${tid}`);
    if (f !== null) out.set(Number(tid), Number(f[16]));
  }
  return out;
}

/** The effective capability set of a process (CapEff in its status), or null once gone. */
export function capEff(pid) {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m === null ? null : BigInt(`0x${m[1]}`);
  } catch {
    return null;
  }
}

/** Parent pid, utime + stime and the start time (since boot), both in clock ticks, or null once gone. */
export function procStat(pid) {
  const f = statFields(pid);
  // After the name: state is f[0], ppid f[1], utime and stime (stat fields 14 and 15) f[11], f[12],
  // starttime (field 22) f[19].
  return f === null ? null : { state: f[0], ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: Number(f[19]) };
}

/** Now, in clock ticks since boot (/proc/uptime, at the 100 a second procStat's times count in). */
export function uptimeTicks() {
  return Math.floor(Number(readFileSync("/proc/uptime", "latin1").split(" ")[0]) * 100);
}

/** Every live process's parent, read once: pid → ppid. */
export function parents() {
  const out = new Map();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const st = procStat(Number(p));
    // A zombie has already ended.
    if (st !== null && st.state !== "Z") out.set(Number(p), st.ppid);
  }
  return out;
}

/** The inodes of every TCP socket on the machine (IPv4 and IPv6), or only those in `state` (hex, e.g. "01" established, "0A" listening). */
export function tcpInodes(state) {
  const out = new Set();
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
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
export function socketInodes(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m === null ? [] : [m[1]];
      } catch {
        return []; // closed meanwhile
      }
    });
  } catch {
    return [];
  }
}

/** A field of /proc/<pid>/<file> in kB ("VmRSS", "Anonymous"...), or null once gone. */
function kBField(pid, file, name) {
  try {
    const m = new RegExp(`${name}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/${file}`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Resident memory in KiB, or null once gone. */
export function rssKiB(pid) {
  return kBField(pid, "status", "VmRSS");
}

/**
 * Private anonymous memory (heap, stacks, JIT code) in KiB, or null once gone: RSS less the
 * shared, file-backed pages such as the node binary (~35 MB of a Node process's RSS).
 */
export function anonKiB(pid) {
  return kBField(pid, "smaps_rollup", "Anonymous");
}
