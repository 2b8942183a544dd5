import {
  buf_getbyte,
  buf_getint,
  buf_getptr,
  buf_getwriteptr,
  buf_incrlen,
  buf_incrpos,
  buf_incrwritepos,
  buf_new,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_setlen,
  buf_setpos,
  bufNewUnzeroed,
  buffer,
} from "@dropbear-ts/buffer";
import {
  DROPBEAR_COMP_ZLIB,
  DROPBEAR_COMP_ZLIB_DELAY,
  OUR_RECV_MAX_PACKET_LEN,
  OUR_RECV_MAX_PAYLOAD_LEN,
  OUR_TRANS_MAX_PAYLOAD_LEN,
  sesCall,
  type ReadSlab,
  type WriteSlab,
  type ZStream,
  type key_context_directional,
  type sshsession,
} from "@dropbear-ts/core";
import { createRequire } from "node:module";
import { CRYPT_OK, LTC_DECRYPT, LTC_ENCRYPT, computeMac, genrandom, verifyMac, type aead_stream } from "@dropbear-ts/crypto";
import { LARGE_COUNT_ZERO, TRACE, TRACE2, dropbear_assert, dropbear_exit, enqueue, isempty, monotonic_now, strerror_code } from "@dropbear-ts/dbutil";
import { FdError, packet_queue_consume, packet_queue_to_iovec, type StreamFd } from "@dropbear-ts/netio";
import {
  DROPBEAR_ZLIB_MEM_LEVEL,
  DROPBEAR_ZLIB_WINDOW_BITS,
  MAX_DEFER_REPLY_QUEUE,
  MIN_PACKET_LEN,
  SSH_MSG_IGNORE,
  SSH_MSG_KEXINIT,
  SSH_MSG_REQUEST_FAILURE,
  SSH_MSG_SERVICE_ACCEPT,
  SSH_MSG_SERVICE_REQUEST,
  SSH_MSG_UNIMPLEMENTED,
  SSH_MSG_USERAUTH_REQUEST,
} from "@dropbear-ts/options";

/** Offset of the padding-length byte in a packet. @dropbear packet.h PACKET_PADDING_OFF */
export const PACKET_PADDING_OFF = 4;
/** Offset of the payload in a packet. @dropbear packet.h PACKET_PAYLOAD_OFF */
export const PACKET_PAYLOAD_OFF = 5;
/** First allocation of the read buffer; it grows to the packet's size. @dropbear packet.h INIT_READBUF */
export const INIT_READBUF = 128;
/** What zlib may add to a payload at worst (kept so sizes match Dropbear's checks). @dropbear packet.c ZLIB_COMPRESS_EXPANSION */
export const ZLIB_COMPRESS_EXPANSION = (Math.floor(OUR_RECV_MAX_PAYLOAD_LEN / 16384) + 1) * 5 + 6;

// pako: Node has no public synchronous zlib stream that keeps its state between calls. It is
// loaded only when compression is negotiated (rare; it costs ~7 ms of every start-up otherwise).
type Pako = typeof import("pako");
let pakoModule: Pako | null = null;
const pako = (): Pako => (pakoModule ??= createRequire(import.meta.url)("pako") as Pako);

/** A fresh deflate (sending, default level) or inflate (receiving) stream as Dropbear sets zlib up. */
function newzstream(trans: boolean): ZStream {
  const { Deflate, Inflate } = pako();
  return trans
    ? new Deflate({ windowBits: DROPBEAR_ZLIB_WINDOW_BITS, memLevel: DROPBEAR_ZLIB_MEM_LEVEL })
    : new Inflate({ windowBits: DROPBEAR_ZLIB_WINDOW_BITS });
}

/** A direction's zlib stream, made now if gen_new_zstream left it for later. */
export function zstreamOf(dir: key_context_directional, trans: boolean): ZStream {
  return (dir.zstream ??= newzstream(trans));
}

/**
 * Idle work that readies a direction's zlib stream before its first packet, in steps that may
 * fall in different waits for the peer: loading pako (8 ms here), making the stream (2-4 ms),
 * and running pako's code once on a stream thrown away (2-4 ms), which the first packet would
 * otherwise pay for as it compiles (2 ms, against 0.3 once warm).
 */
export function zstreamIdleWork(dir: key_context_directional, trans: boolean): (() => void)[] {
  return [() => void pako(), () => void zstreamOf(dir, trans), () => zwarm(trans)];
}

/** A few bytes to compress once at warm-up. */
const ZWARM_SAMPLE = Buffer.from("SSH-2.0 warm-up ".repeat(16));

