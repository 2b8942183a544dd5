import type * as net from "node:net";
import { ownReadAccepted } from "../src/fd.js";
import { tcpPair } from "../../../tests/helpers/sockets.js";

/** A loopback pair whose accepted side `b` reads into our own buffer (ownReadAccepted). */
export async function ownPair(): Promise<{ a: net.Socket; b: net.Socket; close: () => void }> {
  const p = await tcpPair();
  const b = ownReadAccepted(p.b);
  return {
    a: p.a,
    b,
    close: () => {
      p.a.destroy();
      b.destroy();
    },
  };
}
