import { generateKeyPairSync } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DropbearExit, type LogHandler, setLogHandler } from "@dropbear-ts/dbutil";
import { buf_getbyte, buf_getint, buf_getstring, buf_new, buf_setpos } from "@dropbear-ts/buffer";
import {
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  KEYFILE_DROPBEAR,
  KEYFILE_OPENSSH,
  KEYFILE_SSHCOM,
  buf_put_sign,
  buf_verify,
  import_encrypted,
  import_read,
  import_write,
  KEYFILE_READ_MAX,
  readKeyFileText,
  type sign_key,
  signkeyGenerateKey,
  signkeyPubBlob,
} from "../src/index.js";
import { bufOf, inTempDir, sigtypeFor } from "./helpers.js";

let stderr: string[] = [];
let prevLog: LogHandler;
beforeEach(() => {
  stderr = [];
  prevLog = setLogHandler((_p, msg) => stderr.push(msg));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  setLogHandler(prevLog);
  vi.restoreAllMocks();
});

/** The two keys are the same key: same public blob, and one's signature verifies with the other. */
function expectSameKey(a: sign_key, b: sign_key): void {
  expect(b.type).toBe(a.type);
  expect(signkeyPubBlob(b).equals(signkeyPubBlob(a))).toBe(true);
  const data = bufOf("check");
  const sig = buf_new(1000);
  buf_put_sign(sig, b, sigtypeFor(b.type), data);
  buf_setpos(sig, 0);
  expect(buf_verify(sig, a, sigtypeFor(a.type), data)).toBe(true);
}

const GEN: [string, number, number][] = [
  ["ed25519", DROPBEAR_SIGNKEY_ED25519, 0],
  ["ecdsa-256", DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 256],
  ["ecdsa-384", DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 384],
  ["ecdsa-521", DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 521],
  ["rsa-1024", DROPBEAR_SIGNKEY_RSA, 1024],
];

describe.each(GEN)("%s through both file formats", (_label, type, bits) => {
  const key = signkeyGenerateKey(type, bits);

  it("Dropbear format round-trips", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "k");
      expect(import_write(file, key, null, KEYFILE_DROPBEAR)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expectSameKey(key, import_read(file, null, KEYFILE_DROPBEAR)!);
    });
  });

  it("OpenSSH format round-trips, laid out as dropbearconvert writes it", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "k");
      expect(import_write(file, key, null, KEYFILE_OPENSSH)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const text = readFileSync(file, "latin1");
      const lines = text.split("\n");
      expect(lines[0]).toBe("-----BEGIN OPENSSH PRIVATE KEY-----");
      expect(lines.at(-2)).toBe("-----END OPENSSH PRIVATE KEY-----");
      expect(lines.slice(1, -3).every((l) => l.length === 64)).toBe(true);

      const blob = bufOf(Buffer.from(lines.slice(1, -2).join(""), "base64"));
      expect(blob.data.subarray(0, 15).toString("latin1")).toBe("openssh-key-v1\0");
      blob.pos = 15;
      expect(buf_getstring(blob).toString()).toBe("none");
      expect(buf_getstring(blob).toString()).toBe("none");
      expect(buf_getstring(blob).length).toBe(0);
      expect(buf_getint(blob)).toBe(1);
      expect(buf_getstring(blob).equals(signkeyPubBlob(key))).toBe(true);
      const priv = bufOf(buf_getstring(blob));
      expect(blob.pos).toBe(blob.len);
      expect(priv.len % 8).toBe(0);
      expect(buf_getint(priv)).toBe(0);
      expect(buf_getint(priv)).toBe(0);
      // The padding at the end counts 1, 2, 3... and there is always some.
      let n = priv.data[priv.len - 1];
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(8);
      priv.pos = priv.len - n;
      for (let i = 1; n > 0; i++, n--) {
        expect(buf_getbyte(priv)).toBe(i);
      }

      expectSameKey(key, import_read(file, null, KEYFILE_OPENSSH)!);
    });
  });
});

