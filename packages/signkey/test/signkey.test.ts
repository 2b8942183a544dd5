import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DropbearExit, type LogHandler, setLogHandler } from "@dropbear-ts/dbutil";
import {
  type buffer,
  buf_getint,
  buf_getstring,
  buf_new,
  buf_putbufstring,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_putmpint,
  buf_putstring,
  buf_setpos,
} from "@dropbear-ts/buffer";
import { SSH_SK_USER_PRESENCE_REQD, SSH_SK_USER_VERIFICATION_REQD } from "@dropbear-ts/options";
import {
  DROPBEAR_SIGNATURE_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_ED25519,
  DROPBEAR_SIGNATURE_NONE,
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNATURE_RSA_SHA512,
  DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_SK_ED25519,
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_NONE,
  DROPBEAR_SIGNKEY_RSA,
  DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_SK_ED25519,
  base64Decode,
  buf_get_priv_key,
  buf_get_pub_key,
  buf_put_priv_key,
  buf_put_pub_key,
  buf_put_sign,
  buf_verify,
  cmp_base64_key,
  dropbear_ecc_curves,
  dropbear_ecc_shared_secret,
  eccPointBytes,
  gen_ecdsa_priv_key,
  new_sign_key,
  parsePubLine,
  type sign_key,
  sign_key_fingerprint,
  signature_name_from_type,
  signature_type_from_name,
  signature_type_from_signkey,
  signkeyFingerprint,
  signkeyFromKeyObject,
  signkeyGenerateKey,
  signkeyPrivateProblem,
  signkeyPubBlob,
  signkeyPubLine,
  signkey_name_from_type,
  type signkey_type,
  type signature_type,
  signkey_type_from_name,
  signkey_type_from_signature,
} from "../src/index.js";
import { bufOf, sigtypeFor } from "./helpers.js";

let logged: string[] = [];
let prevLog: LogHandler;
beforeEach(() => {
  logged = [];
  prevLog = setLogHandler((_p, msg) => logged.push(msg));
});
afterEach(() => {
  setLogHandler(prevLog);
});

/** Serialise the private key, read it back: the key as a Dropbear key file would give it. */
function privRoundTrip(key: sign_key): sign_key {
  const buf = buf_new(2000);
  buf_put_priv_key(buf, key, key.type);
  buf_setpos(buf, 0);
  const out = new_sign_key();
  const type = buf_get_priv_key(buf, out, DROPBEAR_SIGNKEY_ANY);
  expect(type).toBe(key.type);
  expect(buf.pos).toBe(buf.len);
  out.type = type!;
  return out;
}

/** The public half alone, parsed from its wire blob. */
function pubOnly(key: sign_key): sign_key {
  const out = new_sign_key();
  const type = buf_get_pub_key(bufOf(signkeyPubBlob(key)), out, DROPBEAR_SIGNKEY_ANY);
  expect(type).toBe(key.type);
  out.type = type!;
  return out;
}

function signBlob(key: sign_key, sigtype: signature_type, data: buffer): buffer {
  const sig = buf_new(1000);
  buf_put_sign(sig, key, sigtype, data);
  buf_setpos(sig, 0);
  return sig;
}

const KEYS: [string, signkey_type, number][] = [
  ["ed25519", DROPBEAR_SIGNKEY_ED25519, 256],
  ["ecdsa-256", DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256],
  ["ecdsa-384", DROPBEAR_SIGNKEY_ECDSA_NISTP384, 384],
  ["ecdsa-521", DROPBEAR_SIGNKEY_ECDSA_NISTP521, 521],
  ["rsa-2048", DROPBEAR_SIGNKEY_RSA, 2048],
];

// A fixed key made by ssh-keygen; dropbearconvert wrote the Dropbear form and both tools
// printed this public line and fingerprint.
const FIXED_DROPBEAR_ED25519 =
  "0000000b7373682d65643235353139000000406ac4d041104840d7e85d2b6817fec2bb75cea046af1c366c9585fb415357661f8a949762e7a2a8ebeed42fb1e4bd02505c9bec6b077168636c36226535f85a74";
const FIXED_ED25519_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqUl2Lnoqjr7tQvseS9AlBcm+xrB3FoY2w2ImU1+Fp0";
const FIXED_ED25519_FP = "SHA256:S0tx9Sm/0PPw5x5heQxVHvmzyBzUNjTGe/nrjfWbWuc";
const FIXED_ECDSA_LINE =
  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFs919KfwzkXrCMkoPRtYP6u4keqjWV9BP0y+lnaTNsDUghFNe1M0kKKcvZLy95hFPR+TZavgrNfXLSg8qG3z5M=";
