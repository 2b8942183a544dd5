import {
  buf_eatstring,
  buf_getbool,
  buf_getint,
  buf_getptr,
  buf_getstring,
  buf_getwriteptr,
  buf_incrpos,
  buf_incrwritepos,
  buf_putbyte,
  buf_putint,
  buf_putstring,
  buf_setlen,
  buf_setpos,
  cbuf_free,
  cbuf_getavail,
  cbuf_getused,
  cbuf_incrread,
  cbuf_incrwrite,
  cbuf_new,
  cbuf_readptrs,
  cbuf_writelen,
  cbuf_writeptr,
  type circbuffer,
} from "@dropbear-ts/buffer";
import {
  CHAN_EXTEND_SIZE,
  Channel,
  FD_CLOSED,
  FD_UNINIT,
  MAX_SESSION_READ_AHEAD,
  MAX_SESSION_RECV_WINDOW,
  OUR_RECV_MAX_PAYLOAD_LEN,
  OUR_TRANS_MAX_PAYLOAD_LEN,
  SSH_OPEN_CONNECT_FAILED,
  SSH_OPEN_IN_PROGRESS,
  SSH_OPEN_RESOURCE_SHORTAGE,
  SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
  chanfdIsOpen,
  sesCall,
  type ChanType,
  type chanfd,
  type sshsession,
} from "@dropbear-ts/core";
import { TRACE, TRACE2, cleantext, dropbear_assert, dropbear_exit } from "@dropbear-ts/dbutil";
import { listeners_initialise, handle_listeners, set_listener_fds } from "@dropbear-ts/listener";
import { FdError, cancel_connect, dropbear_prio, type Fd, type StreamFd } from "@dropbear-ts/netio";
import {
  DEFAULT_RECV_WINDOW,
  MAX_CHANNELS,
  MAX_NAME_LEN,
  SSH_EXTENDED_DATA_STDERR,
  SSH_MSG_CHANNEL_CLOSE,
  SSH_MSG_CHANNEL_DATA,
  SSH_MSG_CHANNEL_EOF,
  SSH_MSG_CHANNEL_EXTENDED_DATA,
  SSH_MSG_CHANNEL_FAILURE,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_OPEN_FAILURE,
  SSH_MSG_CHANNEL_REQUEST,
  SSH_MSG_CHANNEL_SUCCESS,
  SSH_MSG_CHANNEL_WINDOW_ADJUST,
  SSH_MSG_REQUEST_FAILURE,
  SSH_MSG_REQUEST_SUCCESS,
  DROPBEAR_FAILURE,
  DROPBEAR_SUCCESS,
} from "@dropbear-ts/options";
import { encrypt_packet, payloadHeldBy } from "@dropbear-ts/packet";
import { update_channel_prio } from "./common-session.js";

// The multiplexed channels: open/confirm/failure both ways, data and windows, EOF and CLOSE.
// Handlers read ses.payload past the message type, as in Dropbear.

/** shutdown(2)'s `how`. */
const SHUT_RD = 0;
const SHUT_WR = 1;
const SHUT_RDWR = 2;

/**
 * Largest channel data we accept in one packet: our maximum payload less the message type,
 * channel number and string length. @dropbear common-channel.c RECV_MAX_CHANNEL_DATA_LEN
 */
export const RECV_MAX_CHANNEL_DATA_LEN = OUR_RECV_MAX_PAYLOAD_LEN - (1 + 4 + 4);

/**
 * Most bytes of a channel's ring handed to its local socket in one write. Node keeps what a
 * socket accepts until the kernel takes it, and takes whole chunks, so this (plus the stream's
 * high-water mark) bounds that extra memory per channel; it also bounds each copy out of the ring
 * (the ring's memory is reused, so the socket must get a copy).
 */
const WRITECHANNEL_CHUNK = 64 * 1024;

/** errfd is read (server stderr) when there is no extrabuf. @dropbear common-channel.c ERRFD_IS_READ */
function ERRFD_IS_READ(channel: Channel): boolean {
  return channel.extrabuf === null;
}

/** errfd is written (client stderr). @dropbear common-channel.c ERRFD_IS_WRITE */
function ERRFD_IS_WRITE(channel: Channel): boolean {
  return !ERRFD_IS_READ(channel);
}

/** A fd field for TRACE lines: the Fd's number or the C sentinel. */
function fdname(fd: chanfd): number {
  return chanfdIsOpen(fd) ? fd.fd : fd;
}

/**
 * Channel data bytes that are read back from the window every third of it: of the channel's own
 * window here, which may be less than opts.recv_window. @dropbear sysoptions.h RECV_WINDOWEXTEND
 */
function RECV_WINDOWEXTEND(channel: Channel): number {
  return Math.floor(channel.maxrecvwindow / 3);
}

/**
 * The receive window a new channel gets: opts.recv_window while the session's channels together
 * hold less than MAX_SESSION_RECV_WINDOW, else what is left of it, but never less than Dropbear's
 * default (or -W, if smaller). So one session can make us buffer at most about
 * MAX_SESSION_RECV_WINDOW + MAX_CHANNELS × DEFAULT_RECV_WINDOW (88 MiB) in channel rings, where
 * 1000 channels at a 1 MiB -W would be 1 GiB. Not in Dropbear, whose 24 KiB default keeps that
 * product small.
 */
function channel_recv_window(ses: sshsession): number {
  let granted = 0;
  for (const c of ses.channels) {
    if (c) {
      granted += c.maxrecvwindow;
    }
  }
  const left = MAX_SESSION_RECV_WINDOW - granted;
  return Math.min(ses.opts.recv_window, Math.max(DEFAULT_RECV_WINDOW, left));
}

/** An empty one-slot channel table and the types the peer may open; listeners too. @dropbear common-channel.c chaninitialise */
export function chaninitialise<S extends sshsession>(ses: S, chantypes: S["chantypes"]): void {
  ses.channels = [null];
  ses.chansize = 1;
  ses.chancount = 0;
  ses.chantypes = chantypes;
  listeners_initialise(ses);
}

