import type { LookupAddress } from "node:dns";
import { fstatSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { connect as netConnect, createServer, isIP, Socket, type Server } from "node:net";
import { constants as osConstants } from "node:os";
import { buf_free, buf_getptr, buf_incrpos, type buffer } from "@dropbear-ts/buffer";
import {
  LOG_WARNING,
  TRACE,
  TRACE2,
  dequeue,
  dropbear_assert,
  dropbear_exit,
  dropbear_log,
  cstring,
  examine,
  koffi,
  libcErrno,
  libcFunc,
  list_append,
  nearProcessLimit,
  list_remove,
  strerror,
  strerror_code,
  strerror_errno,
  type Queue,
  type m_list,
} from "@dropbear-ts/dbutil";
import { DROPBEAR_FAILURE, DROPBEAR_LISTEN_BACKLOG, DROPBEAR_SUCCESS, MAX_UNAUTH_PER_IP } from "@dropbear-ts/options";
import { Fd, ListenerFd, SOCKET_HIGH_WATER_MARK, StreamFd, ownReadSocket, socketStreamOptions } from "./fd.js";

// In netio.c's order: outbound connections (connect_try_next .. handle_connect_fds), the write
// queue's iovecs, socket options, dropbear_listen, then socket addresses.

/** Socket priority classes. @dropbear netio.h dropbear_prio */
export enum dropbear_prio {
  DROPBEAR_PRIO_NORMAL = 0,
  DROPBEAR_PRIO_LOWDELAY,
}

/** Told how an outbound connection ended: the connected Fd on success, an error text otherwise. @dropbear netio.h connect_callback */
export type connect_callback = (result: number, sock: StreamFd | null, errstring: string | null) => void;

/**
 * node:dns/promises, loaded at the first name to look up: numeric addresses need none, and
 * loading it (with the resolver's binding) costs every process that never resolves a name.
 */
let dnsModule: typeof import("node:dns/promises") | null = null;
const dnsPromises = (): typeof import("node:dns/promises") => (dnsModule ??= createRequire(import.meta.url)("node:dns/promises") as typeof import("node:dns/promises"));

/**
 * Whether name lookups must call getaddrinfo on the loop's own thread instead of dns.lookup,
 * decided at the first lookup. dns.lookup runs getaddrinfo on libuv's worker pool, which its
 * first request starts (four threads), and libuv aborts the process when it cannot create one:
 * a user within a few processes of their limit lost dbclient to SIGABRT, without a word, at its
 * first host name, where C's getaddrinfo needs no thread. Only near the limit, as rarely happens.
 */
let inlineLookups: boolean | null = null;

/** Threads libuv's pool starts, with room to spare for the others Node may start meanwhile. */
const LOOKUP_THREAD_MARGIN = 16;

function lookupsInline(): boolean {
  inlineLookups ??= nearProcessLimit(LOOKUP_THREAD_MARGIN);
  return inlineLookups;
}

/** getaddrinfo's AF_INET and AF_INET6, and SOCK_STREAM (C's hints in connect_remote). */
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
/** Room for inet_ntop's longest text, with its NUL. */
const INET6_ADDRSTRLEN = 46;
let addrinfoType: unknown = null;

/**
 * getaddrinfo(3) of `name` for a stream socket, on this thread: every address, in the
 * resolver's order (as dns.lookup's `verbatim`), or a rejection with gai_strerror's text.
 */
function getaddrinfoInline(name: string): Promise<LookupAddress[]> {
  const k = koffi();
  const getaddrinfo = libcFunc<(node: Buffer, service: null, hints: Buffer, res: unknown[]) => number>(
    "int getaddrinfo(const uint8_t *node, const char *service, const uint8_t *hints, _Out_ void **res)",
  );
  const freeaddrinfo = libcFunc<(res: unknown) => void>("void freeaddrinfo(void *res)");
  const gai_strerror = libcFunc<(errcode: number) => string>("const char *gai_strerror(int errcode)");
  const inet_ntop = libcFunc<(af: number, src: Buffer, dst: Buffer, size: number) => unknown>(
    "const char *inet_ntop(int af, const uint8_t *src, _Out_ uint8_t *dst, uint32_t size)",
  );
  addrinfoType ??= k.struct("dbts_addrinfo", {
    ai_flags: "int",
    ai_family: "int",
    ai_socktype: "int",
    ai_protocol: "int",
    ai_addrlen: "uint32_t",
    ai_addr: "void *",
    ai_canonname: "void *",
    ai_next: "void *",
  });
  // struct addrinfo hints: only ai_socktype set (offset 8), as C's connect_remote asks.
  const hints = Buffer.alloc(48);
  hints.writeInt32LE(SOCK_STREAM, 8);
  const res: unknown[] = [null];
  const rc = getaddrinfo(cstring(name), null, hints, res);
  if (rc !== 0) {
    return Promise.reject(new Error(gai_strerror(rc)));
  }
  const out: LookupAddress[] = [];
  try {
    for (let p = res[0]; p !== null; ) {
      const ai = k.decode(p, addrinfoType) as { ai_family: number; ai_addr: unknown; ai_next: unknown };
      if (ai.ai_family === AF_INET || ai.ai_family === AF_INET6) {
        const v6 = ai.ai_family === AF_INET6;
        // sockaddr_in's address at offset 4 (4 bytes), sockaddr_in6's at 8 (16 bytes).
        const sa = Buffer.from(k.decode(ai.ai_addr, "uint8_t", v6 ? 24 : 8) as Uint8Array);
        const text = Buffer.alloc(INET6_ADDRSTRLEN);
        inet_ntop(ai.ai_family, v6 ? sa.subarray(8, 24) : sa.subarray(4, 8), text, text.length);
        out.push({ address: text.toString("latin1", 0, text.indexOf(0)), family: v6 ? 6 : 4 });
      }
      p = ai.ai_next;
    }
  } finally {
    freeaddrinfo(res[0]);
  }
  return Promise.resolve(out);
}

/** Every address of `name` as getaddrinfo gives them: dns.lookup's, or getaddrinfo's on this thread (lookupsInline). */
function lookupName(name: string): Promise<LookupAddress[]> {
  if (zoneRefused(name)) {
    // dns.lookup hands back any address Node's isIP takes, zone and all, without asking glibc.
    return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" }));
  }
  return lookupsInline() ? getaddrinfoInline(name) : dnsPromises().lookup(name, { all: true, verbatim: true });
}

/**
 * Whether getaddrinfo refuses `name`, an IPv6 address with a zone ("addr%zone") that Node's
 * isIP takes. glibc takes an interface name as the zone only for a link-local or node- or
 * link-local multicast address, and a zone of digits (an interface index that fits in 32 bits)
 * for any address; anything else is "Name or service not known". Node would bind or connect
 * such a name as given: `::1%lo` worked where Dropbear refuses it, and `fe80::1%nosuch` failed
 * only at connect ("Invalid argument").
 */
function zoneRefused(name: string): boolean {
  const pct = name.indexOf("%");
  if (pct < 0 || isIP(name) !== 6) {
    return false;
  }
  const zone = name.slice(pct + 1);
  if (/^[0-9]+$/.test(zone) && Number(zone) <= 0xffffffff) {
    return false;
  }
  // The address's first 16 bits: 0 when it starts with "::" (isIP has checked the rest).
  const first = name.startsWith("::") ? 0 : parseInt(name.slice(0, name.indexOf(":")), 16);
  const linkLocal = (first & 0xffc0) === 0xfe80;
  const multicastLocal = (first & 0xff00) === 0xff00 && ((first & 0x0f) === 0x1 || (first & 0x0f) === 0x2);
  if (!linkLocal && !multicastLocal) {
    return true;
  }
  const if_nametoindex = libcFunc<(ifname: Buffer) => number>("unsigned int if_nametoindex(const char *ifname)");
  return if_nametoindex(cstring(zone)) === 0;
}

/**
 * An Fd that becomes writable when a name lookup settles. getaddrinfo blocks in C; here the
 * lookup runs in the background and this Fd lets the loop's select wait for it, so the result
 * is only ever used on a later loop iteration, as connect_try_next expects.
 */
class LookupFd extends Fd {
  private done = false;
  settle(): void {
    this.done = true;
    this.notify();
  }
  readReady(): boolean {
    return false;
  }
  writeReady(): boolean {
    return !this.closed && this.done;
  }
  close(): void {
    this.closed = true;
  }
}

/** An outbound connection in progress, trying each resolved address in turn. @dropbear netio.c dropbear_progress_connection */
export class dropbear_progress_connection {
  /** Resolved addresses, null while the lookup runs. */
  res: string[] | null = null;
  res_iter = 0;
  /** bind_address resolved (a name may give several, of each family), or null when it is not given. */
  bindres: string[] | null = null;
  lookup: LookupFd | null = null;
  /** Cancelled (cancel_connect) or dropped with the session: a lookup still queued is not made. */
  abandoned = false;
  sock: StreamFd | null = null;
  errstring: string | null = null;
  /** Packets to send with TCP fast open (connect_set_writequeue), or null. */
  writequeue: Queue<buffer> | null = null;
  /** remoteport as a number (a service name looked up), null when it names no port. */
  readonly port: number | null;
  /** bind_port likewise; null when not given or naming no port. */
  readonly bindport: number | null;
  constructor(
    /** The host, or the socket's path for connect_streamlocal. */
    readonly remotehost: string,
    /** null for a unix socket (connect_streamlocal). */
    readonly remoteport: string | null,
    public cb: connect_callback,
    readonly bind_address: string | null,
    readonly bind_port: string | null,
    /** null: the callback's owner sets it (dbclient's transport, once its first flight is out). */
    readonly prio: dropbear_prio | null,
  ) {
    this.port = remoteport === null ? null : servicePort(remoteport);
    this.bindport = bind_port === null ? null : servicePort(bind_port);
  }
}

/**
 * A port as getaddrinfo takes a service for a stream socket: a number as glibc's strtoul reads
 * the whole string (leading white space and a sign allowed, "" is port 0, a negative number is
 * refused; up to 65535: C's wraps larger numbers round to another port, ours refuses them) or a
 * name /etc/services lists for tcp ("ssh", "postgresql"); null for anything else.
 */
export function servicePort(service: string): number | null {
  const num = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(service);
  if (num !== null || service === "") {
    const n = num === null ? 0 : Number(num[2]);
    return n <= 65535 && (num?.[1] !== "-" || n === 0) ? n : null;
  }
  return tcpServices().get(service) ?? null;
}

/** /etc/services' tcp names and aliases, read once. */
let services: Map<string, number> | null = null;
function tcpServices(): Map<string, number> {
  if (services === null) {
    services = new Map();
    let text = "";
    try {
      text = readFileSync("/etc/services", "latin1");
    } catch {
      // No file: no names, as getservbyname finds none.
    }
    for (const line of text.split("\n")) {
      const [name, entry, ...aliases] = line.replace(/#.*/, "").trim().split(/\s+/);
      const m = /^(\d+)\/tcp$/.exec(entry ?? "");
      if (name && m && Number(m[1]) <= 65535) {
        for (const n of [name, ...aliases]) {
          if (!services.has(n)) {
            services.set(n, Number(m[1]));
          }
        }
      }
    }
  }
  return services;
}

/** Replace the callback with one that just closes what it gets. @dropbear netio.c cancel_connect */
export function cancel_connect(c: dropbear_progress_connection): void {
  c.abandoned = true;
  c.cb = (result, sock) => {
    if (result === DROPBEAR_SUCCESS) {
      sock?.close();
    }
  };
}

/**
 * Start connecting to the next address that lets us; on a synchronous failure move on.
 * @dropbear netio.c connect_try_next
 */
function connect_try_next(c: dropbear_progress_connection): void {
  TRACE(() => `enter connect_try_next: ${c.remotehost} port ${c.remoteport}`);
  const res = c.res!;
  while (c.res_iter < res.length) {
    const host = res[c.res_iter++]!;
    dropbear_assert(c.sock === null, "c->sock == -1");
    try {
      if (c.remoteport === null) {
        // connect_streamlocal's one "address": the socket path.
        c.sock = ownReadSocket((onread) => netConnect({ path: host, allowHalfOpen: true, onread, ...socketStreamOptions }));
        return;
      }
      // C asks getaddrinfo for a bind address of this address's family.
      const localAddress = c.bindres?.find((a) => isIP(a) === isIP(host));
      if (c.bindres !== null && localAddress === undefined) {
        c.errstring = `${bindAddressError(c.bind_address, c.bind_port)}. Address family for hostname not supported`;
        continue;
      }
      dropbear_assert(c.port !== null, "port resolved");
      const port = c.port;
      c.sock = ownReadSocket((onread) =>
        netConnect({
          host,
          port,
          allowHalfOpen: true,
          noDelay: true,
          onread,
          ...socketStreamOptions,
          ...(localAddress !== undefined ? { localAddress } : {}),
          ...(c.bindport !== null ? { localPort: c.bindport } : {}),
        }),
      );
      return;
    } catch (e) {
      c.errstring = (e as Error).message;
    }
  }
}

/**
 * Begin a TCP connection to remotehost:remoteport; `cb` is told the outcome from a later loop
 * iteration (set_connect_fds / handle_connect_fds), never from here.
 * @dropbear netio.c connect_remote
 */
export function connect_remote(
  conn_pending: m_list<dropbear_progress_connection>,
  remotehost: string,
  remoteport: string,
  cb: connect_callback,
  bind_address: string | null,
  bind_port: string | null,
  prio: dropbear_prio | null,
): dropbear_progress_connection {
  // getaddrinfo reads a C string: a peer's name with a NUL in it means what comes before it
  // (Node would throw on the NUL instead).
  remotehost = remotehost.split("\0", 1)[0]!;
  TRACE(() => `enter connect_remote: ${remotehost} port ${remoteport}`);
  const c = new dropbear_progress_connection(remotehost, remoteport, cb, bind_address, bind_port, prio);
  list_append(conn_pending, c);
  if (c.port === null) {
    c.errstring = `Error resolving '${remotehost}' port '${remoteport}'. Servname not supported for ai_socktype`;
    c.res = [];
    return c;
  }
  if (remotehost === "") {
    // getaddrinfo finds nothing for an empty name; Node's lookup would warn (DEP0118) and give none.
    c.errstring = `Error resolving '' port '${remoteport}'. Name or service not known`;
    c.res = [];
    return c;
  }
  // -b: C resolves it (getaddrinfo, AI_PASSIVE) as it tries each address; a bad port fails there
  // for every address, so here before any.
  if (bind_port !== null && c.bindport === null) {
    c.errstring = `${bindAddressError(bind_address, bind_port)}. Servname not supported for ai_socktype`;
    c.res = [];
    return c;
  }
  const bindName = bind_address !== null && bind_address !== "" ? bind_address : null;
  if (bindName !== null) {
    c.bindres = resolvedAtOnce(bindName, true);
  }
  const needBind = bindName !== null && c.bindres === null;
  const remoteres = resolvedAtOnce(remotehost, false);
  if (remoteres !== null && !needBind) {
    // getaddrinfo answers these at once, as C's call does; a lookup's promise would only hold
    // the connect back by a loop turn.
    c.res = remoteres;
    return c;
  }
  const lookupFd = new LookupFd();
  c.lookup = lookupFd;
  /** The addresses of `name`, or a rejection with getaddrinfo's words after `what`. */
  const resolve = (name: string, what: string): Promise<string[]> => {
    const now = resolvedAtOnce(name, false);
    return now !== null
      ? Promise.resolve(now)
      : sessionLookup(conn_pending, c, name).then(
          (addrs) => addrs.map((a) => a.address),
          (e: NodeJS.ErrnoException) => Promise.reject(new Error(`${what}. ${gaiMessage(e)}`)),
        );
  };
  Promise.all([
    resolve(remotehost, `Error resolving '${remotehost}' port '${remoteport}'`),
    needBind ? resolve(bindName, bindAddressError(bind_address, bind_port)) : null,
  ]).then(
    ([addrs, bindAddrs]) => {
      c.res = addrs;
      if (bindAddrs !== null) {
        c.bindres = bindAddrs;
      }
      lookupFd.settle();
    },
    (e: Error) => {
      TRACE(() => e.message);
      c.errstring = e.message;
      c.res = [];
      lookupFd.settle();
    },
  );
  return c;
}

/**
 * The tail of each session's chain of name lookups, keyed by its pending list. C's blocking
 * getaddrinfo makes a session's lookups one at a time; dns.lookup runs them on libuv's pool,
 * which gives lookups at most two threads for the whole process. In a library server, where
 * sessions share a process, one client's direct-tcpip channels to names that never resolve held
 * every other session's lookups (and the embedding program's own) back for their timeouts in
 * turn; one at a time per session, a lookup waits for at most one of each other session's.
 */
const lookupChains = new WeakMap<m_list<dropbear_progress_connection>, Promise<unknown>>();

/** lookupName of `name` for `c`, after the session's earlier lookups; none for a connection abandoned meanwhile. */
function sessionLookup(conn_pending: m_list<dropbear_progress_connection>, c: dropbear_progress_connection, name: string): Promise<LookupAddress[]> {
  const prev = lookupChains.get(conn_pending) ?? Promise.resolve();
  const run = prev.then(() =>
    c.abandoned ? Promise.reject(Object.assign(new Error("connection abandoned"), { code: "ECANCELED" })) : lookupName(name),
  );
  lookupChains.set(conn_pending, run.catch(() => undefined));
  return run;
}

/** The start of C's message for a -b that getaddrinfo refused (printf shows a NULL as "(null)"). */
function bindAddressError(bind_address: string | null, bind_port: string | null): string {
  return `Error resolving bind address '${bind_address ?? "(null)"}' (port ${bind_port ?? "(null)"})`;
}

/** getaddrinfo's words for Node's lookup errors. */
function gaiMessage(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case "ENOTFOUND":
      return "Name or service not known";
    case "EAI_AGAIN":
      return "Temporary failure in name resolution";
    default:
      return e.message;
  }
}

/** sizeof(struct sockaddr_un.sun_path) on Linux: a path needs its NUL in there too. */
const SUN_PATH_LEN = 108;

/**
 * Begin connecting to the unix socket at `localpath`; like connect_remote, `cb` learns the
 * outcome from a later loop iteration. A path too long for sockaddr_un fails there.
 * @dropbear netio.c connect_streamlocal
 */
export function connect_streamlocal(
  conn_pending: m_list<dropbear_progress_connection>,
  localpath: string,
  cb: connect_callback,
  prio: dropbear_prio,
): dropbear_progress_connection {
  const c = new dropbear_progress_connection(localpath, null, cb, null, null, prio);
  list_append(conn_pending, c);
  if (Buffer.byteLength(localpath) >= SUN_PATH_LEN) {
    c.errstring = "Stream path too long";
    TRACE(() => `localpath: ${localpath} is too long`);
    c.res = [];
    return c;
  }
  // C fakes up one AF_UNIX addrinfo; here the one entry is the path itself.
  c.res = [localpath];
  return c;
}

/** Drop every pending connection (session cleanup). @dropbear netio.c remove_connect_pending */
export function remove_connect_pending(conn_pending: m_list<dropbear_progress_connection>): void {
  while (conn_pending.first !== null) {
    const c = list_remove(conn_pending.first);
    c.abandoned = true;
    c.sock?.close();
  }
}

/**
 * Add what each pending connection waits on to writefd: its lookup, or its socket (starting
 * one on the next address when needed). One with no address left fails here, before select.
 * @dropbear netio.c set_connect_fds
 */
export function set_connect_fds(conn_pending: m_list<dropbear_progress_connection>, writefd: Set<Fd>): void {
  let iter = conn_pending.first;
  while (iter !== null) {
    const next_iter = iter.next;
    const c = iter.item;
    if (c.res === null) {
      writefd.add(c.lookup!);
    } else {
      while (c.res_iter < c.res.length && c.sock === null) {
        connect_try_next(c);
      }
      if (c.sock !== null) {
        writefd.add(c.sock);
      } else {
        c.cb(DROPBEAR_FAILURE, null, c.errstring ?? "unexpected failure");
        list_remove(iter);
      }
    }
    iter = next_iter;
  }
}

/**
 * Finish connections whose socket became writable: a failed one moves on to its next address,
 * each success is handed to its callback. C hands over at most one per call (its list removal
 * invalidates the iterator); with hundreds of forwarded connections completing together that
 * was a loop turn each, every turn visiting every channel. Here the next element is taken before
 * the callback runs; a callback only appends to the list (a new connect) or replaces an entry's
 * callback (cancel_connect), never unlinks another entry. `disable_ip_tos` is
 * opts.disable_ip_tos, which C reads from its global.
 * @dropbear netio.c handle_connect_fds
 */
export function handle_connect_fds(conn_pending: m_list<dropbear_progress_connection>, writefd: Set<Fd>, disable_ip_tos: boolean): void {
  for (let iter = conn_pending.first, next = iter?.next ?? null; iter !== null; iter = next, next = iter?.next ?? null) {
    const c = iter.item;
    if (c.sock === null || !writefd.has(c.sock)) {
      continue;
    }
    TRACE(() => `handling ${c.remotehost} port ${c.remoteport}`);
    const err = c.sock.error;
    if (err !== null) {
      TRACE(() => `connect to ${c.remotehost} port ${c.remoteport} failed.`);
      c.sock.close();
      c.sock = null;
      // Node binds -b's address as it connects; C's own bind() failure says which.
      c.errstring =
        err.syscall === "bind"
          ? `Error binding local address '${c.bind_address ?? "(null)"}' (port ${c.bind_port ?? "(null)"}). ${strerror_code(err.code, err.message)}`
          : strerror_code(err.code, err.message);
    } else {
      const sock = c.sock;
      // C sets this in connect_try_next, before connect(); a Node socket has no descriptor
      // until its connect starts, so here is the first place the loop can.
      if (c.prio !== null) {
        set_sock_priority(sock, c.prio, disable_ip_tos);
      }
      list_remove(iter);
      c.cb(DROPBEAR_SUCCESS, sock, null);
      TRACE("handle_connect_fds - success");
    }
  }
}

/**
 * Give a pending connection the session's write queue, for TCP fast open to carry the first
 * packets in its SYN. Only fast open reads it, and DROPBEAR_CLIENT_TCP_FAST_OPEN is off: Node has
 * no MSG_FASTOPEN, so connect_try_next always takes C's plain connect() path.
 * @dropbear netio.c connect_set_writequeue
 */
export function connect_set_writequeue(c: dropbear_progress_connection, writequeue: Queue<buffer>): void {
  c.writequeue = writequeue;
}

/** Most buffers handed to one writev(), as Dropbear's write_packet asks for. */
export const IOV_COUNT = 50;

/**
 * Views of the unsent part of up to `iov_count` queued buffers, head first, for one gathered
 * write. @dropbear netio.c packet_queue_to_iovec
 */
export function packet_queue_to_iovec(queue: Queue<buffer>, iov_count: number = IOV_COUNT): Buffer[] {
  const iov: Buffer[] = [];
  for (const writebuf of queue) {
    if (iov.length >= iov_count) {
      break;
    }
    const len = writebuf.len - writebuf.pos;
    dropbear_assert(len > 0, "len > 0");
    TRACE2(() => `write_packet writev #${iov.length} len ${len}/${writebuf.len}`);
    iov.push(buf_getptr(writebuf, len));
  }
  return iov;
}

/** Drop what a write took from the head of the queue, advancing a partly sent buffer. @dropbear netio.c packet_queue_consume */
export function packet_queue_consume(queue: Queue<buffer>, written: number): void {
  while (written > 0) {
    const writebuf = examine(queue);
    const len = writebuf.len - writebuf.pos;
    if (len > written) {
      buf_incrpos(writebuf, written);
      written = 0;
    } else {
      written -= len;
      dequeue(queue);
      buf_free(writebuf);
    }
  }
}

/** Disable Nagle on the transport: every packet leaves at once (latency, DESIGN.md §4). @dropbear netio.c set_sock_nodelay */
export function set_sock_nodelay(sock: Socket): void {
  sock.setNoDelay(true);
}

const SOL_TCP = 6;
const TCP_FASTOPEN = 23;
const IPPROTO_IP = 0;
const IP_TOS = 1;
const IPPROTO_IPV6 = 41;
const IPV6_TCLASS = 67;
const SOL_SOCKET = 1;
const SO_PRIORITY = 12;
const SO_BINDTODEVICE = 25;
/** DSCP AF21, the "low-latency" class for interactive traffic (RFC 4594), as C sets it. */
const IPTOS_DSCP_AF21 = 0x48;
/** linux/pkt_sched.h: the interactive band of the default qdisc. */
const TC_PRIO_INTERACTIVE = 6;

type SetsockoptInt = (fd: number, level: number, optname: number, optval: Int32Array, optlen: number) => number;

/** The OS descriptor under a Node socket or server (Node does not expose it), or -1. */
export function nodeHandleFd(owner: object | null): number {
  const fd = (owner as { _handle?: { fd?: unknown } | null } | null)?._handle?.fd;
  return typeof fd === "number" ? fd : -1;
}

/** The OS descriptor under an Fd's Node socket or server, or -1. */
function sockFd(sock: Fd): number {
  return nodeHandleFd(sock instanceof ListenerFd ? sock.server : sock instanceof StreamFd ? sock.stream : null);
}

/** setsockopt(2) of an int option; failures other than ENOTSOCK are only traced, as in C. */
function setsockoptInt(fd: number, level: number, optname: number, val: number, what: string): void {
  let setsockopt: SetsockoptInt;
  try {
    setsockopt = libcFunc<SetsockoptInt>("int setsockopt(int sockfd, int level, int optname, const void *optval, uint32_t optlen)");
  } catch (e) {
    // A socket option is a hint: out of descriptors, koffi's files may not open.
    TRACE(() => `Couldn't set ${what} (${strerror(e)})`);
    return;
  }
  if (setsockopt(fd, level, optname, Int32Array.of(val), 4) < 0) {
    const errno = libcErrno();
    if (errno !== osConstants.errno.ENOTSOCK) {
      TRACE(() => `Couldn't set ${what} (${strerror_errno(errno)})`);
    }
  }
}

/**
 * Let a listening socket take TCP fast open connections (data in the SYN), queueing at most
 * MAX(MAX_UNAUTH_PER_IP, 5) of them. A failure is only traced. Only clients and a kernel that
 * allow it use fast open (net.ipv4.tcp_fastopen), so it changes nothing for anyone else.
 * @dropbear netio.c set_listen_fast_open
 */
export function set_listen_fast_open(sock: ListenerFd): void {
  const fd = sockFd(sock);
  if (fd >= 0) {
    setsockoptInt(fd, SOL_TCP, TCP_FASTOPEN, Math.max(MAX_UNAUTH_PER_IP, 5), "TCP_FASTOPEN");
  }
}

/**
 * Mark the socket's traffic low-delay (DSCP AF21 and the interactive qdisc band) or normal,
 * unless -b (opts.disable_ip_tos) leaves the DSCP field alone. Harmless on a non-socket (a -J
 * proxy's pipe): ENOTSOCK is ignored. Node has none of these options, so they go through libc.
 * @dropbear netio.c set_sock_priority
 */
export function set_sock_priority(sock: Fd, prio: dropbear_prio, disable_ip_tos: boolean): void {
  const fd = sockFd(sock);
  if (fd < 0) {
    return;
  }
  const lowdelay = prio === dropbear_prio.DROPBEAR_PRIO_LOWDELAY;
  if (!disable_ip_tos) {
    const tos = lowdelay ? IPTOS_DSCP_AF21 : 0;
    setsockoptInt(fd, IPPROTO_IPV6, IPV6_TCLASS, tos, "IPV6_TCLASS");
    setsockoptInt(fd, IPPROTO_IP, IP_TOS, tos, "IP_TOS");
  }
  setsockoptInt(fd, SOL_SOCKET, SO_PRIORITY, lowdelay ? TC_PRIO_INTERACTIVE : 0, "SO_PRIORITY");
}

/** The local port a socket is bound to, 0 for one that has none (not inet, not bound). @dropbear netio.c get_sock_port */
export function get_sock_port(sock: Fd): number {
  if (sock instanceof ListenerFd) {
    const addr = sock.server.address();
    return addr !== null && typeof addr === "object" ? addr.port : 0;
  }
  if (sock instanceof StreamFd && sock.stream instanceof Socket) {
    return sock.stream.localPort ?? 0;
  }
  TRACE("get_sock_port: not an inet socket");
  return 0;
}

/** The name glibc's getaddrinfo takes as no name at all (`-R '*:2222:…'`, `-p '*:22'`). */
const GAI_NO_NAME = "*";

/** What getaddrinfo gives for no name, in glibc's order: the wildcard with AI_PASSIVE, else loopback. */
function gaiNoName(passive: boolean): string[] {
  return passive ? ["0.0.0.0", "::"] : ["::1", "127.0.0.1"];
}

/** The addresses getaddrinfo gives without a lookup: a numeric address's own, or "*"'s; else null. */
function resolvedAtOnce(name: string, passive: boolean): string[] | null {
  if (name === GAI_NO_NAME) {
    return gaiNoName(passive);
  }
  return isIP(name) !== 0 && !zoneRefused(name) ? [name] : null;
}

/** Addresses to bind for dropbear_listen: the wildcard ("" or "*"), loopback (null), or a lookup. */
async function listenAddresses(address: string | null): Promise<string[]> {
  if (address === null) {
    return ["127.0.0.1", "::1"];
  }
  if (address === "" || address === GAI_NO_NAME) {
    return gaiNoName(true);
  }
  if (!isListenName(address)) {
    return [address];
  }
  const res = await lookupListenName(address);
  return res.map((r) => r.address);
}

/** A listen address that must be looked up: not loopback (null), the wildcard ("", "*") or numeric. */
function isListenName(address: string | null): address is string {
  return address !== null && address !== "" && address !== GAI_NO_NAME && (isIP(address) === 0 || zoneRefused(address));
}

/** Every address a listen name resolves to, in the resolver's order, as getaddrinfo gives them. */
function lookupListenName(name: string): Promise<LookupAddress[]> {
  return lookupName(name);
}

/**
 * Pay ahead, while a loop waits on its peer, what the first lookup of a listen address costs a
 * process once: loading glibc's resolver (its NSS modules, read from nsswitch.conf), starting
 * libuv's threads, and V8 compiling the IPv6 address pattern Node checks every name against
 * (10-15 ms in all here, against 0.3 for a later lookup). The name given to dropbear_listen
 * is looked up in the background and the answer dropped, so dropbear_listen still resolves it
 * when it binds, as C does. False, doing nothing, for a numeric address or none, or where
 * lookups run on the loop's own thread (lookupsInline).
 */
export function warm_listen_lookup(address: string | null): boolean {
  // On the loop's own thread a lookup ahead would only block the loop, then be made again.
  if (!isListenName(address) || lookupsInline()) {
    return false;
  }
  lookupListenName(address).catch(() => {
    // dropbear_listen's own lookup meets the same failure and reports it.
  });
  return true;
}

type SetsockoptStr = (fd: number, level: number, optname: number, optval: string, optlen: number) => number;

/**
 * SO_BINDTODEVICE on a listening server's socket (Node has no option for it): through libc on
 * the fd under Node's handle. Linux checks the device when it looks a listener up for an
 * incoming connection, so setting it after listen() filters from then on. Returns null, or
 * strerror of the failure.
 */
function bindToDevice(sock: ListenerFd, iface: string): string | null {
  const fd = sockFd(sock);
  if (fd < 0) {
    return "no file descriptor";
  }
  const setsockopt = libcFunc<SetsockoptStr>("int setsockopt(int sockfd, int level, int optname, const char *optval, uint32_t optlen)");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface, Buffer.byteLength(iface)) < 0) {
    return strerror_errno(libcErrno());
  }
  return null;
}