const FIXED_ECDSA_FP = "SHA256:12LijHpqHYCsqYbX3Tp+JfEpPE1w0MKETy52x+AtrBc";

describe("names and types", () => {
  it("maps every key name both ways", () => {
    for (const [name, type] of [
      ["ssh-rsa", DROPBEAR_SIGNKEY_RSA],
      ["ecdsa-sha2-nistp256", DROPBEAR_SIGNKEY_ECDSA_NISTP256],
      ["ecdsa-sha2-nistp384", DROPBEAR_SIGNKEY_ECDSA_NISTP384],
      ["ecdsa-sha2-nistp521", DROPBEAR_SIGNKEY_ECDSA_NISTP521],
      ["sk-ecdsa-sha2-nistp256@openssh.com", DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256],
      ["ssh-ed25519", DROPBEAR_SIGNKEY_ED25519],
      ["sk-ssh-ed25519@openssh.com", DROPBEAR_SIGNKEY_SK_ED25519],
    ] as const) {
      expect(signkey_type_from_name(name)).toBe(type);
      expect(signkey_type_from_name(Buffer.from(name))).toBe(type);
      expect(signkey_name_from_type(type)).toBe(name);
    }
    expect(signkey_type_from_name("ssh-dss")).toBe(DROPBEAR_SIGNKEY_NONE);
    expect(signkey_type_from_name("ssh-ed25519\0")).toBe(DROPBEAR_SIGNKEY_NONE);
    expect(() => signkey_name_from_type(DROPBEAR_SIGNKEY_ANY)).toThrow(DropbearExit);
    expect(() => signkey_name_from_type(-1)).toThrow(DropbearExit);
  });

  it("maps signature names as Dropbear does, SHA-1 RSA off", () => {
    expect(signature_type_from_name("rsa-sha2-256")).toBe(DROPBEAR_SIGNATURE_RSA_SHA256);
    expect(signature_type_from_name("rsa-sha2-512")).toBe(DROPBEAR_SIGNATURE_RSA_SHA512);
    // No SHA-1: "ssh-rsa" falls through to the key table, giving the RSA key type's value.
    expect(signature_type_from_name("ssh-rsa")).toBe(DROPBEAR_SIGNKEY_RSA);
    expect(signature_type_from_name("ssh-ed25519")).toBe(DROPBEAR_SIGNATURE_ED25519);
    expect(signature_type_from_name("nope")).toBe(DROPBEAR_SIGNATURE_NONE);
    expect(signature_name_from_type(DROPBEAR_SIGNATURE_RSA_SHA256)).toBe("rsa-sha2-256");
    expect(signature_name_from_type(DROPBEAR_SIGNATURE_RSA_SHA512)).toBe("rsa-sha2-512");
    expect(signature_name_from_type(DROPBEAR_SIGNATURE_ECDSA_NISTP256)).toBe("ecdsa-sha2-nistp256");
    expect(() => signature_name_from_type(100)).toThrow(DropbearExit);
    expect(signkey_type_from_signature(DROPBEAR_SIGNATURE_RSA_SHA256)).toBe(DROPBEAR_SIGNKEY_RSA);
    expect(signkey_type_from_signature(DROPBEAR_SIGNATURE_SK_ED25519)).toBe(DROPBEAR_SIGNKEY_SK_ED25519);
    expect(signature_type_from_signkey(DROPBEAR_SIGNKEY_ED25519)).toBe(DROPBEAR_SIGNATURE_ED25519);
    expect(() => signature_type_from_signkey(DROPBEAR_SIGNKEY_RSA)).toThrow(DropbearExit);
    expect(() => signkey_type_from_signature(DROPBEAR_SIGNATURE_NONE)).toThrow(DropbearExit);
  });
});

