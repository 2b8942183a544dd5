import { createHash, type KeyObject } from "node:crypto";
import { DropbearExit, TRACE, TRACE2, dropbear_assert, dropbear_exit } from "@dropbear-ts/dbutil";
import {
  type buffer,
  buf_decrpos,
  buf_getint,
  buf_getptr,
  buf_getstring,
  buf_getwriteptr,
  buf_incrlen,
  buf_new,
  buf_putbufstring,
  buf_setpos,
} from "@dropbear-ts/buffer";
import { DROPBEAR_RSA_SHA1, MAX_PUBKEY_SIZE, SSH_SIGNATURE_RSA_SHA256, SSH_SIGNKEY_RSA } from "@dropbear-ts/options";
import { type ecc_key, eccKeyFromKeyObject, eccPrivateKeyObject } from "./ecc.js";
import {
  buf_ecdsa_verify,
  buf_get_ecdsa_priv_key,
  buf_get_ecdsa_pub_key,
  buf_put_ecdsa_priv_key,
  buf_put_ecdsa_pub_key,
  buf_put_ecdsa_sign,
  ecdsa_signkey_type,
  signkey_is_ecdsa,
} from "./ecdsa.js";
import {
  type dropbear_ed25519_key,
  buf_ed25519_verify,
  buf_get_ed25519_priv_key,
  buf_get_ed25519_pub_key,
  buf_put_ed25519_priv_key,
  buf_put_ed25519_pub_key,
  buf_put_ed25519_sign,
  ed25519KeyFromKeyObject,
  ed25519_key_free,
} from "./ed25519.js";
import {
  type dropbear_rsa_key,
  buf_get_rsa_priv_key,
  buf_get_rsa_pub_key,
  buf_put_rsa_priv_key,
  buf_put_rsa_pub_key,
  buf_put_rsa_sign,
  buf_rsa_verify,
  rsaKeyFromKeyObject,
  rsaPrivateKeyObject,
  rsa_key_free,
} from "./rsa.js";
import { buf_sk_ecdsa_verify, bufPutSkEcdsaPubKey } from "./sk-ecdsa.js";
import { buf_sk_ed25519_verify, bufPutSkEd25519PubKey } from "./sk-ed25519.js";

// enum signkey_type, numbered as Dropbear 2026.94 numbers it with its default options
// (DSS not built, so RSA is 0 and the ECDSA types follow directly).

/** @dropbear signkey.h DROPBEAR_SIGNKEY_RSA */
export const DROPBEAR_SIGNKEY_RSA = 0;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_ECDSA_NISTP256 */
export const DROPBEAR_SIGNKEY_ECDSA_NISTP256 = 1;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_ECDSA_NISTP384 */
export const DROPBEAR_SIGNKEY_ECDSA_NISTP384 = 2;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_ECDSA_NISTP521 */
export const DROPBEAR_SIGNKEY_ECDSA_NISTP521 = 3;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256 */
export const DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256 = 4;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_ED25519 */
export const DROPBEAR_SIGNKEY_ED25519 = 5;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_SK_ED25519 */
export const DROPBEAR_SIGNKEY_SK_ED25519 = 6;
/** How many types have a wire name (the ones below are not key types). @dropbear signkey.h DROPBEAR_SIGNKEY_NUM_NAMED */
export const DROPBEAR_SIGNKEY_NUM_NAMED = 7;
/** dropbearkey's "ecdsa": the size picks the curve. @dropbear signkey.h DROPBEAR_SIGNKEY_ECDSA_KEYGEN */
export const DROPBEAR_SIGNKEY_ECDSA_KEYGEN = 70;
/** Accept whichever type the blob carries. @dropbear signkey.h DROPBEAR_SIGNKEY_ANY */
export const DROPBEAR_SIGNKEY_ANY = 80;
/** @dropbear signkey.h DROPBEAR_SIGNKEY_NONE */
export const DROPBEAR_SIGNKEY_NONE = 90;

