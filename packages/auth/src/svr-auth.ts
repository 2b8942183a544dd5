import { isUtf8 } from "node:buffer";
import { closeSync } from "node:fs";
import { buf_getstring, buf_putbyte, buf_putbytes, buf_putstring, buf_setlen, buf_setpos, buf_new } from "@dropbear-ts/buffer";
import {
  AUTH_METHOD_NONE,
  AUTH_METHOD_PASSWORD,
  AUTH_METHOD_PUBKEY,
  AUTH_TYPE_PASSWORD,
  AUTH_TYPE_PUBKEY,
  AuthState,
  MAX_USERNAME_LEN,
  type AuthDelay,
  type HeldRequest,
  type SvrSession,
} from "@dropbear-ts/core";
import { genrandom } from "@dropbear-ts/crypto";
import { LOG_ERR, LOG_NOTICE, LOG_WARNING, TRACE, dropbear_assert, dropbear_exit, dropbear_log, getgrnam_gid, gettime_wrapper, isempty, malloc_trim } from "@dropbear-ts/dbutil";
import {
  DROPBEAR_NGROUP_MAX,
  DROPBEAR_SVR_DROP_PRIVS,
  DROPBEAR_SVR_MULTIUSER,
  DROPBEAR_SVR_PASSWORD_AUTH,
  DROPBEAR_SVR_PUBKEY_AUTH,
  SSH_MSG_USERAUTH_BANNER,
  SSH_MSG_USERAUTH_FAILURE,
  SSH_MSG_USERAUTH_SUCCESS,
  SSH_SERVICE_CONNECTION,
} from "@dropbear-ts/options";
import { encrypt_packet, write_packet } from "@dropbear-ts/packet";
import { fill_passwd, get_user_shell_path } from "./common-session.passwd.js";
import { getgrouplist, getpwnam, getusershells, setresgid } from "./libc.js";
import { svr_auth_password } from "./svr-authpasswd.js";
import { svr_auth_pubkey } from "./svr-authpubkey.js";

// Dropbear sleeps 250-350 ms inside send_msg_userauth_failure. A Node process serves its
// sessions from one event loop, so the sleep becomes a timer: the FAILURE payload is held, and
// when the timer fires it is encrypted, failcount grows, and the session loop is woken through
// ses.signal_pipe to write it. Until then ses.readheld keeps the loop from reading the
// transport, as nothing is read while C sleeps: what the peer sends meanwhile (a pipelined
// request, a CHANNEL_OPEN behind the right password) is handled after the FAILURE, in order.
// A fatal outcome of the delay ("Max auth tries reached") leaves reading held and is raised by
// svrAuthCheckDelayed() from the server's loop handler, inside the session loop, never from the
// timer.

/**
 * Bind the C library calls authentication makes (koffi and libc are loaded then) and make one
 * passwd, one shells and one group-list lookup, so NSS has read its configuration and loaded
 * every module the group database names (initgroups asks them all, where a passwd lookup stops
 * at the first that knows the user: with Debian's "files systemd" that was 0.9 of initgroups'
 * 2 ms at login): for the spare connection process, before it has a client to wait on them.
 * Looks up root, who always exists.
 */
export function svrAuthWarmUp(): void {
  getpwnam("root");
  getusershells();
  getgrouplist("root", 0, DROPBEAR_NGROUP_MAX);
}

/** Reset the auth state for a new session: publickey, plus password unless -s. @dropbear svr-auth.c svr_authinitialise */
export function svr_authinitialise(ses: SvrSession): void {
  svrAuthCleanup(ses);
  ses.authstate = new AuthState();
  if (DROPBEAR_SVR_PUBKEY_AUTH) {
    ses.authstate.authtypes |= AUTH_TYPE_PUBKEY;
  }
  if (DROPBEAR_SVR_PASSWORD_AUTH && !ses.svr_ses.svr_opts.noauthpass) {
    ses.authstate.authtypes |= AUTH_TYPE_PASSWORD;
  }
}

