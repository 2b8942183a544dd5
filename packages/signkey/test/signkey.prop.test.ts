import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { fuzzParams } from "../../../tests/helpers/fuzz.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DropbearExit, type LogHandler, setLogHandler } from "@dropbear-ts/dbutil";
import { buf_new, buf_putbufstring, buf_putbytes, buf_putint, buf_putmpint, buf_putstring, buf_setpos } from "@dropbear-ts/buffer";
import {
  DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_SK_ED25519,
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  KEYFILE_OPENSSH,
  buf_get_priv_key,
  buf_get_pub_key,
  buf_verify,
  import_read,
  new_sign_key,
  parsePubLine,
  type sign_key,
  signature_name_from_type,
  signkeyGenerateKey,
  signkey_name_from_type,
} from "../src/index.js";
import { bufOf, inTempDir, sigtypeFor } from "./helpers.js";

let prevLog: LogHandler;
beforeAll(() => {
  prevLog = setLogHandler(() => {});
});
afterAll(() => {
  setLogHandler(prevLog);
});

/** Run `fn`; anything it throws must be a DropbearExit (a clean session exit). */
function onlyDropbearExit(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DropbearExit)) {
      throw e;
    }
  }
}

const NAMES = [0, 1, 2, 3, 4, 5, 6].map((t) => signkey_name_from_type(t));

/** Bytes that start like a key blob (a real type name) then go random, to reach the codecs. */
const blobLike = fc.tuple(fc.constantFrom(...NAMES), fc.uint8Array({ maxLength: 300 })).map(([name, rest]) => {
  const b = buf_new(4 + name.length + rest.length);
  buf_putstring(b, name);
  buf_putbytes(b, rest);
  return b.data;
});

/** Mpint-ish and string-ish fields after a name: lengths that are often in range. */
const fieldsLike = fc
  .tuple(fc.constantFrom(...NAMES), fc.array(fc.uint8Array({ maxLength: 140 }), { maxLength: 5 }))
  .map(([name, fields]) => {
    const b = buf_new(4 + name.length + fields.reduce((n, f) => n + 4 + f.length, 0));
    buf_putstring(b, name);
    for (const f of fields) {
      buf_putstring(b, f);
    }
    return b.data;
  });

const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 400 }), blobLike, fieldsLike);

describe("parsers never fail with anything but DropbearExit", () => {
  it("buf_get_pub_key", () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        onlyDropbearExit(() => {
          const key = new_sign_key();
          const type = buf_get_pub_key(bufOf(bytes), key, DROPBEAR_SIGNKEY_ANY);
          if (type !== null) {
            expect(type).toBeLessThan(7);
          }
        });
      }),
      fuzzParams(3000),
    );
  });

  it("buf_get_priv_key", () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        onlyDropbearExit(() => buf_get_priv_key(bufOf(bytes), new_sign_key(), DROPBEAR_SIGNKEY_ANY));
      }),
      fuzzParams(3000),
    );
  });

  it("parsePubLine never throws", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), anyBytes.map((b) => `${NAMES[b.length % 7]} ${Buffer.from(b).toString("base64")} c`)), (line) => {
        parsePubLine(line);
      }),
      fuzzParams(2000),
    );
  });
});