/** Remove every channel (session cleanup). @dropbear common-channel.c chancleanup */
export function chancleanup(ses: sshsession): void {
  TRACE("enter chancleanup");
  for (let i = 0; i < ses.chansize; i++) {
    const channel = ses.channels[i];
    if (channel) {
      TRACE(() => `channel ${i} closing`);
      remove_channel(ses, channel);
    }
  }
  ses.channels = [];
  ses.chansize = 0;
  TRACE("leave chancleanup");
}

/**
 * Take the first free slot (growing the table up to MAX_CHANNELS) for a new channel. For our
 * own opens the remote side's numbers are 0 until confirmed. @dropbear common-channel.c newchannel
 */
function newchannel(ses: sshsession, remotechan: number, type: ChanType<never>, transwindow: number, transmaxpacket: number): Channel | null {
  TRACE("enter newchannel");
  let i = 0;
  while (i < ses.chansize && ses.channels[i] !== null) {
    i++;
  }
  if (i === ses.chansize) {
    if (ses.chansize >= MAX_CHANNELS) {
      TRACE("leave newchannel: max chans reached");
      return null;
    }
    for (let j = 0; j < CHAN_EXTEND_SIZE; j++) {
      ses.channels.push(null);
    }
    ses.chansize += CHAN_EXTEND_SIZE;
  }
  const newchan = new Channel(i, type, remotechan, transwindow, transmaxpacket, dropbear_prio.DROPBEAR_PRIO_NORMAL);
  newchan.maxrecvwindow = channel_recv_window(ses);
  newchan.writebuf = cbuf_new(newchan.maxrecvwindow);
  newchan.recvwindow = newchan.maxrecvwindow;
  newchan.recvmaxpacket = RECV_MAX_CHANNEL_DATA_LEN;
  ses.channels[i] = newchan;
  ses.chancount++;
  TRACE("leave newchannel");
  return newchan;
}

/**
 * The channel the current message names (a uint32 read from the payload); an unknown number
 * ends the session. @dropbear common-channel.c getchannel_msg
 */
function getchannel_msg(ses: sshsession, kind: string | null): Channel {
  const chan = buf_getint(ses.payload!);
  const channel = channel_by_index(ses, chan);
  if (channel === null) {
    if (kind !== null) {
      dropbear_exit(`${kind} for unknown channel ${chan}`);
    }
    dropbear_exit(`Unknown channel ${chan}`);
  }
  return channel;
}

/** Our channel with index `chan`, or null when no channel has it (never had, or removed). */
function channel_by_index(ses: sshsession, chan: number): Channel | null {
  return (chan < ses.chansize ? ses.channels[chan] : null) ?? null;
}

/** The channel the current message names. @dropbear common-channel.c getchannel */
export function getchannel(ses: sshsession): Channel {
  return getchannel_msg(ses, null);
}

/** At most this many reads of one channel fd per loop turn (see channelio). */
export const CHANNEL_READS_PER_TURN = 4;

/**
 * After select: read what is ready and send it, write out what the peer sent, then look at
 * closing; finally accept on listeners. @dropbear common-channel.c channelio
 */
export function channelio(ses: sshsession, readfds: ReadonlySet<Fd>, writefds: ReadonlySet<Fd>): void {
  for (let i = 0; i < ses.chansize; i++) {
    const channel = ses.channels[i];
    if (!channel) {
      continue;
    }
    let do_check_close = false;
    if (chanfdIsOpen(channel.readfd) && readfds.has(channel.readfd)) {
      TRACE("send normal readfd");
      send_msg_channel_data(ses, channel, false);
      // Beyond Dropbear (one read per select): while the fd has more, the window allows and
      // the write queue is under the mark setchannelfds uses, read again, so one loop turn
      // (and one gathered write) carries several packets. The queue bound stays that mark plus
      // one packet.
      for (
        let more = 1;
        more < CHANNEL_READS_PER_TURN &&
        chanfdIsOpen(channel.readfd) &&
        channel.transwindow > 0 &&
        ses.writequeue_len <= 2 * OUR_TRANS_MAX_PAYLOAD_LEN &&
        channel.readfd.readReady();
        more++
      ) {
        send_msg_channel_data(ses, channel, false);
      }
      do_check_close = true;
    }
    if (ERRFD_IS_READ(channel) && chanfdIsOpen(channel.errfd) && readfds.has(channel.errfd)) {
      TRACE("send normal errfd");
      send_msg_channel_data(ses, channel, true);
      do_check_close = true;
    }
    if (chanfdIsOpen(channel.writefd) && writefds.has(channel.writefd)) {
      writechannel(ses, channel, channel.writefd, channel.writebuf!, null);
      do_check_close = true;
    }
    if (ERRFD_IS_WRITE(channel) && chanfdIsOpen(channel.errfd) && writefds.has(channel.errfd)) {
      writechannel(ses, channel, channel.errfd, channel.extrabuf!, null);
      do_check_close = true;
    }
    // A child exit (server sessions) can change what a channel may do.
    if (ses.channel_signal_pending) {
      do_check_close = true;
    }
    if (do_check_close) {
      check_close(ses, channel);
    }
  }
  handle_listeners(ses, readfds);
}

/** Data from the peer is still waiting for a local fd that is open. @dropbear common-channel.c write_pending */
function write_pending(channel: Channel): boolean {
  if (chanfdIsOpen(channel.writefd) && channel.writebuf !== null && cbuf_getused(channel.writebuf) > 0) {
    return true;
  }
  return chanfdIsOpen(channel.errfd) && channel.extrabuf !== null && cbuf_getused(channel.extrabuf) > 0;
}

/** Something could be read from fd now (C asks select() with no timeout). @dropbear dbutil.c fd_read_pending */
function fd_read_pending(fd: StreamFd): boolean {
  return fd.readReady();
}

/**
 * The EOF/CLOSE state machine: half-close the local side once the peer's EOF is written out,
 * send EOF once nothing more will be read, CLOSE once nothing moves either way, and remove the
 * channel once both CLOSEs have passed. @dropbear common-channel.c check_close
 */