/** A key type, or one of the non-key markers. @dropbear signkey.h signkey_type */
export type signkey_type =
  | typeof DROPBEAR_SIGNKEY_RSA
  | typeof DROPBEAR_SIGNKEY_ECDSA_NISTP256
  | typeof DROPBEAR_SIGNKEY_ECDSA_NISTP384
  | typeof DROPBEAR_SIGNKEY_ECDSA_NISTP521
  | typeof DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256
  | typeof DROPBEAR_SIGNKEY_ED25519
  | typeof DROPBEAR_SIGNKEY_SK_ED25519
  | typeof DROPBEAR_SIGNKEY_NUM_NAMED
  | typeof DROPBEAR_SIGNKEY_ECDSA_KEYGEN
  | typeof DROPBEAR_SIGNKEY_ANY
  | typeof DROPBEAR_SIGNKEY_NONE;

// enum signature_type: equal to the key type except for RSA, whose key signs several ways.

/** @dropbear signkey.h DROPBEAR_SIGNATURE_ECDSA_NISTP256 */
export const DROPBEAR_SIGNATURE_ECDSA_NISTP256 = DROPBEAR_SIGNKEY_ECDSA_NISTP256;
/** @dropbear signkey.h DROPBEAR_SIGNATURE_ECDSA_NISTP384 */
export const DROPBEAR_SIGNATURE_ECDSA_NISTP384 = DROPBEAR_SIGNKEY_ECDSA_NISTP384;
/** @dropbear signkey.h DROPBEAR_SIGNATURE_ECDSA_NISTP521 */
export const DROPBEAR_SIGNATURE_ECDSA_NISTP521 = DROPBEAR_SIGNKEY_ECDSA_NISTP521;
/** @dropbear signkey.h DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256 */
export const DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256 = DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256;
/** @dropbear signkey.h DROPBEAR_SIGNATURE_ED25519 */
export const DROPBEAR_SIGNATURE_ED25519 = DROPBEAR_SIGNKEY_ED25519;
/** @dropbear signkey.h DROPBEAR_SIGNATURE_SK_ED25519 */
export const DROPBEAR_SIGNATURE_SK_ED25519 = DROPBEAR_SIGNKEY_SK_ED25519;
/** "ssh-rsa" signatures (SHA-1); only recognised when DROPBEAR_RSA_SHA1 is on (off by default). @dropbear signkey.h DROPBEAR_SIGNATURE_RSA_SHA1 */
export const DROPBEAR_SIGNATURE_RSA_SHA1 = 100;
/** "rsa-sha2-256" signatures, made by an ssh-rsa key. @dropbear signkey.h DROPBEAR_SIGNATURE_RSA_SHA256 */
export const DROPBEAR_SIGNATURE_RSA_SHA256 = 101;
/**
 * "rsa-sha2-512" (RFC 8332). Beyond Dropbear, which has no SHA-512 RSA signatures: we can
 * sign and verify them; the algorithm lists decide whether they are ever negotiated.
 */
export const DROPBEAR_SIGNATURE_RSA_SHA512 = 102;
/** @dropbear signkey.h DROPBEAR_SIGNATURE_NONE */
export const DROPBEAR_SIGNATURE_NONE = DROPBEAR_SIGNKEY_NONE;

/** The wire name of rsa-sha2-512 signatures (RFC 8332). */
export const SSH_SIGNATURE_RSA_SHA512 = "rsa-sha2-512";

/**
 * A signature type. Like C's enum it may also hold a key type's value (casts go both ways:
 * `signature_type_from_name` falls back to the key name table). @dropbear signkey.h signature_type
 */
export type signature_type =
  | signkey_type
  | typeof DROPBEAR_SIGNATURE_RSA_SHA1
  | typeof DROPBEAR_SIGNATURE_RSA_SHA256
  | typeof DROPBEAR_SIGNATURE_RSA_SHA512;

/** Key read from a file. @dropbear signkey.h SIGNKEY_SOURCE_RAW_FILE */
export const SIGNKEY_SOURCE_RAW_FILE = 0;
/** Key held by ssh-agent. @dropbear signkey.h SIGNKEY_SOURCE_AGENT */
export const SIGNKEY_SOURCE_AGENT = 1;
/** @dropbear signkey.h SIGNKEY_SOURCE_INVALID */
export const SIGNKEY_SOURCE_INVALID = 2;
/** Where a signing key came from. @dropbear signkey.h signkey_source */
export type signkey_source = typeof SIGNKEY_SOURCE_RAW_FILE | typeof SIGNKEY_SOURCE_AGENT | typeof SIGNKEY_SOURCE_INVALID;

