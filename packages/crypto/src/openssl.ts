import { TRACE, outOfResources, programLib } from "@dropbear-ts/dbutil";

import type { cipher_state } from "./algo.js";

// Node's own OpenSSL 3, called directly. node:crypto cannot re-IV or re-key a cipher object and
// its update() always returns a fresh Buffer, so each packet sealed through it costs new cipher
// objects and a copy of the packet; nor has it a raw Poly1305. The `node` binary links OpenSSL
// statically and exports its symbols, so koffi can bind them from the running program itself
// (dlopen(NULL)): one EVP context per direction, keyed once, re-IV'd per packet, encrypting in
// place in the packet buffer. Bound lazily, once per process. Where anything is missing (another
// runtime, a Node built against a shared OpenSSL that exports nothing, not OpenSSL 3, no koffi
// for the platform) or DROPBEAR_TS_CRYPTO=node is set, evpCipher() and evpPoly1305() return null
// and each mode keeps its node:crypto path.
//
// A foreign call given a wrong length corrupts memory instead of throwing, so every wrapper
// below checks each length against the views it passes before calling, and fails (false) where
// C would overrun. A freed context fails every later call the same way.

/** An opaque C pointer, as koffi hands it back. */
type Ptr = unknown;

/** The functions bound, each typed as its koffi declaration implies. */
interface Libcrypto {
  EVP_CIPHER_CTX_new: () => Ptr;
  EVP_CIPHER_CTX_free: (ctx: Ptr) => void;
  EVP_CipherInit_ex: (ctx: Ptr, type: Ptr, impl: null, key: Uint8Array | null, iv: Uint8Array | null, enc: number) => number;
  EVP_CipherUpdate: (ctx: Ptr, out: Uint8Array | null, outl: Int32Array, input: Uint8Array, inl: number) => number;
  EVP_CipherFinal_ex: (ctx: Ptr, out: Uint8Array, outl: Int32Array) => number;
  EVP_CIPHER_CTX_ctrl: (ctx: Ptr, type: number, arg: number, ptr: Uint8Array) => number;
  EVP_MAC_CTX_new: (mac: Ptr) => Ptr;
  EVP_MAC_CTX_free: (ctx: Ptr) => void;
  EVP_MAC_init: (ctx: Ptr, key: Uint8Array, keylen: number, params: null) => number;
  EVP_MAC_update: (ctx: Ptr, data: Uint8Array, datalen: number) => number;
  EVP_MAC_final: (ctx: Ptr, out: Uint8Array, outl: BigUint64Array, outsize: number) => number;
  CRYPTO_memcmp: (a: Uint8Array, b: Uint8Array, len: number) => number;
  HMAC_CTX_new: () => Ptr;
  HMAC_CTX_free: (ctx: Ptr) => void;
  HMAC_Init_ex: (ctx: Ptr, key: Uint8Array | null, len: number, md: Ptr, impl: null) => number;
  HMAC_Update: (ctx: Ptr, data: Uint8Array, len: number) => number;
  HMAC_Final: (ctx: Ptr, md: Uint8Array, len: Uint32Array) => number;
  /** The digests below, fetched once. */
  digests: Map<EvpDigestName, Ptr>;
  /** The ciphers below, fetched once for the process (never freed). */
  ciphers: Map<EvpCipherName, Ptr>;
  /** The Poly1305 EVP_MAC, fetched once. */
  poly1305: Ptr;
}

/** The OpenSSL ciphers the modes run, by OpenSSL's name, with the key and IV lengths they take. */
const CIPHERS = {
  "AES-128-GCM": { keylen: 16, ivlen: 12 },
  "AES-256-GCM": { keylen: 32, ivlen: 12 },
  "AES-128-CTR": { keylen: 16, ivlen: 16 },
  "AES-192-CTR": { keylen: 24, ivlen: 16 },
  "AES-256-CTR": { keylen: 32, ivlen: 16 },
  // OpenSSL's 16-byte IV: a 32-bit little-endian block counter, then a 96-bit nonce.
  ChaCha20: { keylen: 32, ivlen: 16 },
} as const;
/** A cipher evpCipher() can key. */
export type EvpCipherName = keyof typeof CIPHERS;

/** The digests HMAC runs over, by node:crypto's name (ltc_hash_descriptor.name), with OpenSSL's name and size. */
const DIGESTS = {
  sha1: { name: "SHA1", size: 20 },
  sha256: { name: "SHA256", size: 32 },
  sha384: { name: "SHA384", size: 48 },
  sha512: { name: "SHA512", size: 64 },
} as const;
/** A digest EvpHmac can run. */
export type EvpDigestName = keyof typeof DIGESTS;

