import { closeSync, openSync } from "node:fs";
import { buf_eatstring, buf_getbool, buf_getstring, buf_putbyte, buf_putstring } from "@dropbear-ts/buffer";
import {
  AUTH_METHOD_INTERACT,
  AUTH_METHOD_NONE,
  AUTH_METHOD_PASSWORD,
  AUTH_METHOD_PUBKEY,
  AUTH_TYPE_INTERACT,
  AUTH_TYPE_NONE,
  AUTH_TYPE_PASSWORD,
  AUTH_TYPE_PUBKEY,
  DROPBEAR_COMP_ZLIB_DELAY,
  cli_state,
  type CliSession,
} from "@dropbear-ts/core";
import { DEBUG1, LOG_INFO, readAnswerLine, readInterruptibly, textBytes, TRACE, dropbear_close, dropbear_exit, dropbear_log, cleantext, tellUser } from "@dropbear-ts/dbutil";
import {
  DROPBEAR_CLI_IMMEDIATE_AUTH,
  DROPBEAR_CLI_INTERACT_AUTH,
  DROPBEAR_CLI_PASSWORD_AUTH,
  DROPBEAR_CLI_PUBKEY_AUTH,
  DROPBEAR_MAX_CLI_PASS,
  DROPBEAR_PASSWORD_ENV,
  DROPBEAR_USE_PASSWORD_ENV,
  MAX_BANNER_LINES,
  MAX_BANNER_SIZE,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_SERVICE_CONNECTION,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { cli_auth_interactive, recv_msg_userauth_info_request } from "./cli-authinteract.js";
import { cli_auth_password } from "./cli-authpasswd.js";
import { cli_auth_pubkey, cli_auth_pubkey_cleanup, cli_pubkeyfail, recv_msg_userauth_pk_ok } from "./cli-authpubkey.js";
import { getenv_bytes, getpass } from "./libc.js";

/**
 * How the client asks its user things. Both block, as Dropbear's prompts do: nothing else
 * happens in a client while it waits for its user. Tests replace them.
 */
export const cliAuthHooks: {
  /**
   * Prompt without echo (getpass(3): /dev/tty, else stdin/stderr); null if nothing could be
   * read. Answers are bytes, sent as typed: a password need not be UTF-8.
   */
  getpass: (prompt: string) => Buffer | null;
  /** Read one line with echo, after the prompt was shown; null at end of input. */
  getline: () => Buffer | null;
} = {
  getpass,
  getline: ttyGetline,
};

/** Whether there is a controlling terminal to ask on. */
export function hasTty(): boolean {
  try {
    closeSync(openSync("/dev/tty", "r"));
    return true;
  } catch {
    return false;
  }
}

/**
 * Before a prompt reads its answer. With -B and no terminal, stdin is the forwarded stream (a
 * multihop hop's transport): getpass(3) would take its answer from there, where no line
 * ever comes, and the whole chain would wait forever, so the hop ends instead.
 */
export function checkPromptInput(ses: CliSession): void {
  if (ses.cli_ses.cli_opts.netcat_host !== null && !hasTty()) {
    dropbear_exit("No terminal to ask on: stdin carries the -B stream", "EAUTH");
  }
}

/** fgets(3) of at most DROPBEAR_MAX_CLI_PASS - 1 bytes from /dev/tty, or stdin without one. */
function ttyGetline(): Buffer | null {
  let fd: number;
  let opened = false;
  try {
    fd = openSync("/dev/tty", "r");
    opened = true;
  } catch {
    fd = 0;
  }
  let line: Buffer;
  try {
    // ^C or a kill while it waits for the user must act then, not after the Enter.
    line = readInterruptibly(() => readAnswerLine(fd, DROPBEAR_MAX_CLI_PASS - 1));
  } finally {
    if (opened) {
      closeSync(fd);
    }
  }
  return line.length === 0 ? null : line;
}

/**
 * Ask for the "none" method: the answer lists the methods the server takes. With
 * DROPBEAR_CLI_IMMEDIATE_AUTH a real attempt follows at once. @dropbear cli-auth.c cli_auth_getmethods
 */
export function cli_auth_getmethods(ses: CliSession): void {
  TRACE("enter cli_auth_getmethods");
  const cli_ses = ses.cli_ses;
  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_REQUEST);
  buf_putstring(ses.writepayload, textBytes(cli_ses.cli_opts.username ?? ""));
  buf_putstring(ses.writepayload, SSH_SERVICE_CONNECTION);
  buf_putstring(ses.writepayload, AUTH_METHOD_NONE);
  encrypt_packet(ses);

  // Not with delayed zlib: if the first request succeeded, the second would already have to
  // be compressed.
  if (DROPBEAR_CLI_IMMEDIATE_AUTH && ses.keys.trans.algo_comp !== DROPBEAR_COMP_ZLIB_DELAY) {
    ses.authstate.authtypes = AUTH_TYPE_PUBKEY;
    if (DROPBEAR_USE_PASSWORD_ENV && process.env[DROPBEAR_PASSWORD_ENV] !== undefined) {
      ses.authstate.authtypes |= AUTH_TYPE_PASSWORD | AUTH_TYPE_INTERACT;
    }
    if (cli_auth_try(ses)) {
      TRACE("skipped initial none auth query");
      cli_ses.ignore_next_auth_response = true;
    }
  }
  TRACE("leave cli_auth_getmethods");
}

