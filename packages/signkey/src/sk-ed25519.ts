import { TRACE } from "@dropbear-ts/dbutil";
import { type buffer, buf_getbyte, buf_getint, buf_getptr, buf_incrpos, buf_putstring } from "@dropbear-ts/buffer";
import { type dropbear_ed25519_key, CURVE25519_LEN, ed25519VerifyRaw } from "./ed25519.js";
import { usedBytes } from "./mp.js";
import { skCheckFlags, skSignedMessage } from "./sk-ecdsa.js";

/** The sk-ed25519 public blob: type name, public key, application. */
export function bufPutSkEd25519PubKey(buf: buffer, key: dropbear_ed25519_key, app: Uint8Array): void {
  buf_putstring(buf, "sk-ssh-ed25519@openssh.com");
  buf_putstring(buf, key.pub, CURVE25519_LEN);
  buf_putstring(buf, app);
}

/**
 * Check an sk-ed25519 signature: string sig (64 bytes), byte flags, uint32 counter, the
 * Ed25519 signature being over the authenticator's message. @dropbear sk-ed25519.c buf_sk_ed25519_verify
 */
export function buf_sk_ed25519_verify(
  buf: buffer,
  key: dropbear_ed25519_key,
  data_buf: buffer,
  app: Uint8Array,
  sk_flags_mask: number,
): boolean {
  TRACE("enter buf_sk_ed25519_verify");
  const slen = buf_getint(buf);
  if (slen !== 64 || buf.len - buf.pos < slen) {
    TRACE("leave buf_sk_ed25519_verify: bad size");
    return false;
  }
  const s = Buffer.from(buf_getptr(buf, slen));
  buf_incrpos(buf, slen);
  const flags = buf_getbyte(buf);
  const counter = buf_getint(buf);
  const sk_buffer = skSignedMessage(app, flags, counter, usedBytes(data_buf));
  const ok = ed25519VerifyRaw(key, usedBytes(sk_buffer), s);
  return skCheckFlags(ok, flags, sk_flags_mask);
}
