import { buf_eatstring, buf_getbool, buf_getint, buf_getstring, buf_putbyte, buf_putint, buf_putstring } from "@dropbear-ts/buffer";
import { AUTH_METHOD_INTERACT, type CliSession } from "@dropbear-ts/core";
import { TRACE, dropbear_exit, textBytes, m_burn, cleantext, tellUser } from "@dropbear-ts/dbutil";
import {
  DROPBEAR_MAX_CLI_INTERACT_PROMPTS,
  SSH_MSG_USERAUTH_INFO_RESPONSE,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_SERVICE_CONNECTION,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { cliAuthHooks, checkPromptInput, getpass_or_cancel } from "./cli-auth.js";

/**
 * Show the prompt and read an answer with echo (from /dev/tty, else stdin); "" at end of
 * input. A library caller's session answers it as it answers the unechoed ones.
 * @dropbear cli-authinteract.c get_response
 */
function get_response(ses: CliSession, prompt: string): Buffer {
  if (ses.cli_ses.getpass !== null) {
    return getpass_or_cancel(ses, prompt);
  }
  checkPromptInput(ses);
  process.stderr.write(prompt);
  const line = cliAuthHooks.getline();
  if (line === null) {
    return Buffer.alloc(0);
  }
  return line.at(-1) === 0x0a ? line.subarray(0, -1) : line;
}

/**
 * INFO_REQUEST: show name and instruction, ask each prompt (echoed or not, as the server
 * says) and send the answers. @dropbear cli-authinteract.c recv_msg_userauth_info_request
 */
export function recv_msg_userauth_info_request(ses: CliSession): void {
  TRACE("enter recv_msg_recv_userauth_info_request");
  const cli_ses = ses.cli_ses;
  const cli_opts = cli_ses.cli_opts;
  const payload = ses.payload!;

  if (!cli_ses.interact_request_received) {
    tellUser(`Login for ${cli_opts.username}@${cli_opts.remotehost}\n`);
  }
  cli_ses.interact_request_received = true;

  const name = buf_getstring(payload);
  const instruction = buf_getstring(payload);
  buf_eatstring(payload);
  const num_prompts = buf_getint(payload);
  if (num_prompts >= DROPBEAR_MAX_CLI_INTERACT_PROMPTS) {
    dropbear_exit("Too many prompts received for keyboard-interactive", "EAUTH");
  }

  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_INFO_RESPONSE);
  buf_putint(ses.writepayload, num_prompts);

  // Beyond Dropbear, which drops line ends here: each on a line of its own, as OpenSSH's ssh
  // shows them, and a prompt keeps its line ends: sshd puts PAM's messages ("You are required
  // to change your password immediately", "Changing password for ...") in the prompt's text,
  // which C glued into one line with the prompt.
  for (const text of [cleantext(name, true), cleantext(instruction, true)]) {
    if (text.length > 0) {
      tellUser(text.endsWith("\n") ? text : `${text}\n`);
    }
  }

  for (let i = 0; i < num_prompts; i++) {
    cli_ses.is_trivial_auth = false;
    const prompt = cleantext(buf_getstring(payload), true);
    const echo = buf_getbool(payload);
    const response = echo ? get_response(ses, prompt) : getpass_or_cancel(ses, prompt);
    buf_putstring(ses.writepayload, response);
    m_burn(response);
  }
  encrypt_packet(ses);
  TRACE("leave recv_msg_recv_userauth_info_request");
}

/** Start keyboard-interactive (no language, no submethods). @dropbear cli-authinteract.c cli_auth_interactive */
export function cli_auth_interactive(ses: CliSession): void {
  TRACE("enter cli_auth_interactive");
  const cli_ses = ses.cli_ses;
  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_REQUEST);
  buf_putstring(ses.writepayload, textBytes(cli_ses.cli_opts.username ?? ""));
  buf_putstring(ses.writepayload, SSH_SERVICE_CONNECTION);
  buf_putstring(ses.writepayload, AUTH_METHOD_INTERACT);
  buf_putstring(ses.writepayload, "");
  buf_putstring(ses.writepayload, "");
  encrypt_packet(ses);
  cli_ses.interact_request_received = false;
  TRACE("leave cli_auth_interactive");
}
