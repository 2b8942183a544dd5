import type { ChildProcess } from "node:child_process";
import { closeSync, fstatSync, readFileSync, readdirSync, realpathSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { resolve } from "node:path";
import { Socket, type SocketConstructorOpts } from "node:net";
import type { runopts, svr_runopts } from "@dropbear-ts/core";
import { AMD_COPY_TUNABLES, HELD_ENV_PREFIX, LOG_INFO, LOG_WARNING, TRACE, argBytesEnv, cpuVendor, cwdText, detachedCopyReady, dropbear_close, dropbear_exit, dropbear_log, dup_cloexec, envBytesEnv, expand_homedir_path, fsPath, ignoredSignalsEnv, inheritedNofileEnv, setsid, spawnWarmUp, strerror_code, textBytes, waitpidNohang } from "@dropbear-ts/dbutil";
import {
  FdError,
  ListenerFd,
  SignalPipeFd,
  StreamFd,
  dropbear_listen,
  getaddrstring,
  nodeHandleFd,
  ownReadSocket,
  receiveFd,
  sendFd,
  socketStreamOptions,
  unixSocketPair,
  type Fd,
  dropbear_prio,
  get_socket_address,
  hostPortString,
  set_sock_priority,
  set_listen_fast_open,
} from "@dropbear-ts/netio";
import { MAX_LISTEN_ADDR, MAX_UNAUTH_CLIENTS, MAX_UNAUTH_PER_IP, DROPBEAR_SERVER_TCP_FAST_OPEN, ECDSA_PRIV_FILENAME, ED25519_PRIV_FILENAME, RSA_PRIV_FILENAME } from "@dropbear-ts/options";
import { algo_tables_new } from "@dropbear-ts/algo";
import { svrAuthWarmUp } from "@dropbear-ts/auth";
import { svrKexWarmUpSteps } from "@dropbear-ts/kex";
import { select, sigintterm_handler, type SignalTarget } from "@dropbear-ts/session-loop";
import { svr_session } from "./svr-session.js";

/** The fd number a connection process finds its childpipe on (after stdin, stdout, stderr). */
const CHILDPIPE_FD = 3;

/**
 * The fd number of a connection process's end of its handoff socket: a Unix socket pair the
 * daemon makes for each, over which the accepted connection comes (sendFd, SCM_RIGHTS), and
 * over which a spare says, with one byte, that it has loaded everything and waits.
 */
const HANDOFF_FD = CHILDPIPE_FD + 1;

/** Listen on every -p address; warn about each that fails. @dropbear svr-main.c listensockets */
async function listensockets(opts: runopts, svr_opts: svr_runopts, sockcount: number): Promise<ListenerFd[]> {
  TRACE(() => `listensockets: ${svr_opts.portcount} to try`);
  const socks: ListenerFd[] = [];
  for (let i = 0; i < svr_opts.portcount; i++) {
    TRACE(() => `listening on '${svr_opts.addresses[i]}:${svr_opts.ports[i]}'`);
    const r = await dropbear_listen(svr_opts.addresses[i] ?? "", svr_opts.ports[i]!, sockcount - socks.length, undefined, svr_opts.interface);
    if (r.errstring !== null) {
      dropbear_log(LOG_WARNING, `Failed listening on '${svr_opts.ports[i]}': ${r.errstring}`);
      continue;
    }
    for (const sock of r.socks) {
      set_sock_priority(sock, dropbear_prio.DROPBEAR_PRIO_LOWDELAY, opts.disable_ip_tos);
      if (DROPBEAR_SERVER_TCP_FAST_OPEN) {
        set_listen_fast_open(sock);
      }
    }
    socks.push(...r.socks);
  }
  return socks;
}

/** A child still before auth: its pipe closes when it authenticates or exits. */
interface PreauthChild {
  pipe: StreamFd;
  host: string;
}

/** Node flags only the daemon may use: a second inspector, profiler or watcher would clash with its. */
const DAEMON_ONLY_FLAGS = /^--(inspect|debug|watch|cpu-prof|heap-prof|prof|diagnostic-dir|report|redirect-warnings)/;
/** Those of them that take a value, which Node also takes as the next argument (`--cpu-prof-dir d`). */
const DAEMON_ONLY_VALUE_FLAGS =
  /^--(cpu-prof-(dir|name|interval)|heap-prof-(dir|name|interval)|diagnostic-dir|debug-port|inspect-port|inspect-publish-uid|redirect-warnings|report-(dir|directory|filename|signal)|watch-path)$/;

/**
 * The daemon's Node flags that a connection process gets: all but DAEMON_ONLY_FLAGS, each of
 * those dropped with its value (else `--cpu-prof-interval 100` would leave `100` to be run as
 * the program), and none that CONNECTION_V8_FLAGS gives already (the bin scripts' own
 * `--v8-pool-size=1`).
 */
export function connectionNodeFlags(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (CONNECTION_V8_FLAGS.includes(a)) {
      continue;
    }
    if (!DAEMON_ONLY_FLAGS.test(a)) {
      kept.push(a);
    } else if (DAEMON_ONLY_VALUE_FLAGS.test(a)) {
      i++;
    }
  }
  return kept;
}
/**
 * Environment Node acts on as it starts, held back from a connection process's start: what
 * changes what it loads (a connection process runs as root before auth), and
 * NODE_EXTRA_CA_CERTS, a CA bundle Node parses as it starts (1.8 MB more per process with
 * Debian's 144 certificates) for TLS, which an SSH server never speaks. Each is passed under
 * HELD_ENV_PREFIX (dbutil) instead and put back as the process starts (restoreConnectionEnv), so -e still
 * hands the daemon's whole environment to the user's commands.
 */