function check_close(ses: sshsession, channel: Channel): void {
  TRACE2(
    () =>
      `check_close: writefd ${fdname(channel.writefd)}, readfd ${fdname(channel.readfd)}, errfd ${fdname(channel.errfd)}, sent_close ${channel.sent_close}, recv_close ${channel.recv_close}`,
  );
  // A type's own check (a server session waits for its child) holds the close back.
  const close_allowed = channel.type.check_close === null || channel.sent_close || sesCall(ses, channel.type.check_close, channel);

  // Flushing: once the child is gone, read fds close as soon as they run dry, EOF or not.
  if (channel.flushing) {
    if (chanfdIsOpen(channel.readfd) && !fd_read_pending(channel.readfd)) {
      close_chan_fd(ses, channel, channel.readfd, SHUT_RD);
    }
    if (ERRFD_IS_READ(channel) && chanfdIsOpen(channel.errfd) && !fd_read_pending(channel.errfd)) {
      close_chan_fd(ses, channel, channel.errfd, SHUT_RD);
    }
  }

  if (channel.recv_close && !write_pending(channel) && close_allowed) {
    if (!channel.sent_close) {
      TRACE("Sending MSG_CHANNEL_CLOSE in response to same.");
      send_msg_channel_close(ses, channel);
    }
    remove_channel(ses, channel);
    return;
  }

  if ((channel.recv_eof && !write_pending(channel)) || (channel.writefd !== FD_UNINIT && channel.type.check_close !== null && close_allowed)) {
    close_chan_fd(ses, channel, channel.writefd, SHUT_WR);
  }

  // C's one pty master fd closes with the write side: after the peer's CLOSE ours goes too, so
  // the command is hung up rather than left running on a channel nobody reads.
  if (channel.recv_close && channel.writefd_dups_readfd && channel.writefd === FD_CLOSED && chanfdIsOpen(channel.readfd)) {
    close_chan_fd(ses, channel, channel.readfd, SHUT_RD);
  }
  // Beyond Dropbear, as OpenSSH's chan_rcvd_oclose: the peer's CLOSE ends our reading of the
  // command's pipes. C keeps them open for a session until its child exits (close_allowed),
  // and a child that writes on (`dbclient host yes | head`) then waits forever for window the
  // peer will never give; closed, it gets SIGPIPE, and its end is reported and the CLOSE
  // answered as when it exits by itself. (A channel whose close is allowed is removed above
  // once its writes are out.)
  if (channel.recv_close && !close_allowed && !channel.writefd_dups_readfd) {
    if (chanfdIsOpen(channel.readfd)) {
      close_chan_fd(ses, channel, channel.readfd, SHUT_RD);
    }
    if (ERRFD_IS_READ(channel) && chanfdIsOpen(channel.errfd)) {
      close_chan_fd(ses, channel, channel.errfd, SHUT_RD);
    }
  }

  if (!channel.sent_eof && channel.readfd === FD_CLOSED && (ERRFD_IS_WRITE(channel) || channel.errfd === FD_CLOSED)) {
    send_msg_channel_eof(ses, channel);
  }

  if (
    channel.readfd === FD_CLOSED &&
    channel.writefd === FD_CLOSED &&
    (ERRFD_IS_WRITE(channel) || channel.errfd === FD_CLOSED) &&
    !channel.sent_close &&
    close_allowed &&
    !write_pending(channel)
  ) {
    TRACE("sending close, readfd is closed");
    send_msg_channel_close(ses, channel);
  }
}

/**
 * The outbound connection for a channel the peer opened finished: confirm the open with the
 * socket as the channel's fds, or refuse it with the error text and drop the channel.
 * @dropbear common-channel.c channel_connect_done
 */
export function channel_connect_done(ses: sshsession, result: number, sock: StreamFd | null, channel: Channel, errstring: string | null): void {
  TRACE("enter channel_connect_done");
  if (channel.sent_close) {
    // Beyond Dropbear: the peer's EOF while connecting already made us send EOF and CLOSE
    // (check_close takes FD_UNINIT for closed), so the socket comes too late to be used. C
    // would confirm the open and then fail `!channel->sent_close` on the first read, ending
    // the session; we drop the socket and wait for the peer's CLOSE. docs/deviations.md.
    channel.conn_pending = null;
    sock?.close();
    TRACE("leave channel_connect_done: channel already closed");
    return;
  }
  if (result === DROPBEAR_SUCCESS && sock !== null) {
    channel.readfd = sock;
    channel.writefd = sock;
    channel.bidir_fd = true;
    channel.conn_pending = null;
    send_msg_channel_open_confirmation(ses, channel, channel.recvwindow, channel.recvmaxpacket);
    TRACE("leave channel_connect_done: success");
  } else {
    send_msg_channel_open_failure(ses, channel.remotechan, SSH_OPEN_CONNECT_FAILED, errstring ?? "", "");
    remove_channel(ses, channel);
    TRACE(() => `leave check_in_progress: fail. internal errstring: ${errstring}`);
  }
}

/** Send CLOSE (after the type's closehandler) and close every local fd. @dropbear common-channel.c send_msg_channel_close */
export function send_msg_channel_close(ses: sshsession, channel: Channel): void {
  TRACE("enter send_msg_channel_close");
  if (channel.type.closehandler !== null) {
    sesCall(ses, channel.type.closehandler, channel);
  }
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_CLOSE);
  buf_putint(ses.writepayload, channel.remotechan);
  encrypt_packet(ses);
  channel.sent_eof = true;
  channel.sent_close = true;
  close_chan_fd(ses, channel, channel.readfd, SHUT_RD);
  close_chan_fd(ses, channel, channel.errfd, SHUT_RDWR);
  close_chan_fd(ses, channel, channel.writefd, SHUT_WR);
  TRACE("leave send_msg_channel_close");
}

/** Tell the peer we will send no more data. @dropbear common-channel.c send_msg_channel_eof */
function send_msg_channel_eof(ses: sshsession, channel: Channel): void {
  TRACE("enter send_msg_channel_eof");
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_EOF);
  buf_putint(ses.writepayload, channel.remotechan);
  encrypt_packet(ses);
  channel.sent_eof = true;
  TRACE("leave send_msg_channel_eof");
}

/**
 * One gathered write of the ring's contents and then `moredata` (a packet's data that need not
 * be copied into the ring first). Returns how much of moredata went out; a write error
 * half-closes the fd. @dropbear common-channel.c writechannel_writev
 */