/** Which of pako's two codes this process has run (a rekey's new streams need no warm-up). */
const zwarmed = { deflate: false, inflate: false };

/** Deflate (and for a receiving direction inflate) ZWARM_SAMPLE on streams of their own, once. */
function zwarm(trans: boolean): void {
  if (zwarmed.deflate && (trans || zwarmed.inflate)) {
    return;
  }
  const packed = zpush(newzstream(true), ZWARM_SAMPLE, ZWARM_SAMPLE.length + ZLIB_COMPRESS_EXPANSION);
  zwarmed.deflate = true;
  if (!trans) {
    zpush(newzstream(false), packed, ZWARM_SAMPLE.length);
    zwarmed.inflate = true;
  }
}

/** Is what we send compressed now? ("zlib@openssh.com" waits for auth.) @dropbear common-kex.c is_compress_trans */
export function is_compress_trans(ses: sshsession): boolean {
  const c = ses.keys.trans.algo_comp;
  return c === DROPBEAR_COMP_ZLIB || (ses.authstate.authdone && c === DROPBEAR_COMP_ZLIB_DELAY);
}

/** Is what we receive compressed now? @dropbear common-kex.c is_compress_recv */
export function is_compress_recv(ses: sshsession): boolean {
  const c = ses.keys.recv.algo_comp;
  return c === DROPBEAR_COMP_ZLIB || (ses.authstate.authdone && c === DROPBEAR_COMP_ZLIB_DELAY);
}

/**
 * Run `len` bytes through a zlib stream with a sync flush and collect what comes out: at most
 * `limit` bytes, past which it stops at once, as C's inflate stops at the end of its buffer
 * (a few KiB from a peer can inflate to 1000 times their size: a second of CPU to throw away).
 */
function zpush(z: ZStream, data: Uint8Array, limit: number): Buffer {
  const out: Uint8Array[] = [];
  let total = 0;
  z.onData = (chunk) => {
    total += chunk.length;
    if (total > limit) {
      dropbear_exit("bad packet, oversized decompressed");
    }
    out.push(chunk);
  };
  const { Z_OK, Z_SYNC_FLUSH } = pako();
  z.push(data, Z_SYNC_FLUSH);
  // pako reports the end of the stream (a final block) as success and ignores what follows it;
  // zlib's inflate says Z_STREAM_END, which Dropbear takes as an error: an SSH stream never ends.
  if (z.err !== Z_OK || (z instanceof pako().Inflate && z.ended)) {
    dropbear_exit("zlib error");
  }
  return Buffer.concat(out);
}

/** Inflate a received payload into a new buffer of at most OUR_RECV_MAX_PAYLOAD_LEN. @dropbear packet.c buf_decompress */
function buf_decompress(ses: sshsession, buf: buffer, len: number): buffer {
  const plain = zpush(zstreamOf(ses.keys.recv, false), buf_getptr(buf, len), OUR_RECV_MAX_PAYLOAD_LEN);
  const ret = buf_new(plain.length);
  buf_putbytes(ret, plain);
  return ret;
}

/**
 * Deflate `len` bytes of src; returned rather than put into the packet, whose buffer
 * encrypt_packet then makes to fit. @dropbear packet.c buf_compress
 */
function buf_compress(ses: sshsession, src: buffer, len: number): Buffer {
  TRACE2("enter buf_compress");
  const packed = zpush(zstreamOf(ses.keys.trans, true), buf_getptr(src, len), len + ZLIB_COMPRESS_EXPANSION);
  TRACE2("leave buf_compress");
  return packed;
}

function fatalIo(what: "reading" | "writing", e: unknown): never {
  if (e instanceof FdError) {
    // A write Node finished later failed meanwhile: C's write() would have said so itself.
    const failed = e.syscall === "write" || e.syscall === "writev" ? "writing" : e.syscall === "read" ? "reading" : what;
    dropbear_exit(`Error ${failed}: ${strerror_code(e.code, e.message)}`, "ECLOSED");
  }
  throw e;
}

/**
 * Hand as much of the write queue to the socket as it takes now, in one gathered write; EAGAIN
 * returns quietly (the loop calls this optimistically). @dropbear packet.c write_packet
 */