function listenOne(host: string, port: number, backlog: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Paused: nothing is read before the session wraps the socket. Half-open: SSH needs EOF
    // one way while the other still flows.
    // highWaterMark: accepted sockets get our pinned marks, not the Node version's default.
    const server = createServer({
      pauseOnConnect: true,
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: SOCKET_HIGH_WATER_MARK,
    });
    const onError = (e: Error): void => reject(e);
    server.once("error", onError);
    // ipv6Only: a "::" socket must not also take IPv4, which has its own (IPV6_V6ONLY).
    server.listen({ host, port, backlog, ipv6Only: host.includes(":") }, () => {
      server.removeListener("error", onError);
      resolve(server);
    });
  });
}

/** What dropbear_listen made: the listening Fds, or why none could be made. */
export interface ListenResult {
  socks: ListenerFd[];
  errstring: string | null;
}

/**
 * Listen on every address `address` resolves to (null: loopback, "": all interfaces), at most
 * `sockcount` sockets, all on one port even when `port` is "0".
 * @dropbear netio.c dropbear_listen
 */
export async function dropbear_listen(
  address: string | null,
  port: string,
  sockcount: number,
  backlog = DROPBEAR_LISTEN_BACKLOG,
  iface: string | null = null,
): Promise<ListenResult> {
  TRACE("enter dropbear_listen");
  let addrs: string[];
  try {
    addrs = await listenAddresses(address);
  } catch (e) {
    return { socks: [], errstring: `Error resolving: ${gaiMessage(e as NodeJS.ErrnoException)}` };
  }
  const service = servicePort(port);
  if (service === null) {
    return { socks: [], errstring: `Error resolving: ${port === "" ? "bad port ''" : "Servname not supported for ai_socktype"}` };
  }
  let lport = service;
  const socks: ListenerFd[] = [];
  let err: string | null = null;
  let deviceErr: string | null = null;
  for (const host of addrs) {
    if (socks.length >= sockcount) break;
    try {
      const sock = new ListenerFd(await listenOne(host, lport, backlog), backlog);
      if (iface !== null) {
        // Dropbear only warns and goes on listening on every interface; we refuse that socket
        // (docs/deviations.md): -l must never widen what the user asked for.
        const why = bindToDevice(sock, iface);
        if (why !== null) {
          sock.close();
          deviceErr = `Error binding to device '${iface}': ${why}`;
          dropbear_log(LOG_WARNING, `Couldn't set SO_BINDTODEVICE: ${why}`);
          continue;
        }
      }
      if (lport === 0) {
        // Port 0: every address family gets the port the first one was given.
        lport = get_sock_port(sock);
      }
      socks.push(sock);
    } catch (e) {
      const ne = e as NodeJS.ErrnoException;
      err = strerror_code(ne.code ?? "", ne.message);
      TRACE(() => `bind(${port}) failed: ${err}`);
    }
  }
  if (socks.length === 0) {
    return { socks, errstring: deviceErr ?? `Error listening: ${err ?? "no addresses"}` };
  }
  TRACE("leave dropbear_listen: success");
  return { socks, errstring: null };
}