const HELD_ENV = /^NODE_(OPTIONS|PATH|PRESERVE_SYMLINKS|PRESERVE_SYMLINKS_MAIN|REPL_EXTERNAL_MODULE|V8_COVERAGE|CHANNEL_FD|CHANNEL_SERIALIZATION_MODE|UNIQUE_ID|EXTRA_CA_CERTS)$/;

/**
 * V8 flags every connection process gets ahead of the daemon's own (a flag given to the daemon
 * wins): semi-spaces of 1 MiB and one V8 worker thread, about 4 MB less per idle connection
 * process; and WebAssembly (the KEMs) left to its baseline compiler, Liftoff, about 3 MB less:
 * the optimizing compiler that V8 would wake for the warm-up's calls stays out of the process,
 * at under half a millisecond more per server side of a key exchange; and no Maglev, the
 * middle JavaScript compiler that Node 24 turns on (20 and 22 leave it off), whose code pages
 * made an idle connection process 2 MB larger there (docs/process-model.md, "Idle memory").
 */
export const CONNECTION_V8_FLAGS = ["--max-semi-space-size=1", "--v8-pool-size=1", "--liftoff-only", "--no-maglev"];

/**
 * glibc settings a connection process starts with unless the daemon's environment has them
 * (glibc reads them only at start). Malloc's: all threads in one arena, and free memory at the
 * top of the heap handed back to the kernel at once rather than kept for later growth, about
 * 1.5 MB less per idle connection process (docs/process-model.md, "Idle memory"); and buffers
 * below MMAP_THRESHOLD from the heap. On AMD processors also copies without `rep movsb`
 * (dbutil's tunables.ts). Taken out of the process's environment again as it starts
 * (restoreConnectionEnv), so -e does not pass them on.
 */
function connectionLibcEnv(): Record<string, string> {
  const env: Record<string, string> = { MALLOC_ARENA_MAX: "1", MALLOC_TOP_PAD_: "0", MALLOC_MMAP_THRESHOLD_: String(MMAP_THRESHOLD) };
  if (cpuVendor() === "AuthenticAMD") env.GLIBC_TUNABLES = AMD_COPY_TUNABLES;
  return env;
}
/**
 * The smallest allocation malloc maps on its own, above the 320 KiB read ring each socket gets
 * (netio's READ_RING_SIZE; connection-flags.test.ts keeps it above). glibc's default is 128 KiB,
 * below a ring, and MALLOC_TOP_PAD_ turns off the rise glibc would
 * otherwise make after the first such free: each ring was then an mmap, page faults on first
 * touch and a munmap with a TLB shootdown across the process's threads, about 10 % of a
 * connection process's CPU through 1000 concurrent tunnelled connections (docs/bench.md,
 * "Twenty-second round"). A session's few packet slabs (512 KiB, kept for reuse) stay mapped.
 */
const MMAP_THRESHOLD = 512 * 1024;
/** Every name connectionLibcEnv may give. */
const CONNECTION_LIBC_NAMES: ReadonlySet<string> = new Set(["MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"]);
/** Names the daemon added to a connection process's environment (from connectionLibcEnv), comma-separated. */
const CONNECTION_ENV_ADDED = "DROPBEAR_TS_CONNECTION_ENV";

/** The wait before the first retry after a spare failed to start, and the longest wait. */
const SPARE_RETRY_MIN_MS = 100;
const SPARE_RETRY_MAX_MS = 5000;
/**
 * The longest a handoff holds back the next spare while the connection it served is still
 * running (unless that process exits sooner): a spare's start is a Node start and its warm-up,
 * and on a machine with few cores it takes CPU from the connection's key exchange, auth and
 * first command, which take about 0.1 s from the handoff here (docs/process-model.md).
 */
const SPARE_REFILL_DELAY_MS = 300;
/** How long a spare's death waits to be reported, in case the daemon's own exit signal is on its way. */
const SPARE_EXIT_GRACE_MS = 50;
/**
 * The nice value a spare starts and warms up at, so that its start-up (a Node start, then the
 * warm-up) never takes CPU from the connections being served; it gets the daemon's own back at
 * its handoff. Only when the daemon may raise it again (CAP_SYS_NICE, which root in a container
 * may lack): else the spare keeps the daemon's.
 */
const SPARE_NICE = 19;
/** CAP_SYS_NICE's bit in a capability set. */
const CAP_SYS_NICE = 23n;