export function write_packet(ses: sshsession): void {
  TRACE2("enter write_packet");
  dropbear_assert(!isempty(ses.writequeue), "!isempty(&ses.writequeue)");
  const sock = ses.sock_out;
  dropbear_assert(sock !== null, "ses.sock_out != -1");
  const iov = packet_queue_to_iovec(ses.writequeue);
  let written: number;
  try {
    written = sock.writev(iov);
  } catch (e) {
    fatalIo("writing", e);
  }
  if (written === 0) {
    // Our Fd reports a full socket as 0, not as a closed one: that is C's EAGAIN.
    TRACE2("leave write_packet: EAGAIN");
    return;
  }
  packet_queue_consume(ses.writequeue, written);
  ses.writequeue_len -= written;
  TRACE2("leave write_packet");
}

/** Read from the socket into the packet buffer and decrypt once a whole packet is in. @dropbear packet.c read_packet */
export function read_packet(ses: sshsession): void {
  TRACE2("enter read_packet");
  const blocksize = ses.keys.recv.algo_crypt.blocksize;
  if (ses.readbuf === null || ses.readbuf.len < blocksize) {
    if (!read_packet_init(ses)) {
      TRACE2("leave read_packet: packetinit done");
      return;
    }
  }
  const readbuf = ses.readbuf!;
  const maxlen = readbuf.len - readbuf.pos;
  let len = 0;
  if (maxlen > 0) {
    const stream = ses.readbuf_stream;
    const got = stream !== null ? readOpening(ses, stream, readbuf) : readSome(ses, readbuf, maxlen);
    if (got === null) {
      TRACE2("leave read_packet: EINTR or EAGAIN");
      return;
    }
    if (stream === null) {
      buf_incrpos(readbuf, got);
    }
    len = got;
  }
  if (len === maxlen) {
    decrypt_packet(ses);
  }
  TRACE2("leave read_packet");
}

/**
 * One non-blocking read of at most `max` bytes into `buf` at its pos (room checked): the bytes
 * read, null for EAGAIN. EOF goes to ses.remoteclosed (which ends the session).
 */
function readSome(ses: sshsession, buf: buffer, max: number): number | null {
  const sock = ses.sock_in;
  dropbear_assert(sock !== null, "ses.sock_in != -1");
  const dest = buf_getwriteptr(buf, max);
  let got: number | null;
  try {
    got = sock.readInto(dest, 0, max);
  } catch (e) {
    fatalIo("reading", e);
  }
  if (got === 0) {
    sesCall(ses, ses.remoteclosed);
    dropbear_exit("Remote closed the connection", "ECLOSED");
  }
  return got;
}

const EMPTY = new Uint8Array(0);

/**
 * Beyond Dropbear (which reads the whole packet, then opens it): read the rest of a packet that
 * ses.readbuf_stream opens as it comes, up to its end (readbuf's len). Body bytes waiting in the
 * socket's read buffer are decrypted from there into readbuf, so they are not copied first;
 * bytes from any other stream are read in, then decrypted in place; the tag is read in. Moves
 * readbuf's pos past what it added; returns how many, or null for EAGAIN.
 */
function readOpening(ses: sshsession, stream: aead_stream, readbuf: buffer): number | null {
  const sock = ses.sock_in;
  dropbear_assert(sock !== null, "ses.sock_in != -1");
  const bodyend = readbuf.len - ses.keys.recv.algo_mac.hashsize;
  const start = readbuf.pos;
  // At most three pieces: the body up to the end of the ring, the body after it wraps, the tag.
  while (readbuf.pos < readbuf.len) {
    const inBody = readbuf.pos < bodyend;
    const want = (inBody ? bodyend : readbuf.len) - readbuf.pos;
    const dest = buf_getwriteptr(readbuf, want);
    const avail = inBody ? sock.peekRead() : EMPTY;
    let got: number;
    if (avail.length > 0) {
      got = Math.min(avail.length, want);
      if (!stream.update(avail, dest, got)) {
        dropbear_exit("Error decrypting");
      }
      sock.skipRead(got);
    } else {
      const n = readSome(ses, readbuf, want);
      if (n === null) {
        break;
      }
      got = n;
      if (inBody && !stream.update(dest, dest, got)) {
        dropbear_exit("Error decrypting");
      }
    }
    buf_incrpos(readbuf, got);
  }
  return readbuf.pos > start ? readbuf.pos - start : null;
}

/**
 * Read the first block of a packet, learn its length from it and size the read buffer. False
 * while the block is not complete. @dropbear packet.c read_packet_init
 */
