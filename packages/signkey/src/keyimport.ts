import { bytes_to_mp, chachapoly_open_unframed } from "@dropbear-ts/crypto";
// Reading and writing OpenSSH-format private keys, for dropbearconvert (and `dbclient -i`).
// Beyond Dropbear (see docs/deviations.md): encrypted openssh-key-v1 files (bcrypt KDF with
// aes*-ctr, aes*-cbc or aes*-gcm@openssh.com), encrypted PEM files and PKCS#8 files, each
// when a passphrase is given; PKCS#8 goes through node:crypto. Without a passphrase an
// encrypted file is refused with Dropbear's message.
import { type DecipherGCM, createDecipheriv, createPrivateKey } from "node:crypto";
import { closeSync, constants, openSync, statSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { DropbearExit, TRACE, atomicio, fsPath, strerror, tellUser } from "@dropbear-ts/dbutil";
import {
  type buffer,
  buf_burn_free,
  buf_readfile,
  buf_writefile,
  buf_getint,
  buf_getstring,
  buf_new,
  buf_putbufstring,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_putstring,
  buf_setpos,
} from "@dropbear-ts/buffer";
import { MAX_PRIVKEY_SIZE, MAX_STRING_LEN } from "@dropbear-ts/options";
import { buf_get_ecc_raw_pubkey, type dropbear_ecc_curve, ecc_curve_nistp256, ecc_curve_nistp384, ecc_curve_nistp521 } from "./ecc.js";
import { signkey_is_ecdsa } from "./ecdsa.js";
import {
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  base64Decode,
  buf_get_priv_key,
  buf_get_pub_key,
  buf_put_priv_key,
  buf_put_pub_key,
  new_sign_key,
  type sign_key,
  sign_key_free,
  signkeyFromKeyObject,
  signkey_key_ptr,
} from "./signkey.js";
import {
  buf_get_ecdsa_priv_ossh,
  buf_get_ed25519_priv_ossh,
  buf_get_rsa_priv_ossh,
  buf_put_ecdsa_priv_ossh,
  buf_put_ed25519_priv_ossh,
  buf_put_rsa_priv_ossh,
} from "./signkey_ossh.js";

/** Dropbear's own private key format. @dropbear keyimport.h KEYFILE_DROPBEAR */
export const KEYFILE_DROPBEAR = 0;
/** OpenSSH formats: openssh-key-v1 and the older PEM ones. @dropbear keyimport.h KEYFILE_OPENSSH */
export const KEYFILE_OPENSSH = 1;
/** ssh.com format: named by Dropbear but not supported. @dropbear keyimport.h KEYFILE_SSHCOM */
export const KEYFILE_SSHCOM = 2;

/** A passphrase as text (UTF-8) or bytes; null or undefined for none. */
export type Passphrase = string | Uint8Array | null | undefined;

interface BcryptPbkdf {
  pbkdf(pass: Uint8Array, passlen: number, salt: Uint8Array, saltlen: number, key: Uint8Array, keylen: number, rounds: number): number;
}
// bcrypt-pbkdf is CommonJS without types; its one function is described above. Loaded when an
// encrypted key is first read, not at every start-up (~8 ms with tweetnacl).
let bcryptModule: BcryptPbkdf | null = null;
const bcrypt_pbkdf = (): BcryptPbkdf => (bcryptModule ??= createRequire(import.meta.url)("bcrypt-pbkdf") as BcryptPbkdf);

/**
 * The most bcrypt rounds an encrypted OpenSSH key may ask for: ssh-keygen's default is 16 and
 * `-a 1000` is rare; 8192 take about two minutes here. A file asking for more (up to 2^32-1,
 * years of work) is refused rather than hanging the program after its passphrase.
 */
export const MAX_BCRYPT_ROUNDS = 8192;

/** What an openssh-key-v1 file starts with when unencrypted and holding one key. @dropbear keyimport.c OSSH_PKEY_BLOB */
const OSSH_PKEY_BLOB = Buffer.from("openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none\0\0\0\0\0\0\0\x01", "latin1");
const AUTH_MAGIC = Buffer.from("openssh-key-v1\0", "latin1");
/** DER body of the secp256r1 OID. @dropbear keyimport.c OID_SEC256R1_BLOB */
const OID_SEC256R1_BLOB = Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
/** @dropbear keyimport.c OID_SEC384R1_BLOB */
const OID_SEC384R1_BLOB = Buffer.from([0x2b, 0x81, 0x04, 0x00, 0x22]);
/** @dropbear keyimport.c OID_SEC521R1_BLOB */
const OID_SEC521R1_BLOB = Buffer.from([0x2b, 0x81, 0x04, 0x00, 0x23]);

/** dropbearconvert and friends report trouble on stderr, not through the log. */
function printError(msg: string): void {
  tellUser(`Error: ${msg}\n`);
}

/** Whether the file is an encrypted key of `filetype`. @dropbear keyimport.c import_encrypted */
export function import_encrypted(filename: string, filetype: number): boolean {
  if (filetype === KEYFILE_OPENSSH) {
    return openssh_encrypted(filename);
  }
  return false;
}

/**
 * Read a private key file of `filetype` ("-" reads stdin for OpenSSH files). Returns the key
 * with `type` set, or null after printing why on stderr. @dropbear keyimport.c import_read
 */
export function import_read(filename: string, passphrase: Passphrase, filetype: number): sign_key | null {
  if (filetype === KEYFILE_OPENSSH) {
    return openssh_read(filename, passphrase);
  }
  if (filetype === KEYFILE_DROPBEAR) {
    return dropbear_read(filename);
  }
  return null;
}

/**
 * Write `key` as a new file of `filetype` (never replacing one; "-" writes stdout for OpenSSH
 * files). A passphrase is refused, as in Dropbear. @dropbear keyimport.c import_write
 */
export function import_write(filename: string, key: sign_key, passphrase: Passphrase, filetype: number): boolean {
  if (filetype === KEYFILE_OPENSSH) {
    return openssh_write(filename, key, passphrase);
  }
  if (filetype === KEYFILE_DROPBEAR) {
    return dropbear_write(filename, key);
  }
  return false;
}

/** Read a Dropbear-format key file. @dropbear keyimport.c dropbear_read */
function dropbear_read(filename: string): sign_key | null {
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  try {
    if (!buf_readfile(buf, filename)) {
      return null;
    }
    buf_setpos(buf, 0);
    const ret = new_sign_key();
    const type = buf_get_priv_key(buf, ret, DROPBEAR_SIGNKEY_ANY);
    if (type === null) {
      sign_key_free(ret);
      return null;
    }
    ret.type = type;
    return ret;
  } finally {
    buf_burn_free(buf);
  }
}

/** Write a Dropbear-format key file. @dropbear keyimport.c dropbear_write */
function dropbear_write(filename: string, key: sign_key): boolean {
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  try {
    buf_put_priv_key(buf, key, key.type);
    buf_setpos(buf, 0);
    return buf_writefile(buf, filename, false);
  } finally {
    buf_burn_free(buf);
  }
}

/** Base64 in lines of `cpl` characters, each ending in a newline. @dropbear keyimport.c base64_encode_fp */
function base64_encode_fp(data: Uint8Array, cpl: number): string {
  const rawcpl = (cpl * 3) / 4;
  let out = "";
  for (let i = 0; i < data.length; i += rawcpl) {
    out += Buffer.from(data.subarray(i, i + rawcpl)).toString("base64") + "\n";
  }
  return out;
}

/**
 * Read a BER identifier and length at `start`, with `sourcelen` bytes available. Returns the
 * bytes they took, or null on truncated or negative lengths. @dropbear keyimport.c ber_read_id_len
 */
function ber_read_id_len(
  source: Uint8Array,
  start: number,
  sourcelen: number,
): { used: number; id: number; length: number; flags: number } | null {
  let p = start;
  if (sourcelen <= 0) {
    return null;
  }
  const flags = source[p] & 0xe0;
  let id: number;
  if ((source[p] & 0x1f) === 0x1f) {
    id = 0;
    while (source[p] & 0x80) {
      p++;
      sourcelen--;
      if (sourcelen === 0) {
        return null;
      }
      id = ((id << 7) | (source[p] & 0x7f)) | 0;
    }
    p++;
    sourcelen--;
  } else {
    id = source[p] & 0x1f;
    p++;
    sourcelen--;
  }
  if (sourcelen === 0) {
    return null;
  }
  let length: number;
  if (source[p] & 0x80) {
    let n = source[p] & 0x7f;
    p++;
    sourcelen--;
    if (sourcelen < n) {
      return null;
    }
    let len = 0;
    while (n--) {
      len = ((len << 8) | source[p++]) >>> 0;
    }
    // toint(): lengths past INT_MAX come out negative.
    length = len | 0;
  } else {
    length = source[p];
    p++;
  }
  if (length < 0) {
    tellUser("Negative ASN.1 length\n", "stdout");
    return null;
  }
  return { used: p - start, id, length, flags };
}

// Key file kinds: the PEM labels Dropbear reads, then ours (PKCS#8, via node:crypto).
/** "BEGIN DSA PRIVATE KEY". @dropbear keyimport.c OSSH_DSA */
const OSSH_DSA = 0;
/** "BEGIN RSA PRIVATE KEY" (PKCS#1). @dropbear keyimport.c OSSH_RSA */
const OSSH_RSA = 1;
/** "BEGIN EC PRIVATE KEY" (SEC1). @dropbear keyimport.c OSSH_EC */
const OSSH_EC = 2;
/** "BEGIN OPENSSH PRIVATE KEY" (openssh-key-v1). @dropbear keyimport.c OSSH_PKEY */
const OSSH_PKEY = 3;
/** "BEGIN PRIVATE KEY" / "BEGIN ENCRYPTED PRIVATE KEY" (PKCS#8). */
const OSSH_PKCS8 = 4;

/** A loaded key file before its body is interpreted. @dropbear keyimport.c openssh_key */
interface openssh_key {
  type: number;
  encrypted: boolean;
  /** The decoded body; for openssh-key-v1 what follows the header (publickey1 onwards). */
  keyblob: Buffer;
  /** openssh-key-v1 only: the cipher and bcrypt KDF options of an encrypted file. */
  cipher: OsshCipher | null;
  kdfoptions: Buffer;
  /** The whole file, for formats node:crypto decodes for us. */
  text: string;
}

/**
 * Parse the openssh-key-v1 header after the magic. Dropbear accepts only the exact
 * unencrypted one-key header; we also take encrypted ones (still one key).
 */
function parseOsshHeader(ret: openssh_key, blob: Buffer): string | null {
  if (blob.length >= OSSH_PKEY_BLOB.length && blob.subarray(0, OSSH_PKEY_BLOB.length).equals(OSSH_PKEY_BLOB)) {
    ret.keyblob = blob.subarray(OSSH_PKEY_BLOB.length);
    // A "Proc-Type: 4,ENCRYPTED" line over a clear openssh-key-v1 body: C's refusal of it.
    return ret.encrypted ? "Encrypted keys are not supported. Please convert with ssh-keygen first" : null;
  }
  if (blob.length < AUTH_MAGIC.length || !blob.subarray(0, AUTH_MAGIC.length).equals(AUTH_MAGIC)) {
    return "Error decoding OpenSSH key";
  }
  const buf = bufferOf(blob);
  buf.pos = AUTH_MAGIC.length;
  // A header cut short is the same error as a wrong one (C only compares the bytes), not
  // buf_getstring's "Bad buf_getptr".
  const field = (): Buffer | null => {
    if (buf.len - buf.pos < 4) {
      return null;
    }
    const len = buf.data.readUInt32BE(buf.pos);
    if (len > buf.len - buf.pos - 4 || len > MAX_STRING_LEN) {
      return null;
    }
    return buf_getstring(buf);
  };
  const ciphername = field();
  const kdfname = field();
  const kdfoptions = field();
  if (ciphername === null || kdfname === null || kdfoptions === null || buf.len - buf.pos < 4) {
    return "Error decoding OpenSSH key";
  }
  const name = ciphername.toString("latin1");
  const nkeys = buf_getint(buf);
  // C takes only "none" here. A cipher we cannot undo, or a KDF other than bcrypt, is a damaged
  // header to it (a corrupted "none"), and so to us: no passphrase is asked for one.
  if (nkeys !== 1 || !Object.hasOwn(OSSH_CIPHERS, name) || kdfname.toString("latin1") !== "bcrypt") {
    return "Error decoding OpenSSH key";
  }
  ret.cipher = OSSH_CIPHERS[name];
  ret.kdfoptions = kdfoptions;
  ret.encrypted = true;
  ret.keyblob = blob.subarray(buf.pos);
  return null;
}

/** A buffer over a copy of `bytes`, position 0. */
function bufferOf(bytes: Uint8Array): buffer {
  const buf = buf_new(bytes.length);
  buf.data.set(bytes);
  buf.len = bytes.length;
  return buf;
}

/**
 * The most of a PEM-style key file read: far beyond any key (an RSA key of 16384 bits in
 * OpenSSH's format is about 13 KB), so a device or a huge file (`/dev/zero`) fails as a bad key
 * rather than being read for ever. C reads such files a line at a time and so stops at a bad
 * first line.
 */
export const KEYFILE_READ_MAX = 1 << 20;

/** Whether `path` names a directory (false if it cannot be looked at). */
function isDirectory(path: string): boolean {
  try {
    return statSync(fsPath(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The text of a key file, at most KEYFILE_READ_MAX bytes of it (of a regular file, no more than
 * its size, so the buffer is no larger than the key); null if it cannot be read.
 */
export function readKeyFileText(filename: string): string | null {
  let size: number;
  try {
    const st = statSync(fsPath(filename));
    size = st.isFile() ? Math.min(st.size, KEYFILE_READ_MAX) : KEYFILE_READ_MAX;
  } catch {
    return null;
  }
  const buf = buf_new(size);
  if (!buf_readfile(buf, filename)) {
    return null;
  }
  return buf.data.toString("latin1", 0, buf.len);
}

/**
 * Read and decode a PEM-style key file ("-" is stdin): its label, headers (Proc-Type,
 * DEK-Info) and base64 body. Prints the reason and returns null on failure.
 * `anyPemCipher` accepts DEK-Info ciphers besides DES-EDE3-CBC (node:crypto decrypts those).
 * @dropbear keyimport.c load_openssh_key
 */
function load_openssh_key(filename: string, anyPemCipher = false): openssh_key | null {
  const ret: openssh_key = {
    type: OSSH_PKEY,
    encrypted: false,
    keyblob: Buffer.alloc(0),
    cipher: null,
    kdfoptions: Buffer.alloc(0),
    text: "",
  };
  const errmsg = ((): string | null => {
    const path = filename === "-" ? "/dev/stdin" : filename;
    const text = readKeyFileText(path);
    if (text === null) {
      // C's fopen() opens a directory; its first read then fails.
      return isDirectory(path) ? "Short input" : "Unable to open key file";
    }
    ret.text = text;
    const lines = text.split(/(?<=\n)/);
    if (lines.length === 0 || lines[0] === "") {
      return "Short input";
    }
    switch (lines[0]) {
      case "-----BEGIN RSA PRIVATE KEY-----\n":
        ret.type = OSSH_RSA;
        break;
      case "-----BEGIN DSA PRIVATE KEY-----\n":
        ret.type = OSSH_DSA;
        break;
      case "-----BEGIN EC PRIVATE KEY-----\n":
        ret.type = OSSH_EC;
        break;
      case "-----BEGIN OPENSSH PRIVATE KEY-----\n":
        ret.type = OSSH_PKEY;
        break;
      case "-----BEGIN ENCRYPTED PRIVATE KEY-----\n":
        ret.encrypted = true;
        ret.type = OSSH_PKCS8;
        break;
      case "-----BEGIN PRIVATE KEY-----\n":
        ret.type = OSSH_PKCS8;
        break;
      default:
        return "Unrecognised key type";
    }
    let headers_done = false;
    let body = "";
    let i = 1;
    for (;; i++) {
      if (i >= lines.length) {
        return "Unexpected end of file";
      }
      // C reads each line with fgets and then as a C string: a NUL ends the line there.
      const nul = lines[i].indexOf("\0");
      const line = nul < 0 ? lines[i] : lines[i].slice(0, nul);
      if (line.startsWith("-----END ")) {
        break;
      }
      const colon = line.indexOf(":");
      if (colon >= 0) {
        if (headers_done) {
          return "Header found in body of key data";
        }
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^[ \t\n\v\f\r]+/, "");
        if (name === "Proc-Type") {
          if (!value.startsWith("4,")) {
            return "Proc-Type is not 4 (only 4 is supported)";
          }
          if (value.slice(2) === "ENCRYPTED\n") {
            ret.encrypted = true;
          }
        } else if (name === "DEK-Info") {
          if (value.startsWith("DES-EDE3-CBC,")) {
            if (!/^[0-9a-fA-F]{16}/.test(value.slice(13))) {
              return "Expected 16-digit iv in DEK-Info";
            }
          } else if (!anyPemCipher) {
            return "Ciphers other than DES-EDE3-CBC not supported";
          }
        }
      } else {
        headers_done = true;
        body += line;
      }
    }
    if (body.length > 0) {
      const decoded = base64Decode(body);
      if (decoded === null) {
        return "Error decoding base64";
      }
      ret.keyblob = decoded;
    }
    if (ret.type === OSSH_PKEY) {
      const err = parseOsshHeader(ret, ret.keyblob);
      if (err !== null) {
        return err;
      }
    }
    if (ret.keyblob.length === 0) {
      return "Key body not present";
    }
    if (ret.encrypted && (ret.type === OSSH_RSA || ret.type === OSSH_DSA || ret.type === OSSH_EC) && ret.keyblob.length % 8 !== 0) {
      return "Encrypted key blob is not a multiple of cipher block size";
    }
    return null;
  })();
  if (errmsg !== null) {
    printError(errmsg);
    return null;
  }
  return ret;
}

/** Whether an OpenSSH key file is encrypted (false if it cannot be read). @dropbear keyimport.c openssh_encrypted */
function openssh_encrypted(filename: string): boolean {
  const key = load_openssh_key(filename, true);
  return key !== null && key.encrypted;
}

/** An OpenSSH private key cipher that we can undo: node:crypto name and sizes. */
interface OsshCipher {
  alg: string;
  keylen: number;
  ivlen: number;
  block: number;
  taglen: number;
}

/** OpenSSH's private key ciphers that we can undo, by their names in the file. */
const OSSH_CIPHERS: Record<string, OsshCipher> = {
  // Every cipher ssh-keygen -Z takes (ssh -Q cipher), 3DES too: a key file is not a transport.
  "3des-cbc": { alg: "des-ede3-cbc", keylen: 24, ivlen: 8, block: 8, taglen: 0 },
  "aes128-ctr": { alg: "aes-128-ctr", keylen: 16, ivlen: 16, block: 16, taglen: 0 },
  "aes192-ctr": { alg: "aes-192-ctr", keylen: 24, ivlen: 16, block: 16, taglen: 0 },
  "aes256-ctr": { alg: "aes-256-ctr", keylen: 32, ivlen: 16, block: 16, taglen: 0 },
  "aes128-cbc": { alg: "aes-128-cbc", keylen: 16, ivlen: 16, block: 16, taglen: 0 },
  "aes192-cbc": { alg: "aes-192-cbc", keylen: 24, ivlen: 16, block: 16, taglen: 0 },
  "aes256-cbc": { alg: "aes-256-cbc", keylen: 32, ivlen: 16, block: 16, taglen: 0 },
  "aes128-gcm@openssh.com": { alg: "aes-128-gcm", keylen: 16, ivlen: 12, block: 16, taglen: 16 },
  "aes256-gcm@openssh.com": { alg: "aes-256-gcm", keylen: 32, ivlen: 12, block: 16, taglen: 16 },
  // ssh-keygen -Z's other choice: its two 32-byte keys, no IV (opened by chachapoly_open_unframed).
  "chacha20-poly1305@openssh.com": { alg: "chacha20-poly1305@openssh.com", keylen: 64, ivlen: 0, block: 8, taglen: 16 },
};

/** AES (CTR, CBC or GCM) over an openssh-key-v1 private section; throws on a bad GCM tag. */
function decryptWith(cipher: OsshCipher, derived: Uint8Array, encrypted: Uint8Array, tag: Uint8Array): Buffer {
  const decipher = createDecipheriv(cipher.alg, derived.subarray(0, cipher.keylen), derived.subarray(cipher.keylen));
  decipher.setAutoPadding(false);
  if (cipher.taglen > 0) {
    (decipher as DecipherGCM).setAuthTag(tag);
  }
  return Buffer.concat([decipher.update(encrypted), decipher.final()]);
}

/**
 * Decrypt the private section of an encrypted openssh-key-v1 blob (OpenSSH PROTOCOL.key):
 * bcrypt_pbkdf(passphrase, salt, rounds) gives key || iv. Returns the blob with the section
 * in clear, or an error message (a wrong passphrase shows as unequal check integers).
 */
function opensshDecrypt(key: openssh_key, cipher: OsshCipher, passphrase: Uint8Array): Buffer | string {
  // Malformed KDF options or a blob cut before its lengths: the same error as a bad header,
  // not buf_getstring's "Bad buf_getptr" or "String too long" ending the program.
  let salt: Buffer;
  let rounds: number;
  let blob: buffer;
  let pubkey: Buffer;
  let enclen: number;
  try {
    const kdf = bufferOf(key.kdfoptions);
    salt = buf_getstring(kdf);
    rounds = buf_getint(kdf);
    blob = bufferOf(key.keyblob);
    pubkey = buf_getstring(blob);
    enclen = buf_getint(blob);
  } catch (e) {
    if (e instanceof DropbearExit) {
      return "Error decoding OpenSSH key";
    }
    throw e;
  }
  if (enclen % cipher.block !== 0 || blob.len - blob.pos < enclen + cipher.taglen) {
    return "Encrypted key blob is not a multiple of cipher block size";
  }
  const encrypted = blob.data.subarray(blob.pos, blob.pos + enclen);
  const tag = blob.data.subarray(blob.pos + enclen, blob.pos + enclen + cipher.taglen);

  if (rounds > MAX_BCRYPT_ROUNDS) {
    return `Too many KDF rounds (${rounds}, at most ${MAX_BCRYPT_ROUNDS}) for encrypted OpenSSH key`;
  }
  const derived = new Uint8Array(cipher.keylen + cipher.ivlen);
  if (rounds < 1 || bcrypt_pbkdf().pbkdf(passphrase, passphrase.length, salt, salt.length, derived, derived.length, rounds) !== 0) {
    return "Key derivation failed for encrypted OpenSSH key";
  }
  let plain: Buffer;
  try {
    if (cipher.alg === "chacha20-poly1305@openssh.com") {
      const opened = chachapoly_open_unframed(derived, 0, encrypted, tag);
      if (opened === null) {
        return "incorrect passphrase supplied to decrypt private key";
      }
      plain = opened;
    } else {
      plain = decryptWith(cipher, derived, encrypted, tag);
    }
  } catch {
    return "incorrect passphrase supplied to decrypt private key";
  } finally {
    derived.fill(0);
  }
  if (plain.length < 8 || plain.readUInt32BE(0) !== plain.readUInt32BE(4)) {
    plain.fill(0);
    return "incorrect passphrase supplied to decrypt private key";
  }
  const out = buf_new(4 + pubkey.length + 4 + plain.length);
  buf_putstring(out, pubkey);
  buf_putstring(out, plain);
  plain.fill(0);
  return out.data;
}

/**
 * A key from a file node:crypto can decode (PKCS#8, encrypted PEM), put through Dropbear's
 * own format and parser so it gets the same checks as every other key.
 */
function keyViaNode(text: string, passphrase: Passphrase): sign_key | string {
  let sk: sign_key | null;
  try {
    const ko = createPrivateKey({
      key: text,
      format: "pem",
      passphrase: passphrase === null || passphrase === undefined ? undefined : Buffer.from(passphrase),
    });
    sk = signkeyFromKeyObject(ko);
  } catch {
    return "unable to decode key (wrong passphrase?)";
  }
  if (sk === null) {
    return "Unsupported key type";
  }
  // A multi-prime RSA key (PKCS#8 with otherPrimeInfos, `openssl genpkey -pkeyopt
  // rsa_keygen_primes:3`): node:crypto's export gives only its first two primes, and Dropbear's
  // and OpenSSH's formats hold two, so the key written would sign wrongly under Dropbear (its
  // CRT trusts p and q) and puttygen refuses it. Refused, as the PEM form of such a key is ("Version number mismatch").
  const rsa = sk.rsakey;
  if (rsa !== null && rsa.p !== null && rsa.q !== null && rsa.p * rsa.q !== rsa.n) {
    return "RSA keys with more than two primes are not supported";
  }
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  try {
    buf_put_priv_key(buf, sk, sk.type);
    buf_setpos(buf, 0);
    const retkey = new_sign_key();
    const type = buf_get_priv_key(buf, retkey, DROPBEAR_SIGNKEY_ANY);
    if (type === null) {
      return "unable to create key structure";
    }
    retkey.type = type;
    return retkey;
  } finally {
    buf_burn_free(buf);
  }
}

/**
 * Read an OpenSSH private key: openssh-key-v1, or PEM RSA / EC (ASN.1 decoded here as Dropbear
 * does), or PKCS#8. Prints the reason and returns null on failure. @dropbear keyimport.c openssh_read
 */
function openssh_read(filename: string, passphrase: Passphrase): sign_key | null {
  // An empty answer at the prompt is a passphrase given, and wrong (none encrypts a key), not
  // the absence of one that C's "not supported" message is about.
  const given = passphrase !== null && passphrase !== undefined;
  const havePass = given && passphrase.length > 0;
  const key = load_openssh_key(filename, given);
  if (key === null) {
    return null;
  }
  const retkey = new_sign_key();
  let result: sign_key | string;
  try {
    if (key.encrypted && !havePass) {
      result = given ? "incorrect passphrase supplied to decrypt private key" : "Encrypted keys are not supported. Please convert with ssh-keygen first";
    } else if (key.type === OSSH_PKCS8 || (key.encrypted && key.type !== OSSH_PKEY)) {
      result = keyViaNode(key.text, passphrase);
    } else if (key.type === OSSH_PKEY) {
      result = readOsshKey(key, passphrase, retkey);
    } else {
      result = readAsn1Key(key, retkey);
    }
  } finally {
    key.keyblob.fill(0);
  }
  if (typeof result === "string") {
    sign_key_free(retkey);
    printError(result);
    return null;
  }
  return result;
}

/**
 * The openssh-key-v1 body (decrypted first if need be): public key, then the private section
 * (check integers, key, comment, padding). Part of openssh_read in C.
 */
function readOsshKey(key: openssh_key, passphrase: Passphrase, retkey: sign_key): sign_key | string {
  let keyblob = key.keyblob;
  if (key.cipher !== null) {
    const pass = typeof passphrase === "string" ? Buffer.from(passphrase, "utf8") : (passphrase as Uint8Array);
    const dec = opensshDecrypt(key, key.cipher, pass);
    if (typeof dec === "string") {
      return dec;
    }
    keyblob = dec;
  }
  const blobbuf = bufferOf(keyblob);
  keyblob.fill(0);
  try {
    // Length of the public key blob; the parser below finds its own end.
    buf_getint(blobbuf);
    const type = buf_get_pub_key(blobbuf, retkey, DROPBEAR_SIGNKEY_ANY);
    if (type === null) {
      return "Error parsing OpenSSH key";
    }
    buf_getint(blobbuf); // length of the private section
    buf_getint(blobbuf); // checkint 1 (compared only for encrypted files, in opensshDecrypt)
    buf_getint(blobbuf); // checkint 2
    retkey.type = type;
    if (type === DROPBEAR_SIGNKEY_RSA) {
      return buf_get_rsa_priv_ossh(blobbuf, retkey) ? retkey : "Error parsing OpenSSH RSA key";
    }
    if (type === DROPBEAR_SIGNKEY_ED25519) {
      return buf_get_ed25519_priv_ossh(blobbuf, retkey) ? retkey : "Error parsing OpenSSH ed25519 key";
    }
    if (signkey_is_ecdsa(type)) {
      return buf_get_ecdsa_priv_ossh(blobbuf, retkey) ? retkey : "Error parsing OpenSSH ecdsa key";
    }
    return "Unsupported OpenSSH key type";
  } finally {
    buf_burn_free(blobbuf);
  }
}

/**
 * The PEM body as ASN.1: a SEQUENCE of INTEGERs (RSA: version, n, e, d, p, q, dmp1, dmq1,
 * iqmp) or SEC1's ECPrivateKey. Rebuilt as a Dropbear blob so the usual parser checks it.
 * Part of openssh_read in C.
 */
function readAsn1Key(key: openssh_key, retkey: sign_key): sign_key | string {
  const blob = key.keyblob;
  const end = blob.length;
  let p = 0;
  let r = ber_read_id_len(blob, p, end - p);
  if (r === null || r.id !== 16 || r.length < 0 || end - (p + r.used) < r.length) {
    return "ASN.1 decoding failure";
  }
  p += r.used;
  const num_integers = key.type === OSSH_RSA ? 9 : key.type === OSSH_DSA ? 6 : 1;
  const blobbuf = buf_new(3000);
  try {
    if (key.type === OSSH_RSA) {
      buf_putstring(blobbuf, "ssh-rsa");
      retkey.type = DROPBEAR_SIGNKEY_RSA;
    }
    let modulus: Buffer | null = null;
    for (let i = 0; i < num_integers; i++) {
      r = ber_read_id_len(blob, p, end - p);
      if (r === null || r.id !== 2 || r.length < 0 || end - (p + r.used) < r.length) {
        return "ASN.1 decoding failure";
      }
      p += r.used;
      const value = blob.subarray(p, p + r.length);
      if (i === 0) {
        const expected = key.type === OSSH_EC ? 1 : 0;
        if (r.length !== 1 || value[0] !== expected) {
          return "Version number mismatch";
        }
      } else if (key.type === OSSH_RSA) {
        // ASN.1 order is n, e, d, p, q...; Dropbear's is e, n, d, p, q.
        if (i === 1) {
          modulus = value;
        } else if (i >= 2 && i <= 5) {
          buf_putstring(blobbuf, value);
          if (i === 2 && modulus !== null) {
            buf_putstring(blobbuf, modulus);
          }
        }
      }
      p += r.length;
    }

    if (key.type === OSSH_EC) {
      // SEC1 v2 C.4 ECPrivateKey, with the optional parts OpenSSL always writes.
      r = ber_read_id_len(blob, p, end - p);
      if (r === null || r.id !== 4 || r.length < 0 || end - (p + r.used) < r.length) {
        return "ASN.1 decoding failure";
      }
      p += r.used;
      const private_key_bytes = blob.subarray(p, p + r.length);
      p += r.length;

      // parameters [0] { namedCurve OID }
      r = ber_read_id_len(blob, p, end - p);
      if (r === null || r.id !== 0 || r.length < 0) {
        return "ASN.1 decoding failure";
      }
      p += r.used;
      r = ber_read_id_len(blob, p, end - p);
      if (r === null || r.id !== 6 || r.length < 0 || end - (p + r.used) < r.length) {
        return "ASN.1 decoding failure";
      }
      p += r.used;
      const oid = blob.subarray(p, p + r.length);
      let curve: dropbear_ecc_curve;
      if (oid.equals(OID_SEC256R1_BLOB)) {
        retkey.type = DROPBEAR_SIGNKEY_ECDSA_NISTP256;
        curve = ecc_curve_nistp256;
      } else if (oid.equals(OID_SEC384R1_BLOB)) {
        retkey.type = DROPBEAR_SIGNKEY_ECDSA_NISTP384;
        curve = ecc_curve_nistp384;
      } else if (oid.equals(OID_SEC521R1_BLOB)) {
        retkey.type = DROPBEAR_SIGNKEY_ECDSA_NISTP521;
        curve = ecc_curve_nistp521;
      } else {
        return "Unknown ECC key type";
      }
      p += r.length;

      // publicKey [1] BIT STRING (first content byte: unused bits)
      r = ber_read_id_len(blob, p, end - p);
      if (r === null || r.id !== 1 || r.length < 0) {
        return "ASN.1 decoding failure";
      }
      p += r.used;
      r = ber_read_id_len(blob, p, end - p);
      if (r === null || r.id !== 3 || r.length < 0 || end - (p + r.used) < r.length || r.length === 0) {
        return "ASN.1 decoding failure";
      }
      p += r.used;
      buf_putbytes(blobbuf, blob.subarray(p + 1, p + r.length));
      p += r.length;
      const ecc = buf_get_ecc_raw_pubkey(blobbuf, curve);
      if (ecc === null) {
        return "Error parsing ECC key";
      }
      ecc.k = bytes_to_mp(private_key_bytes);
      const member = signkey_key_ptr(retkey.type);
      if (member !== "ecckey256" && member !== "ecckey384" && member !== "ecckey521") {
        return "Unknown ECC key type";
      }
      retkey[member] = ecc;
      return retkey;
    }

    if (key.type === OSSH_DSA) {
      // DSS is not built, as in Dropbear 2026.94 by default: its integers are read (and
      // checked) as C reads them, and then, as there, no key can be made of them.
      return "unable to create key structure";
    }
    buf_setpos(blobbuf, 0);
    const type = buf_get_priv_key(blobbuf, retkey, DROPBEAR_SIGNKEY_ANY);
    if (type === null) {
      return "unable to create key structure";
    }
    return retkey;
  } finally {
    buf_burn_free(blobbuf);
  }
}

/**
 * Write an unencrypted openssh-key-v1 file (RSA, ECDSA, Ed25519) as dropbearconvert does:
 * cipher and KDF "none", one key, check integers 0, an empty comment, padding 1, 2, 3...
 * Creates the file (O_EXCL, O_NOFOLLOW, mode 0600) or writes stdout for "-".
 * @dropbear keyimport.c openssh_write
 */
function openssh_write(filename: string, key: sign_key, passphrase: Passphrase): boolean {
  const isRsa = key.type === DROPBEAR_SIGNKEY_RSA;
  const isEd = key.type === DROPBEAR_SIGNKEY_ED25519;
  const isEc = signkey_is_ecdsa(key.type);
  if (!isRsa && !isEd && !isEc) {
    tellUser("Unsupported key type for OpenSSH format\n");
    return false;
  }
  const buf = buf_new(3200);
  const keyblob = buf_new(3000);
  const extrablob = buf_new(3100);
  let outblob: Buffer | null = null;
  try {
    if (isRsa) {
      buf_put_rsa_priv_ossh(keyblob, key);
    }
    if (isEd) {
      buf_put_ed25519_priv_ossh(keyblob, key);
    }
    if (isEc) {
      buf_put_ecdsa_priv_ossh(keyblob, key);
    }
    buf_putbytes(buf, OSSH_PKEY_BLOB);
    buf_put_pub_key(buf, key, key.type);

    buf_putint(extrablob, 0); // checkint 1
    buf_putint(extrablob, 0); // checkint 2
    buf_putbytes(extrablob, keyblob.data.subarray(0, keyblob.len));
    buf_putstring(extrablob, ""); // comment
    // Pad to the 8-byte block, always at least one byte, as dropbearconvert does.
    const len = (extrablob.len + 8) & ~7;
    for (let i = 1; len - extrablob.len > 0; i++) {
      buf_putbyte(extrablob, i);
    }
    buf_putbufstring(buf, extrablob);
    outblob = Buffer.from(buf.data.subarray(0, buf.len));

    if (passphrase !== null && passphrase !== undefined) {
      tellUser("Encrypted keys aren't supported currently\n");
      return false;
    }

    const text = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64_encode_fp(outblob, 64) + "-----END OPENSSH PRIVATE KEY-----\n";
    let fd: number;
    try {
      fd =
        filename === "-"
          ? 1
          : openSync(fsPath(filename), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      tellUser(`Failed opening output file: ${strerror(err)}\n`);
      return false;
    }
    try {
      // Every byte, or the reason: a full disk (ENOSPC), a pipe closed early... C's fwrite
      // result goes unchecked; an uncaught error here ended dropbearconvert with a stack trace.
      atomicio(writeSync, fd, Buffer.from(text, "latin1"));
    } catch (err) {
      tellUser(`Failed writing output file: ${strerror(err)}\n`);
      return false;
    } finally {
      if (fd !== 1) {
        closeSync(fd);
      }
    }
    TRACE(`wrote OpenSSH key to ${filename}`);
    return true;
  } finally {
    outblob?.fill(0);
    buf_burn_free(buf);
    buf_burn_free(keyblob);
    buf_burn_free(extrablob);
  }
}