/** EVP_CTRL_AEAD_GET_TAG / EVP_CTRL_AEAD_SET_TAG (evp.h). */
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
/** Poly1305's key and tag sizes. */
const POLY1305_KEYLEN = 32;
const POLY1305_TAGLEN = 16;
const POLY1305_TAGLEN_N = BigInt(POLY1305_TAGLEN);
/** EVP_CipherUpdate takes an int length. */
const INT_MAX = 0x7fffffff;

// Out-parameters: every call is synchronous and JS is single-threaded, so one of each serves.
const OUTL = new Int32Array(1);
const SIZE_OUT = new BigUint64Array(1);
const UINT_OUT = new Uint32Array(1);
/** Where EVP_CipherFinal_ex may write (GCM and the stream ciphers write nothing). */
const FINAL_SCRATCH = new Uint8Array(32);

let bound: Libcrypto | null | undefined;

function isNull(p: Ptr): boolean {
  return p === null || p === undefined || p === 0 || p === 0n;
}

/**
 * Bind everything needed, or null (and why, to TRACE) when this runtime cannot offer it, or
 * undefined when a system error (EMFILE) stopped the loading this time.
 */
function bind(): Libcrypto | null | undefined {
  try {
    const lib = programLib();
    const fn = <F>(decl: string): F => lib.func(decl) as unknown as F;
    const version = fn<() => number | bigint>("unsigned long OpenSSL_version_num(void)")();
    if (BigInt(version) >> 28n !== 3n) {
      TRACE(`OpenSSL ${version.toString(16)} is not 3.x: ciphers stay on node:crypto`);
      return null;
    }
    const fetchCipher = fn<(libctx: null, name: string, props: null) => Ptr>(
      "void *EVP_CIPHER_fetch(void *libctx, const char *algorithm, const char *properties)",
    );
    const keyLength = fn<(c: Ptr) => number>("int EVP_CIPHER_get_key_length(const void *cipher)");
    const ivLength = fn<(c: Ptr) => number>("int EVP_CIPHER_get_iv_length(const void *cipher)");
    const fetchMac = fn<(libctx: null, name: string, props: null) => Ptr>(
      "void *EVP_MAC_fetch(void *libctx, const char *algorithm, const char *properties)",
    );
    const ciphers = new Map<EvpCipherName, Ptr>();
    for (const [name, want] of Object.entries(CIPHERS) as [EvpCipherName, { keylen: number; ivlen: number }][]) {
      const c = fetchCipher(null, name, null);
      if (isNull(c) || keyLength(c) !== want.keylen || ivLength(c) !== want.ivlen) {
        TRACE(`OpenSSL has no usable ${name}: ciphers stay on node:crypto`);
        return null;
      }
      ciphers.set(name, c);
    }
    const fetchMd = fn<(libctx: null, name: string, props: null) => Ptr>(
      "void *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties)",
    );
    const mdSize = fn<(md: Ptr) => number>("int EVP_MD_get_size(const void *md)");
    const digests = new Map<EvpDigestName, Ptr>();
    for (const [name, want] of Object.entries(DIGESTS) as [EvpDigestName, { name: string; size: number }][]) {
      const md = fetchMd(null, want.name, null);
      if (isNull(md) || mdSize(md) !== want.size) {
        TRACE(`OpenSSL has no usable ${want.name}: ciphers stay on node:crypto`);
        return null;
      }
      digests.set(name, md);
    }
    const poly1305 = fetchMac(null, "POLY1305", null);
    if (isNull(poly1305)) {
      TRACE("OpenSSL has no POLY1305 MAC: ciphers stay on node:crypto");
      return null;
    }
    return {
      EVP_CIPHER_CTX_new: fn("void *EVP_CIPHER_CTX_new(void)"),
      EVP_CIPHER_CTX_free: fn("void EVP_CIPHER_CTX_free(void *ctx)"),
      EVP_CipherInit_ex: fn(
        "int EVP_CipherInit_ex(void *ctx, const void *type, void *impl, const uint8_t *key, const uint8_t *iv, int enc)",
      ),
      EVP_CipherUpdate: fn("int EVP_CipherUpdate(void *ctx, uint8_t *out, int *outl, const uint8_t *in, int inl)"),
      EVP_CipherFinal_ex: fn("int EVP_CipherFinal_ex(void *ctx, uint8_t *out, int *outl)"),
      EVP_CIPHER_CTX_ctrl: fn("int EVP_CIPHER_CTX_ctrl(void *ctx, int type, int arg, uint8_t *ptr)"),
      EVP_MAC_CTX_new: fn("void *EVP_MAC_CTX_new(void *mac)"),
      EVP_MAC_CTX_free: fn("void EVP_MAC_CTX_free(void *ctx)"),
      EVP_MAC_init: fn("int EVP_MAC_init(void *ctx, const uint8_t *key, size_t keylen, const void *params)"),
      EVP_MAC_update: fn("int EVP_MAC_update(void *ctx, const uint8_t *data, size_t datalen)"),
      EVP_MAC_final: fn("int EVP_MAC_final(void *ctx, uint8_t *out, size_t *outl, size_t outsize)"),
      CRYPTO_memcmp: fn("int CRYPTO_memcmp(const uint8_t *a, const uint8_t *b, size_t len)"),
      // HMAC_CTX is deprecated in 3.0 but exported, and unlike EVP_MAC needs no OSSL_PARAM
      // array to name its digest; re-initialised with a NULL key it reuses the key schedule.
      HMAC_CTX_new: fn("void *HMAC_CTX_new(void)"),
      HMAC_CTX_free: fn("void HMAC_CTX_free(void *ctx)"),
      HMAC_Init_ex: fn("int HMAC_Init_ex(void *ctx, const uint8_t *key, int len, const void *md, void *impl)"),
      HMAC_Update: fn("int HMAC_Update(void *ctx, const uint8_t *data, size_t len)"),
      HMAC_Final: fn("int HMAC_Final(void *ctx, uint8_t *md, unsigned int *len)"),
      digests,
      ciphers,
      poly1305,
    };
  } catch (e) {
    TRACE(`OpenSSL not reachable from this process (${String(e)}): ciphers stay on node:crypto`);
    // Out of descriptors koffi's files cannot be opened now; a later session asks again.
    return outOfResources(e) !== null ? undefined : null;
  }
}