function read_packet_init(ses: sshsession): boolean {
  const recv = ses.keys.recv;
  const blocksize = recv.algo_crypt.blocksize;
  const macsize = recv.algo_mac.hashsize;
  if (ses.readbuf === null) {
    ses.readbuf = newReadbuf(ses, INIT_READBUF);
  }
  const readbuf = ses.readbuf;
  const maxlen = blocksize - readbuf.pos;
  const got = readSome(ses, readbuf, maxlen);
  if (got === null) {
    TRACE2("leave read_packet_init: EAGAIN");
    return false;
  }
  buf_incrwritepos(readbuf, got);
  if (got !== maxlen) {
    return false;
  }
  buf_setpos(readbuf, 0);

  const mode = recv.crypt_mode;
  let plen: number;
  let len: number;
  if (mode.kind === "aead") {
    const l = mode.aead_getlength(ses.recvseq, buf_getptr(readbuf, blocksize), blocksize, recv.cipher_state);
    if (l < 0) {
      dropbear_exit("Error decrypting");
    }
    plen = l;
    len = plen + 4 + macsize;
  } else if (recv.mac_etm) {
    // Encrypt-then-MAC: the length travels in clear; the rest is decrypted after the MAC.
    plen = buf_getint(readbuf) + 4;
    len = plen + macsize;
  } else {
    if (mode.decrypt(buf_getptr(readbuf, blocksize), buf_getwriteptr(readbuf, blocksize), blocksize, recv.cipher_state) !== CRYPT_OK) {
      dropbear_exit("Error decrypting");
    }
    plen = buf_getint(readbuf) + 4;
    len = plen + macsize;
  }
  TRACE2(() => `packet size is ${len}, block ${blocksize} mac ${macsize}`);
  // AEAD's plen is already packet_length; with etm the length is outside the cipher too. Either
  // way it is what follows the length field that must fill whole blocks.
  const cipherlen = recv.mac_etm && mode.kind === "stream" ? plen - 4 : plen;
  if (len > OUR_RECV_MAX_PACKET_LEN || plen > OUR_RECV_MAX_PACKET_LEN || plen < blocksize || cipherlen % blocksize !== 0) {
    dropbear_exit(`Integrity error (bad packet size ${plen})`);
  }
  if (len > readbuf.size) {
    ses.readbuf = growReadbuf(ses, readbuf, len, blocksize);
  }
  buf_setlen(ses.readbuf, len);
  buf_setpos(ses.readbuf, blocksize);
  const stream = mode.kind === "aead" ? (mode.aead_stream?.(recv.cipher_state) ?? null) : null;
  if (stream !== null) {
    if (!stream.begin(ses.recvseq, ses.readbuf.data, blocksize, LTC_DECRYPT)) {
      dropbear_exit("Error decrypting");
    }
    ses.readbuf_stream = stream;
  }
  return true;
}

/**
 * Bytes of one slab, each way: packets are read into (newReadbuf) and sealed in
 * (placeWritepayload) slabs. Four of our largest packets, so a packet of any size we send or
 * accept fits (else it falls back to memory of its own and a copy).
 */
const SLAB_BYTES = 4 * Math.max(OUR_TRANS_MAX_PAYLOAD_LEN, OUR_RECV_MAX_PACKET_LEN);
/**
 * Filled slabs a session keeps for reuse, each way. One still in use when this many wait is left
 * to the collector, so a slow stream costs no more than a buffer per packet did.
 */
const SLABS_RETIRED_MAX = 3;

/** `n` rounded up to 16: each packet starts aligned for the copies and the cipher. */
function align16(n: number): number {
  return (n + 15) & ~15;
}

/**
 * Memory for a session's next slab, one way: the oldest of `retired`'s, taken off the list, when
 * `free` says nothing refers to its bytes any more, else new memory, the oldest dropped (left to
 * the collector) while more than `keep` wait.
 */
function slabMemory<S extends { slab: Buffer }>(retired: S[], free: (s: S) => boolean, keep: number): Buffer {
  const oldest = retired[0];
  if (oldest !== undefined && free(oldest)) {
    retired.shift();
    return oldest.slab;
  }
  if (retired.length > keep) {
    retired.shift();
  }
  return Buffer.allocUnsafeSlow(SLAB_BYTES);
}

/**
 * A read buffer of `size` bytes, not zero-filled (the socket fills it before it is read), carved
 * from the session's current read slab after the packets read before it. Where Dropbear makes a
 * buffer per packet, a session reads into a few slabs in turn: memory the last packets used is
 * still in cache, where a fresh allocation costs about three times as much to fill, and the
 * collector has no buffer per packet to sweep.
 */
function newReadbuf(ses: sshsession, size: number): buffer {
  let s = ses.readbuf_slab;
  if (s === null || s.used + size > s.slab.length) {
    s = nextReadSlab(ses);
  }
  const start = s.used;
  s.used += align16(size);
  return new buffer(size, s.slab.subarray(start, start + size));
}

