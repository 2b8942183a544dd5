import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { Duplex, Writable } from "node:stream";
import { constants as zc, deflateSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { buf_getbyte, buf_getint, buf_getstring, buf_new, buf_putbyte, buf_putbytes, buf_putint, buf_putstring, type buffer } from "@dropbear-ts/buffer";
import { CliSession, DROPBEAR_COMP_ZLIB, OUR_RECV_MAX_PAYLOAD_LEN, OUR_TRANS_MAX_PAYLOAD_LEN, SvrSession, cli_runopts, runopts, svr_runopts, type ZStream, type key_context_directional, type sshsession } from "@dropbear-ts/core";
import {
  dropbear_aes128,
  dropbear_chachapoly,
  dropbear_mode_chachapoly,
  dropbear_mode_ctr,
  dropbear_mode_gcm,
  dropbear_sha2_256,
  type dropbear_cipher,
  type dropbear_cipher_mode,
} from "@dropbear-ts/crypto";
import { DropbearExit, examine } from "@dropbear-ts/dbutil";
import { StreamFd, ownReadAccepted } from "@dropbear-ts/netio";
import { encrypt_packet, payloadHeldBy, read_packet, write_packet } from "../src/packet.js";
import { tcpPair } from "../../../tests/helpers/sockets.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

interface Suite {
  name: string;
  cipher: dropbear_cipher;
  mode: dropbear_cipher_mode;
  etm: boolean;
}

const suites: Suite[] = [
  { name: "aes128-ctr + hmac-sha2-256", cipher: dropbear_aes128, mode: dropbear_mode_ctr, etm: false },
  { name: "aes128-ctr + hmac-sha2-256-etm", cipher: dropbear_aes128, mode: dropbear_mode_ctr, etm: true },
  { name: "chacha20-poly1305@openssh.com", cipher: dropbear_chachapoly, mode: dropbear_mode_chachapoly, etm: false },
  { name: "aes128-gcm@openssh.com", cipher: dropbear_aes128, mode: dropbear_mode_gcm, etm: false },
];

/** The slab tests' payloads, and how many: 400 of 8 KB fill about six slabs (packet.ts SLAB_BYTES, 512 KiB). */
const BODY = 8_000;
const PACKETS = 400;

/** Key one direction as gen_new_keys would. */
function key(dir: key_context_directional, s: Suite, k: Buffer, iv: Buffer, mackey: Buffer): void {
  dir.algo_crypt = s.cipher;
  dir.crypt_mode = s.mode;
  dir.algo_mac = s.mode.kind === "aead" ? s.mode.aead_mac : dropbear_sha2_256;
  dir.mac_etm = s.etm;
  dir.cipher_state = s.mode.start(s.cipher.cipherdesc, iv, k, s.cipher.keysize, 0)!;
  dir.mackey = mackey;
}

/**
 * A sender and a receiver session on two ends of a loopback socket, keyed alike. `ring`: the
 * receiver reads through its own ring (netio ownReadAccepted), as our programs' sockets do.
 */
async function pair(s: Suite, ring = false): Promise<{ tx: sshsession; rx: sshsession }> {
  const p = await tcpPair();
  cleanups.push(p.close);
  const tx = new SvrSession(new runopts(), new svr_runopts());
  const rx = new CliSession(new runopts(), new cli_runopts());
  for (const ses of [tx, rx]) {
    ses.writepayload = buf_new(OUR_TRANS_MAX_PAYLOAD_LEN);
    ses.dataallowed = true;
    ses.remoteclosed = () => {
      throw new DropbearExit(0, "Remote closed the connection");
    };
  }
  tx.sock_out = new StreamFd(p.a);
  rx.sock_in = ring ? ownReadAccepted(p.b) : new StreamFd(p.b);
  const k = randomBytes(64);
  const iv = randomBytes(16);
  const mk = randomBytes(32);
  key(tx.keys.trans, s, k, iv, mk);
  key(rx.keys.recv, s, k, iv, mk);
  return { tx, rx };
}

function send(tx: sshsession, body: string): buffer {
  buf_putbyte(tx.writepayload, 94);
  buf_putstring(tx.writepayload, body);
  encrypt_packet(tx);
  return examine(tx.writequeue);
}

/** The i-th test packet's body: BODY bytes, its number first. */
function packetBody(i: number): string {
  return `${i}:`.padEnd(BODY, String.fromCharCode(97 + (i % 26)));
}

/** A socket whose peer reads nothing, with room in Node for 8 MiB of unwritten packets. */
async function stalledSocket(): Promise<StreamFd> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const peer = once(server, "connection");
  // (Node passes the mark on to the stream; @types/node does not list it for sockets.)
  const sock = net.connect({ port: (server.address() as net.AddressInfo).port, host: "127.0.0.1", writableHighWaterMark: 1 << 23 } as net.NetConnectOpts);
  await once(sock, "connect");
  const [far] = (await peer) as [net.Socket];
  cleanups.push(() => {
    sock.destroy();
    far.destroy();
    server.close();
  });
  return new StreamFd(sock);
}