/** How a connection process is started: fixed once, from what the daemon itself was run as. */
export interface ProgramSpec {
  execPath: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * Where the daemon was started, for a connection process to read its relative -r and -b paths
 * from (enterStartDir) before it works from / as the daemon does (backgroundedCwd).
 */
const START_DIR_ENV = "DROPBEAR_TS_START_DIR";

/**
 * In a connection process, as it starts: take the daemon's start directory out of the
 * environment and read options and host keys from there, as the daemon did. Gone since, the
 * process stays in / and a relative path fails, as C's re-executed child's always does.
 */
export function enterStartDir(): void {
  const dir = process.env[START_DIR_ENV];
  delete process.env[START_DIR_ENV];
  if (dir === undefined) return;
  try {
    process.chdir(dir);
  } catch (e) {
    TRACE(() => `enterStartDir: ${String(e)}`);
  }
}

/**
 * This program as the daemon resolved it at start, with the hidden `-2 3` flag (the childpipe
 * on fd 3, as Dropbear's re-exec passes it). The script is the real path, so a later change of
 * working directory or of a symlink does not change what connection processes run.
 */
export function connectionProgram(): ProgramSpec {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith(HELD_ENV_PREFIX)) continue;
    env[HELD_ENV.test(k) ? HELD_ENV_PREFIX + k : k] = v;
  }
  const libc = connectionLibcEnv();
  const added = Object.keys(libc).filter((k) => env[k] === undefined);
  for (const k of added) env[k] = libc[k];
  env[CONNECTION_ENV_ADDED] = added.join(",");
  // Node's spawn resets every signal; C's forked child inherits the daemon's ignored ones. And
  // Node raises the descriptor limit again: its sessions' commands get back the daemon's first.
  Object.assign(env, ignoredSignalsEnv(), inheritedNofileEnv());
  // Arguments that are not UTF-8 (a -c command in Latin-1) reach it as their bytes, which
  // spawn's strings cannot carry.
  Object.assign(env, argBytesEnv(["-2", String(CHILDPIPE_FD)]));
  // So are the values of its environment that are not UTF-8, which -e and LANG pass on.
  Object.assign(env, envBytesEnv());
  return {
    execPath: process.execPath,
    args: [...CONNECTION_V8_FLAGS, ...connectionNodeFlags(process.execArgv), realpathSync(process.argv[1]!), ...process.argv.slice(2), "-2", String(CHILDPIPE_FD)],
    env: { ...env, ...startDirEnv() },
  };
}

/**
 * START_DIR_ENV for connection processes, or nothing where the daemon's working directory was
 * removed before it started (process.cwd() throws there; C's getcwd-free start goes on, and
 * only relative paths fail).
 */
function startDirEnv(): NodeJS.ProcessEnv {
  try {
    // As bytesText: startFilesStamp names the files by the directory's bytes. (The process
    // started gets the name as UTF-8, U+FFFD for what is not, and stays where it was started.)
    return { [START_DIR_ENV]: cwdText() };
  } catch {
    return {};
  }
}

/**
 * A started connection process: its childpipe closes when it authenticates or exits; its
 * handoff socket (our end, raw for sendFd and as a Node socket for the spare's ready byte)
 * until the connection has gone over it.
 */
interface ConnProc {
  child: ChildProcess;
  pipe: Socket;
  handoffFd: number;
  handoff: Socket;
}

/** Close the daemon's ends of a connection process that will not be used (its exit, or its kill, follows). */
function discard(p: ConnProc): void {
  p.pipe.destroy();
  p.handoff.destroy();
}

/**
 * The connection processes: one started ahead (the warm spare, DESIGN.md §8) that has loaded
 * the program and the host keys and waits for the daemon to hand it an accepted socket, and a
 * fresh one started for a connection when no spare is there. Failures to start one are logged
 * once per run of failures and retried with back-off, never in a loop.
 */
