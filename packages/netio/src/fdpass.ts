import { constants as osConstants } from "node:os";
import { getSystemErrorName } from "node:util";
import { koffi, libcErrno, libcFunc, strerror_errno } from "@dropbear-ts/dbutil";
import { FdError } from "./fd.js";

// Passing an open descriptor to another process over a Unix socket (SCM_RIGHTS), as the daemon
// hands an accepted connection to its connection process. Node does this only through the IPC
// channel of child_process.fork, which every process on the other end then carries for its
// life: node:child_process, node:v8 and the serializers, 0.6 MB of each idle connection
// process. Linux x86-64 and arm64 layouts (LP64).

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
/** CMSG_LEN(sizeof(int)): the header (cmsg_len, cmsg_level, cmsg_type) and one descriptor. */
const CMSG_LEN_ONE_FD = 16 + 4;
/** CMSG_SPACE(sizeof(int)). */
const CMSG_SPACE_ONE_FD = 16 + 8;

interface iovec {
  base: Buffer;
  len: number;
}
interface msghdr {
  name: null;
  namelen: number;
  iov: iovec[];
  iovlen: number;
  control: Buffer;
  controllen: number;
  flags: number;
}
type MsgFn = (fd: number, msg: msghdr, flags: number) => number;

let msgFns: { sendmsg: MsgFn; recvmsg: MsgFn } | null = null;

/** sendmsg(2) and recvmsg(2), with koffi's struct types for their message (declared once). */
function msgFunctions(): { sendmsg: MsgFn; recvmsg: MsgFn } {
  if (msgFns === null) {
    const k = koffi();
    k.struct("dbts_iovec", { base: "void *", len: "size_t" });
    k.struct("dbts_msghdr", {
      name: "void *",
      namelen: "uint32_t",
      iov: "dbts_iovec *",
      iovlen: "size_t",
      control: "void *",
      controllen: "size_t",
      flags: "int",
    });
    msgFns = {
      sendmsg: libcFunc<MsgFn>("long sendmsg(int fd, const dbts_msghdr *msg, int flags)"),
      recvmsg: libcFunc<MsgFn>("long recvmsg(int fd, _Inout_ dbts_msghdr *msg, int flags)"),
    };
  }
  return msgFns;
}

function errnoError(what: string): FdError {
  const errno = libcErrno();
  return new FdError(getSystemErrorName(-errno), `${what}: ${strerror_errno(errno)}`);
}

/** A connected pair of Unix stream sockets, both close-on-exec. */
export function unixSocketPair(): [number, number] {
  const sv = new Int32Array(2);
  const socketpair = libcFunc<(d: number, t: number, p: number, sv: Int32Array) => number>("int socketpair(int domain, int type, int protocol, _Out_ int *sv)");
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    throw errnoError("socketpair");
  }
  return [sv[0]!, sv[1]!];
}

/**
 * Send a copy of descriptor `fd` over Unix socket `sock` in one message with `data` (at least a
 * byte: a message must carry one for the descriptor to ride on); never blocks.
 */
export function sendFd(sock: number, fd: number, data: Buffer = Buffer.of(0)): void {
  if (data.length === 0) {
    throw new RangeError("sendFd: a descriptor needs at least one byte of data");
  }
  const control = Buffer.alloc(CMSG_SPACE_ONE_FD);
  control.writeBigUInt64LE(BigInt(CMSG_LEN_ONE_FD), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  control.writeInt32LE(fd, 16);
  const msg: msghdr = { name: null, namelen: 0, iov: [{ base: data, len: data.length }], iovlen: 1, control, controllen: control.length, flags: 0 };
  if (msgFunctions().sendmsg(sock, msg, MSG_DONTWAIT | MSG_NOSIGNAL) !== data.length) {
    throw errnoError("sendmsg");
  }
}

/**
 * The descriptor waiting on Unix socket `sock` (sent by sendFd), close-on-exec, with the data
 * of its message (at most `maxData` bytes); null when none waits yet. Never blocks. Throws at
 * end of file, on an error, and for a message that carried no descriptor.
 */
export function receiveFd(sock: number, maxData = 1): { fd: number; data: Buffer } | null {
  const control = Buffer.alloc(CMSG_SPACE_ONE_FD);
  const data = Buffer.alloc(maxData);
  const msg: msghdr = { name: null, namelen: 0, iov: [{ base: data, len: data.length }], iovlen: 1, control, controllen: control.length, flags: 0 };
  const n = msgFunctions().recvmsg(sock, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    const errno = libcErrno();
    if (errno === osConstants.errno.EAGAIN || errno === osConstants.errno.EINTR) {
      return null;
    }
    throw errnoError("recvmsg");
  }
  if (n === 0) {
    throw new FdError("EOF", "recvmsg: the sender closed its end");
  }
  const len = Number(control.readBigUInt64LE(0));
  if ((msg.flags & MSG_CTRUNC) !== 0 || len !== CMSG_LEN_ONE_FD || control.readInt32LE(8) !== SOL_SOCKET || control.readInt32LE(12) !== SCM_RIGHTS) {
    throw new FdError("EPROTO", "recvmsg: no descriptor came with the message");
  }
  return { fd: control.readInt32LE(16), data: data.subarray(0, n) };
}
