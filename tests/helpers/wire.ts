import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";

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