/** Send the -b banner text (language "en"). @dropbear svr-auth.c send_msg_userauth_banner */
export function send_msg_userauth_banner(ses: SvrSession, banner: Uint8Array): void {
  TRACE("enter send_msg_userauth_banner");
  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_BANNER);
  buf_putstring(ses.writepayload, banner);
  buf_putstring(ses.writepayload, "en");
  encrypt_packet(ses);
  TRACE("leave send_msg_userauth_banner");
}

/** Whether two byte strings hold the same text (C's length check plus strncmp). */
function nameIs(name: Buffer, expect: string): boolean {
  return name.equals(Buffer.from(expect, "latin1"));
}

/**
 * Handle SSH_MSG_USERAUTH_REQUEST: check the service and user, then hand the method to its
 * checker, which answers with success or failure. @dropbear svr-auth.c recv_msg_userauth_request
 */
export function recv_msg_userauth_request(ses: SvrSession): void {
  TRACE("enter recv_msg_userauth_request");
  dropbear_assert(ses.svr_ses.authdelay === null, "no request read during the failure delay");
  const svr_ses = ses.svr_ses;
  const svr_opts = svr_ses.svr_opts;
  const payload = ses.payload!;
  ses.authstate.auth_starttime = gettime_wrapper();

  if (ses.authstate.authdone) {
    TRACE("leave recv_msg_userauth_request: authdone already");
    return;
  }

  if (svr_opts.banner !== null && !svr_ses.banner_sent) {
    send_msg_userauth_banner(ses, svr_opts.banner);
    svr_ses.banner_sent = true;
  }

  const username = buf_getstring(payload);
  const servicename = buf_getstring(payload);
  const methodname = buf_getstring(payload);

  if (!nameIs(servicename, SSH_SERVICE_CONNECTION)) {
    dropbear_exit("unknown service in auth");
  }

  // The failure delay (incrfail) is chosen per method so timing does not tell which users exist.
  const valid_user = checkusername(ses, username);

  if (nameIs(methodname, AUTH_METHOD_NONE)) {
    TRACE("recv_msg_userauth_request: 'none' request");
    const embed = svr_ses.embed;
    if (embed !== null) {
      svrAuthDecide(ses, valid_user && embed.checknone(ses), (ok) => {
        if (ok) {
          dropbear_log(LOG_NOTICE, `Auth succeeded with method none for '${ses.authstate.pw_name}' from ${svr_ses.addrstring}`);
          send_msg_userauth_success(ses);
        } else {
          send_msg_userauth_failure(ses, false, false);
        }
      });
      return;
    }
    if (
      valid_user &&
      svr_opts.allowblankpass &&
      !svr_opts.noauthpass &&
      !(svr_opts.norootpass && ses.authstate.pw_uid === 0) &&
      ses.authstate.pw_passwd === ""
    ) {
      dropbear_log(LOG_NOTICE, `Auth succeeded with blank password for '${ses.authstate.pw_name}' from ${svr_ses.addrstring}`);
      send_msg_userauth_success(ses);
    } else {
      // 'none' is how clients ask for the method list: no delay.
      send_msg_userauth_failure(ses, false, false);
    }
    return;
  }

  if (DROPBEAR_SVR_PASSWORD_AUTH && !svr_opts.noauthpass && !(svr_opts.norootpass && ses.authstate.pw_uid === 0)) {
    if (nameIs(methodname, AUTH_METHOD_PASSWORD)) {
      svr_auth_password(ses, valid_user);
      return;
    }
  }

  if (DROPBEAR_SVR_PUBKEY_AUTH && nameIs(methodname, AUTH_METHOD_PUBKEY)) {
    svr_auth_pubkey(ses, valid_user);
    return;
  }

  send_msg_userauth_failure(ses, false, true);
}