/** Wire names, indexed by signkey_type. @dropbear signkey.c signkey_names */
const signkey_names: readonly string[] = [
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ecdsa-sha2-nistp256@openssh.com",
  "ssh-ed25519",
  "sk-ssh-ed25519@openssh.com",
];

/**
 * One host or user key of any type. Only the member for its type is set; `type` is set by
 * whoever loads it (the parsers return the type instead). @dropbear signkey.h SIGN_key
 */
export class SIGN_key {
  type: signkey_type = DROPBEAR_SIGNKEY_NONE;
  source: signkey_source = SIGNKEY_SOURCE_INVALID;
  filename: string | null = null;
  rsakey: dropbear_rsa_key | null = null;
  ecckey256: ecc_key | null = null;
  ecckey384: ecc_key | null = null;
  ecckey521: ecc_key | null = null;
  ed25519key: dropbear_ed25519_key | null = null;
  /** Application of an sk-* key (C's sk_app with sk_applen: the Buffer carries the length). */
  sk_app: Buffer | null = null;
  /** SSH_SK_* flag bits a signature must carry (svr-authpubkey sets them from key options). */
  sk_flags_mask = 0;
}

/** @dropbear signkey.h sign_key */
export type sign_key = SIGN_key;

/** A fresh key holding nothing. @dropbear signkey.c new_sign_key */
export function new_sign_key(): sign_key {
  return new SIGN_key();
}

/** Names arrive as bytes off the wire; latin1 maps each byte to one char, so compares stay exact. */
function nameString(name: Uint8Array | string): string {
  return typeof name === "string" ? name : Buffer.from(name.buffer, name.byteOffset, name.length).toString("latin1");
}

/** The wire name of a key type; exits on a type that has none. @dropbear signkey.c signkey_name_from_type */
export function signkey_name_from_type(type: number): string {
  if (!Number.isInteger(type) || type < 0 || type >= DROPBEAR_SIGNKEY_NUM_NAMED) {
    dropbear_exit(`Bad key type ${type}`);
  }
  return signkey_names[type];
}

/** The key type with this wire name, or DROPBEAR_SIGNKEY_NONE. @dropbear signkey.c signkey_type_from_name */
export function signkey_type_from_name(name: Uint8Array | string): signkey_type {
  const i = signkey_names.indexOf(nameString(name));
  if (i < 0) {
    TRACE("signkey_type_from_name unexpected key type.");
    return DROPBEAR_SIGNKEY_NONE;
  }
  return i as signkey_type;
}

/** The wire name of a signature type; exits on one that has none. @dropbear signkey.c signature_name_from_type */
export function signature_name_from_type(type: number): string {
  if (type === DROPBEAR_SIGNATURE_RSA_SHA256) {
    return SSH_SIGNATURE_RSA_SHA256;
  }
  if (type === DROPBEAR_SIGNATURE_RSA_SHA512) {
    return SSH_SIGNATURE_RSA_SHA512;
  }
  if (DROPBEAR_RSA_SHA1 && type === DROPBEAR_SIGNATURE_RSA_SHA1) {
    return SSH_SIGNKEY_RSA;
  }
  return signkey_name_from_type(type);
}

/**
 * The signature type with this wire name, or DROPBEAR_SIGNATURE_NONE. With SHA-1 RSA off (the
 * default) "ssh-rsa" falls through to the key table and yields the RSA key type's value, as in
 * C; no signature can then be made or checked with it. @dropbear signkey.c signature_type_from_name
 */
export function signature_type_from_name(name: Uint8Array | string): signature_type {
  const s = nameString(name);
  if (s === SSH_SIGNATURE_RSA_SHA256) {
    return DROPBEAR_SIGNATURE_RSA_SHA256;
  }
  if (s === SSH_SIGNATURE_RSA_SHA512) {
    return DROPBEAR_SIGNATURE_RSA_SHA512;
  }
  if (DROPBEAR_RSA_SHA1 && s === SSH_SIGNKEY_RSA) {
    return DROPBEAR_SIGNATURE_RSA_SHA1;
  }
  return signkey_type_from_name(s);
}