/**
 * Show the server's banner on stderr (not with -q, not after auth): control characters
 * removed, at most MAX_BANNER_LINES lines, nothing of one over MAX_BANNER_SIZE.
 * @dropbear cli-auth.c recv_msg_userauth_banner
 */
export function recv_msg_userauth_banner(ses: CliSession): void {
  TRACE("enter recv_msg_userauth_banner");
  if (ses.authstate.authdone) {
    TRACE("leave recv_msg_userauth_banner: banner after auth done");
    return;
  }
  if (ses.cli_ses.cli_opts.quiet) {
    TRACE("not showing banner");
    return;
  }
  const banner = buf_getstring(ses.payload!);
  buf_eatstring(ses.payload!);

  let truncated = false;
  if (banner.length > MAX_BANNER_SIZE) {
    TRACE(`recv_msg_userauth_banner: bannerlen too long: ${banner.length}`);
    truncated = true;
  } else {
    let text = cleantext(banner, true);
    let linecount = 1;
    for (let i = 0; i < text.length; i++) {
      if (text[i] === "\n") {
        if (linecount >= MAX_BANNER_LINES) {
          text = text.slice(0, i);
          truncated = true;
          break;
        }
        linecount++;
      }
    }
    tellUser(`${text}\n`);
  }
  if (truncated) {
    tellUser("[Banner from the server is too long]\n");
  }
  TRACE("leave recv_msg_userauth_banner");
}

/**
 * Message 60 means PK_OK, INFO_REQUEST or PASSWD_CHANGEREQ depending on the method we last
 * tried. @dropbear cli-auth.c recv_msg_userauth_specific_60
 */
export function recv_msg_userauth_specific_60(ses: CliSession): void {
  const lastauthtype = ses.cli_ses.lastauthtype;
  if (DROPBEAR_CLI_PUBKEY_AUTH && lastauthtype === AUTH_TYPE_PUBKEY) {
    recv_msg_userauth_pk_ok(ses);
    return;
  }
  if (DROPBEAR_CLI_INTERACT_AUTH && lastauthtype === AUTH_TYPE_INTERACT) {
    recv_msg_userauth_info_request(ses);
    return;
  }
  if (DROPBEAR_CLI_PASSWORD_AUTH && lastauthtype === AUTH_TYPE_PASSWORD) {
    // Password changes are not supported (few servers ask; keyboard-interactive covers it).
    dropbear_close("Your password has expired.", "EAUTH");
  }
  dropbear_exit("Unexpected userauth packet");
}

/**
 * USERAUTH_FAILURE: cross off what failed and note the methods the server still takes
 * (password-like ones only if we may ask for a password). cli_sessionloop then tries the next.
 * @dropbear cli-auth.c recv_msg_userauth_failure
 */