/**
 * `readbuf` (its first block read) made `len` bytes long: in place when it was the last carved
 * and its slab has the room, else a new buffer with the block copied over.
 */
function growReadbuf(ses: sshsession, readbuf: buffer, len: number, blocksize: number): buffer {
  const s = ses.readbuf_slab;
  if (s !== null && readbuf.data.buffer === s.slab.buffer) {
    const start = readbuf.data.byteOffset - s.slab.byteOffset;
    if (start + align16(readbuf.size) === s.used && start + len <= s.slab.length) {
      s.used = start + align16(len);
      return new buffer(len, s.slab.subarray(start, start + len));
    }
  }
  const whole = len > SLAB_BYTES ? bufNewUnzeroed(len) : newReadbuf(ses, len);
  readbuf.data.copy(whole.data, 0, 0, blocksize);
  return whole;
}

/**
 * The session's next read slab: the oldest filled one when every payload read into it has been
 * processed (all before the packet now being read have) and no stream still holds one of them
 * unwritten (payloadHeldBy), else a new one.
 */
function nextReadSlab(ses: sshsession): ReadSlab {
  // One fewer kept here: the current slab joins them below.
  const slab = slabMemory(ses.readbuf_retired, (s) => [...s.holders].every(([fd, mark]) => fd.flushed >= mark), SLABS_RETIRED_MAX - 1);
  // The current slab is retired only now, so the packet being read never lands in the slab it is in.
  if (ses.readbuf_slab !== null) {
    ses.readbuf_retired.push(ses.readbuf_slab);
  }
  const s: ReadSlab = { slab, used: 0, holders: new Map() };
  ses.readbuf_slab = s;
  return s;
}

/**
 * A stream to the kernel (StreamFd.writesToKernel) was handed bytes of ses.payload without a
 * copy and has not written them all: the slab they are in is not reused before it has.
 */
export function payloadHeldBy(ses: sshsession, fd: StreamFd): void {
  const data = ses.payload?.data;
  if (data === undefined) {
    return;
  }
  for (const s of [ses.readbuf_slab, ...ses.readbuf_retired]) {
    if (s !== null && s.slab.buffer === data.buffer) {
      s.holders.set(fd, fd.handed);
      return;
    }
  }
}

/** Authenticate and decrypt the read packet, then expose its payload. @dropbear packet.c decrypt_packet */
export function decrypt_packet(ses: sshsession): void {
  TRACE2("enter decrypt_packet");
  const recv = ses.keys.recv;
  const readbuf = ses.readbuf!;
  const blocksize = recv.algo_crypt.blocksize;
  const macsize = recv.algo_mac.hashsize;
  ses.kexstate.datarecv += readbuf.len;

  const mode = recv.crypt_mode;
  if (mode.kind === "aead") {
    buf_setpos(readbuf, 0);
    const len = readbuf.len - macsize;
    const stream = ses.readbuf_stream;
    ses.readbuf_stream = null;
    if (stream !== null) {
      // Decrypted as it was read (readOpening): only the tag is left to check.
      if (!stream.end(buf_getptr(readbuf, len + macsize).subarray(len))) {
        dropbear_exit("Error decrypting");
      }
    } else if (
      mode.aead_crypt(ses.recvseq, buf_getptr(readbuf, len + macsize), buf_getwriteptr(readbuf, len), len, macsize, recv.cipher_state, LTC_DECRYPT) !==
      CRYPT_OK
    ) {
      dropbear_exit("Error decrypting");
    }
  } else if (recv.mac_etm) {
    if (!checkmac(ses)) {
      dropbear_exit("Integrity error");
    }
    buf_setpos(readbuf, 4);
    const len = readbuf.len - macsize - 4;
    if (mode.decrypt(buf_getptr(readbuf, len), buf_getwriteptr(readbuf, len), len, recv.cipher_state) !== CRYPT_OK) {
      dropbear_exit("Error decrypting");
    }
  } else {
    buf_setpos(readbuf, blocksize);
    const len = readbuf.len - macsize - readbuf.pos;
    if (mode.decrypt(buf_getptr(readbuf, len), buf_getwriteptr(readbuf, len), len, recv.cipher_state) !== CRYPT_OK) {
      dropbear_exit("Error decrypting");
    }
    if (!checkmac(ses)) {
      dropbear_exit("Integrity error");
    }
  }

  buf_setpos(readbuf, PACKET_PADDING_OFF);
  const padlen = buf_getbyte(readbuf);
  const len = readbuf.len - padlen - 4 - 1 - macsize;
  if (len > OUR_RECV_MAX_PAYLOAD_LEN + ZLIB_COMPRESS_EXPANSION || len < 1) {
    // (C's len is unsigned: a padding longer than the packet shows as a large number.)
    dropbear_exit(`Bad packet size ${len >>> 0}`);
  }
  buf_setpos(readbuf, PACKET_PAYLOAD_OFF);
  if (is_compress_recv(ses)) {
    ses.payload = buf_decompress(ses, readbuf, len);
    buf_setpos(ses.payload, 0);
    ses.payload_beginning = 0;
  } else {
    ses.payload = readbuf;
    ses.payload_beginning = readbuf.pos;
    buf_setlen(readbuf, readbuf.pos + len);
  }
  ses.readbuf = null;
  ses.recvseq = (ses.recvseq + 1) >>> 0;
  TRACE2("leave decrypt_packet");
}

