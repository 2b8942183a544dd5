import { generateKeyPairSync, randomBytes } from "node:crypto";
import { once } from "node:events";
import { type Socket, connect } from "node:net";

// SSH's wire format by hand, for tests that speak to a server over a raw socket before the
// first NEWKEYS (where packets travel in clear): no SSH library between the test and the server.

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function sshString(s: string | Buffer): Buffer {
  const b = typeof s === "string" ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
}

/** A clear-text binary packet (RFC 4253 §6) around `payload`, padded to 8-byte blocks. */
export function packet(payload: Buffer): Buffer {
  let padlen = 8 - ((payload.length + 5) % 8);
  if (padlen < 4) padlen += 8;
  return Buffer.concat([u32(payload.length + padlen + 1), Buffer.of(padlen), payload, Buffer.alloc(padlen)]);
}

/** A KEXINIT offering one kex (with the strict-kex marker unless `strict` is false) and ssh-ed25519. */
export function kexinit(kex: string, strict = true): Buffer {
  const lists = [
    strict ? `${kex},kex-strict-c-v00@openssh.com` : kex,
    "ssh-ed25519",
    "aes128-ctr",
    "aes128-ctr",
    "hmac-sha2-256",
    "hmac-sha2-256",
    "none",
    "none",
    "",
    "",
  ];
  return Buffer.concat([Buffer.of(20), randomBytes(16), ...lists.map((l) => sshString(l)), Buffer.of(0), u32(0)]);
}

/** Each clear packet's message type as a peer sends it over `sock`, after its version line. */
export function onClearPackets(sock: Socket, onType: (type: number) => void): void {
  let buf = Buffer.alloc(0);
  let identSeen = false;
  sock.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!identSeen) {
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      buf = buf.subarray(nl + 1);
      identSeen = true;
    }
    while (buf.length >= 6 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const type = buf[5]!;
      buf = buf.subarray(4 + buf.readUInt32BE(0));
      onType(type);
    }
  });
}

/** A client's KEXDH_INIT for curve25519: a real public value. */
export function x25519Share(): Buffer {
  const x = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" }).x!;
  return packet(Buffer.concat([Buffer.of(30), sshString(Buffer.from(x, "base64url"))]));
}

/**
 * Connect to 127.0.0.1:`port`, send `ident` and `frames`, and collect the types of the clear
 * packets the server sends after its version line, until one of type `until` (or the
 * connection ends, or `waitMs` passes).
 */
export async function clearAnswers(port: number, ident: string, frames: Buffer[], until: number, waitMs: number): Promise<number[]> {
  const sock = connect(port, "127.0.0.1");
  sock.on("error", () => undefined);
  await once(sock, "connect");
  sock.write(`${ident}\r\n`);
  for (const f of frames) sock.write(f);
  const types: number[] = [];
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, waitMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    sock.on("close", done);
    onClearPackets(sock, (type) => {
      if (types.at(-1) === until) return;
      types.push(type);
      if (type === until) done();
    });
  });
  sock.destroy();
  return types;
}
