import { buf_getbool, buf_getstring } from "@dropbear-ts/buffer";
import { AUTH_TYPE_PASSWORD, type SvrSession } from "@dropbear-ts/core";
import { LOG_NOTICE, LOG_WARNING, constant_time_memcmp, dropbear_log, m_burn } from "@dropbear-ts/dbutil";
import { DROPBEAR_MAX_PASSWORD_LEN } from "@dropbear-ts/options";
import { crypt } from "./libc.js";
import { send_msg_userauth_failure, send_msg_userauth_success, svrAuthDecide } from "./svr-auth.js";

/**
 * Compare two strings: 0 when equal. The time depends only on the length, and unequal lengths
 * return at once; that leaks nothing here since crypt hashes of one method have one length.
 * @dropbear svr-authpasswd.c constant_time_strcmp
 */
export function constant_time_strcmp(a: string | Uint8Array, b: string | Uint8Array): number {
  const ba = typeof a === "string" ? Buffer.from(a, "utf8") : a;
  const bb = typeof b === "string" ? Buffer.from(b, "utf8") : b;
  if (ba.length !== bb.length) {
    return 1;
  }
  return constant_time_memcmp(ba, bb, ba.length);
}

/**
 * The "password" method: crypt the offered password with the stored hash's method and salt
 * and compare. Password changes are not supported; the password is never logged and is
 * wiped once hashed. @dropbear svr-authpasswd.c svr_auth_password
 */
export function svr_auth_password(ses: SvrSession, valid_user: boolean): void {
  const svr_ses = ses.svr_ses;
  const a = ses.authstate;
  const payload = ses.payload!;

  const changepw = buf_getbool(payload);
  if (changepw) {
    send_msg_userauth_failure(ses, false, true);
    return;
  }

  const password = buf_getstring(payload);
  const passwordlen = password.length;
  const embed = svr_ses.embed;
  if (embed !== null) {
    // The embedding program checks it (beyond Dropbear); the buffers are wiped all the same.
    const answer = valid_user && passwordlen <= DROPBEAR_MAX_PASSWORD_LEN && embed.checkpassword(ses, Buffer.from(password));
    m_burn(password);
    payload.data.fill(0, payload.pos - passwordlen, payload.pos);
    svrAuthDecide(ses, answer, (ok) => passwordChecked(ses, ok));
    return;
  }
  let passwdcrypt: string | null = null;
  let testcrypt: string | null = null;
  // Hash only what a C string holds (up to a NUL) and only up to the length cap, so a huge
  // password cannot make the hashing time reveal that the user exists.
  if (valid_user && passwordlen <= DROPBEAR_MAX_PASSWORD_LEN) {
    passwdcrypt = a.pw_passwd ?? "!!";
    testcrypt = crypt(password, passwdcrypt);
  }
  m_burn(password);
  // The packet buffer holds the password too.
  payload.data.fill(0, payload.pos - passwordlen, payload.pos);

  // Invalid users were logged by checkusername; answer only after reading the packet.
  if (!valid_user) {
    send_msg_userauth_failure(ses, false, true);
    return;
  }

  if (passwordlen > DROPBEAR_MAX_PASSWORD_LEN) {
    dropbear_log(LOG_WARNING, `Too-long password attempt for '${a.pw_name}' from ${svr_ses.addrstring}`);
    send_msg_userauth_failure(ses, false, true);
    return;
  }

  // Dropbear logs "User account '%s' is locked" where crypt() returns NULL. libxcrypt's crypt()
  // returns a failure token instead (see crypt()), so, as with Dropbear on Linux, a locked
  // account simply fails the comparison below.
  if (passwdcrypt === "") {
    dropbear_log(LOG_WARNING, `User '${a.pw_name}' has blank password, rejected`);
    send_msg_userauth_failure(ses, false, true);
    return;
  }

  passwordChecked(ses, constant_time_strcmp(testcrypt!, passwdcrypt!) === 0);
}

/** The end of svr_auth_password: success (or the next method with -t), or a delayed failure. */
function passwordChecked(ses: SvrSession, ok: boolean): void {
  const svr_ses = ses.svr_ses;
  const a = ses.authstate;
  if (ok) {
    if (svr_ses.svr_opts.multiauthmethod && a.authtypes & ~AUTH_TYPE_PASSWORD) {
      dropbear_log(
        LOG_NOTICE,
        `Password auth succeeded for '${a.pw_name}' from ${svr_ses.addrstring}, extra auth required`,
      );
      a.authtypes &= ~AUTH_TYPE_PASSWORD;
      send_msg_userauth_failure(ses, true, false);
    } else {
      dropbear_log(LOG_NOTICE, `Password auth succeeded for '${a.pw_name}' from ${svr_ses.addrstring}`);
      send_msg_userauth_success(ses);
    }
  } else {
    dropbear_log(LOG_WARNING, `Bad password attempt for '${a.pw_name}' from ${svr_ses.addrstring}`);
    send_msg_userauth_failure(ses, false, true);
  }
}
