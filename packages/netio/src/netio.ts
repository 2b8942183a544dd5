import { lookup } from "node:dns/promises";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { buf_free, buf_getptr, buf_incrpos, type buffer } from "@dropbear-ts/buffer";
import { TRACE, TRACE2, dequeue, dropbear_assert, examine, type Queue } from "@dropbear-ts/dbutil";
import { DROPBEAR_LISTEN_BACKLOG } from "@dropbear-ts/options";
import { ListenerFd } from "./fd.js";

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

/** Addresses to bind for dropbear_listen: the wildcard (""), loopback (null), or a lookup. */
async function listenAddresses(address: string | null): Promise<string[]> {
  if (address === null) {
    return ["127.0.0.1", "::1"];
  }
  if (address === "") {
    return ["0.0.0.0", "::"];
  }
  const res = await lookup(address, { all: true, verbatim: true });
  return res.map((r) => r.address);
}

function listenOne(host: string, port: number, backlog: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Paused: nothing is read before the session wraps the socket. Half-open: SSH needs EOF
    // one way while the other still flows.
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
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
export async function dropbear_listen(address: string | null, port: string, sockcount: number, backlog = DROPBEAR_LISTEN_BACKLOG): Promise<ListenResult> {
  TRACE("enter dropbear_listen");
  let addrs: string[];
  try {
    addrs = await listenAddresses(address);
  } catch (e) {
    return { socks: [], errstring: `Error resolving: ${(e as Error).message}` };
  }
  let lport = Number(port);
  if (!Number.isInteger(lport) || lport < 0 || lport > 65535) {
    return { socks: [], errstring: `Error resolving: bad port '${port}'` };
  }
  const socks: ListenerFd[] = [];
  let err: string | null = null;
  for (const host of addrs) {
    if (socks.length >= sockcount) break;
    try {
      const server = await listenOne(host, lport, backlog);
      if (lport === 0) {
        lport = (server.address() as AddressInfo).port;
      }
      socks.push(new ListenerFd(server, backlog));
    } catch (e) {
      err = (e as Error).message;
      TRACE(() => `bind(${port}) failed: ${err}`);
    }
  }
  if (socks.length === 0) {
    return { socks, errstring: `Error listening: ${err ?? "no addresses"}` };
  }
  TRACE("leave dropbear_listen: success");
  return { socks, errstring: null };
}

/** Disable Nagle on the transport: every packet leaves at once (latency, DESIGN.md §4). @dropbear netio.c set_sock_nodelay */
export function set_sock_nodelay(sock: Socket): void {
  sock.setNoDelay(true);
}

/**
 * "host:port" of the far end, brackets around an IPv6 host as Dropbear 2026.94 logs it.
 * @dropbear netio.c getaddrstring
 */
export function getaddrstring(host: string, port: number | string): string {
  const h = host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
  return h.includes(":") ? `[${h}]:${port}` : `${h}:${port}`;
}