function writechannel_writev(ses: sshsession, channel: Channel, fd: StreamFd, cbuf: circbuffer, moredata: Buffer | null): { ret: number; consumed: number } {
  const { p1, p2 } = cbuf_readptrs(cbuf);
  const iov: Buffer[] = [];
  // Ring bytes are copied (their memory is reused), both parts into one chunk the fd keeps for
  // such copies (`staging`); at most WRITECHANNEL_CHUNK per call.
  const ringlen = Math.min(p1.length + p2.length, WRITECHANNEL_CHUNK);
  if (ringlen > 0) {
    TRACE(() => `circ ${ringlen}`);
    const copy = fd.staging(ringlen);
    const len1 = Math.min(p1.length, ringlen);
    copy.set(p1.subarray(0, len1));
    if (ringlen > len1) {
      copy.set(p2.subarray(0, ringlen - len1), len1);
    }
    iov.push(copy);
  }
  // The packet's data may follow only if all the ring's data goes ahead of it.
  const withmore = moredata !== null && moredata.length > 0 && ringlen === p1.length + p2.length;
  if (withmore) {
    TRACE(() => `more ${moredata.length}`);
    iov.push(moredata);
  }
  if (iov.length === 0) {
    // Called twice in one iteration (on receipt, then from channelio) with nothing left.
    TRACE("leave writechannel, no data");
    return { ret: DROPBEAR_SUCCESS, consumed: 0 };
  }
  let written: number;
  try {
    written = fd.writev(iov);
  } catch (e) {
    // A failed write handed nothing over, so the slab is free again.
    if (ringlen > 0) {
      fd.unstage();
    }
    if (!(e instanceof FdError)) {
      throw e;
    }
    TRACE(() => `channel IO write error fd ${fd.fd} ${e.message}`);
    close_chan_fd(ses, channel, fd, SHUT_WR);
    return { ret: DROPBEAR_FAILURE, consumed: 0 };
  }
  if (ringlen > 0 && written === 0) {
    fd.unstage();
  }
  const cbuf_written = Math.min(ringlen, written);
  cbuf_incrread(cbuf, cbuf_written);
  channel.recvdonelen += written;
  return { ret: DROPBEAR_SUCCESS, consumed: written - cbuf_written };
}

/**
 * Write peer data out to the local fd, then reopen the peer's window by what was written once
 * that reaches a third of our window, while the channel is not closing.
 * @dropbear common-channel.c writechannel
 */
function writechannel(ses: sshsession, channel: Channel, fd: StreamFd, cbuf: circbuffer, moredata: Buffer | null): { ret: number; consumed: number } {
  TRACE(() => `enter writechannel fd ${fd.fd}`);
  const res = writechannel_writev(ses, channel, fd, cbuf, moredata);
  // C also adjusts while it writes out what came before the peer's CLOSE. No more data can come
  // then, and a peer that forgot the channel at its CLOSE (Erlang/OTP's daemon) takes the
  // adjust for an unknown channel and disconnects: with our 2 MiB window, before the last of
  // the output is written. OpenSSH sends none after a CLOSE either way.
  if (channel.recvdonelen >= RECV_WINDOWEXTEND(channel) && !channel.recv_close && !channel.sent_close) {
    send_msg_channel_window_adjust(ses, channel, channel.recvdonelen);
    channel.recvwindow += channel.recvdonelen;
    channel.recvdonelen = 0;
  }
  dropbear_assert(channel.recvwindow <= channel.maxrecvwindow, "channel->recvwindow <= opts.recv_window");
  dropbear_assert(channel.recvwindow <= cbuf_getavail(channel.writebuf!), "channel->recvwindow <= cbuf_getavail(channel->writebuf)");
  dropbear_assert(channel.extrabuf === null || channel.recvwindow <= cbuf_getavail(channel.extrabuf), "channel->recvwindow <= cbuf_getavail(channel->extrabuf)");
  TRACE("leave writechannel");
  return res;
}

/**
 * Add to the select sets what each channel can do now: read local data while the peer's
 * window is open and we may send, write out what the peer sent; then the listeners.
 * `allow_reads` is false while our transport write queue is full: local reads pause so our
 * memory stays bounded (see session_loop for why the transport itself is still read).
 * @dropbear common-channel.c setchannelfds
 */
export function setchannelfds(ses: sshsession, readfds: Set<Fd>, writefds: Set<Fd>, allow_reads: boolean): void {
  const share = Math.floor(MAX_SESSION_READ_AHEAD / Math.max(1, readAheadFds(ses, allow_reads)));
  for (let i = 0; i < ses.chansize; i++) {
    const channel = ses.channels[i];
    if (!channel) {
      continue;
    }
    // What may be read ahead of the loop follows: nothing while the channel may not send, as C
    // leaves such an fd unread in the kernel, and while it may, no more than its window and
    // the fd's share of the session's read-ahead.
    const readable = channelMaySend(ses, channel, allow_reads);
    const readAhead = readable ? Math.min(channel.transwindow, share) : 0;
    if (chanfdIsOpen(channel.readfd)) {
      channel.readfd.setReadAhead(readAhead);
      if (readable) {
        readfds.add(channel.readfd);
      }
    }
    if (ERRFD_IS_READ(channel) && chanfdIsOpen(channel.errfd)) {
      channel.errfd.setReadAhead(readAhead);
      if (readable) {
        readfds.add(channel.errfd);
      }
    }
    if (chanfdIsOpen(channel.writefd) && cbuf_getused(channel.writebuf!) > 0) {
      writefds.add(channel.writefd);
    }
    if (ERRFD_IS_WRITE(channel) && chanfdIsOpen(channel.errfd) && cbuf_getused(channel.extrabuf!) > 0) {
      writefds.add(channel.errfd);
    }
  }
  set_listener_fds(ses, readfds);
}

/**
 * Whether the loop reads a channel's fds this turn. No sending during a key exchange, except
 * through a read_mangler (the client's "~."). Beyond Dropbear: nor to a peer whose maximum
 * packet is 0, to which no data can go; polled, the fd stayed ready and the loop spun (C's does).
 */
function channelMaySend(ses: sshsession, channel: Channel, allow_reads: boolean): boolean {
  return channel.transwindow > 0 && channel.transmaxpacket > 0 && ((ses.dataallowed && allow_reads) || channel.read_mangler !== null);
}

