import type { sshsession } from "@dropbear-ts/core";
import { TRACE } from "@dropbear-ts/dbutil";
import { dropbear_prio, set_sock_priority } from "@dropbear-ts/netio";

// The part of common-session.c that channels call. It lives beside them because the session
// loop depends on the channel package, not the other way round.

/**
 * Pick the transport's priority class: low delay while no channel exists (setup) or any
 * channel is interactive, normal otherwise, and mark the transport socket with it.
 * @dropbear common-session.c update_channel_prio
 */
export function update_channel_prio(ses: sshsession): void {
  TRACE("update_channel_prio");
  if (ses.sock_out === null) {
    TRACE("leave update_channel_prio: no socket");
    return;
  }
  let new_prio = dropbear_prio.DROPBEAR_PRIO_NORMAL;
  let any = false;
  for (let i = 0; i < ses.chansize; i++) {
    const channel = ses.channels[i];
    if (!channel) {
      continue;
    }
    any = true;
    if (channel.prio === dropbear_prio.DROPBEAR_PRIO_LOWDELAY) {
      new_prio = dropbear_prio.DROPBEAR_PRIO_LOWDELAY;
      break;
    }
  }
  if (!any) {
    TRACE("update_channel_prio: not any");
    new_prio = dropbear_prio.DROPBEAR_PRIO_LOWDELAY;
  }
  if (new_prio !== ses.socket_prio) {
    TRACE(() => `Dropbear priority transitioning ${ses.socket_prio} -> ${new_prio}`);
    set_sock_priority(ses.sock_out, new_prio, ses.opts.disable_ip_tos);
    ses.socket_prio = new_prio;
  }
}
