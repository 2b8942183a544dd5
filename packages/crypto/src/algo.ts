// The descriptor shapes of algo.h that the transport drives. The algorithm tables themselves
// (sshciphers[], sshhashes[], sshkex[]) belong to the `algo` package; this file only says what a
// cipher, a cipher mode, a MAC and a KEM look like.

/** libtomcrypt's success code: every cipher-mode hook returns it when all went well. */
export const CRYPT_OK = 0;
/** libtomcrypt's generic failure code: bad lengths, or a tag that does not verify. */
export const CRYPT_ERROR = 1;
/** libtomcrypt's direction flag for aead_crypt: seal a packet. */
export const LTC_ENCRYPT = 0;
/** libtomcrypt's direction flag for aead_crypt: open (and authenticate) a packet. */
export const LTC_DECRYPT = 1;

/**
 * Stands in for libtomcrypt's cipher descriptor. `name` is the node:crypto cipher family
 * ("aes"); it is null for a mode that carries its own primitive, as chacha20-poly1305 does.
 */
export interface ltc_cipher_descriptor {
  readonly name: string | null;
}

/** Stands in for libtomcrypt's hash descriptor: a node:crypto digest name and its sizes. */
export interface ltc_hash_descriptor {
  /** Name accepted by `createHash` / `createHmac`. */
  readonly name: string;
  /** Digest length in bytes. */
  readonly hashsize: number;
  /** Input block length in bytes. */
  readonly blocksize: number;
}

/** A block cipher and the key size SSH uses it with. @dropbear algo.h dropbear_cipher */
export interface dropbear_cipher {
  /** null means "no encryption" (before the first NEWKEYS): common-kex then never calls start. */
  readonly cipherdesc: ltc_cipher_descriptor | null;
  readonly keysize: number;
  /** Packet lengths are padded to a multiple of this; read_packet reads this much first. */
  readonly blocksize: number;
}

/**
 * The per-direction key schedule a mode keeps between packets (the C `cipher_state` union).
 * Opaque to the packet layer: it only hands back what `start` returned to the same mode.
 */
export type cipher_state = object;

/**
 * Key the cipher. Returns the state to pass to the other hooks, or null where the C function
 * returns an error code (common-kex then exits with "Crypto error").
 */
export type cipher_start = (
  cipher: ltc_cipher_descriptor | null,
  IV: Uint8Array,
  key: Uint8Array,
  keylen: number,
  num_rounds: number,
) => cipher_state | null;

/**
 * A mode that runs the cipher over a byte range and leaves the MAC to a separate HMAC (CTR,
 * and "none"). C's struct has NULL aead hooks for these.
 */
export interface dropbear_stream_mode {
  readonly kind: "stream";
  readonly start: cipher_start;
  /** Encrypt `len` bytes of pt into ct. Returns CRYPT_OK or CRYPT_ERROR. */
  readonly encrypt: (pt: Uint8Array, ct: Uint8Array, len: number, cipher_state: cipher_state) => number;
  /** Decrypt `len` bytes of ct into pt. Returns CRYPT_OK or CRYPT_ERROR. */
  readonly decrypt: (ct: Uint8Array, pt: Uint8Array, len: number, cipher_state: cipher_state) => number;
}

/**
 * A mode that seals whole packets and brings its own MAC (chacha20-poly1305, GCM). C's struct
 * has NULL encrypt/decrypt hooks for these.
 */