/**
 * Check the MAC of the read packet in constant time: over the cleartext packet, or with -etm
 * over the clear length and the ciphertext. @dropbear packet.c checkmac
 */
function checkmac(ses: sshsession): boolean {
  const readbuf = ses.readbuf!;
  const mac_size = ses.keys.recv.algo_mac.hashsize;
  const contents_len = readbuf.len - mac_size;
  const mac_bytes = Buffer.alloc(mac_size);
  make_mac(ses.recvseq, ses.keys.recv, readbuf, contents_len, mac_bytes);
  buf_setpos(readbuf, contents_len);
  return verifyMac(mac_bytes, buf_getptr(readbuf, mac_size), mac_size);
}

/** MAC(seqno ‖ the first clear_len bytes of clear_buf) into output_mac. @dropbear packet.c make_mac */
function make_mac(seqno: number, key_state: key_context_directional, clear_buf: buffer, clear_len: number, output_mac: Uint8Array): void {
  if (key_state.algo_mac.hashsize > 0) {
    buf_setpos(clear_buf, 0);
    computeMac(key_state, seqno, buf_getptr(clear_buf, clear_len), clear_len, output_mac);
  }
  TRACE2("leave writemac");
}

/** Transport-layer packets may go out during a key exchange; others wait. @dropbear packet.c packet_is_okay_kex */
function packet_is_okay_kex(type: number): boolean {
  if (type >= SSH_MSG_USERAUTH_REQUEST) {
    return false;
  }
  return type !== SSH_MSG_SERVICE_REQUEST && type !== SSH_MSG_SERVICE_ACCEPT && type !== SSH_MSG_KEXINIT;
}

/** Hold back the current payload until the kex ends. @dropbear packet.c enqueue_reply_packet */
function enqueue_reply_packet(ses: sshsession): void {
  if (ses.reply_queue.length > MAX_DEFER_REPLY_QUEUE) {
    dropbear_exit("Full reply queue");
  }
  const wp = ses.writepayload;
  ses.reply_queue.push(Buffer.from(wp.data.subarray(0, wp.len)));
  buf_setpos(wp, 0);
  buf_setlen(wp, 0);
}

/** Send what was held back during the kex, once data may flow again. @dropbear packet.c maybe_flush_reply_queue */
export function maybe_flush_reply_queue(ses: sshsession): void {
  if (!ses.dataallowed) {
    TRACE("maybe_empty_reply_queue - no data allowed");
    return;
  }
  const queued = ses.reply_queue;
  ses.reply_queue = [];
  for (const payload of queued) {
    buf_putbytes(ses.writepayload, payload);
    encrypt_packet(ses);
  }
}

/** Room after a payload for the packet's header, padding and MAC at their largest (MACs to 64). */
const WRITEBUF_TAIL_ROOM = 128;

/**
 * Put ses.writepayload's bytes in the session's current slab, at a packet's payload offset just
 * past the packets sealed there, so encrypt_packet seals the packet around the payload where it
 * was built instead of copying it out first (what Dropbear's encrypt_packet does into a fresh
 * writebuf). Only with writepayload empty. When the slab has no room left the oldest filled slab
 * is reused if everything sealed in it has reached the kernel (its bytes are still in cache, where
 * a fresh allocation costs about three times as much to fill), else a new one is made.
 */
