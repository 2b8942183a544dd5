import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type buffer, buf_new, buf_putbytes, buf_setpos } from "@dropbear-ts/buffer";
import {
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNKEY_RSA,
  type signature_type,
  type signkey_type,
  signature_type_from_signkey,
} from "../src/index.js";

/** A buffer holding `bytes`, position 0. */
export function bufOf(bytes: Uint8Array | string): buffer {
  const b = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  const buf = buf_new(b.length);
  buf_putbytes(buf, b);
  buf_setpos(buf, 0);
  return buf;
}

/** The signature type a key of `type` makes by default (rsa-sha2-256 for RSA). */
export function sigtypeFor(type: signkey_type): signature_type {
  return type === DROPBEAR_SIGNKEY_RSA ? DROPBEAR_SIGNATURE_RSA_SHA256 : signature_type_from_signkey(type);
}

/** Run `fn` in a fresh temporary directory, removed afterwards. */
export async function inTempDir<T>(fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "signkey-test-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