/** The channel fds setchannelfds lets read this turn, among which MAX_SESSION_READ_AHEAD is shared. */
function readAheadFds(ses: sshsession, allow_reads: boolean): number {
  let n = 0;
  for (let i = 0; i < ses.chansize; i++) {
    const channel = ses.channels[i];
    if (channel && channelMaySend(ses, channel, allow_reads)) {
      n += (chanfdIsOpen(channel.readfd) ? 1 : 0) + (ERRFD_IS_READ(channel) && chanfdIsOpen(channel.errfd) ? 1 : 0);
    }
  }
  return n;
}

/** The peer sends no more data: the local side is half-closed once its data is out. @dropbear common-channel.c recv_msg_channel_eof */
export function recv_msg_channel_eof(ses: sshsession): void {
  TRACE("enter recv_msg_channel_eof");
  const channel = getchannel_msg(ses, "EOF");
  channel.recv_eof = true;
  check_close(ses, channel);
  TRACE("leave recv_msg_channel_eof");
}

/** The peer closed the channel: answer in kind once our side has finished. @dropbear common-channel.c recv_msg_channel_close */
export function recv_msg_channel_close(ses: sshsession): void {
  TRACE("enter recv_msg_channel_close");
  const channel = getchannel_msg(ses, "Close");
  channel.recv_eof = true;
  channel.recv_close = true;
  check_close(ses, channel);
  TRACE("leave recv_msg_channel_close");
}

/**
 * TS-only: give the local side what the peer sent that a channel still holds, as the session
 * ends (remove_channel). C's rings hold at most its 24 KiB window, ours up to `-W`'s 2 MiB: a
 * peer that sends data, EOF and CLOSE and then drops the connection (JSch's disconnect) lost the
 * end of an upload, and dbclient the end of the output when a server disconnected.
 */
function handOverRings(channel: Channel): void {
  for (const [cbuf, fd] of [
    [channel.writebuf, channel.writefd],
    [channel.extrabuf, channel.errfd],
  ] as const) {
    if (cbuf === null || cbuf_getused(cbuf) === 0 || !chanfdIsOpen(fd)) {
      continue;
    }
    const { p1, p2 } = cbuf_readptrs(cbuf);
    // Copies: the ring's memory is reused.
    if (fd.handOver([Buffer.from(p1), Buffer.from(p2)].filter((b) => b.length > 0))) {
      TRACE(() => `handed ${p1.length + p2.length} ring bytes to fd ${fd.fd}`);
      cbuf_incrread(cbuf, p1.length + p2.length);
    }
  }
}

/** Give every channel's local side what the peer sent that its rings still hold (handOverRings): before an exiting client's last flush. */
export function handOverPeerData(ses: sshsession): void {
  for (const channel of ses.channels) {
    if (channel !== null) {
      handOverRings(channel);
    }
  }
}

/** Whether a Node stream is our own stdout, which the client never closes. */
function isStdout(fd: chanfd): boolean {
  return chanfdIsOpen(fd) && fd.stream === process.stdout;
}

/**
 * Free the channel: its rings, its fds, its type's state and any connect still pending.
 * @dropbear common-channel.c remove_channel
 */
export function remove_channel(ses: sshsession, channel: Channel): void {
  TRACE("enter remove_channel");
  TRACE(() => `channel index is ${channel.index}`);
  handOverRings(channel);
  if (channel.writebuf !== null) {
    cbuf_free(channel.writebuf);
    channel.writebuf = null;
  }
  if (channel.extrabuf !== null) {
    cbuf_free(channel.extrabuf);
    channel.extrabuf = null;
  }
  if (ses.isserver || !isStdout(channel.writefd)) {
    // Shut-down sockets may still be open; closing twice is harmless.
    for (const fd of [channel.writefd, channel.readfd, channel.errfd]) {
      if (chanfdIsOpen(fd)) {
        TRACE(() => `CLOSE fd ${fd.fd}`);
        fd.close();
      }
    }
  }
  if (channel.type.cleanup !== null) {
    sesCall(ses, channel.type.cleanup, channel);
  }
  if (channel.conn_pending !== null) {
    cancel_connect(channel.conn_pending);
  }
  ses.channels[channel.index] = null;
  ses.chancount--;
  update_channel_prio(ses);
  TRACE("leave remove_channel");
}

/** Pass a channel request to the type's handler, or refuse it. @dropbear common-channel.c recv_msg_channel_request */
export function recv_msg_channel_request(ses: sshsession): void {
  const channel = getchannel(ses);
  TRACE(() => `enter recv_msg_channel_request ${channel.index}`);
  if (channel.type.reqhandler !== null) {
    sesCall(ses, channel.type.reqhandler, channel);
  } else {
    buf_eatstring(ses.payload!);
    const wantreply = buf_getbool(ses.payload!);
    if (wantreply) {
      send_msg_channel_failure(ses, channel);
    }
  }
  TRACE("leave recv_msg_channel_request");
}

/**
 * Read what the local fd (or stderr) has, up to the peer's window and packet size, and send it
 * as one DATA or EXTENDED_DATA packet. EOF or a read error half-closes the fd.
 * @dropbear common-channel.c send_msg_channel_data
 */