/** Read until a payload is complete (or the read throws), bounded. */
async function receive(rx: sshsession): Promise<void> {
  for (let i = 0; i < 200 && rx.payload === null; i++) {
    await new Promise((r) => setTimeout(r, 5));
    if (rx.sock_in!.readReady()) read_packet(rx);
  }
}

describe("packet.c over a real socket", () => {
  for (const s of suites) {
    it(`${s.name}: packets arrive intact and in order`, async () => {
      const { tx, rx } = await pair(s);
      for (const body of ["first", "x".repeat(8_000), "third"]) {
        send(tx, body);
        write_packet(tx);
        await receive(rx);
        const payload = rx.payload!;
        expect(buf_getbyte(payload)).toBe(94);
        expect(buf_getstring(payload).toString()).toBe(body);
        rx.payload = null;
      }
    });

    it(`${s.name}: the largest payload we send is one packet, and it is accepted whole`, async () => {
      const { tx, rx } = await pair(s);
      expect(OUR_TRANS_MAX_PAYLOAD_LEN).toBeLessThanOrEqual(OUR_RECV_MAX_PAYLOAD_LEN);
      const body = randomBytes(OUR_TRANS_MAX_PAYLOAD_LEN - 1);
      buf_putbyte(tx.writepayload, 94);
      buf_putbytes(tx.writepayload, body);
      encrypt_packet(tx);
      expect(tx.writequeue.count).toBe(1);
      write_packet(tx);
      await receive(rx);
      const payload = rx.payload!;
      expect(payload.len - payload.pos).toBe(OUR_TRANS_MAX_PAYLOAD_LEN);
      expect(buf_getbyte(payload)).toBe(94);
      expect(payload.data.subarray(payload.pos, payload.len).equals(body)).toBe(true);
    });

    it(`${s.name}, compressed: a packet's buffer is the size of what goes out, and it inflates intact`, async () => {
      const { tx, rx } = await pair(s);
      tx.keys.trans.algo_comp = DROPBEAR_COMP_ZLIB;
      rx.keys.recv.algo_comp = DROPBEAR_COMP_ZLIB;
      const mixed = Array.from({ length: 2_000 }, (_, i) => `${i * 7919},`).join("");
      for (const body of ["x".repeat(32_000), mixed, "short"]) {
        const packet = send(tx, body);
        // No room kept for the payload as it was before compression: what the write queue
        // holds is what it counts.
        expect(packet.data.length - packet.len).toBeLessThan(64);
        if (body.length === 32_000) expect(packet.len).toBeLessThan(1_000);
        write_packet(tx);
        await receive(rx);
        const payload = rx.payload!;
        expect(buf_getbyte(payload)).toBe(94);
        // Longer than buf_getstring takes: the string by hand.
        const n = buf_getint(payload);
        expect(payload.data.subarray(payload.pos, payload.pos + n).toString()).toBe(body);
        rx.payload = null;
      }
    });

    for (const ring of [false, true]) {
      for (const where of ["body", "MAC"] as const) {
        it(`${s.name}${ring ? ", read through the socket's ring" : ""}: one flipped bit in the ${where} ends the session ("Integrity error" / "Error decrypting")`, async () => {
          const { tx, rx } = await pair(s, ring);
          const wire = send(tx, "tamper with me");
          // Past the length field, so the packet is still read whole and then rejected.
          const macsize = s.mode.kind === "aead" ? s.mode.aead_mac.hashsize : dropbear_sha2_256.hashsize;
          wire.data[wire.len - (where === "MAC" ? 3 : macsize + 2)]! ^= 0x01;
          write_packet(tx);
          await expect(receive(rx)).rejects.toThrow(/Integrity error|Error decrypting/);
        });
      }
    }
  }

  for (const s of suites) {
    it(`${s.name}: a payload's tail handed to encrypt_packet where it waits arrives after the payload's bytes`, async () => {
      const { tx, rx } = await pair(s);
      const tails = [randomBytes(5000), randomBytes(1), randomBytes(OUR_TRANS_MAX_PAYLOAD_LEN - 9), randomBytes(77)];
      for (const tail of tails) {
        buf_putbyte(tx.writepayload, 94);
        buf_putint(tx.writepayload, tail.length);
        // A view into a larger buffer, as a socket's ring is.
        const ring = Buffer.concat([randomBytes(13), tail, randomBytes(29)]);
        encrypt_packet(tx, ring.subarray(13, 13 + tail.length));
        write_packet(tx);
        await receive(rx);
        const payload = rx.payload!;
        expect(buf_getbyte(payload)).toBe(94);
        expect(payload.data.readUInt32BE(payload.pos)).toBe(tail.length);
        expect(payload.data.subarray(payload.pos + 4, payload.len).equals(tail)).toBe(true);
        rx.payload = null;
      }
    });
  }

  for (const s of suites.filter((x) => x.mode.kind === "aead")) {
    it(`${s.name}: a packet waiting in the socket's ring is decrypted from there, its body not copied out first`, async () => {
      const { tx, rx } = await pair(s, true);
      const fd = rx.sock_in!;
      let copied = 0;
      const readInto = fd.readInto.bind(fd);
      fd.readInto = (dest, off, max) => {
        const n = readInto(dest, off, max);
        copied += n ?? 0;
        return n;
      };
      const bodies = [randomBytes(40_000), randomBytes(OUR_TRANS_MAX_PAYLOAD_LEN - 1), randomBytes(3)];
      for (const body of bodies) {
        buf_putbyte(tx.writepayload, 94);
        buf_putbytes(tx.writepayload, body);
        encrypt_packet(tx);
        write_packet(tx);
        await receive(rx);
        const payload = rx.payload!;
        expect(buf_getbyte(payload)).toBe(94);
        expect(payload.data.subarray(payload.pos, payload.len).equals(body)).toBe(true);
        rx.payload = null;
      }
      // Copied out: each packet's first block (its length) and its tag, nothing of its body.
      expect(copied).toBe(bodies.length * (s.cipher.blocksize + rx.keys.recv.algo_mac.hashsize));
    });
  }

  it("seals packets where their payloads were built, reusing a slab once all it held is written", async () => {
    const { tx, rx } = await pair(suites[2]!);
    const slabs = new Set<ArrayBufferLike>();
    for (let i = 0; i < PACKETS; i++) {
      const body = packetBody(i);
      const payloadAt = tx.writepayload.data;
      const wire = send(tx, body);
      if (i > 0) {
        // In place: the packet's payload starts where the payload was built.
        expect(wire.data.buffer).toBe(payloadAt.buffer);
        expect(wire.data.byteOffset + 5).toBe(payloadAt.byteOffset);
        slabs.add(wire.data.buffer);
      }
      write_packet(tx);
      // The turn's writes reach the kernel as it ends (StreamFd.writev).
      await null;
      expect(tx.sock_out!.writePending).toBe(0);
      await receive(rx);
      expect(buf_getbyte(rx.payload!)).toBe(94);
      expect(buf_getstring(rx.payload!).toString()).toBe(body);
      rx.payload = null;
    }
    // 400 packets of 8 KB, 64 to a 512 KiB slab: the same few slabs over and over.
    expect(slabs.size).toBeLessThanOrEqual(3);
  });

  it("never reuses a slab while the socket still holds packets sealed in it", async () => {
    const { tx } = await pair(suites[2]!);
    tx.sock_out = await stalledSocket();
    let i = 0;
    // Until the kernel's buffers are full and the socket keeps what it is given.
    for (; i < 5000 && tx.sock_out.writePending === 0; i++) {
      send(tx, packetBody(i));
      write_packet(tx);
      // Each its own loop turn: a turn's writes go to the kernel as it ends.
      await null;
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    expect(tx.sock_out.writePending).toBeGreaterThan(0);
    const sent: Array<{ wire: Buffer; copy: Buffer }> = [];
    for (const end = i + PACKETS; i < end; i++) {
      const wire = send(tx, packetBody(i));
      const bytes = wire.data.subarray(0, wire.len);
      sent.push({ wire: bytes, copy: Buffer.from(bytes) });
      write_packet(tx);
      expect(tx.writequeue.count).toBe(0);
      await null;
    }
    // 400 packets filled 7 slabs, all handed to the socket and not yet written: none was reused.
    for (const p of sent) expect(p.wire.equals(p.copy)).toBe(true);
  });

  it("reuses a slab once the socket has written its packets, though it still holds later ones", async () => {
    const { tx } = await pair(suites[2]!);
    tx.sock_out = await stalledSocket();
    const before = new Set<ArrayBufferLike>();
    let i = 0;
    // Until the kernel's buffers are full: every packet so far went to the kernel.
    for (; i < 5000 && tx.sock_out.writePending === 0; i++) {
      before.add(send(tx, packetBody(i)).data.buffer);
      write_packet(tx);
      await null;
    }
    expect(tx.sock_out.writePending).toBeGreaterThan(0);
    // The socket holds the last packets from now on; the next slab is an earlier one, all of
    // whose packets the kernel has.
    const last = send(tx, packetBody(i++)).data.buffer;
    write_packet(tx);
    await null;
    let next = last;
    for (let n = 0; n < 200 && next === last; n++, i++) {
      next = send(tx, packetBody(i)).data.buffer;
      write_packet(tx);
      await null;
    }
    expect(next).not.toBe(last);
    expect(before.has(next)).toBe(true);
  });

  it("nor a slab whose packets went to a stream within the process", async () => {
    const { tx } = await pair(suites[2]!);
    // Its reader may keep the very Buffers it was given, long after the writes completed.
    const kept: Array<{ chunk: Buffer; copy: Buffer }> = [];
    tx.sock_out = new StreamFd(
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          kept.push({ chunk, copy: Buffer.from(chunk) });
          cb();
        },
      }),
    );
    for (let i = 0; i < PACKETS; i++) {
      send(tx, packetBody(i));
      write_packet(tx);
      await new Promise((r) => setImmediate(r));
    }
    expect(tx.sock_out.writePending).toBe(0);
    for (const k of kept) expect(k.chunk.equals(k.copy)).toBe(true);
  });

  it("nor one whose packets still wait in the write queue", async () => {
    const { tx } = await pair(suites[2]!);
    const sent: Array<{ wire: Buffer; copy: Buffer }> = [];
    for (let i = 0; i < PACKETS; i++) {
      send(tx, packetBody(i));
      const wire = [...tx.writequeue].at(-1)!;
      const bytes = wire.data.subarray(0, wire.len);
      sent.push({ wire: bytes, copy: Buffer.from(bytes) });
    }
    expect(tx.writequeue.count).toBe(PACKETS);
    expect(tx.sock_out!.writePending).toBe(0);
    for (const p of sent) expect(p.wire.equals(p.copy)).toBe(true);
  });

  it("reads packets into a few slabs in turn, none reused while a stream holds a payload in it", async () => {
    const { tx, rx } = await pair(suites[2]!);
    // A stream that never finishes a write: what a full socket is to a channel.
    const stuck = new StreamFd(new Writable({ highWaterMark: 1 << 20, write: () => undefined }));
    stuck.write(Buffer.from("x"));
    expect(stuck.writePending).toBe(1);
    const slabs = new Set<ArrayBufferLike>();
    const held: Array<{ view: Buffer; copy: Buffer }> = [];
    for (let i = 0; i < PACKETS; i++) {
      const body = packetBody(i);
      send(tx, body);
      write_packet(tx);
      await receive(rx);
      const payload = rx.payload!;
      slabs.add(payload.data.buffer);
      if (i === 10) {
        // As a channel does when its stream keeps the payload's bytes to write later.
        const view = payload.data.subarray(0, payload.len);
        held.push({ view, copy: Buffer.from(view) });
        payloadHeldBy(rx, stuck);
      }
      expect(buf_getbyte(payload)).toBe(94);
      expect(buf_getstring(payload).toString()).toBe(body);
      rx.payload = null;
    }
    for (const h of held) expect(h.view.equals(h.copy)).toBe(true);
    // 8 KB packets, 64 to a 512 KiB slab: the held one and a few in turn.
    expect(slabs.size).toBeLessThanOrEqual(6);
  });

  for (const [s, ring] of suites.flatMap((s) => [[s, false], [s, true]] as const)) {
    it(`${s.name}${ring ? ", read through the socket's ring" : ""}: packets of every size, split at arbitrary points by the socket, are read whole`, async () => {
      const { tx, rx } = await pair(s, ring);
      const bodies: string[] = [];
      for (let i = 0; i < 240; i++) {
        // Around the first read (128 bytes) and the read slab's room, and a few large ones.
        const len = [1, 50, 100, 110, 111, 112, 120, 200, 1000, 5000, 8000, 7999][i % 12]!;
        bodies.push(`${i}:`.padEnd(len, String.fromCharCode(97 + (i % 26))));
        send(tx, bodies[i]!);
      }
      const wire = Buffer.concat([...tx.writequeue].map((b) => b.data.subarray(0, b.len)));
      const sock = tx.sock_out!.stream as net.Socket;
      // Deterministic pieces of 1 to 3000 bytes, each its own write and mostly its own segment.
      let seed = 12345;
      const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
      void (async () => {
        for (let off = 0; off < wire.length; ) {
          const n = 1 + (next() % 3000);
          sock.write(wire.subarray(off, off + n));
          off += n;
          await new Promise((r) => setTimeout(r, next() % 4 === 0 ? 1 : 0));
        }
      })();
      for (const body of bodies) {
        for (let j = 0; j < 5000 && rx.payload === null; j++) {
          await new Promise((r) => setTimeout(r, j < 20 ? 0 : 1));
          if (rx.sock_in!.readReady()) read_packet(rx);
        }
        expect(buf_getbyte(rx.payload!)).toBe(94);
        expect(buf_getstring(rx.payload!).toString()).toBe(body);
        rx.payload = null;
      }
    });
  }

  it("the largest payload we accept, with 251 bytes of padding (RFC 4253 allows up to 255), is accepted", async () => {
    // Before any key exchange: no cipher (8-byte blocks) and no MAC, so the test writes the
    // packet itself, padded as some implementations do, with a random amount up to the limit.
    const p = await tcpPair();
    cleanups.push(p.close);
    const rx = new CliSession(new runopts(), new cli_runopts());
    rx.remoteclosed = () => {
      throw new DropbearExit(0, "Remote closed the connection");
    };
    rx.sock_in = new StreamFd(p.b);
    const body = randomBytes(OUR_RECV_MAX_PAYLOAD_LEN);
    body[0] = 94;
    const pad = 251; // 4 + 1 + payload + pad fills whole 8-byte blocks
    const wire = Buffer.alloc(4 + 1 + body.length + pad);
    wire.writeUInt32BE(1 + body.length + pad, 0);
    wire[4] = pad;
    body.copy(wire, 5);
    expect(wire.length % 8).toBe(0);
    (p.a as net.Socket).write(wire);
    for (let j = 0; j < 2000 && rx.payload === null; j++) {
      await new Promise((r) => setTimeout(r, j < 20 ? 0 : 1));
      if (rx.sock_in.readReady()) read_packet(rx);
    }
    const payload = rx.payload!;
    expect(payload.len - payload.pos).toBe(body.length);
    expect(payload.data.subarray(payload.pos, payload.len).equals(body)).toBe(true);
  });

  it("a write that failed after Node took it is reported as a write error when the next read finds it, as C's write() says", async () => {
    // Node reports a socket write's EPIPE later, as the stream's error, which the next read
    // then throws: the message must still say which call failed.
    const sock = new Duplex({
      read() {},
      write(_chunk, _enc, done) {
        done(Object.assign(new Error("write EPIPE"), { code: "EPIPE", syscall: "write" }));
      },
    });
    sock.on("error", () => undefined);
    const ses = new SvrSession(new runopts(), new svr_runopts());
    ses.writepayload = buf_new(OUR_TRANS_MAX_PAYLOAD_LEN);
    ses.dataallowed = true;
    ses.sock_in = ses.sock_out = new StreamFd(sock);
    send(ses, "x");
    write_packet(ses);
    await new Promise((r) => setTimeout(r, 10));
    expect(() => read_packet(ses)).toThrow("Error writing: Broken pipe");
  });

  /** A sender whose next compressed payload is `wire`, whatever it was given: a hostile peer's deflater. */
  function hostileDeflater(wire: Buffer): ZStream {
    const z: ZStream = { err: 0, msg: "", onData: () => undefined, push: () => (z.onData(wire), true) };
    return z;
  }

  it("a compressed payload that ends its zlib stream is refused (zlib error, as Dropbear's inflate says Z_STREAM_END), not delivered", async () => {
    const { tx, rx } = await pair(suites[0]!);
    tx.keys.trans.algo_comp = DROPBEAR_COMP_ZLIB;
    rx.keys.recv.algo_comp = DROPBEAR_COMP_ZLIB;
    // A whole zlib stream, final block and checksum included, then bytes after its end.
    const payload = Buffer.from([94, 0, 0, 0, 0, 0, 0, 0, 3, 101, 110, 100]);
    tx.keys.trans.zstream = hostileDeflater(Buffer.concat([deflateSync(payload), Buffer.from("after")]));
    send(tx, "x".repeat(100));
    write_packet(tx);
    await expect(receive(rx)).rejects.toThrow(/^zlib error$/);
    expect(rx.payload).toBeNull();
  });

  it("a compressed payload inflating to 16 MiB stops inflating just past the largest payload (oversized)", async () => {
    const { tx, rx } = await pair(suites[0]!);
    tx.keys.trans.algo_comp = DROPBEAR_COMP_ZLIB;
    rx.keys.recv.algo_comp = DROPBEAR_COMP_ZLIB;
    // About 16 KB of deflate with a sync flush: inflates a thousandfold.
    const bomb = deflateSync(Buffer.alloc(16 << 20), { finishFlush: zc.Z_SYNC_FLUSH });
    tx.keys.trans.zstream = hostileDeflater(bomb);
    send(tx, "x".repeat(bomb.length));
    write_packet(tx);
    await expect(receive(rx)).rejects.toThrow(/^bad packet, oversized decompressed$/);
    // Not the whole 16 MiB inflated and thrown away (with 128 KiB in: a second of CPU).
    const inflated = (rx.keys.recv.zstream as unknown as { strm: { total_out: number } }).strm.total_out;
    expect(inflated).toBeLessThan(OUR_RECV_MAX_PAYLOAD_LEN + (1 << 20));
  });

  it("a length over RECV_MAX_PACKET_LEN is refused before any allocation", async () => {
    const { tx, rx } = await pair(suites[0]!);
    const wire = send(tx, "x");
    // Corrupt the encrypted length: with CTR it decrypts to garbage, almost surely huge.
    wire.data[0]! ^= 0x80;
    write_packet(tx);
    await expect(receive(rx)).rejects.toThrow(/Integrity error \(bad packet size|Integrity error/);
  });
});