/** The bound OpenSSL, or null for the node:crypto fallback (always so with DROPBEAR_TS_CRYPTO=node). */
function libcrypto(): Libcrypto | null {
  if (process.env.DROPBEAR_TS_CRYPTO === "node") {
    return null;
  }
  if (bound === undefined) {
    bound = bind(); // null too is kept: a runtime without OpenSSL is asked once
  }
  return bound ?? null;
}

/** Which backend a cipher keyed now would run on (for tests, the bench and TRACE). */
export function cryptoBackend(): "openssl" | "node" {
  return libcrypto() === null ? "node" : "openssl";
}

/** A native context to free: which free function, and the pointer. */
interface Held {
  free: (ctx: Ptr) => void;
  ctx: Ptr;
}

let live = 0;

/** Backstop for contexts whose owner was dropped without free() (a test, a half-done rekey). */
const registry = new FinalizationRegistry<Held>((h) => {
  live--;
  h.free(h.ctx);
});

/** EVP contexts allocated and not yet freed (tests check rekeys do not leak them). */
export function evpLiveContexts(): number {
  return live;
}

/** Whether `n` is a length a C int / size_t parameter can take. */
function lenOk(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= INT_MAX;
}

/** A native context owned by one JS object, freed once: by free() or, failing that, by the GC. */
abstract class EvpOwner {
  protected ctx: Ptr | null;

  protected constructor(
    protected readonly L: Libcrypto,
    ctx: Ptr,
    private readonly release: (ctx: Ptr) => void,
  ) {
    this.ctx = ctx;
    live++;
    registry.register(this, { free: release, ctx }, this);
  }

  /** Free the context now; OpenSSL cleanses key material as it frees. Later calls fail. */
  free(): void {
    if (this.ctx !== null) {
      registry.unregister(this);
      live--;
      this.release(this.ctx);
      this.ctx = null;
    }
  }
}

/**
 * One keyed EVP_CIPHER_CTX. The direction is given per call (GCM seals or opens; the stream
 * ciphers do not care), so a mode's state need not know which way it runs.
 */
export class EvpCipher extends EvpOwner {
  private constructor(
    L: Libcrypto,
    ctx: Ptr,
    readonly ivlen: number,
  ) {
    super(L, ctx, L.EVP_CIPHER_CTX_free);
  }

