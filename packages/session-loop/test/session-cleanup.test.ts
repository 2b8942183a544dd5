import { buf_new, buf_putbytes, type buffer } from "@dropbear-ts/buffer";
import { key_context, runopts, svr_runopts, SvrSession } from "@dropbear-ts/core";
import { describe, expect, it } from "vitest";
import { session_cleanup } from "../src/index.js";

/** A buffer holding `n` bytes of 0xaa, and the memory it holds them in. */
function secretBuf(n: number): [buffer, Buffer] {
  const b = buf_new(n);
  buf_putbytes(b, Buffer.alloc(n, 0xaa));
  return [b, b.data];
}

describe("session_cleanup", () => {
  it("zeroes the session's secrets as common-session.c burns them", () => {
    const ses = new SvrSession(new runopts(), new svr_runopts());
    ses.init_done = true;
    const sessionId = Buffer.alloc(32, 0xaa);
    const hash = Buffer.alloc(32, 0xbb);
    const dhK = Buffer.alloc(64, 0xcc);
    ses.session_id = sessionId;
    ses.hash = hash;
    ses.dh_K = 12345n;
    ses.dh_K_bytes = dhK;
    const [kexhashbuf, kexhashMem] = secretBuf(48);
    const [transkexinit, transkexinitMem] = secretBuf(40);
    const [payload, payloadMem] = secretBuf(24);
    const [readbuf, readbufMem] = secretBuf(24);
    const [writepayload, writepayloadMem] = secretBuf(16);
    ses.writepayload = writepayload;
    ses.kexhashbuf = kexhashbuf;
    ses.transkexinit = transkexinit;
    ses.payload = payload;
    ses.readbuf = readbuf;
    const keys = ses.keys;
    keys.recv.mackey = Buffer.alloc(32, 0x11);
    keys.trans.mackey = Buffer.alloc(32, 0x22);
    const newkeys = new key_context();
    newkeys.recv.mackey = Buffer.alloc(32, 0x33);
    newkeys.trans.mackey = Buffer.alloc(32, 0x44);
    ses.newkeys = newkeys;

    session_cleanup(ses);

    const zeroed = (b: Uint8Array): boolean => b.length > 0 && b.every((x) => x === 0);
    for (const mem of [sessionId, hash, dhK, kexhashMem, transkexinitMem, payloadMem, readbufMem, writepayloadMem]) {
      expect(zeroed(mem)).toBe(true);
    }
    for (const k of [keys.recv.mackey, keys.trans.mackey, newkeys.recv.mackey, newkeys.trans.mackey]) {
      expect(zeroed(k)).toBe(true);
    }
    expect(ses.session_id).toBeNull();
    expect(ses.hash).toBeNull();
    expect(ses.dh_K).toBeNull();
    expect(ses.dh_K_bytes).toBeNull();
    expect(ses.kexhashbuf).toBeNull();
    expect(ses.transkexinit).toBeNull();
    expect(ses.payload).toBeNull();
    expect(ses.readbuf).toBeNull();
    expect(ses.newkeys).toBeNull();
    expect(ses.keys).not.toBe(keys);
    expect(ses.writepayload.size).toBe(0);
  });

  it("does nothing to a session that never finished init", () => {
    const ses = new SvrSession(new runopts(), new svr_runopts());
    const sessionId = Buffer.alloc(8, 0xaa);
    ses.session_id = sessionId;
    session_cleanup(ses);
    expect(ses.session_id).toBe(sessionId);
    expect(sessionId.every((x) => x === 0xaa)).toBe(true);
  });
});