/** The signature type a non-RSA key makes (RSA keys have several). @dropbear signkey.c signature_type_from_signkey */
export function signature_type_from_signkey(keytype: signkey_type): signature_type {
  dropbear_assert(keytype !== DROPBEAR_SIGNKEY_RSA, "keytype != DROPBEAR_SIGNKEY_RSA");
  dropbear_assert(keytype < DROPBEAR_SIGNKEY_NUM_NAMED, "keytype < DROPBEAR_SIGNKEY_NUM_NAMED");
  return keytype;
}

/** The key type that makes a signature type. @dropbear signkey.c signkey_type_from_signature */
export function signkey_type_from_signature(sigtype: signature_type): signkey_type {
  if (
    sigtype === DROPBEAR_SIGNATURE_RSA_SHA256 ||
    sigtype === DROPBEAR_SIGNATURE_RSA_SHA512 ||
    (DROPBEAR_RSA_SHA1 && sigtype === DROPBEAR_SIGNATURE_RSA_SHA1)
  ) {
    return DROPBEAR_SIGNKEY_RSA;
  }
  dropbear_assert(sigtype < DROPBEAR_SIGNKEY_NUM_NAMED, "sigtype < DROPBEAR_SIGNKEY_NUM_NAMED");
  return sigtype as signkey_type;
}

/** The SIGN_key member that holds a key of `type`. */
export type SignKeyMember = "rsakey" | "ecckey256" | "ecckey384" | "ecckey521" | "ed25519key";

/**
 * Which member holds a key of `type`, or null. C returns a pointer to the member; here the
 * member's name, so callers write `key[member]`. sk-* keys share their plain twin's member.
 * @dropbear signkey.c signkey_key_ptr
 */
export function signkey_key_ptr(type: number): SignKeyMember | null {
  switch (type) {
    case DROPBEAR_SIGNKEY_ED25519:
    case DROPBEAR_SIGNKEY_SK_ED25519:
      return "ed25519key";
    case DROPBEAR_SIGNKEY_ECDSA_NISTP256:
    case DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256:
      return "ecckey256";
    case DROPBEAR_SIGNKEY_ECDSA_NISTP384:
      return "ecckey384";
    case DROPBEAR_SIGNKEY_ECDSA_NISTP521:
      return "ecckey521";
    case DROPBEAR_SIGNKEY_RSA:
      return "rsakey";
    default:
      return null;
  }
}

/** The EC key member for an (sk-)ECDSA type, or null for other types. */
function eccMember(type: number): "ecckey256" | "ecckey384" | "ecckey521" | null {
  const m = signkey_key_ptr(type);
  return m === "ecckey256" || m === "ecckey384" || m === "ecckey521" ? m : null;
}

/** The EC key a sign_key holds for an (sk-)ECDSA type, if any. */
export function signkeyEccKey(key: sign_key, type: number): ecc_key | null {
  const m = eccMember(type);
  return m === null ? null : key[m];
}

/**
 * Read an SSH public key blob (starting at its type name) into `key`. `type` is the type
 * wanted or DROPBEAR_SIGNKEY_ANY; returns the type read, or null on failure (wrong type,
 * bad numbers, a point off the curve). Truncated input exits. @dropbear signkey.c buf_get_pub_key
 */
export function buf_get_pub_key(buf: buffer, key: sign_key, type: signkey_type): signkey_type | null {
  TRACE2("enter buf_get_pub_key");
  const ident = buf_getstring(buf);
  const keytype = signkey_type_from_name(ident);
  if (type !== DROPBEAR_SIGNKEY_ANY && type !== keytype) {
    TRACE(`buf_get_pub_key bad type - got ${keytype}, expected ${type}`);
    return null;
  }
  // Each codec reads the name again itself.
  buf_decrpos(buf, ident.length + 4);

  let ok = false;
  if (keytype === DROPBEAR_SIGNKEY_RSA) {
    rsa_key_free(key.rsakey);
    key.rsakey = buf_get_rsa_pub_key(buf);
    ok = key.rsakey !== null;
  }
  const m = eccMember(keytype);
  if (m !== null) {
    key[m] = buf_get_ecdsa_pub_key(buf);
    ok = key[m] !== null;
  }
  if (keytype === DROPBEAR_SIGNKEY_ED25519 || keytype === DROPBEAR_SIGNKEY_SK_ED25519) {
    ed25519_key_free(key.ed25519key);
    key.ed25519key = buf_get_ed25519_pub_key(buf, keytype);
    ok = key.ed25519key !== null;
  }
  if (keytype === DROPBEAR_SIGNKEY_SK_ED25519 || keytype === DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256) {
    // As in C the application is read even after a failed key part.
    key.sk_app = buf_getstring(buf);
  }
  TRACE2("leave buf_get_pub_key");
  return ok ? keytype : null;
}

