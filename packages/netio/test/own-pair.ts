import type * as net from "node:net";
import { StreamFd, ownReadAccepted } from "../src/fd.js";
import { tcpPair } from "../../../tests/helpers/sockets.js";

/** Resolves once `cond` holds, checking every 2 ms (bounded by `ms`). */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A loopback pair and a StreamFd over its side `b`. */
export interface FdPair {
  a: net.Socket;
  b: net.Socket;
  fd: StreamFd<net.Socket>;
  close: () => void;
}

/** A loopback pair whose side `b` Node's own stream reads. */
export async function nodePair(): Promise<FdPair> {
  const p = await tcpPair();
  return { ...p, fd: new StreamFd(p.b) };
}

/** A loopback pair whose accepted side `b` reads into our own buffer (ownReadAccepted). */
export async function ownPair(): Promise<FdPair> {
  const p = await tcpPair();
  const fd = ownReadAccepted(p.b);
  return {
    a: p.a,
    b: fd.stream,
    fd,
    close: () => {
      p.a.destroy();
      fd.stream.destroy();
    },
  };
}