function send_msg_channel_data(ses: sshsession, channel: Channel, isextended: boolean): void {
  TRACE("enter send_msg_channel_data");
  dropbear_assert(!channel.sent_close, "!channel->sent_close");
  const fd = isextended ? channel.errfd : channel.readfd;
  TRACE(() => `enter send_msg_channel_data isextended ${isextended} fd ${fdname(fd)}`);
  dropbear_assert(chanfdIsOpen(fd), "fd >= 0");
  const wp = ses.writepayload;
  let maxlen = Math.min(channel.transwindow, channel.transmaxpacket);
  // Room for the message type, channel number, string length and (extended) the data type.
  maxlen = Math.min(maxlen, wp.size - 1 - 4 - 4 - (isextended ? 4 : 0));
  TRACE(() => `maxlen ${maxlen}`);
  if (maxlen <= 0) {
    TRACE("leave send_msg_channel_data: no window");
    return;
  }
  buf_putbyte(wp, isextended ? SSH_MSG_CHANNEL_EXTENDED_DATA : SSH_MSG_CHANNEL_DATA);
  buf_putint(wp, channel.remotechan);
  if (isextended) {
    buf_putint(wp, SSH_EXTENDED_DATA_STDERR);
  }
  // Beyond Dropbear: what waits in one piece in the fd's read ring (a socket's) is not read
  // into the payload but handed to encrypt_packet where it is, to go into the packet through
  // the cipher (encrypt_packet copies it into the payload where it cannot); consumed once sealed.
  const waiting = channel.read_mangler === null ? fd.peekRead() : null;
  if (waiting !== null && waiting.length > 0) {
    const len = Math.min(waiting.length, maxlen);
    TRACE(() => `send_msg_channel_data: len ${len} fd ${fd.fd}`);
    buf_putint(wp, len);
    channel.transwindow -= len;
    encrypt_packet(ses, waiting.subarray(0, len));
    fd.skipRead(len);
    TRACE("leave send_msg_channel_data");
    return;
  }
  // A dummy size first; the data is read straight into the payload after it.
  const size_pos = wp.pos;
  buf_putint(wp, 0);
  let len: number | null;
  let err: FdError | null = null;
  try {
    len = fd.readInto(buf_getwriteptr(wp, maxlen), 0, maxlen);
  } catch (e) {
    if (!(e instanceof FdError)) {
      throw e;
    }
    len = 0;
    err = e;
  }
  if (len === null || len === 0) {
    buf_setpos(wp, 0);
    buf_setlen(wp, 0);
    if (len === null) {
      // Our readiness can be stale (a 'readable' event already consumed), so EAGAIN is not
      // taken as EOF here as Dropbear does: the next select tells.
      TRACE("leave send_msg_channel_data: EAGAIN");
      return;
    }
    close_chan_fd(ses, channel, fd, SHUT_RD);
    TRACE(() => `leave send_msg_channel_data: read err ${err?.code ?? 0} or EOF for fd ${fd.fd}`);
    return;
  }
  if (channel.read_mangler !== null) {
    len = channel.read_mangler(channel, buf_getwriteptr(wp, len));
    if (len === 0) {
      buf_setpos(wp, 0);
      buf_setlen(wp, 0);
      return;
    }
  }
  TRACE(() => `send_msg_channel_data: len ${len} fd ${fd.fd}`);
  buf_incrwritepos(wp, len);
  // ... the real size here.
  buf_setpos(wp, size_pos);
  buf_putint(wp, len);
  channel.transwindow -= len;
  encrypt_packet(ses);
  TRACE("leave send_msg_channel_data");
}

/** CHANNEL_DATA: queue it for the channel's writefd. @dropbear common-channel.c recv_msg_channel_data */
export function recv_msg_channel_data(ses: sshsession): void {
  const channel = getchannel(ses);
  common_recv_msg_channel_data(ses, channel, channel.writefd, channel.writebuf);
}

/**
 * Data (or stderr data) from the peer: write it out at once if the fd takes it, keep the rest
 * in the ring. More than the ring can hold breaks the window contract and ends the session.
 * @dropbear common-channel.c common_recv_msg_channel_data
 */
export function common_recv_msg_channel_data(ses: sshsession, channel: Channel, fd: chanfd, cbuf: circbuffer | null): void {
  TRACE("enter recv_msg_channel_data");
  if (channel.recv_eof) {
    dropbear_exit("Received data after eof");
  }
  if (!chanfdIsOpen(fd) || cbuf === null) {
    // After a failed write the peer may still send before it sees our close: drop it.
    return;
  }
  const payload = ses.payload!;
  let datalen = buf_getint(payload);
  TRACE(() => `length ${datalen}`);
  const maxdata = cbuf_getavail(cbuf);
  // Dropping what does not fit would silently corrupt the stream; Dropbear ends the session.
  if (datalen > maxdata) {
    dropbear_exit("Oversized packet");
  }
  // C asserts this; a peer that ignores our window can break it (the ring may still have room
  // when the fd took earlier data at once), so it gets a reason rather than a failed assertion.
  if (datalen > channel.recvwindow) {
    dropbear_exit("Received data beyond the window");
  }
  channel.recvwindow -= datalen;
  dropbear_assert(channel.recvwindow <= channel.maxrecvwindow, "channel->recvwindow <= opts.recv_window");

  // The payload's bytes go out without a copy to the kernel; the read slab they are in then
  // waits until the stream has written them. A stream within the process may keep the Buffer
  // itself (for its reader), and the slab is reused: it gets a copy.
  const data = buf_getptr(payload, datalen);
  const { ret, consumed } = writechannel(ses, channel, fd, cbuf, fd.writesToKernel ? data : Buffer.from(data));
  if (consumed > 0 && fd.writesToKernel && fd.writePending > 0) {
    payloadHeldBy(ses, fd);
  }
  datalen -= consumed;
  buf_incrpos(payload, consumed);
  if (ret === DROPBEAR_SUCCESS) {
    let len = datalen;
    while (len > 0) {
      const buflen = Math.min(cbuf_writelen(cbuf), len);
      buf_getptr(payload, buflen).copy(cbuf_writeptr(cbuf, buflen));
      cbuf_incrwrite(cbuf, buflen);
      buf_incrpos(payload, buflen);
      len -= buflen;
    }
  } else {
    // Beyond Dropbear: the write failed and closed the fd here, where channelio's check_close
    // does not follow. C leaves such a channel (its local peer reset, its read side closed
    // before) without the CLOSE it now owes, for ever if the peer waits for a window.
    check_close(ses, channel);
  }
  TRACE("leave recv_msg_channel_data");
}

/**
 * The peer lets us send more on a channel; a sum past 2^32-1 is clamped, and an adjust for a
 * channel we no longer have is ignored. @dropbear common-channel.c recv_msg_channel_window_adjust
 */