/**
 * Read a key in Dropbear's private key format (what dropbearkey writes) into `key`. Like
 * buf_get_pub_key: returns the type read or null. sk-* keys have no private form here.
 * @dropbear signkey.c buf_get_priv_key
 */
export function buf_get_priv_key(buf: buffer, key: sign_key, type: signkey_type): signkey_type | null {
  TRACE2("enter buf_get_priv_key");
  const ident = buf_getstring(buf);
  const keytype = signkey_type_from_name(ident);
  if (type !== DROPBEAR_SIGNKEY_ANY && type !== keytype) {
    TRACE(`wrong key type: ${type} ${keytype}`);
    return null;
  }
  buf_decrpos(buf, ident.length + 4);

  let ok = false;
  if (keytype === DROPBEAR_SIGNKEY_RSA) {
    rsa_key_free(key.rsakey);
    key.rsakey = buf_get_rsa_priv_key(buf);
    ok = key.rsakey !== null;
  }
  if (signkey_is_ecdsa(keytype)) {
    const m = eccMember(keytype);
    if (m !== null) {
      key[m] = buf_get_ecdsa_priv_key(buf);
      ok = key[m] !== null;
    }
  }
  if (keytype === DROPBEAR_SIGNKEY_ED25519) {
    ed25519_key_free(key.ed25519key);
    key.ed25519key = buf_get_ed25519_priv_key(buf);
    ok = key.ed25519key !== null;
  }
  TRACE2("leave buf_get_priv_key");
  return ok ? keytype : null;
}

/** Write the public key of `type` as an SSH string (the blob, length-prefixed). @dropbear signkey.c buf_put_pub_key */
export function buf_put_pub_key(buf: buffer, key: sign_key, type: number): void {
  TRACE2("enter buf_put_pub_key");
  const pubkeys = buf_new(MAX_PUBKEY_SIZE);
  if (type === DROPBEAR_SIGNKEY_RSA && key.rsakey) {
    buf_put_rsa_pub_key(pubkeys, key.rsakey);
  }
  if (signkey_is_ecdsa(type)) {
    const eck = signkeyEccKey(key, type);
    if (eck) {
      buf_put_ecdsa_pub_key(pubkeys, eck);
    }
  }
  // C writes sk keys as their plain twins; we write the real sk blob (type name, key, application).
  if (type === DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256 && key.ecckey256 && key.sk_app) {
    bufPutSkEcdsaPubKey(pubkeys, key.ecckey256, key.sk_app);
  }
  if (type === DROPBEAR_SIGNKEY_ED25519 && key.ed25519key) {
    buf_put_ed25519_pub_key(pubkeys, key.ed25519key);
  }
  if (type === DROPBEAR_SIGNKEY_SK_ED25519 && key.ed25519key && key.sk_app) {
    bufPutSkEd25519PubKey(pubkeys, key.ed25519key, key.sk_app);
  }
  if (pubkeys.len === 0) {
    dropbear_exit("Bad key types in buf_put_pub_key");
  }
  buf_putbufstring(buf, pubkeys);
  TRACE2("leave buf_put_pub_key");
}

/** Write the key in Dropbear's private key format. @dropbear signkey.c buf_put_priv_key */
export function buf_put_priv_key(buf: buffer, key: sign_key, type: number): void {
  TRACE(`enter buf_put_priv_key, type is ${type}`);
  if (type === DROPBEAR_SIGNKEY_RSA && key.rsakey) {
    buf_put_rsa_priv_key(buf, key.rsakey);
    return;
  }
  if (signkey_is_ecdsa(type)) {
    const eck = signkeyEccKey(key, type);
    if (eck) {
      buf_put_ecdsa_priv_key(buf, eck);
      return;
    }
  }
  if (type === DROPBEAR_SIGNKEY_ED25519 && key.ed25519key) {
    buf_put_ed25519_priv_key(buf, key.ed25519key);
    return;
  }
  dropbear_exit("Bad key types in put pub key");
}