export function recv_msg_userauth_failure(ses: CliSession): void {
  TRACE("enter recv_msg_userauth_failure");
  const cli_ses = ses.cli_ses;
  const cli_opts = cli_ses.cli_opts;
  if (ses.authstate.authdone) {
    TRACE("leave recv_msg_userauth_failure, already authdone.");
    return;
  }
  if (cli_ses.state !== cli_state.USERAUTH_REQ_SENT) {
    dropbear_exit("Unexpected userauth failure");
  }

  // In batch mode a password can only come from the environment.
  let allow_pw_auth = !(cli_opts.batch_mode && process.env[DROPBEAR_PASSWORD_ENV] === undefined);
  allow_pw_auth &&= cli_opts.password_authentication;

  // With immediate auth the answer to "none" comes first, then the one to our attempt.
  if (cli_ses.ignore_next_auth_response) {
    cli_ses.state = cli_state.USERAUTH_REQ_SENT;
    cli_ses.ignore_next_auth_response = false;
    TRACE("leave recv_msg_userauth_failure, ignored response, state set to USERAUTH_REQ_SENT");
    return;
  }
  if (DROPBEAR_CLI_PUBKEY_AUTH && cli_ses.lastauthtype === AUTH_TYPE_PUBKEY) {
    cli_pubkeyfail(ses);
  }
  // Refused before any prompt came: keyboard-interactive will not work, don't try again.
  if (DROPBEAR_CLI_INTERACT_AUTH && cli_ses.lastauthtype === AUTH_TYPE_INTERACT && !cli_ses.interact_request_received) {
    TRACE("setting auth_interact_failed = 1");
    cli_ses.auth_interact_failed = true;
  }
  cli_ses.state = cli_state.USERAUTH_FAIL_RCVD;
  cli_ses.lastauthtype = AUTH_TYPE_NONE;

  const methods = buf_getstring(ses.payload!);
  const partial = buf_getbool(ses.payload!);
  if (partial) {
    dropbear_log(LOG_INFO, "Authentication partially succeeded, more attempts required");
  } else {
    ses.authstate.failcount++;
  }
  TRACE(`Methods (len ${methods.length}): '${methods.toString("latin1")}'`);

  ses.authstate.authdone = false;
  ses.authstate.authtypes = 0;
  // Dropbear compares each name's first letters only (strncmp with the method's length).
  for (const tok of methods.toString("latin1").split(/[,\0]/)) {
    TRACE(`auth method '${tok}'`);
    if (DROPBEAR_CLI_PUBKEY_AUTH && tok.startsWith(AUTH_METHOD_PUBKEY)) {
      ses.authstate.authtypes |= AUTH_TYPE_PUBKEY;
    }
    if (DROPBEAR_CLI_INTERACT_AUTH && allow_pw_auth && tok.startsWith(AUTH_METHOD_INTERACT)) {
      ses.authstate.authtypes |= AUTH_TYPE_INTERACT;
    }
    if (DROPBEAR_CLI_PASSWORD_AUTH && allow_pw_auth && tok.startsWith(AUTH_METHOD_PASSWORD)) {
      ses.authstate.authtypes |= AUTH_TYPE_PASSWORD;
    }
  }
  TRACE("leave recv_msg_userauth_failure");
}

/**
 * USERAUTH_SUCCESS: we are in (unless -o DisableTrivialAuth and we never proved anything).
 * @dropbear cli-auth.c recv_msg_userauth_success
 */
export function recv_msg_userauth_success(ses: CliSession): void {
  DEBUG1("received msg_userauth_success");
  if (ses.authstate.authdone) {
    // RFC 4252 5.1 sends it once. C would set the session up again (a second command channel,
    // the forwards again, on stdio the first one may close); another one is ignored, as the
    // server ignores requests once authenticated.
    TRACE("leave recv_msg_userauth_success: authdone already");
    return;
  }
  const cli_ses = ses.cli_ses;
  if (cli_ses.cli_opts.disable_trivial_auth && cli_ses.is_trivial_auth) {
    dropbear_exit("trivial authentication not allowed", "EAUTH");
  }
  // With delayed zlib, authdone switches compression on.
  ses.authstate.authdone = true;
  cli_ses.state = cli_state.USERAUTH_SUCCESS_RCVD;
  cli_ses.lastauthtype = AUTH_TYPE_NONE;
  if (DROPBEAR_CLI_PUBKEY_AUTH) {
    cli_auth_pubkey_cleanup(ses);
  }
}

