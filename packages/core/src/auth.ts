import type { m_list } from "@dropbear-ts/dbutil";

// auth.h: the auth state both sides keep, and the constants naming the methods.

export const MAX_USERNAME_LEN = 100;

/** Bit flags of the methods still allowed. @dropbear auth.h AUTH_TYPE_NONE */
export const AUTH_TYPE_NONE = 1;
export const AUTH_TYPE_PUBKEY = 1 << 1;
export const AUTH_TYPE_PASSWORD = 1 << 2;
export const AUTH_TYPE_INTERACT = 1 << 3;

export const AUTH_METHOD_NONE = "none";
export const AUTH_METHOD_PUBKEY = "publickey";
export const AUTH_METHOD_PASSWORD = "password";
export const AUTH_METHOD_INTERACT = "keyboard-interactive";

/** permitlisten= without a port restriction. @dropbear auth.h PUBKEY_OPTIONS_ANY_PORT */
export const PUBKEY_OPTIONS_ANY_PORT = 0xffffffff;

/** One permitopen= / permitlisten= entry. @dropbear auth.h PermitTCPFwdEntry */
export class PermitTCPFwdEntry {
  /** null for a permitlisten= entry with no host. */
  host: string | null = null;
  port = 0;
}

/** Restrictions from the authorized_keys line that let the user in. @dropbear auth.h PubKeyOptions */
export class PubKeyOptions {
  no_port_forwarding_flag = false;
  no_agent_forwarding_flag = false;
  no_x11_forwarding_flag = false;
  no_pty_flag = false;
  /** "command=": its bytes, one latin1 character each (the shell gets them as they were). */
  forced_command: string | null = null;
  permit_open_destinations: m_list<PermitTCPFwdEntry> | null = null;
  permit_listens: m_list<PermitTCPFwdEntry> | null = null;
  no_touch_required_flag = false;
  verify_required_flag = false;
  /** The line's trailing text for SSH_PUBKEYINFO, if shell-safe. */
  info_env: string | null = null;
}

/** User-auth progress, shared by client and server. @dropbear auth.h AuthState */
export class AuthState {
  /** The name the client presents (server), or logs in as (client). */
  username: string | null = null;
  /** TS-only: the bytes of the name the client first sent (server); C compares its char *. */
  username_sent: Buffer | null = null;
  /** AUTH_TYPE_* flags of the methods still allowed. */
  authtypes = 0;
  failcount = 0;
  authdone = false;
  perm_warn = false;
  checkusername_failed = false;
  /** When the current USERAUTH_REQUEST arrived (gettime_wrapper() ms), for the failure delay. */
  auth_starttime = 0;
  serv_pubkey_query_count = 0;
  pw_uid = 0;
  pw_gid = 0;
  /** The home directory as text, for messages; homePath() gives the bytes to open and exec with. */
  pw_dir: string | null = null;
  /**
   * TS-only: the home directory's bytes as the passwd database has them, when they came from it
   * (C keeps the char *): a path need not be UTF-8, and pw_dir's decoding would name another one.
   */
  pw_dir_bytes: Buffer | null = null;
  /** The login shell as text, for messages; shellPath() gives the bytes to check and exec. */
  pw_shell: string | null = null;
  /** TS-only: the shell's bytes from the passwd database, as pw_dir_bytes. */
  pw_shell_bytes: Buffer | null = null;
  pw_name: string | null = null;
  pw_passwd: string | null = null;
  /** Beyond C: the shadow entry's expiry day (days since 1970), -1 for none or unreadable. */
  sp_expire = -1;
  pubkey_options: PubKeyOptions | null = null;
}

/**
 * The user's home directory as a path to open, chdir to or put in $HOME: the passwd entry's
 * bytes while pw_dir is still their decoding (whoever sets pw_dir alone, as an embedding
 * server does, names the directory by it).
 */
export function homePath(a: AuthState): Buffer {
  return passwdBytes(a.pw_dir, a.pw_dir_bytes);
}

/** The user's login shell as a path to check against /etc/shells and exec, as homePath (empty when none is set). */
export function shellPath(a: AuthState): Buffer {
  return passwdBytes(a.pw_shell, a.pw_shell_bytes);
}

/** A passwd field's bytes while `text` is still their decoding, else the text's own. */
function passwdBytes(text: string | null, bytes: Buffer | null): Buffer {
  const t = text ?? "";
  return bytes !== null && bytes.toString("utf8") === t ? bytes : Buffer.from(t, "utf8");
}

/** A USERAUTH_REQUEST held while an embedding program decides: the whole payload, and where its handler reads on. */
export interface HeldRequest {
  data: Buffer;
  pos: number;
  payload_beginning: number;
}

/**
 * One server session's auth failure delay in progress (Dropbear sleeps instead: see the auth
 * package's svr-auth.ts). Kept in serversession.authdelay.
 */
export interface AuthDelay {
  timer: NodeJS.Timeout | null;
  /** The timer fired and the FAILURE went out. */
  done: boolean;
  /** Whether finishing the failure threw (usually "Max auth tries reached")... */
  failed: boolean;
  /** ...and what, to be rethrown inside the session loop. */
  error: unknown;
}