  /** Key `name` with key[0..keylen) and iv[0..ivlen), or null (no OpenSSL, short key or IV, failure). */
  static open(name: EvpCipherName, key: Uint8Array, iv: Uint8Array): EvpCipher | null {
    const L = libcrypto();
    const { keylen, ivlen } = CIPHERS[name];
    if (L === null || key.length < keylen || iv.length < ivlen) {
      return null;
    }
    const ctx = L.EVP_CIPHER_CTX_new();
    if (isNull(ctx)) {
      return null;
    }
    const c = new EvpCipher(L, ctx, ivlen);
    if (L.EVP_CipherInit_ex(ctx, L.ciphers.get(name), null, key.subarray(0, keylen), iv.subarray(0, ivlen), 1) !== 1) {
      c.free();
      return null;
    }
    return c;
  }

  /** Restart at a new IV (exactly ivlen bytes), keeping the key; `encrypt` sets the direction. */
  setIv(iv: Uint8Array, encrypt: boolean): boolean {
    if (this.ctx === null || iv.length !== this.ivlen) {
      return false;
    }
    return this.L.EVP_CipherInit_ex(this.ctx, null, null, null, iv, encrypt ? 1 : 0) === 1;
  }

  /** Feed data[0..len) as additional authenticated data (AEAD ciphers). */
  aad(data: Uint8Array, len: number): boolean {
    if (this.ctx === null || !lenOk(len) || data.length < len) {
      return false;
    }
    return this.L.EVP_CipherUpdate(this.ctx, null, OUTL, data, len) === 1;
  }

  /**
   * En- or decrypt input[0..len) into output[0..len). OpenSSL allows exactly in place, not a
   * partial overlap: such input is first moved to output (TypedArray.set copies as memmove).
   */
  crypt(input: Uint8Array, output: Uint8Array, len: number): boolean {
    if (this.ctx === null || !lenOk(len) || input.length < len || output.length < len) {
      return false;
    }
    if (len === 0) {
      return true;
    }
    let src = input;
    if (
      input.buffer === output.buffer &&
      input.byteOffset !== output.byteOffset &&
      Math.abs(input.byteOffset - output.byteOffset) < len
    ) {
      output.set(input.subarray(0, len));
      src = output;
    }
    return this.L.EVP_CipherUpdate(this.ctx, output, OUTL, src, len) === 1 && OUTL[0] === len;
  }

  /** Finish the message; when opening an AEAD message, false unless the tag verifies. */
  final(): boolean {
    if (this.ctx === null) {
      return false;
    }
    return this.L.EVP_CipherFinal_ex(this.ctx, FINAL_SCRATCH, OUTL) === 1 && OUTL[0] === 0;
  }

  /** Copy the sealed message's `taglen`-byte tag into out (after final()). */
  getTag(out: Uint8Array, taglen: number): boolean {
    if (this.ctx === null || taglen !== 16 || out.length < taglen) {
      return false;
    }
    return this.L.EVP_CIPHER_CTX_ctrl(this.ctx, EVP_CTRL_AEAD_GET_TAG, taglen, out) === 1;
  }

  /** The tag an opened message must carry (before final()). */
  setTag(tag: Uint8Array, taglen: number): boolean {
    if (this.ctx === null || taglen !== 16 || tag.length < taglen) {
      return false;
    }
    return this.L.EVP_CIPHER_CTX_ctrl(this.ctx, EVP_CTRL_AEAD_SET_TAG, taglen, tag) === 1;
  }
}

/** One EVP_MAC_CTX of Poly1305, re-keyed with each one-time key. */
export class EvpPoly1305 extends EvpOwner {
  private constructor(L: Libcrypto, ctx: Ptr) {
    super(L, ctx, L.EVP_MAC_CTX_free);
  }

  /** A Poly1305 context, or null without OpenSSL. */
  static open(): EvpPoly1305 | null {
    const L = libcrypto();
    if (L === null) {
      return null;
    }
    const ctx = L.EVP_MAC_CTX_new(L.poly1305);
    return isNull(ctx) ? null : new EvpPoly1305(L, ctx);
  }

  /** The 16-byte tag of msg[0..len) under key[0..32) into out[0..16). */
  mac(key: Uint8Array, msg: Uint8Array, len: number, out: Uint8Array): boolean {
    return this.init(key) && this.update(msg, len) && this.final(out);
  }

  /** Start a message under the one-time key[0..32). */
  init(key: Uint8Array): boolean {
    const ctx = this.ctx;
    return ctx !== null && key.length >= POLY1305_KEYLEN && this.L.EVP_MAC_init(ctx, key, POLY1305_KEYLEN, null) === 1;
  }