class ConnProcs {
  private spare: ConnProc | null = null;
  /** The pids of the connection processes started and not yet reaped (by Node, which started them). */
  readonly pids = new Set<number>();
  /** What the spare's files were as it started (startFilesStamp), to tell whether it read ones replaced since. */
  private spareStamp = "";
  /** The daemon's nice value, which a spare gets back at its handoff; null: spares are not niced. */
  private readonly nice: number | null = spareRenice();
  private retry: NodeJS.Timeout | null = null;
  private backoff = SPARE_RETRY_MIN_MS;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly program: ProgramSpec,
    /** Whether the daemon has been told to exit (its exit flag, set before its loop stops us). */
    private readonly exiting: () => boolean,
    /** The state of the files a connection process reads as it starts (startFilesStamp). */
    private readonly filesStamp: () => string = () => "",
  ) {}

  /** Make sure a spare is started or one will be (after a back-off). */
  refill(): void {
    if (this.stopped || this.spare !== null || this.retry !== null) return;
    // Taken before the spare starts: a file replaced while it reads them only costs it its use.
    this.spareStamp = this.filesStamp();
    const p = this.start();
    if (p === null) {
      this.refillLater();
      return;
    }
    this.spare = p;
    if (this.nice !== null) reniceProcess(p.child.pid!, SPARE_NICE);
    p.handoff.once("data", () => {
      this.failing = false;
      this.backoff = SPARE_RETRY_MIN_MS;
    });
    p.child.once("exit", (code, signal) => {
      if (this.spare !== p) return;
      this.spare = null;
      discard(p);
      // Killed with the daemon (our stop(), or a signal to the whole group as `systemctl stop`
      // sends, whose delivery to the daemon may come a moment later): nothing to say.
      setTimeout(() => {
        if (this.stopped || this.exiting()) return;
        // Died unused: a broken install or someone's kill. Start the next after the back-off.
        this.fail(`Spare connection process ${p.child.pid} exited (${signal ?? code})`);
        this.refillLater();
      }, SPARE_EXIT_GRACE_MS);
    });
  }

  /**
   * The next spare once the connection handed to `p` is under way: when `p` exits, or
   * SPARE_REFILL_DELAY_MS after the handoff, whichever comes first.
   */
  refillAfter(p: ConnProc): void {
    const now = (): void => {
      clearTimeout(timer);
      p.child.off("exit", now);
      this.refill();
    };
    const timer = setTimeout(now, SPARE_REFILL_DELAY_MS);
    p.child.once("exit", now);
  }

  /** Try again after the back-off, which doubles up to SPARE_RETRY_MAX_MS until a spare is ready. */
  private refillLater(): void {
    if (this.stopped || this.retry !== null) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.refill();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, SPARE_RETRY_MAX_MS);
  }

  /**
   * The spare if one is alive, else a process started now for this connection (or null). A
   * spare keeps SPARE_NICE until restoreNice, which the caller runs once the connection is
   * handed over: renicing each of its threads takes about a millisecond, and the spare needs
   * longer than that to wake up and take the connection.
   */
  take(): ConnProc | null {
    const p = this.spare;
    this.spare = null;
    if (p !== null && p.child.exitCode === null && p.child.signalCode === null && !p.handoff.destroyed) {
      // C's connection process reads the host keys and the banner as its connection comes. A
      // spare read them when it started, maybe hours ago: after one is replaced (a host key
      // rotated, a new banner) the connection gets a process that reads them now.
      if (this.filesStamp() === this.spareStamp) {
        return p;
      }
      p.child.kill("SIGKILL");
    }
    if (p !== null) {
      discard(p);
    }
    return this.start();
  }

  /** A taken process gets the daemon's own nice value back, every thread of it (a no-op for one that never had SPARE_NICE). */
  restoreNice(p: ConnProc): void {
    if (this.nice !== null) reniceProcess(p.child.pid!, this.nice);
  }

  /** The daemon is exiting: the spare goes with it. */
  stop(): void {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.spare?.child.kill();
  }

  private fail(msg: string): void {
    if (!this.failing) dropbear_log(LOG_WARNING, msg);
    this.failing = true;
  }

  /**
   * Start one connection process, or null if none could be (EMFILE, EAGAIN, ENOMEM: Dropbear's
   * failed fork). It gets no listening socket (Node passes only the stdio listed) and its
   * own session (setsid); its connection comes over the handoff socket (HANDOFF_FD).
   */
  private start(): ConnProc | null {
    const { execPath, args, env } = this.program;
    const failed = (e: unknown): null => {
      const err = e as NodeJS.ErrnoException;
      this.fail(`Error forking: ${strerror_code(err.code ?? "EIO", err.message)}`);
      return null;
    };
    // Both socket pairs are ours, the childpipe too: Node's own "pipe" stdio leaks its end of
    // the pair when the spawn fails with EMFILE (it returns before wrapping or closing it), and
    // a daemon short of descriptors lost two for every failed start.
    let pair: [number, number];
    let childpipe: [number, number];
    try {
      pair = unixSocketPair();
    } catch (e) {
      return failed(e);
    }
    try {
      childpipe = unixSocketPair();
    } catch (e) {
      closeSync(pair[0]);
      closeSync(pair[1]);
      return failed(e);
    }
    const closeOurs = (): void => {
      closeSync(pair[0]);
      closeSync(childpipe[0]);
    };
    let child: ChildProcess;
    try {
      // Not imported at the top: the connection processes run this same program and never
      // use node:child_process, which would cost each one memory (docs/process-model.md).
      child = process.getBuiltinModule("node:child_process").spawn(execPath, args, { stdio: ["ignore", "inherit", "inherit", childpipe[1], pair[1]], detached: true, env });
    } catch (e) {
      closeOurs();
      return failed(e);
    } finally {
      closeSync(pair[1]);
      closeSync(childpipe[1]);
    }
    // Node reports a failed spawn later, as an 'error' event on a child without pid.
    child.on("error", failed);
    child.unref();
    if (child.pid === undefined) {
      closeOurs();
      return null;
    }
    const pid = child.pid;
    this.pids.add(pid);
    child.once("exit", () => this.pids.delete(pid));
    // Half-open, so its end of file (the process gone) leaves our descriptor open, and the
    // number valid for sendFd, until we destroy the socket.
    const handoff = new Socket({ fd: pair[0], readable: true, writable: false, allowHalfOpen: true });
    // (A reset here means the process is gone; its 'exit' says so.)
    handoff.on("error", () => undefined);
    const pipe = new Socket({ fd: childpipe[0], readable: true, writable: true });
    // (As for the handoff socket; once handed over, the StreamFd watching it sees the close.)
    pipe.on("error", () => undefined);
    return { child, pipe, handoffFd: pair[0], handoff };
  }
}