/** Drop every member (secret bytes are zeroed where we hold them as bytes). @dropbear signkey.c sign_key_free */
export function sign_key_free(key: sign_key): void {
  TRACE2("enter sign_key_free");
  rsa_key_free(key.rsakey);
  key.rsakey = null;
  key.ecckey256 = null;
  key.ecckey384 = null;
  key.ecckey521 = null;
  ed25519_key_free(key.ed25519key);
  key.ed25519key = null;
  key.filename = null;
  key.sk_app = null;
  TRACE2("leave sign_key_free");
}

/** "SHA256:" and the unpadded base64 of the blob's SHA-256, as OpenSSH shows it. @dropbear signkey.c sign_key_sha256_fingerprint */
function sign_key_sha256_fingerprint(keyblob: Uint8Array): string {
  const hash = createHash("sha256").update(keyblob).digest("base64");
  // 32 bytes are 43 base64 chars and one '=' of padding, which OpenSSH leaves off.
  return "SHA256:" + hash.slice(0, 43);
}

/** The fingerprint of a public key blob (no length prefix). @dropbear signkey.c sign_key_fingerprint */
export function sign_key_fingerprint(keyblob: Uint8Array, keybloblen: number = keyblob.length): string {
  return sign_key_sha256_fingerprint(keyblob.subarray(0, keybloblen));
}

/**
 * Why the private numbers of `key` (of its type) cannot sign, or null when they can or it holds
 * none: RSA primes that give no key, an EC private value outside 1..order-1. Dropbear learns
 * this only when it signs; a loader skips such a key with the reason instead.
 */
export function signkeyPrivateProblem(key: sign_key): string | null {
  const rsa = key.type === DROPBEAR_SIGNKEY_RSA ? key.rsakey : null;
  const ecc = signkeyEccKey(key, key.type);
  try {
    if (rsa !== null && rsa.d !== null) {
      rsaPrivateKeyObject(rsa);
    }
    if (ecc !== null && ecc.k !== null) {
      eccPrivateKeyObject(ecc);
    }
  } catch (e) {
    return `${signkey_name_from_type(key.type)}: ${e instanceof Error ? e.message : String(e)}`;
  }
  return null;
}

/**
 * Sign the used bytes of `data_buf` with `key` and write the signature blob as an SSH string.
 * Exits if the key cannot make `sigtype`. @dropbear signkey.c buf_put_sign
 */
export function buf_put_sign(buf: buffer, key: sign_key, sigtype: signature_type, data_buf: buffer): void {
  const sigblob = buf_new(MAX_PUBKEY_SIZE);
  const keytype = signkey_type_from_signature(sigtype);
  TRACE(() => `buf_put_sign type ${sigtype} ${signature_name_from_type(sigtype)}`);
  if (keytype === DROPBEAR_SIGNKEY_RSA && key.rsakey) {
    buf_put_rsa_sign(sigblob, key.rsakey, sigtype, data_buf);
  }
  if (signkey_is_ecdsa(keytype)) {
    const eck = signkeyEccKey(key, keytype);
    if (eck) {
      buf_put_ecdsa_sign(sigblob, eck, data_buf);
    }
  }
  if (keytype === DROPBEAR_SIGNKEY_ED25519 && key.ed25519key) {
    buf_put_ed25519_sign(sigblob, key.ed25519key, data_buf);
  }
  if (sigblob.len === 0) {
    dropbear_exit("Non-matching signing type");
  }
  buf_putbufstring(buf, sigblob);
}

/**
 * Check the signature blob at `buf` (uint32 length, type name, signature) over the used
 * bytes of `data_buf`. A signature of another type than `expect_sigtype`, or a key without
 * the member needed, exits as in C; a signature that simply does not verify returns false.
 * @dropbear signkey.c buf_verify
 */
