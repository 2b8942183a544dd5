import { buf_getint } from "@dropbear-ts/buffer";
import { FD_CLOSED, openFailureText, type Channel, type StreamChannel, type CliSession } from "@dropbear-ts/core";
import { TRACE } from "@dropbear-ts/dbutil";
import { SSH_EXTENDED_DATA_STDERR } from "@dropbear-ts/options";
import { common_recv_msg_channel_data, getchannel } from "./common-channel.js";

/**
 * EXTENDED_DATA (the remote command's stderr), taken only on a client session channel and only
 * of the stderr type; anything else is ignored. The client's only "session" channel is
 * clichansess, so the type is recognised by its name. Beyond Dropbear: stderr on the same pipe
 * or terminal as stdout joins stdout's ring (Channel.errfd_joins_writefd).
 * @dropbear cli-channel.c recv_msg_channel_extended_data
 */
export function recv_msg_channel_extended_data(ses: CliSession): void {
  TRACE("enter recv_msg_channel_extended_data");
  const channel = getchannel(ses);
  if (channel.type.name !== "session") {
    TRACE("leave recv_msg_channel_extended_data: chantype is wrong");
    return;
  }
  const datatype = buf_getint(ses.payload!);
  if (datatype !== SSH_EXTENDED_DATA_STDERR) {
    TRACE(() => `leave recv_msg_channel_extended_data: wrong datatype: ${datatype}`);
    return;
  }
  if (channel.errfd_joins_writefd) {
    common_recv_msg_channel_data(ses, channel, channel.writefd, channel.writebuf);
  } else {
    common_recv_msg_channel_data(ses, channel, channel.errfd, channel.extrabuf);
  }
  TRACE("leave recv_msg_channel_extended_data");
}

/**
 * The peer confirmed a channel a library caller opened on its own streams (Channel.typedata, a
 * StreamChannel): those become the channel's fds, one per direction.
 */
export function streamChannelOpened(channel: Channel): StreamChannel {
  const sc = channel.typedata as StreamChannel;
  channel.readfd = sc.readfd;
  channel.writefd = sc.writefd;
  channel.errfd = sc.errfd ?? FD_CLOSED;
  channel.bidir_fd = false;
  sc.opened = true;
  sc.onopen();
  return sc;
}

/** The peer refused a library caller's channel: keep its reason for the caller (ChanType.openfailed). */
export function streamChannelRefused(_ses: CliSession, channel: Channel, reason: number, text: string): void {
  const sc = channel.typedata as StreamChannel;
  sc.refused = openFailureText(reason, text);
}

/**
 * A library caller's channel is gone: close whichever of its streams the channel never took
 * (a refused open holds only one), so every reader sees its end, then tell the caller.
 */
export function streamChannelGone(_ses: CliSession, channel: Channel): void {
  const sc = channel.typedata as StreamChannel;
  sc.readfd.close();
  sc.writefd.close();
  sc.errfd?.close();
  sc.onclose();
}