/**
 * The daemon's nice value when its spares are to start at SPARE_NICE and get it back: it is
 * below SPARE_NICE and this process may lower a nice value again (CAP_SYS_NICE in its
 * effective set, Linux). Else null.
 */
function spareRenice(): number | null {
  const nice = getPriority();
  if (nice >= SPARE_NICE) {
    return null;
  }
  try {
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "latin1"));
    return capEff !== null && ((BigInt(`0x${capEff[1]}`) >> CAP_SYS_NICE) & 1n) === 1n ? nice : null;
  } catch {
    return null;
  }
}

/**
 * Set the nice value of every thread of process `pid` (Linux keeps one per thread; a thread
 * starts with its creator's). Best effort: a thread that ended meanwhile, or a refusal, leaves
 * the process as it was, which costs speed, never correctness.
 */
function reniceProcess(pid: number, nice: number): void {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    tids = [pid];
  }
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
    } catch {
      // gone, or not ours to change
    }
  }
}

/** The byte on the childpipe that tells a connection process its connection is on its handoff socket. */
const HANDOFF_WAKE = Buffer.of(0x63);
/** The byte a spare sends on its handoff socket once it has loaded everything and waits. */
const SPARE_READY = Buffer.of(0x72);
/** The longest peer address ("host port") a handoff carries with the socket: an IPv6 host with a zone, and a port. */
const HANDOFF_PEER_MAX = 128;

/** A connection's peer as the daemon read it on accepting it, numeric (getaddrstring). */
type PeerAddress = ReturnType<typeof getaddrstring>;

/** A connection handed over, with the peer the daemon saw (null from a daemon that sent none). */
interface Handed {
  sock: StreamFd<Socket>;
  peer: PeerAddress | null;
}

/** The "host port" a handoff carries, or null for anything else (a daemon of an older release sends one NUL). */
function handedPeer(data: Buffer): PeerAddress | null {
  const m = /^(\S+) (\d+)$/.exec(data.toString("latin1"));
  return m === null ? null : { host: m[1]!, port: m[2]! };
}

/**
 * Give the accepted socket to a connection process over its handoff socket (SCM_RIGHTS), with
 * its peer's address as the message's data, and wake it through the childpipe; false if the
 * socket could not go (the process died, as a spare killed just then does), which is then ended
 * and discarded. The caller closes its copy of the socket (the kernel holds the message's).
 */
function handoff(p: ConnProc, sock: Socket, peer: PeerAddress): boolean {
  try {
    if (p.handoff.destroyed) {
      throw new FdError("EPIPE", "the connection process is gone");
    }
    sendFd(p.handoffFd, nodeHandleFd(sock), Buffer.from(`${peer.host} ${peer.port}`));
    // A write error (the process died meanwhile) comes to the childpipe's StreamFd.
    p.pipe.write(HANDOFF_WAKE);
    return true;
  } catch (e) {
    dropbear_log(LOG_WARNING, `Error handing over a connection: ${e instanceof Error ? e.message : String(e)}`);
    p.child.kill();
    discard(p);
    return false;
  } finally {
    p.handoff.destroy();
  }
}

/**
 * A backgrounded daemon, and each of its connection processes once it has read its options and
 * host keys, works from / as C's daemon(0, ...) leaves it, so that it keeps no directory busy.
 * Its connection processes read relative -r and -b paths from where it was started
 * (enterStartDir; C's re-executed child reads them from /, and a relative -r fails every
 * connection).
 */
export function backgroundedCwd(svr_opts: svr_runopts): void {
  if (svr_opts.forkbg && !svr_opts.inetdmode) {
    process.chdir("/");
  }
}

/**
 * The listening daemon: accept connections, keep the number of unauthenticated ones within
 * MAX_UNAUTH_CLIENTS and MAX_UNAUTH_PER_IP, and hand each to its own connection process
 * (`program`, from connectionProgram()). @dropbear svr-main.c main_noinetd
 */