function placeWritepayload(ses: sshsession): void {
  const wp = ses.writepayload;
  const room = PACKET_PAYLOAD_OFF + wp.size + WRITEBUF_TAIL_ROOM;
  if (room > SLAB_BYTES) {
    return;
  }
  let s = ses.writebuf_slab;
  if (s === null || s.used + room > s.slab.length) {
    s = nextWriteSlab(ses);
  }
  const off = s.used + PACKET_PAYLOAD_OFF;
  wp.data = s.slab.subarray(off, off + wp.size);
}

/** The session's next slab, reusing the oldest filled one when nothing in it is still to be written. */
function nextWriteSlab(ses: sshsession): WriteSlab {
  const retired = ses.writebuf_retired;
  const cur = ses.writebuf_slab;
  if (cur !== null) {
    cur.end = ses.writequeue_total;
    retired.push(cur);
  }
  // FIFO: once the queue has handed the socket every byte up to a slab's last packet, and what
  // the socket holds unwritten is no more than the queue handed it since, no one refers to that
  // slab's bytes any more. (Not so for a transport stream within the process: its reader may
  // still hold the packets.)
  const handed = ses.writequeue_total - ses.writequeue_len;
  const out = ses.sock_out;
  const slab = slabMemory(retired, (s) => s.end <= handed && out !== null && out.writesToKernel && out.writePending <= handed - s.end, SLABS_RETIRED_MAX);
  const s: WriteSlab = { slab, used: 0, end: LARGE_COUNT_ZERO };
  ses.writebuf_slab = s;
  return s;
}

/** Whether wp's bytes are where placeWritepayload put them in slab s. */
function payloadInSlab(wp: buffer, s: WriteSlab): boolean {
  return wp.data.buffer === s.slab.buffer && wp.data.byteOffset === s.slab.byteOffset + s.used + PACKET_PAYLOAD_OFF && wp.data.length === wp.size;
}

/**
 * Turn ses.writepayload into a padded, encrypted, MACed packet on the write queue (or hold it
 * back if a kex forbids it now). Beyond Dropbear, `tail`: payload bytes that follow
 * writepayload's, still where they were read (a channel's socket ring: send_msg_channel_data).
 * Where the packet is sealed in place with an AEAD stream (algo.ts aead_stream) they go into
 * it through the cipher; otherwise they are first copied to writepayload, as C reads them there.
 * @dropbear packet.c encrypt_packet
 */