describe("buf_verify on hostile signature blobs", () => {
  const keys: sign_key[] = [
    signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0),
    signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 256),
    signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 521),
    signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1024),
  ];
  const data = bufOf("data");

  for (const key of keys) {
    const sigtype = sigtypeFor(key.type);
    const name = signature_name_from_type(sigtype);
    it(`${name}: random bytes, and random bodies after the right name`, () => {
      const body = fc.uint8Array({ maxLength: 300 }).map((rest) => {
        const b = buf_new(8 + name.length + rest.length);
        buf_putint(b, 4 + name.length + rest.length);
        buf_putstring(b, name);
        buf_putbytes(b, rest);
        return b.data;
      });
      const stringBody = fc.array(fc.uint8Array({ maxLength: 140 }), { maxLength: 3 }).map((fields) => {
        const b = buf_new(8 + name.length + fields.reduce((n, f) => n + 4 + f.length, 0));
        buf_putint(b, 0);
        buf_putstring(b, name);
        for (const f of fields) {
          buf_putstring(b, f);
        }
        return b.data;
      });
      // Well-formed shapes with random contents, so the checks reach node:crypto.
      const sigLen = key.type === DROPBEAR_SIGNKEY_RSA ? 128 : 64;
      const rightShape = fc.tuple(fc.uint8Array({ minLength: sigLen, maxLength: sigLen }), fc.bigInt({ min: 0n, max: 1n << 528n })).map(([raw, big]) => {
        const b = buf_new(1000);
        buf_putint(b, 0);
        buf_putstring(b, name);
        if (key.type === DROPBEAR_SIGNKEY_RSA || key.type === DROPBEAR_SIGNKEY_ED25519) {
          buf_putstring(b, raw);
        } else {
          const inner = buf_new(300);
          buf_putmpint(inner, BigInt("0x" + Buffer.from(raw).toString("hex")));
          buf_putmpint(inner, big);
          buf_putbufstring(b, inner);
        }
        return b.data.subarray(0, b.len);
      });
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), body, stringBody, rightShape), (bytes) => {
          onlyDropbearExit(() => {
            expect(buf_verify(bufOf(bytes), key, sigtype, data)).toBe(false);
          });
        }),
        fuzzParams(1500),
      );
    });
  }

  it("sk- signatures: random bodies never verify and never crash", () => {
    // Build real sk keys from the plain ones' public parts.
    const ed = keys[0];
    const ec = keys[1];
    const edBlob = buf_new(200);
    buf_putstring(edBlob, "sk-ssh-ed25519@openssh.com");
    buf_putstring(edBlob, ed.ed25519key!.pub);
    buf_putstring(edBlob, "ssh:");
    buf_setpos(edBlob, 0);
    const skEd = new_sign_key();
    skEd.type = buf_get_pub_key(edBlob, skEd, DROPBEAR_SIGNKEY_ANY)!;
    const ecBlob = buf_new(200);
    buf_putstring(ecBlob, "sk-ecdsa-sha2-nistp256@openssh.com");
    buf_putstring(ecBlob, "nistp256");
    const pt = Buffer.alloc(65);
    pt[0] = 4;
    Buffer.from(ec.ecckey256!.x.toString(16).padStart(64, "0"), "hex").copy(pt, 1);
    Buffer.from(ec.ecckey256!.y.toString(16).padStart(64, "0"), "hex").copy(pt, 33);
    buf_putstring(ecBlob, pt);
    buf_putstring(ecBlob, "ssh:");
    buf_setpos(ecBlob, 0);
    const skEc = new_sign_key();
    skEc.type = buf_get_pub_key(ecBlob, skEc, DROPBEAR_SIGNKEY_ANY)!;
    for (const [key, sigtype] of [
      [skEd, DROPBEAR_SIGNATURE_SK_ED25519],
      [skEc, DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256],
    ] as const) {
      const name = signature_name_from_type(sigtype);
      const body = fc.uint8Array({ maxLength: 200 }).map((rest) => {
        const b = buf_new(8 + name.length + rest.length);
        buf_putint(b, 0);
        buf_putstring(b, name);
        buf_putbytes(b, rest);
        return b.data;
      });
      fc.assert(
        fc.property(body, (bytes) => {
          onlyDropbearExit(() => {
            expect(buf_verify(bufOf(bytes), key, sigtype, data)).toBe(false);
          });
        }),
        fuzzParams(1000),
      );
    }
  });
});

describe("import_read on hostile OpenSSH files", () => {
  it("returns null or exits cleanly", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      await inTempDir((dir) => {
        const file = join(dir, "k");
        const labels = ["OPENSSH PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "DSA PRIVATE KEY"];
        const magic = Buffer.from("openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none\0\0\0\0\0\0\0\x01", "latin1");
        fc.assert(
          fc.property(fc.constantFrom(...labels), fc.boolean(), fc.uint8Array({ maxLength: 400 }), (label, withMagic, body) => {
            const blob = withMagic && label.startsWith("OPENSSH") ? Buffer.concat([magic, body]) : Buffer.from(body);
            const b64 = blob.toString("base64").replace(/(.{64})/g, "$1\n");
            writeFileSync(file, `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`);
            onlyDropbearExit(() => import_read(file, null, KEYFILE_OPENSSH));
          }),
          fuzzParams(500),
        );
      });
    } finally {
      stderr.mockRestore();
      stdout.mockRestore();
    }
  });
});