/** Whether the user's groups (getgrouplist) include check_gid. @dropbear svr-auth.c check_group_membership */
function check_group_membership(check_gid: number, username: string, user_gid: number): boolean {
  let grouplist: number[] | null = null;
  for (let ngroups = 32; ngroups <= DROPBEAR_NGROUP_MAX; ngroups *= 2) {
    grouplist = getgrouplist(username, user_gid, ngroups);
    if (grouplist !== null) {
      break;
    }
  }
  if (grouplist === null) {
    dropbear_log(LOG_ERR, `Too many groups for user '${username}'`);
    return false;
  }
  return grouplist.includes(check_gid);
}

/**
 * Whether the requested user may log in at all: exists, is the first name asked for, passes
 * -w and -G, and has a shell listed by getusershell(). A failure is remembered so repeated
 * requests do not repeat the log line. Fatal for a NUL in the name or a changed name.
 * @dropbear svr-auth.c checkusername
 */
export function checkusername(ses: SvrSession, username: Buffer): boolean {
  TRACE("enter checkusername");
  const svr_ses = ses.svr_ses;
  const svr_opts = svr_ses.svr_opts;
  const a = ses.authstate;
  if (username.length > MAX_USERNAME_LEN) {
    return false;
  }
  if (username.includes(0)) {
    dropbear_exit("Attempted username with a null byte");
  }
  const name = username.toString("utf8");
  const embed = svr_ses.embed;
  if (a.username_sent === null) {
    // The C library gets names as UTF-8 strings through koffi: a name whose bytes are not UTF-8
    // could only be looked up as other bytes, so it names no account.
    if (!isUtf8(username)) {
      TRACE("checkusername: name is not UTF-8");
    } else if (embed !== null) {
      embed.fill_passwd(ses, name);
    } else {
      fill_passwd(ses, name);
    }
    a.username = name;
    a.username_sent = Buffer.from(username);
  } else if (!username.equals(a.username_sent)) {
    dropbear_exit("Client trying multiple usernames");
  }

  if (a.checkusername_failed) {
    TRACE("checkusername: returning cached failure");
    return false;
  }

  if (a.pw_name === null) {
    TRACE(`leave checkusername: user '${name}' doesn't exist`);
    dropbear_log(LOG_WARNING, `Login attempt for nonexistent user from ${svr_ses.addrstring}`);
    a.checkusername_failed = true;
    return false;
  }

  // An embedding program has no system accounts: its callbacks decide per method.
  if (embed !== null) {
    TRACE("leave checkusername: embedded");
    return true;
  }

  // A server not running as root can only let its own user in.
  const uid = process.geteuid!();
  if (!(DROPBEAR_SVR_MULTIUSER && uid === 0) && uid !== a.pw_uid) {
    TRACE("running as nonroot, only server uid is allowed");
    dropbear_log(LOG_WARNING, `Login attempt with wrong user ${a.pw_name} from ${svr_ses.addrstring}`);
    a.checkusername_failed = true;
    return false;
  }

  if (svr_opts.norootlogin && a.pw_uid === 0) {
    TRACE("leave checkusername: root login disabled");
    dropbear_log(LOG_WARNING, "root login rejected");
    a.checkusername_failed = true;
    return false;
  }

  if (svr_opts.restrict_group !== null) {
    if (!check_group_membership(svr_opts.restrict_group_gid, a.pw_name, a.pw_gid)) {
      dropbear_log(
        LOG_WARNING,
        `Logins are restricted to the group ${svr_opts.restrict_group} but user '${a.pw_name}' is not a member`,
      );
      a.checkusername_failed = true;
      return false;
    }
  }

  TRACE(`shell is ${a.pw_shell}`);
  // passwd(5): an empty shell means /bin/sh.
  const usershell = get_user_shell_path(ses);
  if (!getusershells().some((s) => s.equals(usershell))) {
    TRACE("no matching shell");
    a.checkusername_failed = true;
    dropbear_log(LOG_WARNING, `User '${a.pw_name}' has invalid shell, rejected`);
    return false;
  }
  // Beyond C, which reads no expiry date: an account past the one shadow(5) gives it (`chage
  // -E`, `usermod -e 1`, the way to shut an account to key logins too) is refused for every
  // method, as pam_unix's account check makes Debian's sshd refuse it (docs/deviations.md):
  // from that day on, in UTC days since 1970 as pam_unix counts them.
  if (a.sp_expire !== -1 && Math.floor(Date.now() / 86_400_000) >= a.sp_expire) {
    TRACE("leave checkusername: account expired");
    a.checkusername_failed = true;
    dropbear_log(LOG_WARNING, `User account '${a.pw_name}' has expired, rejected`);
    return false;
  }
  TRACE(`uid = ${a.pw_uid}`);
  TRACE("leave checkusername");
  return true;
}