export function buf_verify(buf: buffer, key: sign_key, expect_sigtype: signature_type, data_buf: buffer): boolean {
  TRACE("enter buf_verify");
  buf_getint(buf); // blob length: each codec reads what it needs
  const sigtype = signature_type_from_name(buf_getstring(buf));
  if (expect_sigtype !== sigtype) {
    dropbear_exit("Non-matching signing type");
  }
  const keytype = signkey_type_from_signature(sigtype);
  if (keytype === DROPBEAR_SIGNKEY_RSA) {
    if (key.rsakey === null) {
      dropbear_exit("No RSA key to verify signature");
    }
    return buf_rsa_verify(buf, key.rsakey, sigtype, data_buf);
  }
  if (signkey_is_ecdsa(keytype)) {
    const eck = signkeyEccKey(key, keytype);
    if (eck) {
      return buf_ecdsa_verify(buf, eck, data_buf);
    }
  }
  if (keytype === DROPBEAR_SIGNKEY_ED25519) {
    if (key.ed25519key === null) {
      dropbear_exit("No Ed25519 key to verify signature");
    }
    return buf_ed25519_verify(buf, key.ed25519key, data_buf);
  }
  if (keytype === DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256 && key.ecckey256) {
    return buf_sk_ecdsa_verify(buf, key.ecckey256, data_buf, key.sk_app ?? Buffer.alloc(0), key.sk_flags_mask);
  }
  if (keytype === DROPBEAR_SIGNKEY_SK_ED25519 && key.ed25519key) {
    return buf_sk_ed25519_verify(buf, key.ed25519key, data_buf, key.sk_app ?? Buffer.alloc(0), key.sk_flags_mask);
  }
  dropbear_exit("Non-matching signing type");
}

// libtomcrypt's relaxed base64 alphabet map: 0-63 digits, 254 '=', 255 anything else.
const B64_MAP = (() => {
  const map = new Uint8Array(256).fill(255);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < 64; i++) {
    map[alphabet.charCodeAt(i)] = i;
  }
  map[0x3d] = 254;
  return map;
})();

/**
 * Decode base64 as Dropbear does (libtomcrypt's relaxed base64_decode): characters outside
 * the alphabet and '=' anywhere are skipped; a lone trailing digit is an error (null).
 */
export function base64Decode(input: Uint8Array | string): Buffer | null {
  const bytes = typeof input === "string" ? Buffer.from(input, "latin1") : input;
  const out = Buffer.alloc(Math.floor((bytes.length * 3) / 4) + 3);
  let t = 0;
  let y = 0;
  let z = 0;
  for (const b of bytes) {
    const c = B64_MAP[b];
    if (c >= 254) {
      continue;
    }
    t = ((t << 6) | c) & 0xffffff;
    if (++y === 4) {
      out[z++] = (t >> 16) & 0xff;
      out[z++] = (t >> 8) & 0xff;
      out[z++] = t & 0xff;
      y = 0;
      t = 0;
    }
  }
  if (y === 1) {
    return null;
  }
  if (y !== 0) {
    t <<= 6 * (4 - y);
    out[z++] = (t >> 16) & 0xff;
    if (y === 3) {
      out[z++] = (t >> 8) & 0xff;
    }
  }
  return out.subarray(0, z);
}

/**
 * Compare a key blob (and its algorithm name) with the base64 key text in `line` from its
 * position to its end, as known_hosts and authorized_keys checks do. `fingerprint`, when
 * given, receives the fingerprint of the key in the line if it decoded.
 * @dropbear signkey.c cmp_base64_key
 */
