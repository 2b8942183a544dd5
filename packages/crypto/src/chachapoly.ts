import { createCipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import { TRACE2, constant_time_memcmp } from "@dropbear-ts/dbutil";

import {
  CRYPT_ERROR,
  CRYPT_OK,
  LTC_DECRYPT,
  LTC_ENCRYPT,
  type cipher_state,
  type dropbear_cipher,
  type aead_stream,
  type dropbear_aead_mode,
  type dropbear_hash,
  type ltc_cipher_descriptor,
} from "./algo.js";
import { EvpCipher, EvpPoly1305, cryptSource } from "./openssl.js";

// chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305). The 64-byte key is two
// ChaCha20 keys: the first 32 bytes (K_2) encrypt the body and, from block 0, give the
// one-time Poly1305 key; the last 32 (K_1) encrypt only the 4-byte length. The nonce is the
// packet sequence number as a 64-bit big-endian value, in the original 64-bit-counter /
// 64-bit-nonce layout. The tag covers the encrypted length and body, unpadded.
//
// node:crypto's "chacha20" takes a 16-byte IV that it loads as the last four state words:
// bytes 0..7 are the block counter (little-endian) and bytes 8..15 the nonce, which is exactly
// that layout. Its "chacha20-poly1305" is the different RFC 8439 AEAD and is not used here.
// Where Node's own OpenSSL is reachable (openssl.ts), each direction keeps two ChaCha20 contexts
// (K_2, K_1) and an EVP_MAC Poly1305 context, keyed once; a packet re-IVs them, is sealed or
// opened in place, and its tag is compared with CRYPTO_memcmp. OpenSSL's 16-byte ChaCha20 IV is
// a 32-bit little-endian counter then a 96-bit nonce: with the counter's high word (bytes 4..7)
// zero and the sequence number big-endian in bytes 12..15, that is the same 64/64 layout.
// Otherwise (the fallback) node:crypto's ChaCha20 runs with libsodium's or noble's Poly1305:
// Poly1305: node:crypto has no standalone one. libsodium's WebAssembly build
// (libsodium-wrappers-sumo, crypto_onetimeauth) runs it about 4.5x faster than @noble/ciphers'
// JavaScript (measured 1026 vs 227 MB/s on 32 KiB, bench note in docs/bench.md), so it carries
// the data. Loading it costs ~35 ms of main-thread time (a 1.6 MB module and the wasm
// compile), which must not sit on a short session's path (connect, auth, one command): the
// load starts in the background once POLY1305_BULK_BYTES went through this process, and
// @noble/ciphers (loaded at first use, ~10 ms) computes the identical tags until it is ready.
// Either way the same RFC 8439 Poly1305 runs, checked against the RFC's vectors in the tests.
// Once libsodium is in, it also encrypts the 4-byte length (its crypto_stream_chacha20_xor_ic is
// this same original-layout ChaCha20): a node:crypto cipher object costs ~20 times as much as
// those 4 bytes, and the length takes one per packet sealed and two per packet opened. Its raw
// exports work on its own memory, so a packet's tag costs one copy in and no allocation.

/** Bytes in each of the two ChaCha20 keys. @dropbear chachapoly.c CHACHA20_KEY_LEN */
export const CHACHA20_KEY_LEN = 32;
/** Padding unit of this mode (the length field is not counted). @dropbear chachapoly.c CHACHA20_BLOCKSIZE */
export const CHACHA20_BLOCKSIZE = 8;
/** One-time Poly1305 key length. @dropbear chachapoly.c POLY1305_KEY_LEN */
export const POLY1305_KEY_LEN = 32;
/** Tag length. @dropbear chachapoly.c POLY1305_TAG_LEN */
export const POLY1305_TAG_LEN = 16;

/** Placeholder cipher descriptor: non-null so common-kex starts the mode, nameless. @dropbear chachapoly.c dummy */
export const dummy: ltc_cipher_descriptor = { name: null };

/** The implied MAC of this mode. @dropbear chachapoly.c dropbear_chachapoly_mac */
export const dropbear_chachapoly_mac: dropbear_hash = {
  hash_desc: null,
  keysize: POLY1305_KEY_LEN,
  hashsize: POLY1305_TAG_LEN,
};

/** The cipher entry: a 64-byte key and an 8-byte padding block. @dropbear chachapoly.c dropbear_chachapoly */
export const dropbear_chachapoly: dropbear_cipher = {
  cipherdesc: dummy,
  keysize: CHACHA20_KEY_LEN * 2,
  blocksize: CHACHA20_BLOCKSIZE,
};

/** Bytes sealed or opened before libsodium is worth loading: a few round trips of bulk data. */
export const POLY1305_BULK_BYTES = 256 * 1024;
let polyBytes = 0;

type NoblePoly1305 = typeof import("@noble/ciphers/_poly1305.js");
let noble: NoblePoly1305 | null = null;

/**
 * The emscripten module under libsodium-wrappers (its `libsodium` export): the C functions over
 * the module's memory. 64-bit lengths and counters are passed as two 32-bit halves.
 */
interface SodiumModule {
  readonly HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _crypto_onetimeauth(out: number, msg: number, mlen: number, mlenHi: number, key: number): number;
  _crypto_stream_chacha20_xor_ic(c: number, m: number, mlen: number, mlenHi: number, n: number, ic: number, icHi: number, k: number): number;
}

/** libsodium's Poly1305 and ChaCha20 over a scratch area of its memory, kept for the process. */
class SodiumChacha {
  private msg = 0;
  private cap = 0;
  /** Key, nonce and a 64-byte block, in that order. */
  private readonly small: number;

  constructor(private readonly mod: SodiumModule) {
    this.small = mod._malloc(CHACHA20_KEY_LEN + 8 + 64 + POLY1305_TAG_LEN);
  }

  /** The heap view now (emscripten replaces HEAPU8 when its memory grows). */
  private get heap(): Uint8Array {
    return this.mod.HEAPU8;
  }

  /** Poly1305 of `msg` under `key` into `out`. */
  poly1305(key: Uint8Array, msg: Uint8Array, out: Uint8Array): void {
    if (msg.length > this.cap) {
      if (this.cap > 0) this.mod._free(this.msg);
      this.cap = Math.max(msg.length, 64 * 1024);
      this.msg = this.mod._malloc(this.cap);
    }
    const k = this.small;
    const t = k + CHACHA20_KEY_LEN + 8 + 64;
    const heap = this.heap;
    heap.set(msg, this.msg);
    heap.set(key.subarray(0, POLY1305_KEY_LEN), k);
    this.mod._crypto_onetimeauth(t, this.msg, msg.length, 0, k);
    out.set(this.heap.subarray(t, t + POLY1305_TAG_LEN));
    this.heap.fill(0, k, k + POLY1305_KEY_LEN);
  }

  /**
   * XOR `len` (at most 64) bytes of input with the keystream of `key` for packet `seq` from
   * block `counter`, into out (which may be input).
   */
  xor(key: Uint8Array, seq: number, counter: number, input: Uint8Array, output: Uint8Array, len: number): void {
    const k = this.small;
    const n = k + CHACHA20_KEY_LEN;
    const b = n + 8;
    const heap = this.heap;
    heap.set(key.subarray(0, CHACHA20_KEY_LEN), k);
    heap.fill(0, n, n + 4);
    heap[n + 4] = seq >>> 24;
    heap[n + 5] = (seq >>> 16) & 0xff;
    heap[n + 6] = (seq >>> 8) & 0xff;
    heap[n + 7] = seq & 0xff;
    heap.set(input.subarray(0, len), b);
    this.mod._crypto_stream_chacha20_xor_ic(b, b, len, 0, n, counter, 0, k);
    output.set(this.heap.subarray(b, b + len));
    this.heap.fill(0, k, b + len);
  }
}

/** libsodium's raw functions, once loaded; the wrapped Poly1305 if only that is there. */
let sodiumRaw: SodiumChacha | null = null;
type OneTimeAuth = (message: Uint8Array, key: Uint8Array) => Uint8Array;
let sodiumPoly1305: OneTimeAuth | null = null;
let sodiumLoad: Promise<void> | null = null;

function isSodiumModule(m: unknown): m is SodiumModule {
  const x = m as Partial<Record<keyof SodiumModule, unknown>> | null | undefined;
  return (
    x?.HEAPU8 instanceof Uint8Array &&
    typeof x._malloc === "function" &&
    typeof x._free === "function" &&
    typeof x._crypto_onetimeauth === "function" &&
    typeof x._crypto_stream_chacha20_xor_ic === "function"
  );
}

/**
 * Start loading libsodium (once); resolves when its Poly1305 is in use, or when loading failed
 * (then @noble/ciphers stays in use: slower, same result).
 */
export function poly1305_load(): Promise<void> {
  sodiumLoad ??= import("libsodium-wrappers-sumo")
    .then(async (m) => {
      const sodium = m.default;
      await sodium.ready;
      const mod: unknown = (sodium as unknown as { libsodium?: unknown }).libsodium;
      if (isSodiumModule(mod)) {
        sodiumRaw = new SodiumChacha(mod);
      }
      sodiumPoly1305 = sodium.crypto_onetimeauth;
    })
    .catch(() => {
      TRACE2("libsodium did not load: Poly1305 stays on @noble/ciphers");
    });
  return sodiumLoad;
}

/** Which Poly1305 computes the tags now (for tests and the bench). */
export function poly1305_impl(): "libsodium" | "noble" {
  return sodiumPoly1305 !== null ? "libsodium" : "noble";
}

/** The 16-byte Poly1305 tag of `msg` under the one-time `key`, into `out`. */
function poly1305(key: Uint8Array, msg: Uint8Array, out: Uint8Array): void {
  if (sodiumRaw !== null) {
    sodiumRaw.poly1305(key, msg, out);
    return;
  }
  if (sodiumPoly1305 !== null) {
    out.set(sodiumPoly1305(msg, key));
    return;
  }
  polyBytes += msg.length;
  if (polyBytes > POLY1305_BULK_BYTES && sodiumLoad === null) {
    void poly1305_load();
  }
  noble ??= createRequire(import.meta.url)("@noble/ciphers/_poly1305.js") as NoblePoly1305;
  new noble.Poly1305(key).update(msg).digestInto(out);
}

/** The OpenSSL contexts of one direction: both ChaCha20 keys, keyed once, and Poly1305. */
interface ChachapolyEvp {
  /** K_2: body keystream and, from block 0, the Poly1305 key. */
  readonly body: EvpCipher;
  /** K_1: length-field keystream. */
  readonly header: EvpCipher;
  readonly poly: EvpPoly1305;
  /** Block 0 of the body keystream: its first 32 bytes are the one-time Poly1305 key. */
  readonly polykey: Buffer;
}

/** One direction's two ChaCha20 keys. @dropbear chachapoly.h dropbear_chachapoly_state */
export class dropbear_chachapoly_state {
  /** Scratch IV, rewritten for every packet (counter ‖ nonce, see above). */
  readonly iv = Buffer.alloc(16);
  /** Scratch for a received packet's expected tag. */
  readonly tag = Buffer.alloc(POLY1305_TAG_LEN);
  /** Scratch for a decrypted length field. */
  readonly lenbytes = Buffer.alloc(4);
  /**
   * OpenSSL path: the packet whose length aead_getlength decrypted last (-1: none) and that
   * length's cipher text, so opening the packet reuses lenbytes instead of decrypting again.
   */
  lenseq = -1;
  readonly lencipher = Buffer.alloc(4);
  /** Seals and opens packets in pieces (OpenSSL path; null on the node:crypto path). */
  readonly stream: aead_stream | null;

  constructor(
    /** K_2: body keystream and Poly1305 key (node:crypto path; null when `evp` holds it). */
    readonly chacha: KeyObject | null,
    /** K_1: length-field keystream (node:crypto path). */
    readonly header: KeyObject | null,
    /** K_1's bytes, for libsodium (node:crypto path). */
    readonly headerKey: Buffer | null,
    /** The OpenSSL path's contexts; null on the node:crypto path. */
    readonly evp: ChachapolyEvp | null,
  ) {
    this.stream = evp !== null ? new ChachapolyStream(this, evp) : null;
  }

  /** Free the OpenSSL contexts (see freeCipherState). */
  releaseNative(): void {
    if (this.evp !== null) {
      this.evp.body.free();
      this.evp.header.free();
      this.evp.poly.free();
      // The last packet's one-time key (each is overwritten by the next packet's).
      this.evp.polykey.fill(0);
    }
  }
}

/** The 4-byte length field of packet `seq` en- or decrypted (the same XOR) into `output`. */
function cryptLength(state: dropbear_chachapoly_state, seq: number, input: Uint8Array, output: Uint8Array): boolean {
  if (state.evp !== null) {
    setNonce(state.iv, seq);
    return state.evp.header.setIv(state.iv, true) && state.evp.header.crypt(input, output, 4);
  }
  if (sodiumRaw !== null) {
    sodiumRaw.xor(state.headerKey!, seq, 0, input, output, 4);
    return true;
  }
  setNonce(state.iv, seq);
  output.set(createCipheriv("chacha20", state.header!, state.iv).update(input.subarray(0, 4)));
  return true;
}

// One ChaCha20 block of zeros: encrypting it yields the block-0 keystream (the Poly1305 key)
// and leaves the cipher at block 1, where the body starts.
const ZERO_BLOCK = Buffer.alloc(64);

/**
 * Point the scratch IV at block 0 of the stream for packet `seq`: bytes 0..11 (the counter and
 * the nonce's high half) stay zero from allocation, the 32-bit sequence number goes big-endian
 * in 12..15.
 */
function setNonce(iv: Buffer, seq: number): void {
  iv[12] = seq >>> 24;
  iv[13] = (seq >>> 16) & 0xff;
  iv[14] = (seq >>> 8) & 0xff;
  iv[15] = seq & 0xff;
}

/** Split the 64-byte key into the two ChaCha20 keys. @dropbear chachapoly.c dropbear_chachapoly_start */
export function dropbear_chachapoly_start(
  _cipher: ltc_cipher_descriptor | null,
  _IV: Uint8Array,
  key: Uint8Array,
  keylen: number,
  _num_rounds: number,
): cipher_state | null {
  TRACE2("enter dropbear_chachapoly_start");
  if (keylen !== CHACHA20_KEY_LEN * 2 || key.length < keylen) {
    return null;
  }
  const evp = chachapolyEvp(key.subarray(0, CHACHA20_KEY_LEN), key.subarray(CHACHA20_KEY_LEN, keylen));
  let state: dropbear_chachapoly_state;
  if (evp !== null) {
    state = new dropbear_chachapoly_state(null, null, null, evp);
  } else {
    const headerKey = Buffer.from(key.subarray(CHACHA20_KEY_LEN, keylen));
    state = new dropbear_chachapoly_state(
      createSecretKey(Buffer.from(key.subarray(0, CHACHA20_KEY_LEN))),
      createSecretKey(headerKey),
      headerKey,
      null,
    );
  }
  TRACE2("leave dropbear_chachapoly_start");
  return state;
}

/** Key the OpenSSL contexts of one direction, or null without OpenSSL. */
function chachapolyEvp(k2: Uint8Array, k1: Uint8Array): ChachapolyEvp | null {
  const iv = Buffer.alloc(16);
  const body = EvpCipher.open("ChaCha20", k2, iv);
  const header = EvpCipher.open("ChaCha20", k1, iv);
  const poly = EvpPoly1305.open();
  if (body === null || header === null || poly === null) {
    body?.free();
    header?.free();
    poly?.free();
    return null;
  }
  return { body, header, poly, polykey: Buffer.alloc(ZERO_BLOCK.length) };
}

/**
 * Seal or open one packet of `len` bytes (length field + body) followed by the 16-byte tag.
 * Opening checks the tag first, in constant time, and writes nothing if it fails.
 * @dropbear chachapoly.c dropbear_chachapoly_crypt
 */
export function dropbear_chachapoly_crypt(
  seq: number,
  input: Uint8Array,
  output: Uint8Array,
  len: number,
  taglen: number,
  cipher_state: cipher_state,
  direction: number,
): number {
  const state = cipher_state as dropbear_chachapoly_state;
  if (len < 4 || taglen !== POLY1305_TAG_LEN || input.length < len || output.length < len) {
    return CRYPT_ERROR;
  }
  if (direction === LTC_DECRYPT) {
    if (input.length < len + POLY1305_TAG_LEN) {
      return CRYPT_ERROR;
    }
  } else if (direction !== LTC_ENCRYPT || output.length < len + POLY1305_TAG_LEN) {
    return CRYPT_ERROR;
  }
  const ok =
    state.evp !== null
      ? chachapolyCryptEvp(state, state.evp, seq, input, output, len, direction === LTC_ENCRYPT)
      : chachapolyCryptNode(state, seq, input, output, len, direction === LTC_ENCRYPT);
  return ok ? CRYPT_OK : CRYPT_ERROR;
}

/**
 * The OpenSSL path, into output. The body context restarts at block 0 of packet seq;
 * running it over one zero block yields the Poly1305 key and leaves it at block 1, the body's.
 */
function chachapolyCryptEvp(
  state: dropbear_chachapoly_state,
  evp: ChachapolyEvp,
  seq: number,
  input: Uint8Array,
  output: Uint8Array,
  len: number,
  encrypt: boolean,
): boolean {
  setNonce(state.iv, seq);
  if (!evp.body.setIv(state.iv, encrypt) || !evp.body.crypt(ZERO_BLOCK, evp.polykey, ZERO_BLOCK.length)) {
    return false;
  }
  if (!encrypt) {
    if (
      !evp.poly.mac(evp.polykey, input, len, state.tag) ||
      !evp.poly.equal(input.subarray(len, len + POLY1305_TAG_LEN), state.tag, POLY1305_TAG_LEN)
    ) {
      return false;
    }
  }
  const src = cryptSource(input, output, len, 4);
  return (
    lengthOut(state, seq, output, encrypt) &&
    evp.body.crypt(src.subarray(4, len), output.subarray(4, len), len - 4) &&
    (!encrypt || evp.poly.mac(evp.polykey, output, len, output.subarray(len, len + POLY1305_TAG_LEN)))
  );
}

/**
 * A packet sealed or opened in pieces (algo.ts aead_stream), on the OpenSSL path: what
 * chachapolyCryptEvp does for a whole packet, with the Poly1305 tag computed over the cipher
 * text piece by piece (after each piece is encrypted, before it is decrypted) and written or
 * compared at the end.
 */
class ChachapolyStream implements aead_stream {
  private encrypt = false;

  constructor(
    private readonly state: dropbear_chachapoly_state,
    private readonly evp: ChachapolyEvp,
  ) {}

  begin(seq: number, packet: Uint8Array, len: number, direction: number): boolean {
    const { state, evp } = this;
    const encrypt = (this.encrypt = direction === LTC_ENCRYPT);
    if (len < 4 || packet.length < len) {
      return false;
    }
    setNonce(state.iv, seq);
    const body = packet.subarray(4, len);
    if (!evp.body.setIv(state.iv, encrypt) || !evp.body.crypt(ZERO_BLOCK, evp.polykey, ZERO_BLOCK.length) || !evp.poly.init(evp.polykey)) {
      return false;
    }
    return encrypt
      ? lengthOut(state, seq, packet, true) && evp.body.crypt(body, body, len - 4) && evp.poly.update(packet, len)
      : evp.poly.update(packet, len) && lengthOut(state, seq, packet, false) && evp.body.crypt(body, body, len - 4);
  }

  update(input: Uint8Array, output: Uint8Array, len: number): boolean {
    const evp = this.evp;
    return this.encrypt
      ? evp.body.crypt(input, output, len) && evp.poly.update(output, len)
      : evp.poly.update(input, len) && evp.body.crypt(input, output, len);
  }

  end(tag: Uint8Array): boolean {
    const { state, evp } = this;
    return this.encrypt ? evp.poly.final(tag) : evp.poly.final(state.tag) && evp.poly.equal(tag, state.tag, POLY1305_TAG_LEN);
  }
}

/** En- or decrypt packet seq's length field in place, taking what getlength decrypted if it can. */
function lengthOut(state: dropbear_chachapoly_state, seq: number, packet: Uint8Array, encrypt: boolean): boolean {
  const c = state.lencipher;
  const known = !encrypt && state.lenseq === seq && packet[0] === c[0] && packet[1] === c[1] && packet[2] === c[2] && packet[3] === c[3];
  state.lenseq = -1;
  if (!known) {
    return cryptLength(state, seq, packet, packet);
  }
  packet.set(state.lenbytes);
  return true;
}

/** The node:crypto path: a new ChaCha20 cipher object per packet, Poly1305 from libsodium or noble. */
function chachapolyCryptNode(
  state: dropbear_chachapoly_state,
  seq: number,
  input: Uint8Array,
  output: Uint8Array,
  len: number,
  encrypt: boolean,
): boolean {
  setNonce(state.iv, seq);
  const body = createCipheriv("chacha20", state.chacha!, state.iv);
  const polykey = body.update(ZERO_BLOCK).subarray(0, POLY1305_KEY_LEN);
  if (!encrypt) {
    poly1305(polykey, input.subarray(0, len), state.tag);
    if (constant_time_memcmp(input.subarray(len, len + POLY1305_TAG_LEN), state.tag, POLY1305_TAG_LEN) !== 0) {
      return false;
    }
  }
  const payload = body.update(input.subarray(4, len));
  cryptLength(state, seq, input, output);
  output.set(payload, 4);
  if (encrypt) {
    poly1305(polykey, output.subarray(0, len), output.subarray(len, len + POLY1305_TAG_LEN));
  }
  return true;
}

/**
 * Open chacha20-poly1305@openssh.com data that has no length field: an encrypted openssh-key-v1
 * private section, which OpenSSH seals with sequence number 0 and no additional data. The tag
 * covers `input` alone, under K_2's block-0 key, and the body starts at block 1 of K_2's stream
 * (K_1, the length key, is not used). Null when the key is short or the tag does not match.
 */
export function chachapoly_open_unframed(key: Uint8Array, seq: number, input: Uint8Array, tag: Uint8Array): Buffer | null {
  if (key.length < CHACHA20_KEY_LEN || tag.length !== POLY1305_TAG_LEN) {
    return null;
  }
  const iv = Buffer.alloc(16);
  setNonce(iv, seq);
  const body = createCipheriv("chacha20", key.subarray(0, CHACHA20_KEY_LEN), iv);
  const block0 = body.update(ZERO_BLOCK);
  const expected = Buffer.alloc(POLY1305_TAG_LEN);
  poly1305(block0.subarray(0, POLY1305_KEY_LEN), input, expected);
  block0.fill(0);
  if (constant_time_memcmp(tag, expected, POLY1305_TAG_LEN) !== 0) {
    return null;
  }
  return Buffer.concat([body.update(input), body.final()]);
}

/**
 * Decrypt just the 4-byte length field, so the reader knows how much more to read before it
 * can check the tag. @dropbear chachapoly.c dropbear_chachapoly_getlength
 */
export function dropbear_chachapoly_getlength(
  seq: number,
  input: Uint8Array,
  len: number,
  cipher_state: cipher_state,
): number {
  const state = cipher_state as dropbear_chachapoly_state;
  if (len < 4 || input.length < 4) {
    return -1;
  }
  if (!cryptLength(state, seq, input, state.lenbytes)) {
    return -1;
  }
  if (state.evp !== null) {
    state.lenseq = seq;
    state.lencipher.set(input.subarray(0, 4));
  }
  return state.lenbytes.readUInt32BE(0);
}

/** The chacha20-poly1305 mode: AEAD only. @dropbear chachapoly.c dropbear_mode_chachapoly */
export const dropbear_mode_chachapoly: dropbear_aead_mode = {
  kind: "aead",
  start: dropbear_chachapoly_start,
  aead_crypt: dropbear_chachapoly_crypt,
  aead_getlength: dropbear_chachapoly_getlength,
  aead_mac: dropbear_chachapoly_mac,
  aead_stream: (cipher_state) => (cipher_state as dropbear_chachapoly_state).stream,
};