export function recv_msg_channel_window_adjust(ses: sshsession): void {
  // Beyond Dropbear, as OpenSSH: an adjust for a channel already removed is dropped, not
  // fatal. Threaded clients (paramiko) can send one behind their own CLOSE when a reader
  // consumes the last data as the close is answered; with many channels ending at once
  // Dropbear's exit here ended the whole connection.
  const chan = buf_getint(ses.payload!);
  const channel = channel_by_index(ses, chan);
  if (channel === null) {
    TRACE(() => `window adjust for unknown channel ${chan}, ignored`);
    return;
  }
  const incr = buf_getint(ses.payload!);
  TRACE(() => `received window increment ${incr}`);
  let newwin = channel.transwindow + incr;
  if (newwin > 0xffffffff) {
    // Senders must not overflow (RFC 4254 §5.2); Dropbear clamps rather than wrap.
    TRACE(() => `overflow window, prev ${channel.transwindow}`);
    newwin = 0xffffffff;
  }
  channel.transwindow = newwin;
}

/** Give the peer `incr` more bytes of window. @dropbear common-channel.c send_msg_channel_window_adjust */
function send_msg_channel_window_adjust(ses: sshsession, channel: Channel, incr: number): void {
  TRACE(() => `sending window adjust ${incr}`);
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_WINDOW_ADJUST);
  buf_putint(ses.writepayload, channel.remotechan);
  buf_putint(ses.writepayload, incr);
  encrypt_packet(ses);
}

/**
 * The peer opens a channel: find its type, make the channel, run the type's inithandler, and
 * confirm, refuse, or (connect in progress) answer later from channel_connect_done.
 * @dropbear common-channel.c recv_msg_channel_open
 */
export function recv_msg_channel_open(ses: sshsession): void {
  TRACE("enter recv_msg_channel_open");
  const payload = ses.payload!;
  const type = buf_getstring(payload);
  const remotechan = buf_getint(payload);
  const transwindow = buf_getint(payload);
  const transmaxpacket = Math.min(buf_getint(payload), OUR_TRANS_MAX_PAYLOAD_LEN);
  let errtype = SSH_OPEN_UNKNOWN_CHANNEL_TYPE;

  failure: {
    if (type.length > MAX_NAME_LEN) {
      break failure;
    }
    // strcmp stops at a NUL: so does the name we compare.
    const nul = type.indexOf(0);
    const typename = (nul >= 0 ? type.subarray(0, nul) : type).toString("latin1");
    const chantype = ses.chantypes.find((t) => t.name === typename);
    if (chantype === undefined) {
      TRACE(() => `No matching type for '${typename}'`);
      break failure;
    }
    TRACE(() => `matched type '${typename}'`);
    const channel = newchannel(ses, remotechan, chantype, transwindow, transmaxpacket);
    if (channel === null) {
      TRACE("newchannel returned NULL");
      errtype = SSH_OPEN_RESOURCE_SHORTAGE;
      break failure;
    }
    if (chantype.inithandler !== null) {
      const ret = sesCall(ses, chantype.inithandler, channel);
      if (ret === SSH_OPEN_IN_PROGRESS) {
        TRACE("leave recv_msg_channel_open");
        return;
      }
      if (ret > 0) {
        errtype = ret;
        remove_channel(ses, channel);
        TRACE(() => `inithandler returned failure ${ret}`);
        break failure;
      }
    }
    update_channel_prio(ses);
    send_msg_channel_open_confirmation(ses, channel, channel.recvwindow, channel.recvmaxpacket);
    TRACE("leave recv_msg_channel_open");
    return;
  }

  TRACE("recv_msg_channel_open failure");
  send_msg_channel_open_failure(ses, remotechan, errtype, "", "");
  TRACE("leave recv_msg_channel_open");
}

/** Refuse a channel request (not after our CLOSE). @dropbear common-channel.c send_msg_channel_failure */
export function send_msg_channel_failure(ses: sshsession, channel: Channel): void {
  TRACE("enter send_msg_channel_failure");
  if (channel.sent_close) {
    TRACE("Skipping sending msg_channel_failure for closed channel");
    return;
  }
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_FAILURE);
  buf_putint(ses.writepayload, channel.remotechan);
  encrypt_packet(ses);
  TRACE("leave send_msg_channel_failure");
}

/** Accept a channel request (not after our CLOSE). @dropbear common-channel.c send_msg_channel_success */
export function send_msg_channel_success(ses: sshsession, channel: Channel): void {
  TRACE("enter send_msg_channel_success");
  if (channel.sent_close) {
    TRACE("Skipping sending msg_channel_success for closed channel");
    return;
  }
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_SUCCESS);
  buf_putint(ses.writepayload, channel.remotechan);
  encrypt_packet(ses);
  TRACE("leave send_msg_channel_success");
}

/** Refuse the peer's channel open with a reason code and text. @dropbear common-channel.c send_msg_channel_open_failure */
export function send_msg_channel_open_failure(ses: sshsession, remotechan: number, reason: number, text: string, lang: string): void {
  TRACE("enter send_msg_channel_open_failure");
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_OPEN_FAILURE);
  buf_putint(ses.writepayload, remotechan);
  buf_putint(ses.writepayload, reason);
  buf_putstring(ses.writepayload, text);
  buf_putstring(ses.writepayload, lang);
  encrypt_packet(ses);
  TRACE("leave send_msg_channel_open_failure");
}

/** Confirm the peer's channel open with our number, window and packet size. @dropbear common-channel.c send_msg_channel_open_confirmation */
function send_msg_channel_open_confirmation(ses: sshsession, channel: Channel, recvwindow: number, recvmaxpacket: number): void {
  TRACE("enter send_msg_channel_open_confirmation");
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
  buf_putint(ses.writepayload, channel.remotechan);
  buf_putint(ses.writepayload, channel.index);
  buf_putint(ses.writepayload, recvwindow);
  buf_putint(ses.writepayload, recvmaxpacket);
  encrypt_packet(ses);
  TRACE("leave send_msg_channel_open_confirmation");
}

/**
 * Close one direction of a channel's local side. A socket used both ways is shut down (SHUT_RD
 * stops reading, SHUT_WR sends EOF) and really closed only once every field is closed; any
 * other fd is closed at once. @dropbear common-channel.c close_chan_fd
 */