export function cmp_base64_key(
  keyblob: Uint8Array,
  algoname: Uint8Array | string,
  line: buffer,
  fingerprint?: { value: string | null },
): boolean {
  const len = line.len - line.pos;
  if (len === 0) {
    return false;
  }
  const decoded = base64Decode(buf_getptr(line, len));
  if (decoded === null) {
    TRACE("checkpubkey: base64 decode failed");
    return false;
  }
  // Kept in a buffer so the algorithm name is read with Dropbear's bounds checks.
  const decodekey = buf_new(decoded.length);
  decoded.copy(buf_getwriteptr(decodekey, decoded.length));
  buf_incrlen(decodekey, decoded.length);
  if (fingerprint) {
    fingerprint.value = sign_key_fingerprint(decoded);
  }
  if (!Buffer.from(keyblob.buffer, keyblob.byteOffset, keyblob.length).equals(decoded)) {
    TRACE("checkpubkey: compare failed");
    return false;
  }
  buf_setpos(decodekey, 0);
  const filealgolen = buf_getint(decodekey);
  const filealgo = buf_getptr(decodekey, filealgolen);
  if (nameString(filealgo) !== nameString(algoname)) {
    TRACE("checkpubkey: algo match failed");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Helpers beyond signkey.c, for dropbearkey's output, .pub files, authorized_keys and
// known_hosts lines, and keys that come from node:crypto.

/** The public key blob of `type` (what buf_put_pub_key wraps in a string), without the length. */
export function signkeyPubBlob(key: sign_key, type: number = key.type): Buffer {
  const buf = buf_new(MAX_PUBKEY_SIZE + 4);
  buf_put_pub_key(buf, key, type);
  return Buffer.from(buf.data.subarray(4, buf.len));
}

/** The fingerprint of the key's public half ("SHA256:..."). */
export function signkeyFingerprint(key: sign_key, type: number = key.type): string {
  return sign_key_fingerprint(signkeyPubBlob(key, type));
}

/**
 * The one-line public key `type base64 [comment]`, as dropbearkey prints it and .pub files,
 * authorized_keys and known_hosts hold it (no newline).
 */
export function signkeyPubLine(key: sign_key, type: number = key.type, comment?: string): string {
  const line = `${signkey_name_from_type(type)} ${signkeyPubBlob(key, type).toString("base64")}`;
  return comment === undefined || comment === "" ? line : `${line} ${comment}`;
}

/** A public key line taken apart. */
export interface ParsedPubLine {
  type: signkey_type;
  /** The decoded blob (type name first). */
  blob: Buffer;
  comment: string;
  key: sign_key;
}

/**
 * Parse `type base64 [comment]` (no options prefix). null if the type is unknown, the base64
 * does not decode, or the blob is not a valid key of the type named. Never throws on bad input.
 */
export function parsePubLine(line: string): ParsedPubLine | null {
  const m = /^\s*(\S+)\s+(\S+)(?:\s+(.*?))?\s*$/.exec(line);
  if (!m) {
    return null;
  }
  const type = signkey_type_from_name(m[1]);
  if (type === DROPBEAR_SIGNKEY_NONE) {
    return null;
  }
  const blob = base64Decode(m[2]);
  if (blob === null || blob.length === 0) {
    return null;
  }
  const buf = buf_new(blob.length);
  blob.copy(buf.data);
  buf.len = blob.length;
  const key = new_sign_key();
  let got: signkey_type | null;
  try {
    got = buf_get_pub_key(buf, key, type);
  } catch (e) {
    // A truncated blob exits in Dropbear; for a line that is simply not a key.
    if (e instanceof DropbearExit) {
      return null;
    }
    throw e;
  }
  if (got === null || buf.pos !== buf.len) {
    return null;
  }
  key.type = got;
  return { type: got, blob, comment: m[3] ?? "", key };
}

/**
 * A sign_key from a node:crypto key (RSA, EC on P-256/384/521, Ed25519), private or public,
 * with `type` set; null for anything else.
 */
export function signkeyFromKeyObject(ko: KeyObject): sign_key | null {
  const key = new_sign_key();
  switch (ko.asymmetricKeyType) {
    case "rsa": {
      key.rsakey = rsaKeyFromKeyObject(ko);
      if (key.rsakey === null) {
        return null;
      }
      key.type = DROPBEAR_SIGNKEY_RSA;
      return key;
    }
    case "ec": {
      const eck = eccKeyFromKeyObject(ko);
      if (eck === null) {
        return null;
      }
      const type = ecdsa_signkey_type(eck);
      const m = eccMember(type);
      if (m === null) {
        return null;
      }
      key[m] = eck;
      key.type = type;
      return key;
    }
    case "ed25519": {
      key.ed25519key = ed25519KeyFromKeyObject(ko);
      if (key.ed25519key === null) {
        return null;
      }
      key.type = DROPBEAR_SIGNKEY_ED25519;
      return key;
    }
    default:
      return null;
  }
}