export async function main_noinetd(opts: runopts, svr_opts: svr_runopts, program: ProgramSpec): Promise<never> {
  const listensocks = await listensockets(opts, svr_opts, MAX_LISTEN_ADDR);
  if (listensocks.length === 0) {
    dropbear_exit("No listening ports available.");
  }
  dropbear_log(LOG_INFO, svr_opts.forkbg ? "Running in background" : "Not backgrounding");
  // The daemon's exit flag and wake-up (C's global ses here), set by the handler sessions use.
  // In place before the pid file exists (C's are, from commonsetup): whoever reads the file and
  // sends SIGTERM at once must find it removed, not a daemon killed by the default action
  // (making the wake-up's pipe can load the FFI library first, several milliseconds).
  const wake = new SignalPipeFd();
  const daemon: SignalTarget = { exitflag: false, signal_pipe: wake };
  sigintterm_handler(daemon);
  // Named from where the daemon was started, the directory it is about to leave: the file it
  // removes at exit is the one it wrote (C writes and removes it relative to /). By the
  // directory's bytes, which need not be UTF-8.
  try {
    svr_opts.pidfile = resolve(cwdText(), svr_opts.pidfile);
  } catch {
    // A relative name in a working directory removed since: as C's fopen, writing it fails.
  }
  try {
    writeFileSync(fsPath(svr_opts.pidfile), `${process.pid}\n`);
  } catch {
    // Like Dropbear: no pid file is not fatal.
  }
  // The launcher leaves (C's daemon() returning in the parent) once the pid file is there, so
  // that whoever started it (systemd's Type=forking) finds the file.
  detachedCopyReady();
  backgroundedCwd(svr_opts);
  const children: PreauthChild[] = [];
  const procs = new ConnProcs(program, () => daemon.exitflag, () => startFilesStamp(svr_opts, program));
  if (process.pid === 1) {
    process.on("SIGCHLD", () => reapOrphans(procs.pids));
  }
  procs.refill();
  // Once, the first time the daemon waits: its start's survivors promoted before a connection comes.
  const idle = [collectYoungGeneration];

  for (;;) {
    const fds = new Set<Fd>([...listensocks, wake, ...children.map((c) => c.pipe)]);
    await select(fds, new Set(), null, idle);
    if (daemon.exitflag) {
      procs.stop();
      try {
        unlinkSync(fsPath(svr_opts.pidfile));
      } catch {
        // already gone
      }
      dropbear_close("Terminated by signal");
    }
    // A readable childpipe means that child authenticated or went away.
    for (let i = children.length - 1; i >= 0; i--) {
      if (fds.has(children[i]!.pipe)) {
        children[i]!.pipe.close();
        children.splice(i, 1);
      }
    }
    for (const l of listensocks) {
      if (!fds.has(l)) continue;
      let sock: Socket | null;
      try {
        sock = l.accept();
      } catch (e) {
        // Dropbear just goes on (accept failed); we say why, once per failure.
        dropbear_log(LOG_WARNING, `Error accepting: ${e instanceof FdError ? strerror_code(e.code, e.message) : String(e)}`);
        continue;
      }
      if (sock === null) continue;
      if (sock.remoteAddress === undefined) {
        // Reset before we looked: C's accept() would still hand over its address, but there
        // is no one left to serve.
        sock.destroy();
        continue;
      }
      const peer = getaddrstring(sock.remoteAddress, sock.remotePort ?? 0);
      const remote_host = peer.host;
      const num_unauthed_for_addr = children.filter((c) => c.host === remote_host).length;
      if (children.length >= MAX_UNAUTH_CLIENTS || num_unauthed_for_addr >= MAX_UNAUTH_PER_IP) {
        sock.destroy();
        continue;
      }
      let p = procs.take();
      if (p !== null && !handoff(p, sock, peer)) {
        // The spare died as it was taken: a process started for this connection instead.
        p = procs.take();
        if (p !== null && !handoff(p, sock, peer)) {
          p = null;
        }
      }
      sock.destroy();
      if (p === null) {
        // No process for it: the peer sees EOF, and no slot is kept.
        procs.refill();
        continue;
      }
      procs.restoreNice(p);
      children.push({ pipe: new StreamFd(p.pipe), host: remote_host });
      // The next spare only once this connection is on its way, and not on its CPU.
      procs.refillAfter(p);
    }
  }
}

/**
 * As a PID namespace's first process (a container's `dropbear -F`), the daemon is the parent the
 * processes orphaned in it are given to: users' commands left running in the background when
 * their sessions ended. C's SIGCHLD handler reaps every child (waitpid(-1)); Node reaps only the
 * ones it started. The others are reaped here, by their pids from /proc (the connection
 * processes, `ours`, are left to Node), or each would stay a zombie while the daemon runs.
 */
function reapOrphans(ours: ReadonlySet<number>): void {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return;
  }
  for (const task of tasks) {
    let children: string;
    try {
      children = readFileSync(`/proc/self/task/${task}/children`, "latin1");
    } catch {
      continue;
    }
    for (const word of children.split(" ")) {
      const pid = Number(word);
      // Still running: WNOHANG returns at once, and its exit brings another SIGCHLD.
      if (pid > 0 && !ours.has(pid)) waitpidNohang(pid);
    }
  }
}

/**
 * The files a connection process reads as it starts, the -b banner and the host keys (-r, or
 * the default ones), as one string of what stat() says of each (or why it failed): another
 * string means one was replaced, written or removed. Relative names are the connection
 * process's, from the directory the daemon was started in (enterStartDir).
 */