/** Both ends of a connected socket, numeric, as get_socket_address fills them in. */
export interface SocketAddress {
  local_host: string;
  local_port: string;
  remote_host: string;
  remote_port: string;
}

/**
 * The local and remote address of a connected socket, numeric (DO_HOST_LOOKUP is off, so C
 * never looks names up either). Exits as C does when the socket has none (not a socket, or no
 * longer connected). @dropbear netio.c get_socket_address
 */
export function get_socket_address(sock: StreamFd | Socket): SocketAddress {
  const s = sock instanceof StreamFd ? sock.stream : sock;
  const { localAddress, localPort, remoteAddress, remotePort } = s instanceof Socket ? s : ({} as Partial<Socket>);
  if (localAddress === undefined && s instanceof Socket && isUnixSocket(s)) {
    // AF_UNIX (inetd on a Unix socket, a proxy command's socketpair): getnameinfo with
    // NI_NUMERICHOST names the host "localhost" and the service by the socket's path, which
    // node:net does not give (unnamed for a socketpair or an accepted peer, as here).
    return { local_host: "localhost", local_port: "", remote_host: "localhost", remote_port: "" };
  }
  if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) {
    // A pipe has no address at all (ENOTSOCK); a socket already reset has lost its peer.
    dropbear_exit(`Failed socket address: ${strerror_code(localAddress === undefined ? "ENOTSOCK" : "ENOTCONN")}`);
  }
  const local = getaddrstring(localAddress, localPort);
  const remote = getaddrstring(remoteAddress, remotePort);
  return { local_host: local.host, local_port: local.port, remote_host: remote.host, remote_port: remote.port };
}

/** Whether a node:net socket sits on a Unix-domain socket (node:net makes those, and pipes, Pipe handles). */
function isUnixSocket(s: Socket): boolean {
  // The handle's descriptor is not public; fstat tells a socket from a pipe or a file.
  const fd = (s as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  try {
    return typeof fd === "number" && fd >= 0 && fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/**
 * An address as getnameinfo(NI_NUMERICHOST | NI_NUMERICSERV) renders it: numeric host and
 * port strings. @dropbear netio.c getaddrstring
 */
export function getaddrstring(address: string, port: number): { host: string; port: string } {
  return { host: address, port: String(port) };
}

/** "host:port", the host in brackets when it is IPv6, as the server's log lines and dbclient's exit line write it. */
export function hostPortString(host: string, port: string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