/**
 * Send the next attempt: a public key, else keyboard-interactive, else password (the last
 * two only once the transport is encrypted). Returns whether something was sent.
 * @dropbear cli-auth.c cli_auth_try
 */
export function cli_auth_try(ses: CliSession): boolean {
  TRACE("enter cli_auth_try");
  const cli_ses = ses.cli_ses;
  const cli_opts = cli_ses.cli_opts;
  const authtypes = ses.authstate.authtypes;
  const encrypted = ses.keys.trans.algo_crypt.cipherdesc !== null;
  let finished = false;

  if (DROPBEAR_CLI_PUBKEY_AUTH && authtypes & AUTH_TYPE_PUBKEY) {
    finished = cli_auth_pubkey(ses);
    cli_ses.lastauthtype = AUTH_TYPE_PUBKEY;
  }

  if (DROPBEAR_CLI_INTERACT_AUTH && !finished && cli_opts.password_authentication && authtypes & AUTH_TYPE_INTERACT) {
    if (!encrypted) {
      tellUser("Sorry, I won't let you use interactive auth unencrypted.\n");
    } else if (!cli_ses.auth_interact_failed) {
      cli_auth_interactive(ses);
      cli_ses.lastauthtype = AUTH_TYPE_INTERACT;
      finished = true;
    }
  }

  if (DROPBEAR_CLI_PASSWORD_AUTH && !finished && cli_opts.password_authentication && authtypes & AUTH_TYPE_PASSWORD) {
    if (!encrypted) {
      tellUser("Sorry, I won't let you use password auth unencrypted.\n");
    } else {
      cli_auth_password(ses);
      finished = true;
      cli_ses.lastauthtype = AUTH_TYPE_PASSWORD;
    }
  }

  TRACE(`cli_auth_try lastauthtype ${cli_ses.lastauthtype}`);
  TRACE(finished ? "leave cli_auth_try success" : "leave cli_auth_try failure");
  return finished;
}

/**
 * A password: from $DROPBEAR_PASSWORD if set, else asked for without echo. BatchMode, an
 * unreadable terminal or a ^C in the answer end the program. The bytes are the user's, as C
 * passes them on: a password that is not UTF-8 (one set in a Latin-1 locale) still matches.
 * @dropbear cli-auth.c getpass_or_cancel
 */
export function getpass_or_cancel(ses: CliSession, prompt: string): Buffer {
  const asked = ses.cli_ses.getpass;
  if (asked !== null) {
    // A library caller answers: nothing is read from the environment or a terminal.
    const answer = asked(prompt);
    if (answer === null) {
      dropbear_close("Interrupted.", "EAUTH");
    }
    return Buffer.from(answer, "utf8");
  }
  if (DROPBEAR_USE_PASSWORD_ENV && process.env[DROPBEAR_PASSWORD_ENV] !== undefined) {
    // process.env decodes the value as UTF-8; the C environment still has its bytes.
    const password = getenv_bytes(DROPBEAR_PASSWORD_ENV) ?? Buffer.from(process.env[DROPBEAR_PASSWORD_ENV]!, "utf8");
    // C's caller burns the environment's own copy after sending it: a server asking again
    // gets an empty password, not the real one over and over.
    process.env[DROPBEAR_PASSWORD_ENV] = "";
    return password;
  }
  if (ses.cli_ses.cli_opts.batch_mode) {
    dropbear_close("BatchMode active, no interactive session possible.", "EAUTH");
  }
  checkPromptInput(ses);
  const password = cliAuthHooks.getpass(prompt);
  if (password === null || password.includes(0x03)) {
    dropbear_close("Interrupted.", "EAUTH");
  }
  return password;
}
