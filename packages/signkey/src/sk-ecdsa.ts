import { createHash } from "node:crypto";
import { LOG_WARNING, TRACE, dropbear_log } from "@dropbear-ts/dbutil";
import { type buffer, buf_getbuf, buf_getbyte, buf_getint, buf_new, buf_putbyte, buf_putbytes, buf_putint, buf_putstring } from "@dropbear-ts/buffer";
import { SSH_SK_USER_PRESENCE_REQD, SSH_SK_USER_VERIFICATION_REQD } from "@dropbear-ts/options";
import { type ecc_key, buf_put_ecc_raw_pubkey_string } from "./ecc.js";
import { buf_ecdsa_verify } from "./ecdsa.js";
import { usedBytes } from "./mp.js";

/**
 * The message a FIDO authenticator signs (OpenSSH PROTOCOL.u2f): SHA-256(application) ||
 * flags || counter || SHA-256(data). Shared by both sk- key types.
 */
export function skSignedMessage(app: Uint8Array, flags: number, counter: number, data: Uint8Array): buffer {
  const sk_buffer = buf_new(2 * 32 + 5);
  buf_putbytes(sk_buffer, createHash("sha256").update(app).digest());
  buf_putbyte(sk_buffer, flags);
  buf_putint(sk_buffer, counter);
  buf_putbytes(sk_buffer, createHash("sha256").update(data).digest());
  return sk_buffer;
}

/**
 * Apply the key's flag mask after the signature check: a signature without user presence
 * (or verification) where the mask demands it fails, logged only if it had verified.
 */
export function skCheckFlags(ok: boolean, flags: number, sk_flags_mask: number): boolean {
  if (~flags & sk_flags_mask & SSH_SK_USER_PRESENCE_REQD) {
    if (ok) {
      dropbear_log(LOG_WARNING, "Rejecting, user-presence not set");
    }
    ok = false;
  }
  if (~flags & sk_flags_mask & SSH_SK_USER_VERIFICATION_REQD) {
    if (ok) {
      dropbear_log(LOG_WARNING, "Rejecting, user-verification not set");
    }
    ok = false;
  }
  return ok;
}

/** The sk-ecdsa public blob: type name, "nistp256", point, application. */
export function bufPutSkEcdsaPubKey(buf: buffer, key: ecc_key, app: Uint8Array): void {
  buf_putstring(buf, "sk-ecdsa-sha2-nistp256@openssh.com");
  buf_putstring(buf, "nistp256");
  buf_put_ecc_raw_pubkey_string(buf, key);
  buf_putstring(buf, app);
}

/**
 * Check an sk-ecdsa signature: string (mpint r, mpint s), byte flags, uint32 counter, the
 * ECDSA signature being over the authenticator's message. @dropbear sk-ecdsa.c buf_sk_ecdsa_verify
 */
export function buf_sk_ecdsa_verify(
  buf: buffer,
  key: ecc_key,
  data_buf: buffer,
  app: Uint8Array,
  sk_flags_mask: number,
): boolean {
  TRACE("buf_sk_ecdsa_verify");
  const sig_buffer = buf_getbuf(buf);
  const flags = buf_getbyte(buf);
  const counter = buf_getint(buf);
  const sk_buffer = skSignedMessage(app, flags, counter, usedBytes(data_buf));
  const ok = buf_ecdsa_verify(sig_buffer, key, sk_buffer);
  return skCheckFlags(ok, flags, sk_flags_mask);
}