export interface dropbear_aead_mode {
  readonly kind: "aead";
  readonly start: cipher_start;
  /**
   * Seal or open one whole packet. `len` counts the 4-byte length field and the body, not the
   * tag. Encrypting writes len + taglen bytes to output; decrypting reads len + taglen bytes of
   * input, writes len bytes and returns CRYPT_ERROR if the tag does not verify.
   * (`in`/`out` in C; both are reserved words here.)
   */
  readonly aead_crypt: (
    seq: number,
    input: Uint8Array,
    output: Uint8Array,
    len: number,
    taglen: number,
    cipher_state: cipher_state,
    direction: number,
  ) => number;
  /**
   * The packet_length field of the packet whose first `len` (>= 4) bytes are `input`, or -1
   * where the C function returns an error (C passes the length out through a pointer).
   */
  readonly aead_getlength: (seq: number, input: Uint8Array, len: number, cipher_state: cipher_state) => number;
  /** The MAC the mode implies: its tag size is the packet's macsize. */
  readonly aead_mac: dropbear_hash;
  /**
   * Beyond Dropbear: the state's sealer and opener of packets piece by piece (`aead_stream`), or
   * null where it has none (then each packet is sealed and opened whole, by aead_crypt).
   */
  readonly aead_stream?: (cipher_state: cipher_state) => aead_stream | null;
}

/**
 * Beyond Dropbear, which seals and opens a packet whole in its buffer: sealing or opening it in
 * pieces, each from wherever its bytes are, so bytes still in a socket's read buffer go into the
 * packet through the cipher, with no copy before (a received packet as it is read; channel data
 * sent straight from the socket it was read from). One packet at a time: `begin`, `update` over
 * the rest of the body in order, `end` with the tag. What was decrypted is not to be used
 * unless `end` is true.
 */
export interface aead_stream {
  /**
   * Start sealing (LTC_ENCRYPT) or opening (LTC_DECRYPT) packet `seq`, whose first `len` bytes
   * (the length field and the start of the body) are at the start of `packet`: they are en- or
   * decrypted in place and authenticated.
   */
  begin(seq: number, packet: Uint8Array, len: number, direction: number): boolean;
  /** En- or decrypt and authenticate the next `len` body bytes, from input to output (the same bytes, or apart). */
  update(input: Uint8Array, output: Uint8Array, len: number): boolean;
  /** Sealing: the packet's tag into tag[0..taglen). Opening: whether `tag` verifies. */
  end(tag: Uint8Array): boolean;
}

/**
 * How a cipher is run over packets. Buffers are Uint8Array views starting at the data (what
 * buf_getptr / buf_getwriteptr return); input and output may be the same view (in place).
 * Where C leaves the hooks a mode lacks NULL (a mode is AEAD when `aead_crypt` is non-null),
 * `kind` tells the two shapes apart, so each one's hooks are always there.
 * @dropbear algo.h dropbear_cipher_mode
 */
export type dropbear_cipher_mode = dropbear_stream_mode | dropbear_aead_mode;

/**
 * A MAC: HMAC over `hash_desc`, keyed with `keysize` bytes, output cut to `hashsize` bytes.
 * A null hash_desc is a MAC that is not HMAC (no MAC at all, or an AEAD mode's tag).
 * @dropbear algo.h dropbear_hash
 */
export interface dropbear_hash {
  readonly hash_desc: ltc_hash_descriptor | null;
  readonly keysize: number;
  readonly hashsize: number;
}

/**
 * A post-quantum KEM as the hybrid key exchange uses it. Each function fills the buffers it is
 * given, as the C ones do, and returns 0. A library failure (malformed peer input the C code
 * would have silently turned into a useless secret) ends the session with dropbear_exit.
 * @dropbear algo.h dropbear_kem_desc
 */
export interface dropbear_kem_desc {
  readonly public_len: number;
  readonly secret_len: number;
  readonly ciphertext_len: number;
  readonly output_len: number;
  /** Make a key pair: pk gets public_len bytes, sk secret_len bytes. */
  readonly kem_gen: (pk: Uint8Array, sk: Uint8Array) => number;
  /** Encapsulate to pk: c gets ciphertext_len bytes, k the output_len-byte shared secret. */
  readonly kem_enc: (c: Uint8Array, k: Uint8Array, pk: Uint8Array) => number;
  /** Decapsulate c with sk into k (output_len bytes). */
  readonly kem_dec: (k: Uint8Array, c: Uint8Array, sk: Uint8Array) => number;
}