export function startFilesStamp(svr_opts: svr_runopts, program: ProgramSpec): string {
  const names = svr_opts.num_hostkey_files > 0 ? svr_opts.hostkey_files.slice(0, svr_opts.num_hostkey_files) : [RSA_PRIV_FILENAME, ECDSA_PRIV_FILENAME, ED25519_PRIV_FILENAME];
  if (svr_opts.bannerfile !== null) names.push(svr_opts.bannerfile);
  const dir = program.env[START_DIR_ENV];
  return names
    .map((name) => {
      let path = fsPath(expand_homedir_path(name));
      if (dir !== undefined && !(typeof path === "string" ? path.startsWith("/") : path[0] === 0x2f)) {
        path = typeof path === "string" ? fsPath(`${dir}/${path}`) : Buffer.concat([textBytes(`${dir}/`), path]);
      }
      try {
        const st = statSync(path, { bigint: true });
        return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code ?? "?";
      }
    })
    .join(" ");
}

/**
 * The spare's warm-up step for what the connection's first moments reach: Node makes
 * process.stderr on first use (2-5 ms, more for a pipe), and the first use comes as the wake-up
 * socket is destroyed (Node's net checks whether a socket it closes is stderr) or with the
 * "Child connection" log line; and the first local-time conversion sets V8's time zone up
 * (~0.5 ms), which that line's date needs.
 */
function logWarmUp(): void {
  void process.stderr;
  new Date().getHours();
}

/** Elements of one throwaway array in collectYoungGeneration: 8 KiB, well under V8's large-object size. */
const GARBAGE_ARRAY_LEN = 1024;
/** collectYoungGeneration allocates at most this much: two fillings of the largest young generation V8 sizes by default. */
const GARBAGE_LIMIT = 128 * 1024 * 1024;

/**
 * Two young-generation collections, run where the process waits anyway: what its start (and a
 * spare's warm-up) left alive is promoted to the old generation now (the first copies it, the
 * second promotes it). Otherwise the next allocations fill the young generation and V8 schedules
 * that scavenge itself, in the middle of the next piece of work: in a connection process (1 MiB
 * of young generation, CONNECTION_V8_FLAGS) 8-15 ms of this machine's CPU between the server's
 * KEXINIT and the client's, in the daemon 13-28 ms as it accepts its first connection
 * (docs/process-model.md, "A collection before the connection"). JavaScript has no collector
 * without --expose-gc, and a V8 flag changed while running can crash V8 (docs/bench.md,
 * forty-seventh round), so the collections are brought on as V8 brings them on itself: the
 * young generation is filled with garbage until its used size falls, twice.
 */
export function collectYoungGeneration(): void {
  const v8 = process.getBuiltinModule("node:v8");
  const used = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_used_size ?? 0;
  let garbage: unknown[] | null = null;
  let left = GARBAGE_LIMIT;
  for (let collections = 0; collections < 2 && left > 0; ) {
    const before = used();
    for (let i = 0; i < 16; i++, left -= GARBAGE_ARRAY_LEN * 8) {
      garbage = new Array<number>(GARBAGE_ARRAY_LEN);
    }
    if (used() < before) collections++;
  }
  // Read once: an allocation nothing reads is one an optimising compiler may leave out.
  void garbage;
}

/**
 * A connection process started by the daemon: say it is ready, then wait for the socket the
 * daemon hands over (HANDOFF_FD) with its peer's address, and close the handoff socket at once
 * (nothing more comes over it). Leaves quietly if the daemon goes first. While it waits it runs
 * the warm-up steps, one per event loop turn, until the socket comes: the key exchange, cipher
 * and host key code once on throwaway values (V8 compiles it, node:crypto and the libraries set
 * themselves up), the C library calls of authentication and of spawning the command, and last
 * the young-generation collections (collectYoungGeneration). So a client does not wait for
 * that, and a connection that comes before they are done waits for one step at most.
 */