/**
 * Answer with USERAUTH_FAILURE: the methods still open and the partial-success flag. With
 * `incrfail` the answer is delayed to 250-350 ms after the request arrived (so timing does not
 * tell valid users or good keys apart, and guessing is slow) and counts towards -T; too many
 * failures end the session. @dropbear svr-auth.c send_msg_userauth_failure
 */
export function send_msg_userauth_failure(ses: SvrSession, partial: boolean, incrfail: boolean): void {
  TRACE("enter send_msg_userauth_failure");
  const a = ses.authstate;
  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_FAILURE);
  const methods: string[] = [];
  if (a.authtypes & AUTH_TYPE_PUBKEY) {
    methods.push(AUTH_METHOD_PUBKEY);
  }
  if (a.authtypes & AUTH_TYPE_PASSWORD) {
    methods.push(AUTH_METHOD_PASSWORD);
  }
  const typebuf = methods.join(",");
  buf_putstring(ses.writepayload, typebuf);
  TRACE(`auth fail: methods ${a.authtypes}, '${typebuf}'`);
  buf_putbyte(ses.writepayload, partial ? 1 : 0);

  if (!incrfail) {
    encrypt_packet(ses);
    checkMaxAuthTries(ses);
    TRACE("leave send_msg_userauth_failure");
    return;
  }

  // Aim for a random total of 250-350 ms since the request arrived; if that has already
  // passed (or the clock misbehaved), wait a whole random delay.
  const mindelay = 250;
  const vardelay = 100;
  const r = Buffer.alloc(4);
  genrandom(r, 4);
  const rand_delay = mindelay + (r.readUInt32BE(0) % (vardelay * 1_000_000)) / 1_000_000;
  const elapsed = gettime_wrapper() - a.auth_starttime;
  const wait = elapsed >= 0 && elapsed <= rand_delay ? rand_delay - elapsed : rand_delay;

  const wp = ses.writepayload;
  const held = Buffer.from(wp.data.subarray(0, wp.len));
  buf_setpos(wp, 0);
  buf_setlen(wp, 0);
  const delay: AuthDelay = { timer: null, done: false, failed: false, error: null };
  ses.svr_ses.authdelay = delay;
  ses.readheld = true;
  delay.timer = setTimeout(() => {
    delay.timer = null;
    delay.done = true;
    try {
      buf_putbytes(ses.writepayload, held);
      encrypt_packet(ses);
      a.failcount++;
      checkMaxAuthTries(ses);
      ses.svr_ses.authdelay = null;
      ses.readheld = false;
    } catch (e) {
      // Thrown later inside the session loop (svrAuthCheckDelayed), where exits belong.
      delay.failed = true;
      delay.error = e;
    }
    ses.signal_pipe?.raise();
  }, wait);
  TRACE("leave send_msg_userauth_failure (delayed)");
}