  /** Feed msg[0..len) to the message started by init(). */
  update(msg: Uint8Array, len: number): boolean {
    const ctx = this.ctx;
    return ctx !== null && lenOk(len) && msg.length >= len && this.L.EVP_MAC_update(ctx, msg, len) === 1;
  }

  /** The message's 16-byte tag into out[0..16). */
  final(out: Uint8Array): boolean {
    const ctx = this.ctx;
    return (
      ctx !== null &&
      out.length >= POLY1305_TAGLEN &&
      this.L.EVP_MAC_final(ctx, out, SIZE_OUT, POLY1305_TAGLEN) === 1 &&
      SIZE_OUT[0] === POLY1305_TAGLEN_N
    );
  }

  /** Whether a[0..len) equals b[0..len), in time that depends only on len (CRYPTO_memcmp). */
  equal(a: Uint8Array, b: Uint8Array, len: number): boolean {
    if (!lenOk(len) || a.length < len || b.length < len) {
      return false;
    }
    return this.L.CRYPTO_memcmp(a, b, len) === 0;
  }
}

/** One keyed HMAC_CTX: the key schedule is computed once and reused for every message. */
export class EvpHmac extends EvpOwner {
  private constructor(
    L: Libcrypto,
    ctx: Ptr,
    /** The digest's output size. */
    readonly size: number,
  ) {
    super(L, ctx, L.HMAC_CTX_free);
  }

  /** HMAC over `digest` keyed with all of `key`, or null without OpenSSL (or for another digest). */
  static open(digest: string, key: Uint8Array): EvpHmac | null {
    const L = libcrypto();
    const d = DIGESTS[digest as EvpDigestName] as { size: number } | undefined;
    if (L === null || d === undefined || !lenOk(key.length)) {
      return null;
    }
    const ctx = L.HMAC_CTX_new();
    if (isNull(ctx)) {
      return null;
    }
    const h = new EvpHmac(L, ctx, d.size);
    if (L.HMAC_Init_ex(ctx, key, key.length, L.digests.get(digest as EvpDigestName), null) !== 1) {
      h.free();
      return null;
    }
    return h;
  }

  /**
   * HMAC(prefix ‖ data[0..len)) into out[0..size) (out must hold the whole digest). Two
   * updates, as the MAC of an SSH packet is over its sequence number, then the packet.
   */
  mac(prefix: Uint8Array, data: Uint8Array, len: number, out: Uint8Array): boolean {
    const ctx = this.ctx;
    if (ctx === null || !lenOk(len) || data.length < len || out.length < this.size) {
      return false;
    }
    const L = this.L;
    return (
      L.HMAC_Init_ex(ctx, null, 0, null, null) === 1 &&
      L.HMAC_Update(ctx, prefix, prefix.length) === 1 &&
      L.HMAC_Update(ctx, data, len) === 1 &&
      L.HMAC_Final(ctx, out, UINT_OUT) === 1 &&
      UINT_OUT[0] === this.size
    );
  }
}

/**
 * Where a mode en- or decrypts packet input[0..len) from, for the result to be in output: input
 * itself when the two are the same bytes or do not share any, with the first `clear` bytes
 * (what the mode handles apart, the length field) copied over; else output, input first moved
 * there (TypedArray.set copies as memmove). So a packet read elsewhere (still in the socket's
 * read buffer) is copied once, by the cipher, rather than once more before it.
 */
export function cryptSource(input: Uint8Array, output: Uint8Array, len: number, clear: number): Uint8Array {
  if (input.buffer === output.buffer) {
    if (input.byteOffset === output.byteOffset) {
      return output;
    }
    const a = input.byteOffset;
    const b = output.byteOffset;
    if (a < b + len && b < a + len) {
      output.set(input.subarray(0, len));
      return output;
    }
  }
  output.set(input.subarray(0, clear));
  return input;
}

/** Something a cipher mode's state holds natively, to free when the state is dropped. */
interface NativeCipherState {
  releaseNative(): void;
}

function isNative(state: cipher_state): state is NativeCipherState {
  return typeof (state as Partial<NativeCipherState>).releaseNative === "function";
}

/**
 * Free (and so wipe) the OpenSSL contexts a cipher state holds, when its keys are dropped: at a
 * key switch for the old keys, at session cleanup for all. Any later use of the state fails
 * cleanly (CRYPT_ERROR). States of the node:crypto path hold nothing to free.
 */
export function freeCipherState(state: cipher_state): void {
  if (isNative(state)) {
    state.releaseNative();
  }
}