describe("OpenSSH-format reading", () => {
  it("reads PEM RSA (PKCS#1) and EC (SEC1) keys, as Dropbear does", async () => {
    await inTempDir((dir) => {
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
      writeFileSync(join(dir, "rsa"), rsa.export({ type: "pkcs1", format: "pem" }));
      const k = import_read(join(dir, "rsa"), null, KEYFILE_OPENSSH)!;
      expect(k.type).toBe(DROPBEAR_SIGNKEY_RSA);
      expect(k.rsakey!.n.toString(16)).toBe(Buffer.from(rsa.export({ format: "jwk" }).n!, "base64url").toString("hex").replace(/^0+/, ""));
      for (const [curve, type] of [
        ["P-256", DROPBEAR_SIGNKEY_ECDSA_NISTP256],
        ["P-384", DROPBEAR_SIGNKEY_ECDSA_NISTP384],
        ["P-521", DROPBEAR_SIGNKEY_ECDSA_NISTP521],
      ] as const) {
        const ec = generateKeyPairSync("ec", { namedCurve: curve }).privateKey;
        writeFileSync(join(dir, curve), ec.export({ type: "sec1", format: "pem" }));
        const e = import_read(join(dir, curve), null, KEYFILE_OPENSSH)!;
        expect(e.type).toBe(type);
        expectSameKey(e, e);
      }
    });
  });

  it("reads PKCS#8 keys, and encrypted ones given the passphrase", async () => {
    await inTempDir((dir) => {
      const ed = generateKeyPairSync("ed25519").privateKey;
      writeFileSync(join(dir, "plain"), ed.export({ type: "pkcs8", format: "pem" }));
      expect(import_read(join(dir, "plain"), null, KEYFILE_OPENSSH)?.type).toBe(DROPBEAR_SIGNKEY_ED25519);
      expect(import_encrypted(join(dir, "plain"), KEYFILE_OPENSSH)).toBe(false);

      const ec = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
      writeFileSync(join(dir, "enc"), ec.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }));
      expect(import_encrypted(join(dir, "enc"), KEYFILE_OPENSSH)).toBe(true);
      expect(import_read(join(dir, "enc"), null, KEYFILE_OPENSSH)).toBeNull();
      expect(stderr.join("")).toContain("Encrypted keys are not supported. Please convert with ssh-keygen first");
      expect(import_read(join(dir, "enc"), "wrong", KEYFILE_OPENSSH)).toBeNull();
      expect(import_read(join(dir, "enc"), "pw", KEYFILE_OPENSSH)?.type).toBe(DROPBEAR_SIGNKEY_ECDSA_NISTP384);

      // Legacy encrypted PEM (Proc-Type/DEK-Info).
      const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
      writeFileSync(join(dir, "legacy"), rsa.export({ type: "pkcs1", format: "pem", cipher: "aes-128-cbc", passphrase: "pw" }));
      expect(import_encrypted(join(dir, "legacy"), KEYFILE_OPENSSH)).toBe(true);
      expect(import_read(join(dir, "legacy"), null, KEYFILE_OPENSSH)).toBeNull();
      expect(stderr.join("")).toContain("Ciphers other than DES-EDE3-CBC not supported");
      expect(import_read(join(dir, "legacy"), "pw", KEYFILE_OPENSSH)?.type).toBe(DROPBEAR_SIGNKEY_RSA);
    });
  });

  it("refuses RSA keys under Dropbear's minimum size, as every key load does", async () => {
    await inTempDir((dir) => {
      const rsa = generateKeyPairSync("rsa", { modulusLength: 768 }).privateKey;
      writeFileSync(join(dir, "small"), rsa.export({ type: "pkcs1", format: "pem" }));
      expect(import_read(join(dir, "small"), null, KEYFILE_OPENSSH)).toBeNull();
      expect(stderr).toContain("RSA key too short");
    });
  });

  it("prints Dropbear's errors for files it cannot use", async () => {
    await inTempDir((dir) => {
      const f = join(dir, "f");
      const cases: [string, string][] = [
        ["", "Short input"],
        ["hello\n", "Unrecognised key type"],
        ["-----BEGIN RSA PRIVATE KEY-----\nAAAA\n", "Unexpected end of file"],
        ["-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n", "Key body not present"],
        ["-----BEGIN RSA PRIVATE KEY-----\nMAMCAQA=\nX: y\n-----END RSA PRIVATE KEY-----\n", "Header found in body of key data"],
        ["-----BEGIN RSA PRIVATE KEY-----\nMAMCAQE=\n-----END RSA PRIVATE KEY-----\n", "Version number mismatch"],
        ["-----BEGIN RSA PRIVATE KEY-----\nBAA=\n-----END RSA PRIVATE KEY-----\n", "ASN.1 decoding failure"],
        ["-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "Error decoding OpenSSH key"],
        // DSA: its six integers read and checked as C reads them, then no key made of them (DSS
        // is not built, as in Dropbear's default build).
        ["-----BEGIN DSA PRIVATE KEY-----\nMBICAQACAQECAQICAQMCAQQCAQU=\n-----END DSA PRIVATE KEY-----\n", "unable to create key structure"],
        ["-----BEGIN DSA PRIVATE KEY-----\nMBICAQECAQECAQICAQMCAQQCAQU=\n-----END DSA PRIVATE KEY-----\n", "Version number mismatch"],
      ];
      for (const [text, msg] of cases) {
        writeFileSync(f, text);
        stderr = [];
        expect(import_read(f, null, KEYFILE_OPENSSH)).toBeNull();
        expect(stderr.join("")).toBe(`Error: ${msg}\n`);
      }
      expect(import_read(join(dir, "missing"), null, KEYFILE_OPENSSH)).toBeNull();
      expect(import_read(join(dir, "missing"), null, KEYFILE_DROPBEAR)).toBeNull();
      expect(import_read(f, null, KEYFILE_SSHCOM)).toBeNull();
    });
  });

  it("reads at most KEYFILE_READ_MAX of a file: /dev/zero and a header followed by 3 MiB of zeros fail at once", async () => {
    expect(readKeyFileText("/dev/zero")).toHaveLength(KEYFILE_READ_MAX);
    stderr = [];
    expect(import_read("/dev/zero", null, KEYFILE_OPENSSH)).toBeNull();
    expect(stderr.join("")).toBe("Error: Unrecognised key type\n");
    await inTempDir((dir) => {
      const f = join(dir, "big");
      writeFileSync(f, Buffer.concat([Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\n"), Buffer.alloc(3 << 20)]));
      stderr = [];
      expect(import_read(f, null, KEYFILE_OPENSSH)).toBeNull();
      expect(stderr.join("")).toBe("Error: Unexpected end of file\n");
    });
  });

  /**
   * A new key written in OpenSSH's format in `dir`: its lines, its decoded body, and a writer of
   * files with another body (re-encoded on one line) or another first body line.
   */
  function writtenOpenssh(dir: string, type: number, bits: number) {
    const key = signkeyGenerateKey(type, bits);
    expect(import_write(join(dir, "k"), key, null, KEYFILE_OPENSSH)).toBe(true);
    const lines = readFileSync(join(dir, "k"), "latin1").split("\n");
    const blob = Buffer.from(lines.slice(1, -2).join(""), "base64");
    const withBody = (name: string, body: Buffer): string => {
      writeFileSync(join(dir, name), `${lines[0]}\n${body.toString("base64")}\n${lines.at(-2)}\n`);
      return join(dir, name);
    };
    const withLine1 = (name: string, line: string): string => {
      writeFileSync(join(dir, name), [lines[0], line, ...lines.slice(2)].join("\n"));
      return join(dir, name);
    };
    return { key, lines, blob, withBody, withLine1 };
  }

  it("exits cleanly on a truncated openssh-key-v1 body", async () => {
    await inTempDir((dir) => {
      const { blob, withBody } = writtenOpenssh(dir, DROPBEAR_SIGNKEY_ED25519, 0);
      const cut = withBody("cut", blob.subarray(0, blob.length - 60));
      expect(() => import_read(cut, null, KEYFILE_OPENSSH)).toThrow(DropbearExit);
    });
  });

  it("an openssh-key-v1 header cut short anywhere is 'Error decoding OpenSSH key', as in C (not 'Bad buf_getptr')", async () => {
    await inTempDir((dir) => {
      const { blob, withBody } = writtenOpenssh(dir, DROPBEAR_SIGNKEY_ED25519, 0);
      // The magic (15 bytes), "none", "none", "" and the key count end at byte 39.
      for (let len = 1; len < 39; len++) {
        stderr = [];
        expect(import_read(withBody(`cut${len}`, blob.subarray(0, len)), null, KEYFILE_OPENSSH), `${len}`).toBeNull();
        expect(stderr.join(""), `${len}`).toBe("Error: Error decoding OpenSSH key\n");
      }
      // A cipher name that is neither "none" nor one we can undo (a corrupted "none", or one
      // naming an Object property), or a KDF other than bcrypt: a damaged header, as C has it,
      // not an encrypted key.
      const header = (cipher: string, kdf: string) =>
        Buffer.concat([blob.subarray(0, 15), ...[cipher, kdf].map((f) => Buffer.concat([Buffer.from([0, 0, 0, f.length]), Buffer.from(f)])), blob.subarray(15 + 8 + 8)]);
      for (const [cipher, kdf] of [["nonx", "none"], ["nonx", "bcrypt"], ["constructor", "bcrypt"], ["aes256-ctr", "none"]]) {
        stderr = [];
        const file = withBody(`c-${cipher}-${kdf}`, header(cipher!, kdf!));
        expect(import_encrypted(file, KEYFILE_OPENSSH), cipher).toBe(false);
        expect(import_read(file, Buffer.from("pass"), KEYFILE_OPENSSH), cipher).toBeNull();
        expect(stderr.join(""), cipher).toBe("Error: Error decoding OpenSSH key\nError: Error decoding OpenSSH key\n");
      }
      // An encrypted header whose field length runs past the end.
      const bad = Buffer.concat([blob.subarray(0, 15), Buffer.from([0, 0, 0, 10]), Buffer.from("aes256-ctr"), Buffer.from([0xff, 0xff, 0xff, 0xf0])]);
      stderr = [];
      expect(import_read(withBody("long", bad), null, KEYFILE_OPENSSH)).toBeNull();
      expect(stderr.join("")).toBe("Error: Error decoding OpenSSH key\n");
    });
  });

  it("a 'Proc-Type: 4,ENCRYPTED' line over a clear openssh-key-v1 body is C's 'Encrypted keys are not supported'", async () => {
    await inTempDir((dir) => {
      const { lines } = writtenOpenssh(dir, DROPBEAR_SIGNKEY_ED25519, 0);
      const file = join(dir, "proc");
      writeFileSync(file, [lines[0], "Proc-Type: 4,ENCRYPTED", "", ...lines.slice(1)].join("\n"));
      stderr = [];
      expect(import_encrypted(file, KEYFILE_OPENSSH)).toBe(false);
      expect(import_read(file, Buffer.from("pass"), KEYFILE_OPENSSH)).toBeNull();
      const msg = "Error: Encrypted keys are not supported. Please convert with ssh-keygen first\n";
      expect(stderr.join("")).toBe(msg + msg);
    });
  });

  it("ends a line at a NUL, as C's fgets and strlen do", async () => {
    await inTempDir((dir) => {
      const { key, lines, withLine1 } = writtenOpenssh(dir, DROPBEAR_SIGNKEY_ED25519, 0);
      expectSameKey(import_read(withLine1("tail", `${lines[1]}\0AAAA`), null, KEYFILE_OPENSSH)!, key);
      // Cut inside "openssh-key-v1" (the body's first 20 characters).
      const cut = withLine1("cut", `${lines[1].slice(0, 10)}\0${lines[1].slice(10)}`);
      stderr = [];
      expect(import_read(cut, null, KEYFILE_OPENSSH)).toBeNull();
      expect(stderr.join("")).toBe("Error: Error decoding OpenSSH key\n");
    });
  });

  it("checks only the curve part of an ECDSA private section's key name, as buf_get_ecdsa_pub_key does", async () => {
    await inTempDir((dir) => {
      const { key, blob, withBody } = writtenOpenssh(dir, DROPBEAR_SIGNKEY_ECDSA_NISTP384, 384);
      const name = Buffer.from("ecdsa-sha2-nistp384");
      // The second copy of the name opens the private section.
      const at = blob.indexOf(name, blob.indexOf(name) + 1);
      const prefix = Buffer.from(blob);
      prefix.write("XXXXXX", at, "latin1");
      expectSameKey(import_read(withBody("prefix", prefix), null, KEYFILE_OPENSSH)!, key);
      const curve = Buffer.from(blob);
      curve.write("XX", at + name.length - 2, "latin1");
      expect(import_read(withBody("curve", curve), null, KEYFILE_OPENSSH)).toBeNull();
    });
  });
});

describe("import_write", () => {
  it("never replaces a file, and refuses passphrases as dropbearconvert does", async () => {
    await inTempDir((dir) => {
      const key = signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0);
      const file = join(dir, "k");
      writeFileSync(file, "precious");
      expect(import_write(file, key, null, KEYFILE_OPENSSH)).toBe(false);
      expect(stderr.join("")).toContain("Failed opening output file: File exists");
      expect(import_write(file, key, null, KEYFILE_DROPBEAR)).toBe(false);
      expect(readFileSync(file, "utf8")).toBe("precious");
      expect(import_write(join(dir, "k2"), key, "secret", KEYFILE_OPENSSH)).toBe(false);
      expect(stderr.join("")).toContain("Encrypted keys aren't supported currently");
    });
  });

  it("ends on an RSA key whose p is 1 and writes nothing, as mp_invmod refuses a modulus of 1", async () => {
    await inTempDir((dir) => {
      const key = signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1024);
      key.rsakey!.q = key.rsakey!.n;
      key.rsakey!.p = 1n;
      const file = join(dir, "k");
      expect(() => import_write(file, key, null, KEYFILE_OPENSSH)).toThrow(DropbearExit);
      expect(() => import_write(file, key, null, KEYFILE_OPENSSH)).toThrow(/Bignum error for iqmp/);
      expect(() => statSync(file)).toThrow();
    });
  });
});