/** Exit once the failures exceed -T (MAX_AUTH_TRIES). Part of send_msg_userauth_failure. */
function checkMaxAuthTries(ses: SvrSession): void {
  const a = ses.authstate;
  if (a.failcount > ses.svr_ses.svr_opts.maxauthtries) {
    TRACE("Max auth tries reached, exiting");
    const userstr = a.pw_name === null ? "is invalid" : a.pw_name;
    dropbear_exit(`Max auth tries reached - user '${userstr}'`);
  }
}

/** Whether a failure delay is running (the session loop reads nothing meanwhile). */
export function svrAuthDelayPending(ses: SvrSession): boolean {
  const delay = ses.svr_ses.authdelay;
  return delay !== null && !delay.done;
}

/**
 * After a failure delay that ended the session (Max auth tries): raise that exit. Call it from
 * the server's loop handler; a no-op otherwise.
 */
export function svrAuthCheckDelayed(ses: SvrSession): void {
  const delay = ses.svr_ses.authdelay;
  if (delay !== null && delay.failed) {
    throw delay.error;
  }
}

/** A copy of the request being handled, to finish it later. */
function holdPayload(ses: SvrSession): HeldRequest {
  const payload = ses.payload!;
  return { data: Buffer.from(payload.data.subarray(0, payload.len)), pos: payload.pos, payload_beginning: ses.payload_beginning };
}

/** Run `fn` with a held request as ses.payload, read on from where it was left. */
function withPayload(ses: SvrSession, req: HeldRequest, fn: () => void): void {
  const saved = ses.payload;
  const savedBeginning = ses.payload_beginning;
  const payload = buf_new(req.data.length);
  buf_putbytes(payload, req.data);
  buf_setpos(payload, req.pos);
  ses.payload = payload;
  ses.payload_beginning = req.payload_beginning;
  try {
    fn();
  } finally {
    ses.payload = saved;
    ses.payload_beginning = savedBeginning;
  }
}

/**
 * Go on with an embedding program's answer (serversession.embed). An answer that takes time
 * is awaited by the session loop before the next packet, as C blocks in its own checks; `then`
 * runs with the request back in ses.payload, read on from where it was. A rejected promise
 * counts as "no".
 */
export function svrAuthDecide(ses: SvrSession, answer: boolean | Promise<boolean>, then: (ok: boolean) => void): void {
  if (!(answer instanceof Promise)) {
    // An embedder's answer other than true (a string, undefined) is a refusal.
    then(answer === true);
    return;
  }
  const held = holdPayload(ses);
  const decide = (ok: boolean): void => {
    // Given up on because the session is ending (the library server's close()): nobody said
    // no, so nothing is answered (a USERAUTH_FAILURE told the client its credentials were
    // refused), and the loop ends the session.
    if (!ses.exitflag) {
      withPayload(ses, held, () => then(ok));
    }
  };
  ses.awaitAfterPacket = answer.then(
    (ok) => decide(ok === true),
    () => decide(false),
  );
}

/** Stop a failure delay timer (session cleanup). */
export function svrAuthCleanup(ses: SvrSession): void {
  const delay = ses.svr_ses.authdelay;
  if (delay?.timer) {
    clearTimeout(delay.timer);
  }
  ses.svr_ses.authdelay = null;
  ses.readheld = false;
}

/**
 * Answer USERAUTH_SUCCESS and mark auth done (after queuing the packet: delayed compression
 * starts with the next one). Then close the childpipe so the listener stops counting this
 * connection as unauthenticated, and drop to the user via serversession.switch_user.
 * @dropbear svr-auth.c send_msg_userauth_success
 */