describe.each(KEYS)("%s key", (_label, type, bits) => {
  const key = signkeyGenerateKey(type === DROPBEAR_SIGNKEY_RSA || type === DROPBEAR_SIGNKEY_ED25519 ? type : DROPBEAR_SIGNKEY_ECDSA_KEYGEN, bits);
  const data = bufOf("exchange hash or userauth blob");

  it("generates the type asked for and round-trips the private format", () => {
    expect(key.type).toBe(type);
    const again = privRoundTrip(key);
    expect(signkeyPubBlob(again).equals(signkeyPubBlob(key))).toBe(true);
    expect(signkeyFingerprint(again)).toBe(signkeyFingerprint(key));
    expect(signkeyFingerprint(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it("signs after reloading and verifies with the public half only", () => {
    const sigtype = sigtypeFor(type);
    const sig = signBlob(privRoundTrip(key), sigtype, data);
    expect(buf_verify(sig, pubOnly(key), sigtype, data)).toBe(true);
    // The blob names the signature type.
    buf_setpos(sig, 4);
    expect(buf_getstring(sig).toString()).toBe(signature_name_from_type(sigtype));
  });

  it("rejects tampered data and tampered signatures", () => {
    const sigtype = sigtypeFor(type);
    const sig = signBlob(key, sigtype, data);
    expect(buf_verify(sig, pubOnly(key), sigtype, bufOf("exchange hash or userauth blob!"))).toBe(false);
    for (const back of [1, 20]) {
      // Each signature has its own length (mpints vary), so count from its own end.
      const bad = signBlob(key, sigtype, data);
      bad.data[bad.len - back] ^= 0x01;
      expect(buf_verify(bad, pubOnly(key), sigtype, data)).toBe(false);
    }
  });

  it("rejects a signature by another key of the same type", () => {
    const other = signkeyGenerateKey(key.type === DROPBEAR_SIGNKEY_RSA ? DROPBEAR_SIGNKEY_RSA : key.type === DROPBEAR_SIGNKEY_ED25519 ? key.type : DROPBEAR_SIGNKEY_ECDSA_KEYGEN, bits);
    const sigtype = sigtypeFor(type);
    expect(buf_verify(signBlob(other, sigtype, data), pubOnly(key), sigtype, data)).toBe(false);
  });

  it("exits on a signature of another type than expected", () => {
    const sigtype = sigtypeFor(type);
    const wrong = type === DROPBEAR_SIGNKEY_ED25519 ? DROPBEAR_SIGNATURE_ECDSA_NISTP256 : DROPBEAR_SIGNATURE_ED25519;
    expect(() => buf_verify(signBlob(key, sigtype, data), pubOnly(key), wrong, data)).toThrow("Non-matching signing type");
  });

  it("will not sign a type the key cannot make", () => {
    const wrong = type === DROPBEAR_SIGNKEY_ED25519 ? DROPBEAR_SIGNATURE_ECDSA_NISTP256 : DROPBEAR_SIGNATURE_ED25519;
    expect(() => signBlob(key, wrong, data)).toThrow("Non-matching signing type");
  });

  it("refuses the blob when another type is asked for", () => {
    const wrong = type === DROPBEAR_SIGNKEY_ED25519 ? DROPBEAR_SIGNKEY_RSA : DROPBEAR_SIGNKEY_ED25519;
    expect(buf_get_pub_key(bufOf(signkeyPubBlob(key)), new_sign_key(), wrong)).toBeNull();
    expect(buf_get_pub_key(bufOf(signkeyPubBlob(key)), new_sign_key(), type)).toBe(type);
  });

  it("parses its own public line", () => {
    const line = signkeyPubLine(key, key.type, "me@host");
    const parsed = parsePubLine(line);
    expect(parsed?.type).toBe(type);
    expect(parsed?.comment).toBe("me@host");
    expect(signkeyPubLine(parsed!.key)).toBe(line.replace(/ me@host$/, ""));
  });
});

describe("RSA specifics", () => {
  const key = signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1024);
  const data = bufOf("data");

  it("makes and checks rsa-sha2-512 signatures too", () => {
    const sig = signBlob(key, DROPBEAR_SIGNATURE_RSA_SHA512, data);
    expect(buf_verify(sig, pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA512, data)).toBe(true);
    buf_setpos(sig, 0);
    expect(() => buf_verify(sig, pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA256, data)).toThrow(DropbearExit);
  });

  it("exits on ssh-rsa (SHA-1) signatures, which are not built", () => {
    const sig = buf_new(600);
    buf_putint(sig, 0);
    buf_putstring(sig, "ssh-rsa");
    buf_putint(sig, 128);
    buf_putbytes(sig, Buffer.alloc(128, 1));
    buf_setpos(sig, 0);
    const sigtype = signature_type_from_name("ssh-rsa");
    expect(() => buf_verify(sig, pubOnly(key), sigtype, data)).toThrow(DropbearExit);
  });

  it("pads signatures to the modulus length", () => {
    // Across many signatures some s values have a leading zero byte; all must be 128 bytes.
    for (let i = 0; i < 20; i++) {
      const d = bufOf(`data ${i}`);
      const sig = signBlob(key, DROPBEAR_SIGNATURE_RSA_SHA256, d);
      buf_getint(sig);
      buf_getstring(sig);
      expect(buf_getint(sig)).toBe(128);
      expect(buf_verify(signBlob(key, DROPBEAR_SIGNATURE_RSA_SHA256, d), pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA256, d)).toBe(true);
    }
  });

  it("refuses moduli under 1024 bits and exponents over 64 bits", () => {
    const blob = (e: bigint, n: bigint) => {
      const b = buf_new(600);
      buf_putstring(b, "ssh-rsa");
      buf_putmpint(b, e);
      buf_putmpint(b, n);
      buf_setpos(b, 0);
      return b;
    };
    const n1024 = key.rsakey!.n;
    expect(buf_get_pub_key(blob(65537n, n1024), new_sign_key(), DROPBEAR_SIGNKEY_RSA)).toBe(DROPBEAR_SIGNKEY_RSA);
    expect(buf_get_pub_key(blob(65537n, n1024 >> 1n), new_sign_key(), DROPBEAR_SIGNKEY_RSA)).toBeNull();
    expect(logged).toContain("RSA key too short");
    expect(buf_get_pub_key(blob(1n << 64n, n1024), new_sign_key(), DROPBEAR_SIGNKEY_RSA)).toBeNull();
    expect(logged).toContain("RSA key bad e");
    // A negative mpint is a failure, not an exit.
    const neg = buf_new(600);
    buf_putstring(neg, "ssh-rsa");
    buf_putstring(neg, Buffer.from([0x80]));
    buf_setpos(neg, 0);
    expect(buf_get_pub_key(neg, new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
  });

  it("exits on the pre-0.33 private format without p and q", () => {
    const b = buf_new(2000);
    buf_put_priv_key(b, key, DROPBEAR_SIGNKEY_RSA);
    // Cut after d: drop p and q.
    const r = key.rsakey!;
    const tail = buf_new(1000);
    buf_putmpint(tail, r.p!);
    buf_putmpint(tail, r.q!);
    b.len -= tail.len;
    buf_setpos(b, 0);
    expect(() => buf_get_priv_key(b, new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toThrow("RSA key format is ancient");
  });

  it("rejects a signature longer than the modulus without reading further", () => {
    const sig = buf_new(600);
    buf_putint(sig, 0);
    buf_putstring(sig, "rsa-sha2-256");
    buf_putint(sig, 129);
    buf_putbytes(sig, Buffer.alloc(129, 0));
    buf_setpos(sig, 0);
    expect(buf_verify(sig, pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA256, data)).toBe(false);
  });

  it("takes a signature with its leading zero bytes dropped, as PuTTY 0.78 sends one in 256", () => {
    // Find data whose signature starts with a zero byte (expected within a few hundred tries).
    let d = data;
    let s: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 5000 && s[0] !== 0; i++) {
      d = bufOf(`data ${i}`);
      const sig = signBlob(key, DROPBEAR_SIGNATURE_RSA_SHA256, d);
      buf_getint(sig);
      buf_getstring(sig);
      s = buf_getstring(sig);
    }
    expect(s[0]).toBe(0);
    const short = s.subarray(s.findIndex((b) => b !== 0));
    const sig = buf_new(600);
    buf_putint(sig, 0);
    buf_putstring(sig, "rsa-sha2-256");
    buf_putstring(sig, short);
    buf_setpos(sig, 0);
    expect(buf_verify(sig, pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA256, d)).toBe(true);
    // Cut one byte more and it is another number.
    const cut = buf_new(600);
    buf_putint(cut, 0);
    buf_putstring(cut, "rsa-sha2-256");
    buf_putstring(cut, short.subarray(1));
    buf_setpos(cut, 0);
    expect(buf_verify(cut, pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA256, d)).toBe(false);
  });

  it("refuses a good signature behind a length field that is not its own", () => {
    const blob = signBlob(key, DROPBEAR_SIGNATURE_RSA_SHA256, data);
    buf_getint(blob);
    buf_getstring(blob);
    const s = buf_getstring(blob);
    const withLen = (len: number, bytes: Buffer): boolean => {
      const sig = buf_new(600);
      buf_putint(sig, 0);
      buf_putstring(sig, "rsa-sha2-256");
      buf_putint(sig, len);
      buf_putbytes(sig, bytes);
      buf_setpos(sig, 0);
      return buf_verify(sig, pubOnly(key), DROPBEAR_SIGNATURE_RSA_SHA256, data);
    };
    expect(withLen(s.length, s)).toBe(true);
    expect(withLen(0, s)).toBe(false);
    expect(withLen(s.length - 1, s)).toBe(false);
    expect(withLen(s.length, Buffer.concat([s, Buffer.of(0)]))).toBe(false);
    expect(withLen(s.length, s.subarray(1))).toBe(false);
  });
});

describe("signkeyPrivateProblem", () => {
  it("passes every generated key, and keys with no private numbers", () => {
    for (const [, type, bits] of KEYS) {
      const key = signkeyGenerateKey(type, bits);
      expect(signkeyPrivateProblem(privRoundTrip(key))).toBeNull();
      expect(signkeyPrivateProblem(pubOnly(key))).toBeNull();
    }
  });

  it("names RSA primes that give no key", () => {
    const key = privRoundTrip(signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1024));
    key.rsakey!.q = key.rsakey!.p;
    expect(signkeyPrivateProblem(key)).toBe("ssh-rsa: bad RSA primes");
  });

  it.each([
    ["zero", () => 0n],
    ["the order", (n: bigint) => n],
    ["above the order", (n: bigint, k: bigint) => k + n],
  ])("names an EC private value of %s", (_what, value) => {
    const key = privRoundTrip(signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256));
    const eck = key.ecckey256!;
    eck.k = value(eck.dp.order, eck.k!);
    expect(signkeyPrivateProblem(key)).toBe("ecdsa-sha2-nistp256: private value out of range");
  });
});

describe("ECDSA and ECC specifics", () => {
  it("uses OpenSSL's curve parameters", () => {
    const names = { nistp256: "prime256v1", nistp384: "secp384r1", nistp521: "secp521r1" } as const;
    for (const curve of dropbear_ecc_curves) {
      let der: Buffer;
      try {
        der = execFileSync("openssl", ["ecparam", "-name", names[curve.name], "-param_enc", "explicit", "-outform", "DER"]);
      } catch {
        return; // no openssl binary: the signature tests still cover the constants
      }
      const hex = der.toString("hex");
      for (const v of [curve.dp.prime, curve.dp.B, curve.dp.order]) {
        expect(hex).toContain(v.toString(16).padStart(curve.dp.size * 2, "0"));
      }
    }
  });

  it("refuses points off the curve, compressed points and mismatched names", () => {
    const eck = gen_ecdsa_priv_key(256);
    const blob = (ident: string, curve: string, point: Uint8Array) => {
      const b = buf_new(600);
      buf_putstring(b, ident);
      buf_putstring(b, curve);
      buf_putstring(b, point);
      buf_setpos(b, 0);
      return b;
    };
    const good = eccPointBytes(eck);
    expect(buf_get_pub_key(blob("ecdsa-sha2-nistp256", "nistp256", good), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBe(DROPBEAR_SIGNKEY_ECDSA_NISTP256);
    const off = Buffer.from(good);
    off[off.length - 1] ^= 1;
    expect(buf_get_pub_key(blob("ecdsa-sha2-nistp256", "nistp256", off), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
    const compressed = Buffer.concat([Buffer.from([2]), good.subarray(1, 33)]);
    expect(buf_get_pub_key(blob("ecdsa-sha2-nistp256", "nistp256", compressed), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
    expect(logged).toContain("Dropbear doesn't support ECC point compression");
    expect(buf_get_pub_key(blob("ecdsa-sha2-nistp256", "nistp384", good), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
    expect(buf_get_pub_key(blob("ecdsa-sha2-nistp384", "nistp384", good), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
    const zero = Buffer.alloc(65);
    zero[0] = 4;
    expect(buf_get_pub_key(blob("ecdsa-sha2-nistp256", "nistp256", zero), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
    expect(() => buf_get_pub_key(blob("ecdsa-sha2-nistp256", "nistp256", Buffer.alloc(0)), new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toThrow(DropbearExit);
  });

  it("rejects r or s out of range and trailing bytes in the signature", () => {
    const key = signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256);
    const data = bufOf("x");
    const n = key.ecckey256!.dp.order;
    const forge = (r: bigint, s: bigint, extra = 0) => {
      const inner = buf_new(200);
      buf_putmpint(inner, r);
      buf_putmpint(inner, s);
      const b = buf_new(400);
      buf_putint(b, 0);
      buf_putstring(b, "ecdsa-sha2-nistp256");
      buf_putint(b, inner.len + extra);
      buf_putbytes(b, inner.data.subarray(0, inner.len));
      buf_putbytes(b, Buffer.alloc(extra));
      buf_setpos(b, 0);
      return b;
    };
    expect(buf_verify(forge(0n, 1n), key, DROPBEAR_SIGNATURE_ECDSA_NISTP256, data)).toBe(false);
    expect(buf_verify(forge(1n, n), key, DROPBEAR_SIGNATURE_ECDSA_NISTP256, data)).toBe(false);
    expect(buf_verify(forge(n, 1n), key, DROPBEAR_SIGNATURE_ECDSA_NISTP256, data)).toBe(false);
    expect(buf_verify(forge(5n, 7n, 1), key, DROPBEAR_SIGNATURE_ECDSA_NISTP256, data)).toBe(false);
  });

  it("computes the same ECDH secret from both sides", () => {
    for (const bits of [256, 384, 521]) {
      const a = gen_ecdsa_priv_key(bits);
      const b = gen_ecdsa_priv_key(bits);
      expect(dropbear_ecc_shared_secret(a, b)).toBe(dropbear_ecc_shared_secret(b, a));
    }
    expect(() => dropbear_ecc_shared_secret(gen_ecdsa_priv_key(256), gen_ecdsa_priv_key(384))).toThrow("ECC error");
  });
});

describe("Ed25519 specifics", () => {
  it("reads a fixed Dropbear key: public line and fingerprint match ssh-keygen's", () => {
    const key = new_sign_key();
    const type = buf_get_priv_key(bufOf(Buffer.from(FIXED_DROPBEAR_ED25519, "hex")), key, DROPBEAR_SIGNKEY_ANY);
    expect(type).toBe(DROPBEAR_SIGNKEY_ED25519);
    key.type = type!;
    expect(signkeyPubLine(key)).toBe(FIXED_ED25519_LINE);
    expect(signkeyFingerprint(key)).toBe(FIXED_ED25519_FP);
  });

  it("signs the RFC 8032 test vector", () => {
    const key = new_sign_key();
    const b = buf_new(100);
    buf_putstring(b, "ssh-ed25519");
    buf_putstring(
      b,
      Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex"),
    );
    buf_setpos(b, 0);
    key.type = buf_get_priv_key(b, key, DROPBEAR_SIGNKEY_ED25519)!;
    const sig = signBlob(key, DROPBEAR_SIGNATURE_ED25519, buf_new(0));
    buf_getint(sig);
    buf_getstring(sig);
    expect(buf_getstring(sig).toString("hex")).toBe(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
  });

  it("refuses a public key of the wrong length and a short signature", () => {
    const b = buf_new(100);
    buf_putstring(b, "ssh-ed25519");
    buf_putstring(b, Buffer.alloc(31));
    buf_setpos(b, 0);
    expect(buf_get_pub_key(b, new_sign_key(), DROPBEAR_SIGNKEY_ANY)).toBeNull();
    const key = signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0);
    const sig = buf_new(100);
    buf_putint(sig, 0);
    buf_putstring(sig, "ssh-ed25519");
    buf_putstring(sig, Buffer.alloc(63));
    buf_setpos(sig, 0);
    expect(buf_verify(sig, key, DROPBEAR_SIGNATURE_ED25519, bufOf("x"))).toBe(false);
  });
});

describe("sk- keys (verify only)", () => {
  const app = Buffer.from("ssh:");
  const data = bufOf("userauth request");

  function skMessage(flags: number, counter: number, appHashOf: Uint8Array = app): Buffer {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    return Buffer.concat([
      createHash("sha256").update(appHashOf).digest(),
      Buffer.from([flags]),
      c,
      createHash("sha256").update(data.data.subarray(0, data.len)).digest(),
    ]);
  }

  function skEcdsa() {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const plain = signkeyFromKeyObject(publicKey)!;
    const blob = buf_new(600);
    buf_putstring(blob, "sk-ecdsa-sha2-nistp256@openssh.com");
    buf_putstring(blob, "nistp256");
    buf_putstring(blob, eccPointBytes(plain.ecckey256!));
    buf_putstring(blob, app);
    buf_setpos(blob, 0);
    const key = new_sign_key();
    key.type = buf_get_pub_key(blob, key, DROPBEAR_SIGNKEY_ANY)!;
    const sign_ = (flags: number, counter: number, appHashOf?: Uint8Array) => {
      const rs = sign("sha256", skMessage(flags, counter, appHashOf), { key: privateKey, dsaEncoding: "ieee-p1363" });
      const inner = buf_new(200);
      buf_putmpint(inner, BigInt("0x" + rs.subarray(0, 32).toString("hex")));
      buf_putmpint(inner, BigInt("0x" + rs.subarray(32).toString("hex")));
      const body = buf_new(400);
      buf_putstring(body, "sk-ecdsa-sha2-nistp256@openssh.com");
      buf_putbufstring(body, inner);
      buf_putbyte(body, flags);
      buf_putint(body, counter);
      const out = buf_new(500);
      buf_putbufstring(out, body);
      buf_setpos(out, 0);
      return out;
    };
    return { key, blob, sign: sign_ };
  }

  function skEd25519() {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const plain = signkeyFromKeyObject(publicKey)!;
    const blob = buf_new(600);
    buf_putstring(blob, "sk-ssh-ed25519@openssh.com");
    buf_putstring(blob, plain.ed25519key!.pub);
    buf_putstring(blob, app);
    buf_setpos(blob, 0);
    const key = new_sign_key();
    key.type = buf_get_pub_key(blob, key, DROPBEAR_SIGNKEY_ANY)!;
    const sign_ = (flags: number, counter: number, appHashOf?: Uint8Array) => {
      const s = sign(null, skMessage(flags, counter, appHashOf), privateKey);
      const body = buf_new(400);
      buf_putstring(body, "sk-ssh-ed25519@openssh.com");
      buf_putstring(body, s);
      buf_putbyte(body, flags);
      buf_putint(body, counter);
      const out = buf_new(500);
      buf_putbufstring(out, body);
      buf_setpos(out, 0);
      return out;
    };
    return { key, blob, sign: sign_ };
  }

  for (const [label, make, sigtype, keytype] of [
    ["sk-ecdsa", skEcdsa, DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256, DROPBEAR_SIGNKEY_SK_ECDSA_NISTP256],
    ["sk-ed25519", skEd25519, DROPBEAR_SIGNATURE_SK_ED25519, DROPBEAR_SIGNKEY_SK_ED25519],
  ] as const) {
    it(`${label}: reads the key with its application and checks flags, counter and app`, () => {
      const { key, blob, sign: skSign } = make();
      expect(key.type).toBe(keytype);
      expect(key.sk_app?.toString()).toBe("ssh:");
      expect(signkeyPubBlob(key).equals(blob.data.subarray(0, blob.len))).toBe(true);
      expect(buf_verify(skSign(SSH_SK_USER_PRESENCE_REQD, 7), key, sigtype, data)).toBe(true);
      // Wrong application hashed by the "authenticator".
      expect(buf_verify(skSign(SSH_SK_USER_PRESENCE_REQD, 7, Buffer.from("evil:")), key, sigtype, data)).toBe(false);
      // Tampered counter.
      const t = skSign(SSH_SK_USER_PRESENCE_REQD, 7);
      t.data[t.len - 1] ^= 1;
      expect(buf_verify(t, key, sigtype, data)).toBe(false);
      // Presence not asserted: fine with an empty mask, refused when the mask wants it.
      expect(buf_verify(skSign(0, 8), key, sigtype, data)).toBe(true);
      key.sk_flags_mask = SSH_SK_USER_PRESENCE_REQD;
      expect(buf_verify(skSign(0, 8), key, sigtype, data)).toBe(false);
      expect(logged).toContain("Rejecting, user-presence not set");
      key.sk_flags_mask |= SSH_SK_USER_VERIFICATION_REQD;
      expect(buf_verify(skSign(SSH_SK_USER_PRESENCE_REQD, 9), key, sigtype, data)).toBe(false);
      expect(logged).toContain("Rejecting, user-verification not set");
      expect(buf_verify(skSign(SSH_SK_USER_PRESENCE_REQD | SSH_SK_USER_VERIFICATION_REQD, 9), key, sigtype, data)).toBe(true);
    });

    it(`${label}: cannot sign, has no private form`, () => {
      const { key } = make();
      expect(() => signBlob(key, sigtype, data)).toThrow("Non-matching signing type");
      expect(() => buf_put_priv_key(buf_new(1000), key, keytype)).toThrow(DropbearExit);
    });
  }
});

describe("fingerprints, key lines, cmp_base64_key", () => {
  it("fingerprints fixed keys as ssh-keygen -l does", () => {
    for (const [line, fp] of [
      [FIXED_ED25519_LINE, FIXED_ED25519_FP],
      [FIXED_ECDSA_LINE, FIXED_ECDSA_FP],
    ]) {
      const parsed = parsePubLine(`${line} a comment`)!;
      expect(sign_key_fingerprint(parsed.blob)).toBe(fp);
      expect(signkeyFingerprint(parsed.key)).toBe(fp);
      expect(signkeyPubLine(parsed.key, parsed.type, "a comment")).toBe(`${line} a comment`);
    }
  });

  it("parsePubLine refuses bad lines without throwing", () => {
    expect(parsePubLine("")).toBeNull();
    expect(parsePubLine("ssh-ed25519")).toBeNull();
    expect(parsePubLine("ssh-foo AAAA")).toBeNull();
    expect(parsePubLine("ssh-ed25519 !!!!")).toBeNull();
    expect(parsePubLine(FIXED_ED25519_LINE.replace("ssh-ed25519 ", "ecdsa-sha2-nistp256 "))).toBeNull();
    expect(parsePubLine(FIXED_ED25519_LINE.slice(0, -8))).toBeNull();
  });

  it("cmp_base64_key compares blob and algorithm name, and reports the line's fingerprint", () => {
    const parsed = parsePubLine(FIXED_ED25519_LINE)!;
    const b64 = FIXED_ED25519_LINE.split(" ")[1];
    const fp = { value: null as string | null };
    expect(cmp_base64_key(parsed.blob, "ssh-ed25519", bufOf(b64), fp)).toBe(true);
    expect(fp.value).toBe(FIXED_ED25519_FP);
    expect(cmp_base64_key(parsed.blob, "ssh-rsa", bufOf(b64))).toBe(false);
    const other = parsePubLine(FIXED_ECDSA_LINE)!;
    fp.value = null;
    expect(cmp_base64_key(other.blob, "ecdsa-sha2-nistp256", bufOf(b64), fp)).toBe(false);
    expect(fp.value).toBe(FIXED_ED25519_FP);
    expect(cmp_base64_key(parsed.blob, "ssh-ed25519", bufOf(""))).toBe(false);
    expect(cmp_base64_key(parsed.blob, "ssh-ed25519", bufOf("A"))).toBe(false);
    // Positioned mid-line, as the callers leave it.
    const line = bufOf(`host.example ${b64}`);
    line.pos = "host.example ".length;
    expect(cmp_base64_key(parsed.blob, "ssh-ed25519", line)).toBe(true);
  });

  it("decodes base64 as libtomcrypt's relaxed decoder does", () => {
    expect(base64Decode("aGVsbG8=")?.toString()).toBe("hello");
    expect(base64Decode("aGVs\nbG8")?.toString()).toBe("hello");
    expect(base64Decode("aG=Vsb*G8")?.toString()).toBe("hello");
    // '=' is skipped anywhere, so decoding goes on after it; a lone trailing digit fails.
    expect(base64Decode("aGVsbG8=A")?.toString("hex")).toBe(Buffer.from("hello\0").toString("hex"));
    expect(base64Decode("aGVsbG8=AB")).toBeNull();
    expect(base64Decode("")?.length).toBe(0);
  });

  it("buf_put_pub_key wraps the blob in a string", () => {
    const key = parsePubLine(FIXED_ED25519_LINE)!.key;
    const b = buf_new(200);
    buf_put_pub_key(b, key, DROPBEAR_SIGNKEY_ED25519);
    buf_setpos(b, 0);
    expect(buf_getstring(b).equals(signkeyPubBlob(key))).toBe(true);
    expect(() => buf_put_pub_key(buf_new(200), key, DROPBEAR_SIGNKEY_RSA)).toThrow("Bad key types in buf_put_pub_key");
  });
});

describe("key generation sizes", () => {
  it("exits with Dropbear's messages on bad sizes", () => {
    expect(() => signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 255)).toThrow("Ed25519 keys have a fixed size of 256 bits");
    expect(() => signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 512)).toThrow("Key size 512 isn't valid. Try 256 384 521 ");
    expect(() => signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1028)).toThrow("Bits must satisfy 512 <= bits <= 4096, and be a multiple of 8");
    expect(() => signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 8192)).toThrow(DropbearExit);
    expect(() => signkeyGenerateKey(DROPBEAR_SIGNKEY_SK_ED25519, 0)).toThrow("Internal error");
  });

  it("picks the curve from the size for DROPBEAR_SIGNKEY_ECDSA_KEYGEN", () => {
    expect(signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 0).type).toBe(DROPBEAR_SIGNKEY_ECDSA_NISTP256);
    expect(signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 521).type).toBe(DROPBEAR_SIGNKEY_ECDSA_NISTP521);
  });
});
