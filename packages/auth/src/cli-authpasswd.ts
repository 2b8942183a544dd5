import { buf_putbyte, buf_putstring } from "@dropbear-ts/buffer";
import { AUTH_METHOD_PASSWORD, type CliSession } from "@dropbear-ts/core";
import { DEBUG1, TRACE, m_burn, textBytes } from "@dropbear-ts/dbutil";
import { SSH_MSG_USERAUTH_REQUEST, SSH_SERVICE_CONNECTION } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { getpass_or_cancel } from "./cli-auth.js";

// DROPBEAR_CLI_ASKPASS_HELPER (want_askpass, gui_getpass) is off in Dropbear's default build
// and is not ported.

/** Dropbear formats the prompt into an 80-byte array. */
const PROMPT_MAX = 79;

/**
 * Ask for the password ("user@host's password: ") and send a "password" request.
 * @dropbear cli-authpasswd.c cli_auth_password
 */
export function cli_auth_password(ses: CliSession): void {
  DEBUG1("enter cli_auth_password");
  const cli_ses = ses.cli_ses;
  const cli_opts = cli_ses.cli_opts;
  const username = cli_opts.username ?? "";
  const prompt = Buffer.from(`${username}@${cli_opts.remotehost}'s password: `, "utf8").subarray(0, PROMPT_MAX).toString("utf8");
  const password = getpass_or_cancel(ses, prompt);

  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_REQUEST);
  buf_putstring(ses.writepayload, textBytes(username));
  buf_putstring(ses.writepayload, SSH_SERVICE_CONNECTION);
  buf_putstring(ses.writepayload, AUTH_METHOD_PASSWORD);
  // FALSE: not a password change.
  buf_putbyte(ses.writepayload, 0);
  buf_putstring(ses.writepayload, password);
  encrypt_packet(ses);
  m_burn(password);
  cli_ses.is_trivial_auth = false;
  TRACE("leave cli_auth_password");
}