function receiveConnection(opts: runopts, svr_opts: svr_runopts): Promise<Handed> {
  const steps = [...svrKexWarmUpSteps(svr_opts, algo_tables_new(opts.algos)), svrAuthWarmUp, spawnWarmUp, logWarmUp, collectYoungGeneration];
  return new Promise((resolve) => {
    let received = false;
    // The daemon's wake-up comes on the childpipe, read through a copy of it: the childpipe
    // itself stays open until authentication (svr_session closes it), as the daemon counts on.
    // (The handoff socket is never read by Node, which would drop the descriptor that came.)
    const wakeFd = dup_cloexec(svr_opts.reexec_childpipe);
    if (wakeFd < 0) {
      dropbear_exit("Couldn't watch the childpipe");
    }
    const wake = new Socket({ fd: wakeFd, readable: true, writable: false, allowHalfOpen: true });
    // The daemon gone (end of file) before it sent a connection.
    const orphaned = (): never => process.exit(0);
    wake.on("end", orphaned);
    wake.on("error", orphaned);
    wake.on("data", () => {
      let got: { fd: number; data: Buffer } | null;
      try {
        got = receiveFd(HANDOFF_FD, HANDOFF_PEER_MAX);
      } catch (e) {
        dropbear_exit(`Couldn't receive the connection: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (got === null) return;
      const { fd } = got;
      received = true;
      wake.off("end", orphaned);
      wake.off("error", orphaned);
      wake.destroy();
      closeSync(HANDOFF_FD);
      resolve({
        sock: ownReadSocket((onread) => new Socket({ fd, onread, readable: true, writable: true, allowHalfOpen: true, ...socketStreamOptions } as SocketConstructorOpts)),
        peer: handedPeer(got.data),
      });
    });
    try {
      writeSync(HANDOFF_FD, SPARE_READY);
    } catch {
      // The daemon closed its end: it has handed us a connection already (a process started
      // for one, not a spare), or it is gone; the wake-up or its end of file says which.
    }
    const warmUp = (): void => {
      const step = steps.shift();
      if (received || step === undefined) return;
      try {
        step();
      } catch (e) {
        // The session will meet the same failure and report it; the spare just stops warming.
        TRACE(() => `warm-up stopped: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      setImmediate(warmUp);
    };
    setImmediate(warmUp);
  });
}

/** Is descriptor `fd` open and a socket? */
function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/**
 * Give this process the daemon's environment back: take out what the daemon added for its
 * start (connectionLibcEnv), meant for its C library, and put back what was held back from
 * Node's start (HELD_ENV). Only in a process the daemon started (inetd's are left alone).
 */
export function restoreConnectionEnv(): void {
  const added = process.env[CONNECTION_ENV_ADDED];
  if (added === undefined) return;
  delete process.env[CONNECTION_ENV_ADDED];
  for (const k of added.split(",")) {
    if (CONNECTION_LIBC_NAMES.has(k)) delete process.env[k];
  }
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith(HELD_ENV_PREFIX)) continue;
    delete process.env[k];
    const name = k.slice(HELD_ENV_PREFIX.length);
    if (HELD_ENV.test(name)) process.env[name] = v;
  }
}

/** Log lines kept back to be logged later, in order: priority and message. */
export type HeldLog = [priority: number, msg: string][];

/** Log the lines kept back. */
export function replayLog(held: HeldLog): void {
  for (const [priority, msg] of held) {
    dropbear_log(priority, msg);
  }
}

/**
 * Stdin as the connection's socket (inetd mode, or a connection process without a handoff).
 * node:net takes only a socket or a pipe: stdin on a file, a device such as /dev/null, or a
 * terminal threw ERR_INVALID_FD_TYPE, which ended dropbear with a stack trace. C's
 * get_socket_address fails on such an fd with ENOTSOCK, and so do we.
 */
function stdinSocket(): StreamFd<Socket> {
  try {
    return ownReadSocket((onread) => new Socket({ fd: 0, onread, readable: true, writable: true, allowHalfOpen: true, ...socketStreamOptions } as SocketConstructorOpts));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_INVALID_FD_TYPE") {
      dropbear_exit(`Failed socket address: ${strerror_code("ENOTSOCK")}`);
    }
    throw e;
  }
}

/**
 * Serve one connection: on stdin in inetd mode (-i), or the one the listener hands a
 * connection process (-2 childpipe). @dropbear svr-main.c main_inetd
 */
export async function main_inetd(opts: runopts, svr_opts: svr_runopts, held: HeldLog = []): Promise<never> {
  restoreConnectionEnv();
  // C's forked child logs the address accept() gave the daemon, before it re-executes: a peer
  // that has reset the connection since is still named (the session then fails to read the
  // address again, as C's does). Under inetd the child asks the socket, as C's main_inetd.
  const handed =
    svr_opts.reexec_childpipe >= 0 && isSocket(HANDOFF_FD)
      ? await receiveConnection(opts, svr_opts)
      : { sock: stdinSocket(), peer: null };
  const { sock } = handed;
  let peer = handed.peer;
  if (peer === null) {
    const { remote_host, remote_port } = get_socket_address(sock);
    peer = { host: remote_host, port: remote_port };
  }
  dropbear_log(LOG_INFO, `Child connection from ${hostPortString(peer.host, peer.port)}`);
  replayLog(held);
  const childpipe = svr_opts.reexec_childpipe;
  if (childpipe < 0) {
    // Out of the supervisor's session and process group, as C's main_inetd: a ^C or hang-up
    // meant for a socat or tcpserver run from a terminal must not end the sessions it started,
    // nor may users' commands reach that terminal through /dev/tty. It fails where inetd made
    // us a group leader already; C ignores that too. (The daemon's connection processes are
    // started in a session of their own.)
    setsid();
  }
  try {
    return await svr_session(opts, svr_opts, sock, childpipe);
  } finally {
    if (childpipe >= 0) {
      try {
        closeSync(childpipe);
      } catch {
        // closed at auth
      }
    }
  }
}