export function send_msg_userauth_success(ses: SvrSession): void {
  TRACE("enter send_msg_userauth_success");
  const svr_ses = ses.svr_ses;
  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_SUCCESS);
  encrypt_packet(ses);
  ses.authstate.authdone = true;

  // The daemon stops counting us as unauthenticated before the client can learn it is in, as
  // in C (whose SUCCESS leaves after this close): a client that opens its next connection once
  // the last one is authenticated never finds MAX_UNAUTH_PER_IP still holding the last's slot.
  if (svr_ses.childpipe >= 0) {
    try {
      closeSync(svr_ses.childpipe);
    } catch {
      // Already closed: the slot is freed all the same.
    }
    svr_ses.childpipe = -1;
  }

  if (DROPBEAR_SVR_DROP_PRIVS && svr_ses.switch_user !== null) {
    // Beyond C, which sends the SUCCESS when its loop next writes: it goes to the socket now,
    // so the client's channel open overlaps the switch (initgroups and four set*id calls, each
    // of which glibc makes every one of Node's threads follow: 2-3 ms). Nothing the client
    // sends is read before the switch is done.
    if (ses.sock_out !== null && !isempty(ses.writequeue)) {
      write_packet(ses);
    }
    svr_ses.switch_user(ses);
  }
  // Beyond C: once the session's start-up (kex, auth) is over and the loop waits, what it left
  // freed in the C heap goes back to the kernel (docs/process-model.md, "Idle memory").
  ses.idle_work.push(malloc_trim);
  TRACE("leave send_msg_userauth_success");
}

/** The gid of the "utmp" group, or null. @dropbear svr-auth.c utmp_gid */
function utmp_gid(): number | null {
  const gid = getgrnam_gid("utmp");
  if (gid === null) {
    TRACE("No utmp group");
  }
  return gid;
}

/**
 * Become the authenticated user: gid, supplementary groups, utmp as the saved gid, then uid.
 * As non-root only a session for our own uid can go on. Process-wide: call it only in the
 * process serving this one connection. @dropbear svr-auth.c svr_switch_user
 */
export function svr_switch_user(ses: SvrSession): void {
  const a = ses.authstate;
  const svr_ses = ses.svr_ses;
  dropbear_assert(a.authdone, "ses.authstate.authdone");
  if (process.getuid!() === 0) {
    try {
      process.setgid!(a.pw_gid);
      // Node has process.initgroups on POSIX; @types/node leaves it out.
      (process as unknown as { initgroups(user: string, extraGroup: number): void }).initgroups(a.pw_name!, a.pw_gid);
    } catch {
      dropbear_exit("Error changing user group");
    }
    if (DROPBEAR_SVR_DROP_PRIVS) {
      // The saved gid survives until execve(), so login records can still be written.
      const gid = utmp_gid();
      if (gid !== null) {
        svr_ses.utmp_gid = gid;
        if (setresgid(-1, -1, gid) === 0) {
          svr_ses.have_utmp_gid = true;
        } else {
          TRACE("utmp setresgid failed");
        }
      }
    }
    try {
      process.setuid!(a.pw_uid);
    } catch {
      dropbear_exit("Error changing user");
    }
  } else if (process.getuid!() !== a.pw_uid) {
    // Dropbear's message has a tab in it.
    dropbear_exit("Couldn't\tchange user as non-root");
  }
}

/** Take the utmp group as effective gid around login record writes. @dropbear svr-auth.c svr_raise_gid_utmp */
export function svr_raise_gid_utmp(ses: SvrSession): void {
  const svr_ses = ses.svr_ses;
  if (!DROPBEAR_SVR_DROP_PRIVS || !svr_ses.have_utmp_gid) {
    return;
  }
  try {
    process.setegid!(svr_ses.utmp_gid);
  } catch {
    dropbear_log(LOG_WARNING, "failed setegid");
  }
}

/** Back to the real gid after svr_raise_gid_utmp. @dropbear svr-auth.c svr_restore_gid */
export function svr_restore_gid(ses: SvrSession): void {
  const svr_ses = ses.svr_ses;
  if (!DROPBEAR_SVR_DROP_PRIVS || !svr_ses.have_utmp_gid) {
    return;
  }
  try {
    process.setegid!(process.getgid!());
  } catch {
    dropbear_log(LOG_WARNING, "failed setegid");
  }
}
