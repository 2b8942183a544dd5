import { buf_getstring, buf_putbyte, buf_putstring } from "@dropbear-ts/buffer";
import type { SvrSession } from "@dropbear-ts/core";
import { TRACE, dropbear_exit } from "@dropbear-ts/dbutil";
import { SSH_MSG_SERVICE_ACCEPT, SSH_SERVICE_CONNECTION, SSH_SERVICE_USERAUTH } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";

/**
 * SSH_MSG_SERVICE_REQUEST: accept "ssh-userauth", and "ssh-connection" only once the user is
 * authenticated; anything else ends the session. @dropbear svr-service.c recv_msg_service_request
 */
export function recv_msg_service_request(ses: SvrSession): void {
  TRACE("enter recv_msg_service_request");
  const name = buf_getstring(ses.payload!);

  if (name.equals(Buffer.from(SSH_SERVICE_USERAUTH, "latin1"))) {
    send_msg_service_accept(ses, name);
    TRACE("leave recv_msg_service_request: done ssh-userauth");
    return;
  }

  if (name.equals(Buffer.from(SSH_SERVICE_CONNECTION, "latin1"))) {
    if (!ses.authstate.authdone) {
      dropbear_exit("Request for connection before auth");
    }
    send_msg_service_accept(ses, name);
    TRACE("leave recv_msg_service_request: done ssh-connection");
    return;
  }

  dropbear_exit("Unrecognised SSH_MSG_SERVICE_REQUEST");
}

/** Accept the named service. @dropbear svr-service.c send_msg_service_accept */
function send_msg_service_accept(ses: SvrSession, name: Uint8Array): void {
  TRACE(`accepting service ${Buffer.from(name).toString("latin1")}`);
  buf_putbyte(ses.writepayload, SSH_MSG_SERVICE_ACCEPT);
  buf_putstring(ses.writepayload, name);
  encrypt_packet(ses);
}