function close_chan_fd(_ses: sshsession, channel: Channel, fd: chanfd, how: number): void {
  let closein = false;
  let closeout = false;
  if (channel.bidir_fd) {
    TRACE(() => `SHUTDOWN(${fdname(fd)}, ${how})`);
    if (chanfdIsOpen(fd)) {
      if (how === SHUT_RD || how === SHUT_RDWR) {
        fd.shutdownRead();
      }
      if (how === SHUT_WR || how === SHUT_RDWR) {
        fd.shutdownWrite();
      }
    }
    if (how === SHUT_RD) {
      closeout = true;
    } else {
      closein = true;
    }
  } else {
    TRACE(() => `CLOSE some fd ${fdname(fd)}`);
    if (chanfdIsOpen(fd)) {
      fd.close();
    }
    closein = closeout = true;
  }
  // "out" is the direction towards the peer (readfd), "in" the one from it (writefd).
  if (closeout && fd === channel.readfd) {
    channel.readfd = FD_CLOSED;
  }
  if (closeout && ERRFD_IS_READ(channel) && fd === channel.errfd) {
    channel.errfd = FD_CLOSED;
  }
  if (closein && fd === channel.writefd) {
    channel.writefd = FD_CLOSED;
  }
  if (closein && ERRFD_IS_WRITE(channel) && fd === channel.errfd) {
    channel.errfd = FD_CLOSED;
  }
  if (channel.bidir_fd && channel.readfd === FD_CLOSED && channel.writefd === FD_CLOSED && channel.errfd === FD_CLOSED) {
    TRACE(() => `CLOSE (finally) of ${fdname(fd)}`);
    if (chanfdIsOpen(fd)) {
      fd.close();
    }
  }
}

/**
 * Make a channel for a local socket (or FD_UNINIT: dbclient's session and netcat channels, whose
 * stdio their inithandler opens once the peer confirms) and start its CHANNEL_OPEN in
 * ses.writepayload; the caller appends the type's fields and calls encrypt_packet.
 * DROPBEAR_FAILURE when no channel slot is free. @dropbear common-channel.c send_msg_channel_open_init
 */
export function send_msg_channel_open_init<S extends sshsession>(ses: S, fd: chanfd, type: ChanType<S>, typedata: unknown = null): number {
  TRACE("enter send_msg_channel_open_init()");
  const chan = newchannel(ses, 0, type, 0, 0);
  if (chan === null) {
    TRACE("leave send_msg_channel_open_init() - FAILED in newchannel()");
    return DROPBEAR_FAILURE;
  }
  // Beyond C: a library caller's channel carries its streams and callbacks from the start.
  chan.typedata = typedata;
  // Our own opens have their socket already (or none yet, FD_UNINIT): no connect to wait for.
  chan.writefd = fd;
  chan.readfd = fd;
  chan.bidir_fd = true;
  chan.await_open = true;
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_OPEN);
  buf_putstring(ses.writepayload, type.name);
  buf_putint(ses.writepayload, chan.index);
  buf_putint(ses.writepayload, chan.recvwindow);
  buf_putint(ses.writepayload, RECV_MAX_CHANNEL_DATA_LEN);
  TRACE("leave send_msg_channel_open_init()");
  return DROPBEAR_SUCCESS;
}

/** The peer accepted our channel open: learn its number and window, run the inithandler. @dropbear common-channel.c recv_msg_channel_open_confirmation */
export function recv_msg_channel_open_confirmation(ses: sshsession): void {
  TRACE("enter recv_msg_channel_open_confirmation");
  const channel = getchannel(ses);
  if (!channel.await_open) {
    dropbear_exit("Unexpected channel reply");
  }
  channel.await_open = false;
  const payload = ses.payload!;
  channel.remotechan = buf_getint(payload);
  channel.transwindow = buf_getint(payload);
  channel.transmaxpacket = buf_getint(payload);
  TRACE(() => `new chan remote ${channel.remotechan} local ${channel.index}`);
  if (channel.type.inithandler !== null) {
    const ret = sesCall(ses, channel.type.inithandler, channel);
    if (ret > 0) {
      remove_channel(ses, channel);
      TRACE(() => `inithandler returned failure ${ret}`);
      return;
    }
  }
  update_channel_prio(ses);
  TRACE("leave recv_msg_channel_open_confirmation");
}

/** The peer refused our channel open: drop the channel and its socket. @dropbear common-channel.c recv_msg_channel_open_failure */
export function recv_msg_channel_open_failure(ses: sshsession): void {
  const channel = getchannel(ses);
  if (!channel.await_open) {
    dropbear_exit("Unexpected channel reply");
  }
  channel.await_open = false;
  const openfailed = channel.type.openfailed;
  if (openfailed !== undefined) {
    // Read only for a type that reports it, and never fatal: Dropbear takes a bare FAILURE too.
    const payload = ses.payload!;
    let reason = 0;
    let text = "";
    try {
      reason = buf_getint(payload);
      text = cleantext(buf_getstring(payload), false);
    } catch {
      // A shorter message: what was there is reported.
    }
    sesCall(ses, openfailed, channel, reason, text);
  }
  remove_channel(ses, channel);
}

/** Answer a global request with success. @dropbear common-channel.c send_msg_request_success */
export function send_msg_request_success(ses: sshsession): void {
  buf_putbyte(ses.writepayload, SSH_MSG_REQUEST_SUCCESS);
  encrypt_packet(ses);
}

/** Answer a global request with failure. @dropbear common-channel.c send_msg_request_failure */
export function send_msg_request_failure(ses: sshsession): void {
  buf_putbyte(ses.writepayload, SSH_MSG_REQUEST_FAILURE);
  encrypt_packet(ses);
}

/** A channel that is open both ways and not still opening (for keepalives), or null. @dropbear common-channel.c get_any_ready_channel */
export function get_any_ready_channel(ses: sshsession): Channel | null {
  if (ses.chancount === 0) {
    return null;
  }
  for (let i = 0; i < ses.chansize; i++) {
    const chan = ses.channels[i];
    if (chan && !(chan.sent_eof || chan.recv_eof) && !chan.await_open) {
      return chan;
    }
  }
  return null;
}

/** Begin a CHANNEL_REQUEST of `type`; the caller adds want_reply and the rest. @dropbear common-channel.c start_send_channel_request */
export function start_send_channel_request(ses: sshsession, channel: Channel, type: string): void {
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_REQUEST);
  buf_putint(ses.writepayload, channel.remotechan);
  buf_putstring(ses.writepayload, type);
}
