import { shellPath, type sshsession } from "@dropbear-ts/core";
import { getpwnam, getspnam } from "./libc.js";

// The two passwd helpers of common-session.c that authentication owns: the rest of that file is
// the session loop (packages/session-loop).

/**
 * Look the user up and copy what auth needs into ses.authstate; unknown users leave pw_name
 * null. The hash comes from /etc/shadow only when the passwd field is "x"; a shadow entry that
 * is missing then reads as the locked "!!". The same lookup gives the account's expiry day
 * (beyond C, for checkusername).
 * @dropbear common-session.c fill_passwd
 */
export function fill_passwd(ses: sshsession, username: string): void {
  const a = ses.authstate;
  a.pw_name = null;
  a.pw_dir = null;
  a.pw_dir_bytes = null;
  a.pw_shell = null;
  a.pw_shell_bytes = null;
  a.pw_passwd = null;
  a.sp_expire = -1;

  const pw = getpwnam(username);
  if (pw === null) {
    return;
  }
  a.pw_uid = pw.pw_uid;
  a.pw_gid = pw.pw_gid;
  a.pw_name = pw.pw_name;
  a.pw_dir = pw.pw_dir;
  a.pw_dir_bytes = pw.pw_dir_bytes;
  a.pw_shell = pw.pw_shell;
  a.pw_shell_bytes = pw.pw_shell_bytes;
  const sp = getspnam(a.pw_name);
  a.sp_expire = sp?.sp_expire ?? -1;
  let passwd_crypt = pw.pw_passwd;
  if (passwd_crypt === "x") {
    passwd_crypt = sp?.sp_pwdp ?? "!!";
  }
  a.pw_passwd = passwd_crypt ?? "!!";
}

/** The user's shell, "/bin/sh" when the passwd entry leaves it empty. @dropbear common-session.c get_user_shell */
export function get_user_shell(ses: sshsession): string {
  return get_user_shell_path(ses).toString("utf8");
}

/** get_user_shell as the bytes to match against /etc/shells and exec: a path need not be UTF-8. */
export function get_user_shell_path(ses: sshsession): Buffer {
  const shell = shellPath(ses.authstate);
  return shell.length === 0 ? Buffer.from("/bin/sh") : shell;
}