export function encrypt_packet(ses: sshsession, tail: Uint8Array | null = null): void {
  TRACE2("enter encrypt_packet()");
  const wp = ses.writepayload;
  buf_setpos(wp, 0);
  const packet_type = buf_getbyte(wp);
  buf_setpos(wp, 0);
  TRACE2(() => `encrypt_packet type is ${packet_type}`);

  const trans = ses.keys.trans;
  const blocksize = trans.algo_crypt.blocksize;
  const mac_size = trans.algo_mac.hashsize;
  const mode = trans.crypt_mode;
  const aead = mode.kind === "aead";
  const compress = is_compress_trans(ses);
  const taillen = tail?.length ?? 0;
  const encrypt_buf_size = wp.len + taillen + 4 + 1 + Math.max(MIN_PACKET_LEN, blocksize) + 3 + mac_size + (compress ? ZLIB_COMPRESS_EXPANSION : 0) + 1;
  // Every byte up to the packet's length is written below: header, payload, random padding, MAC.
  const slab = ses.writebuf_slab;
  const inSlab = !compress && slab !== null && payloadInSlab(wp, slab) && slab.used + encrypt_buf_size <= slab.slab.length;
  const stream = tail !== null && inSlab && ses.dataallowed && mode.kind === "aead" ? (mode.aead_stream?.(trans.cipher_state) ?? null) : null;
  if (tail !== null && stream === null) {
    buf_setpos(wp, wp.len);
    buf_putbytes(wp, tail);
    buf_setpos(wp, 0);
    tail = null;
  }

  if (!ses.dataallowed && !packet_is_okay_kex(packet_type)) {
    enqueue_reply_packet(ses);
    return;
  }

  // The bytes of writepayload, before the tail (which follows them in the packet).
  const paylen = wp.len;
  let writebuf: buffer;
  if (inSlab && slab !== null) {
    // The payload is already in place (placeWritepayload): the packet is sealed around it.
    writebuf = new buffer(encrypt_buf_size, slab.slab.subarray(slab.used, slab.used + encrypt_buf_size));
    buf_setlen(writebuf, PACKET_PAYLOAD_OFF + paylen + (tail !== null ? taillen : 0));
    slab.used += align16(encrypt_buf_size);
  } else {
    // Beyond Dropbear: compressed first, so the packet's buffer is made the size of what goes
    // out. The write queue's mark counts wire bytes: with room for the whole payload in each,
    // a peer that stopped reading could leave thousands of well compressed packets queued,
    // each holding a payload's worth of memory.
    const body = compress ? buf_compress(ses, wp, wp.len) : buf_getptr(wp, wp.len);
    writebuf = bufNewUnzeroed(encrypt_buf_size - wp.len - (compress ? ZLIB_COMPRESS_EXPANSION : 0) + body.length);
    buf_setlen(writebuf, PACKET_PAYLOAD_OFF);
    buf_setpos(writebuf, PACKET_PAYLOAD_OFF);
    buf_putbytes(writebuf, body);
  }
  buf_setpos(wp, 0);
  buf_setlen(wp, 0);

  // With the length field outside the cipher (AEAD, etm) the rest must fill whole blocks.
  let len = writebuf.len;
  if (aead || trans.mac_etm) {
    len -= 4;
  }
  let padlen = blocksize - (len % blocksize);
  if (padlen < 4) {
    padlen += blocksize;
  }
  if (writebuf.len + padlen < MIN_PACKET_LEN) {
    padlen += blocksize;
  }
  buf_setpos(writebuf, 0);
  buf_putint(writebuf, writebuf.len + padlen - 4);
  buf_putbyte(writebuf, padlen);
  buf_setpos(writebuf, writebuf.len);
  buf_incrlen(writebuf, padlen);
  genrandom(buf_getptr(writebuf, padlen), padlen);

  if (mode.kind === "aead") {
    buf_setpos(writebuf, 0);
    const plen = writebuf.len;
    buf_incrlen(writebuf, mac_size);
    if (tail !== null && stream !== null) {
      // Sealed in place around the tail, which the cipher takes from where it waits.
      const packet = buf_getwriteptr(writebuf, plen + mac_size);
      const head = PACKET_PAYLOAD_OFF + paylen;
      const pad = packet.subarray(head + taillen, plen);
      if (
        !stream.begin(ses.transseq, packet, head, LTC_ENCRYPT) ||
        !stream.update(tail, packet.subarray(head, head + taillen), taillen) ||
        !stream.update(pad, pad, pad.length) ||
        !stream.end(packet.subarray(plen, plen + mac_size))
      ) {
        dropbear_exit("Error encrypting");
      }
    } else if (
      mode.aead_crypt(ses.transseq, buf_getptr(writebuf, plen), buf_getwriteptr(writebuf, plen + mac_size), plen, mac_size, trans.cipher_state, LTC_ENCRYPT) !==
      CRYPT_OK
    ) {
      dropbear_exit("Error encrypting");
    }
    buf_incrpos(writebuf, plen + mac_size);
  } else {
    const mac_bytes = Buffer.alloc(mac_size);
    const plen = writebuf.len;
    if (!trans.mac_etm) {
      make_mac(ses.transseq, trans, writebuf, plen, mac_bytes);
    }
    const start = trans.mac_etm ? 4 : 0;
    buf_setpos(writebuf, start);
    if (mode.encrypt(buf_getptr(writebuf, plen - start), buf_getwriteptr(writebuf, plen - start), plen - start, trans.cipher_state) !== CRYPT_OK) {
      dropbear_exit("Error encrypting");
    }
    if (trans.mac_etm) {
      make_mac(ses.transseq, trans, writebuf, plen, mac_bytes);
    }
    buf_setpos(writebuf, plen);
    buf_putbytes(writebuf, mac_bytes);
  }

  ses.kexstate.datatrans += writebuf.len;
  writebuf_enqueue(ses, writebuf);
  // Only now: a slab this fills is then retired with the packet counted in it.
  if (!compress) {
    placeWritepayload(ses);
  }
  ses.transseq = (ses.transseq + 1) >>> 0;

  const now = monotonic_now();
  ses.last_packet_time_any_sent = now;
  // Keepalive answers must not count as activity for the idle timeout.
  if (packet_type !== SSH_MSG_REQUEST_FAILURE && packet_type !== SSH_MSG_UNIMPLEMENTED && packet_type !== SSH_MSG_IGNORE) {
    ses.last_packet_time_idle = now;
  }
  TRACE2("leave encrypt_packet()");
}

/** Put a finished packet on the write queue. @dropbear packet.c writebuf_enqueue */
export function writebuf_enqueue(ses: sshsession, writebuf: buffer): void {
  buf_setpos(writebuf, 0);
  enqueue(ses.writequeue, writebuf);
  ses.writequeue_len += writebuf.len;
  ses.writequeue_total += writebuf.len;
}
