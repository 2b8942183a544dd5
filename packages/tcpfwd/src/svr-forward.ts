import { buf_getbool, buf_getstring } from "@dropbear-ts/buffer";
import { svr_pubkey_allows_tcpfwd } from "@dropbear-ts/auth";
import { send_msg_request_failure, send_msg_request_success } from "@dropbear-ts/channel";
import type { SvrSession } from "@dropbear-ts/core";
import { TRACE } from "@dropbear-ts/dbutil";
import { MAX_NAME_LEN, DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { svr_cancelremotestreamlocal, svr_remotestreamlocalreq } from "./svr-streamfwd.js";
import { svr_cancelremotetcp, svr_remotetcpreq } from "./svr-tcpfwd.js";

/**
 * A global request: remote TCP forwarding (tcpip-forward, cancel-tcpip-forward) unless -k or
 * the key's no-port-forwarding forbid it; anything else is refused. tcpip-forward answers for
 * itself; streamlocal-forward@openssh.com answers once its bind is done (the loop awaits it
 * before the next packet, so replies keep their order); cancel-streamlocal-forward@openssh.com.
 * @dropbear svr-forward.c svr_recv_msg_global_request
 */
export function svr_recv_msg_global_request(ses: SvrSession): void {
  TRACE("enter recv_msg_global_request_remote");
  const payload = ses.payload!;
  const reqname = buf_getstring(payload);
  let wantreply = buf_getbool(payload) === 1;
  let ret = DROPBEAR_FAILURE;
  if (ses.svr_ses.svr_opts.noremotefwd || !svr_pubkey_allows_tcpfwd(ses)) {
    TRACE("remote forwarding is disabled");
  } else if (reqname.length > MAX_NAME_LEN) {
    TRACE(() => `name len is wrong: ${reqname.length}`);
  } else {
    // C compares with strcmp: the name ends at a NUL, as for channel requests and opens.
    const nul = reqname.indexOf(0);
    const name = (nul >= 0 ? reqname.subarray(0, nul) : reqname).toString("latin1");
    if (name === "tcpip-forward") {
      // It sends its own reply, once its bind is done (the loop awaits that).
      ses.awaitAfterPacket = svr_remotetcpreq(ses, wantreply);
      wantreply = false;
    } else if (name === "cancel-tcpip-forward") {
      ret = svr_cancelremotetcp(ses);
    } else if (name === "streamlocal-forward@openssh.com") {
      const reply = wantreply;
      wantreply = false;
      ses.awaitAfterPacket = svr_remotestreamlocalreq(ses).then((r) => {
        // An answer given up on as the session ends (Server.close()) is nobody's refusal.
        if (reply && !ses.exitflag) {
          if (r === DROPBEAR_SUCCESS) {
            send_msg_request_success(ses);
          } else {
            send_msg_request_failure(ses);
          }
        }
      });
    } else if (name === "cancel-streamlocal-forward@openssh.com") {
      ret = svr_cancelremotestreamlocal(ses);
    } else {
      TRACE(() => `unhandled request '${name}'`);
    }
  }
  if (wantreply) {
    if (ret === DROPBEAR_SUCCESS) {
      send_msg_request_success(ses);
    } else {
      send_msg_request_failure(ses);
    }
  }
  TRACE("leave recv_msg_global_request");
}
