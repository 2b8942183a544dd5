import { Socket, type OnReadOpts, type Server } from "node:net";
import type { Readable, Writable } from "node:stream";
import { closeSync, readdirSync } from "node:fs";
import { getSystemErrorName } from "node:util";
import { LARGE_COUNT_ZERO, LOG_WARNING, TRACE, dropbear_log, dup_cloexec, nofileSoftLimit, oweOutput, releaseDescriptor } from "@dropbear-ts/dbutil";

/**
 * The high-water mark of every socket stream we make, both directions. Our back pressure is
 * built on it: `StreamFd.writev` hands a stream packets only until it is above this mark, and
 * a socket reads ahead from the kernel only up to it, so it bounds the memory a slow peer or a
 * paused channel costs per socket. Node's default is 16 KiB up to Node 20 and 64 KiB from
 * Node 22 on; we pin 16 KiB, the value every test and benchmark here was measured with, so
 * Node 20, 22 and 24 behave alike.
 */
export const SOCKET_HIGH_WATER_MARK = 16 * 1024;

/**
 * The most bytes the writes to one stream in one run of the loop (one turn, up to its next
 * wait) may gather. The high-water mark says whether a stream takes writes at all (what Node
 * still holds, unsent from earlier turns, is under it); this says how much the turn's writes
 * may carry together, so the kernel gets several packets in one writev(2) instead of one
 * syscall, and one wake-up of the reader, per packet. What Node may hold for a slow peer is
 * bounded by the mark plus this plus one chunk.
 */
export const WRITEV_MAX_BYTES = 512 * 1024;

/**
 * The size of each slab a StreamFd to the kernel copies bytes into for a write (`staging`): the
 * most a channel writes from its ring in one call (common-channel.ts WRITECHANNEL_CHUNK).
 */
export const STAGING_SLAB_SIZE = 64 * 1024;

/**
 * The most slabs the process keeps for `staging`, all StreamFds together: enough for a turn's
 * gathered writes (WRITEV_MAX_BYTES, all held by Node until the turn ends) plus what is still
 * unsent from earlier turns. One pool (640 KiB) whatever the number of channels that fall behind
 * at once, since no channel's memory budget counts it; made only as streams need them.
 */
export const STAGING_SLABS_MAX = WRITEV_MAX_BYTES / STAGING_SLAB_SIZE + 2;

/** A slab of the staging pool, lent to the StreamFd that wrote from it until it is written out. */
interface StagingSlab {
  readonly slab: Buffer;
  owner: StreamFd | null;
  /** The owner's `handed` count once the slab's bytes are handed over. */
  until: number;
}

/**
 * Copies of no more than this get a Buffer of their own from `staging`: a channel's short
 * exchanges (a burst of small forwarded connections) keep no slabs; a stream that falls behind
 * copies larger pieces.
 */
export const STAGING_MIN_BYTES = SOCKET_HIGH_WATER_MARK;

/**
 * Options for `new net.Socket()` / `net.connect()`: both stream sides at SOCKET_HIGH_WATER_MARK.
 * (Node passes them on to the Duplex; @types/node does not list them for sockets.)
 */
export const socketStreamOptions: { readableHighWaterMark: number; writableHighWaterMark: number } = {
  readableHighWaterMark: SOCKET_HIGH_WATER_MARK,
  writableHighWaterMark: SOCKET_HIGH_WATER_MARK,
};

/**
 * The most one kernel read takes for a socket made by `ownReadSocket`: the size of the landing
 * buffer all of them share (Node's own read size).
 */
export const SOCKET_READ_CHUNK = 64 * 1024;

/**
 * A socket made by `ownReadSocket` stops reading from the kernel once this much waits unread
 * (or less, as its loop asks: StreamFd.setReadAhead), so a peer we do not read is pushed back
 * on through TCP; reading starts again once the loop has taken it down to half. Two of our
 * largest packets and more, so a streaming peer's
 * packets are read and processed several to a loop turn and what they carry goes on in one
 * gathered write (WRITEV_MAX_BYTES), not a write and a wake-up of its reader per packet.
 */
export const SOCKET_READ_BOUND = 256 * 1024;

/** A socket's unread bytes: the bound plus one read, so a read always fits below the bound. */
export const READ_RING_SIZE = SOCKET_READ_BOUND + SOCKET_READ_CHUNK;

/**
 * The size of the ring a socket starts with when its first read is short (its peer is not
 * streaming) or its bound is no more than this (the loop lowers bounds when many channels may
 * send): one read, a fifth of READ_RING_SIZE, to which it grows when a read does not fit. So a
 * burst of short connections, or many channels each reading a little ahead, hold (and leave
 * for the collector) a fifth of the memory.
 */
export const SMALL_READ_RING_SIZE = SOCKET_READ_CHUNK;

/**
 * How long a closed socket whose output was still flushing reads on (discarding) for the peer's
 * EOF after its own, before it is destroyed regardless.
 */
export const CLOSE_LINGER_MS = 2000;

/** What close() writes after a shared descriptor's output, to learn when that output is out. */
const EMPTY_WRITE = Buffer.alloc(0);

/** Emptied rings of one size kept for the next socket with data (up to `max`); a socket holds one only while data waits. */
interface RingPool {
  readonly rings: Buffer[];
  readonly max: number;
}
const readRingPool: RingPool = { rings: [], max: 8 };
const smallReadRingPool: RingPool = { rings: [], max: 32 };

/** The pool for rings of `size` (READ_RING_SIZE or SMALL_READ_RING_SIZE). */
function ringPool(size: number): RingPool {
  return size === READ_RING_SIZE ? readRingPool : smallReadRingPool;
}

/** An emptied ring of `size`, from its pool if one waits. */
function takeRing(size: number): Buffer {
  return ringPool(size).rings.pop() ?? Buffer.allocUnsafeSlow(size);
}

/** Keep an emptied ring for the next socket, if its pool has room. */
function giveRing(ring: Buffer): void {
  const pool = ringPool(ring.length);
  if (pool.rings.length < pool.max) {
    pool.rings.push(ring);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Where such sockets' reads land when not in their own ring (SocketReadRing.nextBuffer). One
 * buffer serves them all: Node calls back with each read before it makes the next (one thread),
 * and the callback copies the bytes out at once.
 */
let landing: Buffer | null = null;

/** The shared landing buffer, or its first `max` bytes for a read cut short. */
function landingUpTo(max: number): Uint8Array {
  return max < SOCKET_READ_CHUNK ? landing!.subarray(0, max) : landing!;
}

/**
 * The least room at the end of a socket's ring for its next read to go there directly; with
 * less, the read lands in the shared buffer (and is copied, wrapping around the ring) rather
 * than being cut short.
 */
const IN_PLACE_MIN = SOCKET_READ_CHUNK / 4;

/**
 * Whether the next kernel read may land in a socket's ring. Node reads into the buffer that
 * `onread.buffer` names only if the read's callback scope ends without an exception (the
 * process's pending nextTick callbacks run as it ends, and any of them may throw); after one
 * its stream listener keeps the buffer it had and reads into that again, while its JavaScript
 * calls back with the new one. A ring's region read into before still holds bytes not yet
 * taken: overwritten, a session read garbage ("Error decrypting"). Such an exception ends the
 * process, unless it is caught ('uncaughtException' listeners, a capture callback, as a
 * library's host process may have): then every read lands in the shared landing buffer, whose
 * place is the same whichever view of it Node read with.
 */
function inPlaceReadsSafe(): boolean {
  return process.listenerCount("uncaughtException") === 0 && !process.hasUncaughtExceptionCaptureCallback();
}

/**
 * Unread bytes of one socket read through Node's `onread` option: kept in a ring of our own
 * instead of a fresh Buffer per kernel read queued in the socket's Readable, which cost an
 * ArrayBuffer, Node's stream bookkeeping and the collector's work per read.
 */
export class SocketReadRing {
  private ring: Buffer | null = null;
  private rd = 0;
  /** Bytes waiting in the ring. */
  len = 0;
  /** Reading from the kernel is stopped (the ring reached its bound). */
  private stopped = false;
  /** How much may wait unread before reading stops: SOCKET_READ_BOUND unless the loop asks for less. */
  private bound = SOCKET_READ_BOUND;
  /** Drop what arrives (shutdownRead, or closed with output still flushing). */
  private discard = false;
  /** The socket, once made; called to restart reading. */
  sock: Socket | null = null;
  /** Told of every read that added data (the StreamFd's wake-up). */
  onData: (() => void) | null = null;
  readonly onread: OnReadOpts;
  /**
   * The part of the ring Node reads the next kernel read into, or null (the shared landing
   * buffer). While set, the ring is neither given back nor moved: Node holds its address.
   */
  private armed: Uint8Array | null = null;
  /** The last read filled at least half of SOCKET_READ_CHUNK: the peer is streaming. */
  private streaming = false;

  constructor() {
    landing ??= Buffer.allocUnsafeSlow(SOCKET_READ_CHUNK);
    this.onread = { buffer: () => this.nextBuffer(), callback: (n, buf) => this.landed(n, buf) };
  }

  /**
   * Where the next kernel read goes (Node asks after each read, and once as the socket starts):
   * while the peer streams and the ring is in use, straight into the ring after what waits, so
   * the bytes are not copied there from the landing buffer; else into the shared landing buffer,
   * so a socket that is not streaming holds no ring of its own.
   */
  private nextBuffer(): Uint8Array {
    this.armed = null;
    // Under a bound the loop lowered (setReadAhead), no more than it still allows, so what waits
    // stays within it (at least a byte: a read cannot be empty, and one that reaches the bound
    // stops reading). At SOCKET_READ_BOUND whole reads, as READ_RING_SIZE has room for.
    const max = this.bound < SOCKET_READ_BOUND && !this.discard ? Math.max(1, Math.min(SOCKET_READ_CHUNK, this.bound - this.len)) : SOCKET_READ_CHUNK;
    const ring = this.ring;
    if (ring === null || this.discard || !this.streaming || !inPlaceReadsSafe()) {
      return landingUpTo(max);
    }
    const size = ring.length;
    const wr = this.writePoint(size);
    // Free space runs from the write point to the ring's end, or to the read point if the
    // waiting bytes wrap (none when the ring is full).
    const end = wr < this.rd || (this.len > 0 && wr === this.rd) ? this.rd : size;
    const room = Math.min(end - wr, max);
    if (room < IN_PLACE_MIN) {
      return landingUpTo(max);
    }
    this.armed = ring.subarray(wr, wr + room);
    return this.armed;
  }

  /** Node's callback: `n` bytes are at the start of `buf`. False makes Node stop reading. */
  private landed(n: number, buf: Uint8Array): boolean {
    if (this.discard) {
      return true;
    }
    this.streaming = n >= SOCKET_READ_CHUNK / 2;
    if (buf === this.armed) {
      // Read in place, at the ring's write point.
      this.len += n;
      return this.added();
    }
    if (n > READ_RING_SIZE - this.len) {
      // Reading stops while less than a read's room is left, so only a bug gets here: fail
      // loudly rather than lose bytes.
      this.sock?.destroy(new FdError("ENOBUFS", "socket read overran its buffer"));
      return false;
    }
    // In the landing buffer, from its start: `buf` is the view of it Node was last given, which
    // may be shorter than the one it read with (see inPlaceReadsSafe).
    const from = landing!;
    const ring = this.roomFor(n);
    const size = ring.length;
    const wr = this.writePoint(size);
    const first = Math.min(n, size - wr);
    ring.set(from.subarray(0, first), wr);
    if (first < n) {
      ring.set(from.subarray(first, n), 0);
    }
    this.len += n;
    return this.added();
  }

  /** Where the next byte goes in a ring of `size`: after what waits, wrapping around its end. */
  private writePoint(size: number): number {
    const wr = this.rd + this.len;
    return wr >= size ? wr - size : wr;
  }

  /**
   * The ring, with room for `n` more bytes: a small one for a first read that is short or
   * under a small bound, a full one for a streaming peer, and a small one grown (what waits
   * copied over) when a read does not fit.
   */
  private roomFor(n: number): Buffer {
    const ring = this.ring;
    if (ring === null) {
      const small = !this.streaming || this.bound <= SMALL_READ_RING_SIZE;
      return (this.ring = takeRing(small ? SMALL_READ_RING_SIZE : READ_RING_SIZE));
    }
    if (n <= ring.length - this.len) {
      return ring;
    }
    const grown = takeRing(READ_RING_SIZE);
    this.copyOut(ring, grown, 0, this.len);
    giveRing(ring);
    this.rd = 0;
    return (this.ring = grown);
  }

  /** After a read added to the ring: wake the reader; false (stop reading) past the bound (at a lowered one). */
  private added(): boolean {
    this.onData?.();
    if (this.len > this.bound || (this.len === this.bound && this.bound < SOCKET_READ_BOUND)) {
      this.stopped = true;
      return false;
    }
    return true;
  }

  /**
   * Let at most `max` bytes (and SOCKET_READ_BOUND) wait unread; 0 stops reading from the
   * kernel now, as C leaves an fd it does not put in select()'s read set unread.
   */
  setReadAhead(max: number): void {
    const bound = Math.min(max, SOCKET_READ_BOUND);
    if (bound === this.bound) {
      return;
    }
    this.bound = bound;
    if (this.discard) {
      return;
    }
    const s = this.sock;
    if (!this.stopped && this.len >= bound && s !== null && !s.connecting && !s.destroyed) {
      // On a socket read through `onread`, pause() is Node's readStop(). (A connecting socket
      // starts reading when connected, and stops at its first read.)
      this.stopped = true;
      s.pause();
    } else if (this.roomAgain()) {
      this.resume();
    }
  }

  /** Reading stopped at the bound and what waits is down to half of it: read on. */
  private roomAgain(): boolean {
    return this.stopped && this.bound > 0 && this.len <= this.bound / 2;
  }

  /** Move up to `max` waiting bytes to `dest` at `off`; returns how many (0: none wait). */
  take(dest: Uint8Array, off: number, max: number): number {
    const k = Math.min(max, this.len);
    const ring = this.ring;
    if (k <= 0 || ring === null) {
      return 0;
    }
    this.copyOut(ring, dest, off, k);
    this.skip(k);
    return k;
  }

  /** Copy the oldest `k` waiting bytes of `ring` (which may wrap around its end) to `dest` at `off`. */
  private copyOut(ring: Buffer, dest: Uint8Array, off: number, k: number): void {
    const first = Math.min(k, ring.length - this.rd);
    dest.set(ring.subarray(this.rd, this.rd + first), off);
    if (first < k) {
      dest.set(ring.subarray(0, k - first), off + first);
    }
  }

  /**
   * The waiting bytes that lie in one piece from the oldest on (empty if none): a view, valid
   * until `skip` or `take` moves past them, which arrivals never overwrite.
   */
  peek(): Uint8Array {
    const ring = this.ring;
    if (ring === null || this.len === 0) {
      return EMPTY;
    }
    return ring.subarray(this.rd, this.rd + Math.min(this.len, ring.length - this.rd));
  }

  /** Drop the oldest `k` waiting bytes (at most `len`), as `take` does after copying them. */
  skip(k: number): void {
    this.rd += k;
    if (this.ring !== null && this.rd >= this.ring.length) {
      this.rd -= this.ring.length;
    }
    this.len -= k;
    if (this.len === 0 && this.armed === null) {
      this.release();
    }
    if (this.roomAgain()) {
      this.resume();
    }
  }

  /**
   * The peer's EOF came: Node reads no more into the ring, so it is no longer held for a next
   * read (given back once what waits is read).
   */
  ended(): void {
    this.armed = null;
    if (this.len === 0) {
      this.release();
    }
  }

  /** Drop what waits and all that arrives from now on, reading on so the peer is not stalled. */
  discardAll(): void {
    this.discard = true;
    this.release();
    this.resume();
  }

  /** Give the ring back (nothing waits, or nothing will be read); one Node may read into is only dropped. */
  release(): void {
    if (this.ring !== null && this.armed === null) {
      giveRing(this.ring);
    }
    this.ring = null;
    this.rd = 0;
    this.len = 0;
  }

  /** Start reading from the kernel again if our callback had stopped it. */
  private resume(): void {
    if (!this.stopped) {
      return;
    }
    this.stopped = false;
    const s = this.sock;
    if (s !== null && !s.destroyed && !s.readableEnded) {
      // A socket with `onread` restarts its handle's reading on read(); nothing is queued in
      // its Readable, so this returns null.
      s.read(0);
    }
  }
}

/**
 * A socket whose reads land in a buffer of ours (Node's `onread` option) rather than in a
 * fresh Buffer per read queued in the socket's stream, as the StreamFd that reads from that
 * buffer: `make` gets the option to pass to `net.connect()` or `new net.Socket()`.
 */
export function ownReadSocket<S extends Socket>(make: (onread: OnReadOpts) => S): StreamFd<S> {
  const { sock, ring } = withReadRing(make);
  return new StreamFd(sock, ring);
}

/** The socket `make` makes with its reads landing in a new ring, and that ring, for a StreamFd of another class. */
export function withReadRing<S extends Socket>(make: (onread: OnReadOpts) => S): { sock: S; ring: SocketReadRing } {
  const ring = new SocketReadRing();
  const sock = make(ring.onread);
  ring.sock = sock;
  return { sock, ring };
}

/**
 * The same connection as a socket a `net.Server` accepted (paused, not yet read), moved to a
 * socket made by `ownReadSocket`: Node makes accepted sockets itself, without `onread`. The old
 * wrapper is destroyed without its handle, so the server's count of connections goes down.
 * A socket already gone gets a plain StreamFd.
 */
export function ownReadAccepted(sock: Socket): StreamFd<Socket> {
  const old = sock as unknown as { _handle: AcceptedHandle | null };
  const handle = old._handle;
  if (handle === null || sock.destroyed) {
    return new StreamFd(sock);
  }
  old._handle = null;
  sock.destroy();
  return ownReadSocket((onread) => acceptedSocket(handle, onread));
}

/**
 * An accepted connection's handle (Node's tcp_wrap or pipe_wrap object) as a socket, paused
 * and half-open, as our listening servers are made to give them, with `onread` if given.
 */
function acceptedSocket(handle: AcceptedHandle, onread?: OnReadOpts): Socket {
  const sock = new Socket({
    handle,
    onread,
    readable: true,
    writable: true,
    allowHalfOpen: true,
    pauseOnCreate: true,
    ...socketStreamOptions,
  } as unknown as ConstructorParameters<typeof Socket>[0]);
  const peer = acceptedPeers.get(handle);
  if (peer !== undefined) {
    // Where net.Socket keeps the peer once it has asked (remoteAddress, remotePort).
    (sock as unknown as { _peername?: PeerName })._peername = peer;
  }
  return sock;
}

/** A TCP peer's address as Node's handles give it (getpeername). */
interface PeerName {
  address?: string;
  family?: string;
  port?: number;
}

/**
 * The peer of each accepted TCP handle, asked as soon as libuv has accepted it: once the peer
 * resets the connection getpeername() fails (ENOTCONN), and net.Socket asks only when first
 * told to. C has the address from accept() itself, which libuv calls without asking for it; so
 * a connection reset before that still has no address here (docs/deviations.md).
 */
const acceptedPeers = new WeakMap<AcceptedHandle, PeerName>();

/**
 * The readiness the session loop asks about: the Node side of a C file descriptor.
 *
 * Dropbear's loop is level-triggered: it builds fd sets, `select()`s, then does at most one
 * non-blocking read/write per ready fd. Node streams are event-driven, so each `Fd` keeps its
 * stream in paused mode and lets events only set flags and wake a waiting `select()`; the
 * actual reads and writes happen when the loop asks, as in C. Nothing here polls.
 */
export abstract class Fd {
  private static nextId = 3; // 0-2 are the stdio numbers, as in C
  /** A small number for TRACE lines and sorting, like the C fd number. */
  readonly fd: number = Fd.nextId++;
  /** Set once `close()` ran; a closed Fd is never ready and never waited on. */
  closed = false;
  private waiters = new Set<() => void>();

  /** Would a read (or accept) not block now? True also at EOF and on error, as select() says. */
  abstract readReady(): boolean;
  /** Would a write not block now? True also on error (the write then reports it). */
  abstract writeReady(): boolean;
  /** Release the underlying resource. Idempotent. */
  abstract close(): void;

  /** Register a wake-up callback for `select()`; called on any event that may change readiness. */
  addWaiter(fn: () => void): void {
    this.waiters.add(fn);
  }

  removeWaiter(fn: () => void): void {
    this.waiters.delete(fn);
  }

  protected notify(): void {
    // Most events come with no select() waiting on this Fd: no copy of the set then.
    if (this.waiters.size === 0) {
      return;
    }
    for (const fn of [...this.waiters]) {
      fn();
    }
  }
}

/** A stream error carried to the reader or writer, like errno after a failed read()/write(). */
export class FdError extends Error {
  override readonly name = "FdError";
  constructor(
    readonly code: string,
    message: string,
    /** The system call that failed, where Node says ("bind" for a connect's local address). */
    readonly syscall: string | null = null,
  ) {
    super(message);
  }
}

function toFdError(err: unknown): FdError {
  if (err instanceof FdError) {
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  return new FdError(e?.code ?? "EIO", e?.message ?? String(err), e?.syscall ?? null);
}

type AnyStream = Readable | Writable | Socket;

function isReadable(s: AnyStream): s is Readable {
  return typeof (s as Readable).read === "function";
}

function isWritable(s: AnyStream): s is Writable {
  return typeof (s as Writable).write === "function";
}

/**
 * An Fd over a Node stream: a TCP socket (also one still connecting, which becomes writable
 * when the connect completes or fails, like a non-blocking connect()), stdin/stdout, or a child
 * process pipe.
 *
 * Reads: `read(max)` returns at most `max` bytes, `null` when nothing is buffered (EAGAIN), and
 * an empty Buffer at EOF (read() == 0). The stream's own high-water mark bounds what Node
 * buffers ahead of us, so an unread socket pushes back on its peer through TCP.
 *
 * Sockets should be made with `allowHalfOpen: true`: otherwise Node ends our sending side as soon
 * as the peer's EOF arrives, and SSH channels need EOF one way while data still flows the other.
 *
 * Writes: accepted only while the stream is below its high-water mark (`writeReady()`), so
 * memory held for a slow peer is bounded by that mark plus one turn's writes, never by the sender.
 *
 * A socket made by `ownReadSocket` is read from our own ring instead of its Readable (same
 * contract; SOCKET_READ_BOUND is then what bounds unread input), and `readInto` copies from
 * there straight into the caller's buffer.
 */
export class StreamFd<S extends AnyStream = AnyStream> extends Fd {
  private readonly rstream: Readable | null;
  private readonly wstream: Writable | null;
  /** Bytes `writev` has handed the stream since it was made. */
  handed = LARGE_COUNT_ZERO;
  /** This turn's writes are corked, to go out together (writev). */
  private gathering = false;
  /** Bytes this turn's writes handed over. */
  private gathered = 0;
  /** The process's staging slabs (STAGING_SLABS_MAX at most). */
  private static readonly stagingPool: StagingSlab[] = [];
  /** The slab the last `staging` call lent (null: a Buffer of its own), for `unstage`. */
  private lastStaging: StagingSlab | null = null;
  /** The stream's 'close' has come: Node and libuv hold none of its writes' memory any more. */
  private streamClosed = false;
  /** Set for a socket made by `ownReadSocket`: where its unread bytes wait. */
  private readonly ring: SocketReadRing | null;
  /** 'readable' seen and not yet consumed down to empty. */
  private readableFlag = false;
  private eof = false;
  private readShut = false;
  private err: FdError | null = null;
  private readonly onReadable = (): void => {
    this.readableFlag = true;
    this.notify();
  };

  /**
   * The descriptor is a copy of one other processes hold too (dbclient's stdin, stdout,
   * stderr): close() flushes and closes it without ending the stream, whose shutdown(2) of a
   * socket would end the socket for every holder (a shell's later `echo` then dies of SIGPIPE).
   * C's close() of such an fd leaves the others' alone.
   */
  sharedDescriptor = false;

  /**
   * The process's own descriptor this Fd is a copy of, let go of as the Fd closes (dbclient's
   * stdout): C closes fd 1 itself, so whoever reads it sees end of file once no other process
   * holds it, where Node's fd 1 would keep it open until we exit (a multihop's inner dbclient,
   * `-B`, then never tells the outer one its connection has ended).
   */
  copyOf: number | null = null;

  /**
   * Run once, as the stream is let go of after what it was handed is out (just before its
   * descriptor closes): dbclient's stdout puts back the flags of the file it shares with its
   * caller there (cliStdioFd), since fd 1 itself no longer refers to that file by then.
   */
  beforeRelease: (() => void) | null = null;

  /**
   * Whether a turn's writes to the kernel are gathered (see `writev`). Off for dbclient's stdout
   * and stderr on pipes, sockets and terminals: each write then goes out at once, as C's write()
   * does, so the two on one pipe or terminal (`2>&1 | less`) keep the order in which the server
   * sent its stdout and stderr packets, where two corked streams put a turn's stderr after all
   * of its stdout.
   */
  gatherWrites = true;

  /**
   * `ring`: where `ownReadSocket` has the socket's reads land (null: read through its stream).
   * `writeOnly`: a duplex stream used for writing alone (a terminal's tty.WriteStream), never
   * read: reading it would take the user's keystrokes, and its end would end the writes.
   */
  constructor(
    readonly stream: S,
    ring: SocketReadRing | null = null,
    writeOnly = false,
  ) {
    super();
    this.rstream = !writeOnly && isReadable(stream) ? stream : null;
    this.wstream = isWritable(stream) ? stream : null;
    this.ring = ring;
    // The same stream object can be both (a socket): listen once, for both sides.
    const ev = stream as NodeJS.EventEmitter;
    if (this.ring !== null) {
      this.ring.onData = () => this.notify();
      const sock = stream as Socket;
      if (!sock.connecting && !sock.destroyed && !sock.readableEnded) {
        // Made paused (an accepted connection) or paused since: read now, as a 'readable'
        // listener would. A connecting socket starts reading once connected.
        sock.read(0);
      }
    } else if (this.rstream) {
      // A 'readable' listener puts the stream in paused mode: data waits for read().
      this.rstream.on("readable", this.onReadable);
    }
    if (this.rstream) {
      ev.on("end", () => {
        this.eof = true;
        this.ring?.ended();
        this.notify();
      });
    }
    if (this.wstream) {
      ev.on("drain", () => this.notify());
    }
    ev.on("connect", () => this.notify());
    ev.on("error", (e: unknown) => {
      this.err ??= toFdError(e);
      this.notify();
    });
    ev.on("close", () => {
      this.streamClosed = true;
      this.notify();
    });
    // Events that fired before we listened (a socket handed over after its peer closed).
    if (this.rstream?.readableEnded) {
      this.eof = true;
    }
    const errored = (stream as Readable).errored;
    if (errored) {
      this.err = toFdError(errored);
    }
  }

  /** The peer has ended its side, or the stream failed: nothing will come after what is buffered. */
  get readEnded(): boolean {
    return this.eof || this.err !== null;
  }

  /** The pending error, if any: what getsockopt(SO_ERROR) returns after a failed connect. */
  get error(): FdError | null {
    return this.err;
  }

  /** True while a socket's connect() is still in progress. */
  get connecting(): boolean {
    return (this.stream as Socket).connecting === true;
  }

  /**
   * Let at most `max` bytes wait read ahead of the loop (0: stop reading from the kernel), for
   * a socket that reads into a ring (`ownReadSocket`, `withReadRing`); another stream reads
   * ahead only to its high-water mark.
   */
  setReadAhead(max: number): void {
    this.ring?.setReadAhead(max);
  }

  readReady(): boolean {
    if (this.closed || !this.rstream || this.readShut) {
      return false;
    }
    if (this.ring !== null) {
      return this.ring.len > 0 || this.err !== null || this.eof;
    }
    return this.err !== null || this.eof || this.readableFlag || this.rstream.readableLength > 0;
  }

  /** Bytes wait to be read now: readReady() without the end of file and the error it also counts. */
  dataReady(): boolean {
    if (this.closed || !this.rstream || this.readShut) {
      return false;
    }
    return this.ring !== null ? this.ring.len > 0 : this.rstream.readableLength > 0;
  }

  writeReady(): boolean {
    if (this.closed || !this.wstream) {
      return false;
    }
    // A destroyed stream fails the write (writev's EPIPE), as an fd with an error does: tried, it is seen.
    if (this.err !== null || this.wstream.destroyed) {
      return true;
    }
    if (this.connecting || this.wstream.writableEnded) {
      return false;
    }
    return this.takesMore(this.wstream);
  }

  /**
   * A write would be taken now: Node holds less than the stream's high-water mark unsent from
   * earlier turns, and this turn's gathered writes are under WRITEV_MAX_BYTES. Not
   * `writableNeedDrain`: that stays set until a tick after the kernel took everything, which
   * would cost a loop turn per write. When this is false Node's 'drain' is due (the length
   * reached the mark with this write or an earlier one), so a waiting select() still wakes.
   */
  private takesMore(w: Writable): boolean {
    return w.writableLength - this.gathered < w.writableHighWaterMark && this.gathered < WRITEV_MAX_BYTES;
  }

  /**
   * Non-blocking read of up to `max` bytes: data, `null` for "would block", or an empty Buffer at
   * EOF. Throws FdError if the stream failed.
   */
  read(max: number): Buffer | null {
    const r = this.rstream;
    if (!r || this.closed || this.readShut) {
      throw new FdError("EBADF", "read from a closed or write-only fd");
    }
    if (this.ring !== null) {
      const n = Math.min(max, this.ring.len);
      if (n > 0) {
        const out = Buffer.allocUnsafe(n);
        this.ring.take(out, 0, n);
        return out;
      }
      return this.noData();
    }
    const avail = r.readableLength;
    const chunk = avail > 0 ? (r.read(Math.min(max, avail)) as Buffer | string | null) : (r.read() as Buffer | string | null);
    if (chunk !== null) {
      if (r.readableLength === 0) {
        this.readableFlag = false;
        // A zero read lets Node notice an end already received, so 'end' (our EOF) fires.
        r.read(0);
      }
      return typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    }
    this.readableFlag = false;
    return this.noData();
  }

  /** A read that found no data: the error, EOF (an empty Buffer) or EAGAIN (null). */
  private noData(): Buffer | null {
    if (this.err) {
      throw this.err;
    }
    if (this.eof) {
      return Buffer.alloc(0);
    }
    return null;
  }

  /**
   * `read` into `dest` at `off`: the bytes read (at most `max`), 0 at EOF, `null` for "would
   * block"; throws FdError if the stream failed. From an `ownReadSocket` socket's ring this is
   * the only copy the bytes take.
   */
  readInto(dest: Uint8Array, off: number, max: number): number | null {
    if (this.ring !== null && max > 0 && this.ring.len > 0 && !this.closed && !this.readShut) {
      return this.ring.take(dest, off, max);
    }
    const got = this.read(max);
    if (got === null) {
      return null;
    }
    dest.set(got, off);
    return got.length;
  }

  /**
   * The bytes that wait, unread, in one piece in an `ownReadSocket` socket's ring: a view to use
   * in place (then `skipRead`), valid until the next read from this Fd. Empty when none wait in
   * a ring (also for other streams, and once closed or shut for reading: use `read` then).
   */
  peekRead(): Uint8Array {
    if (this.ring === null || this.closed || this.readShut) {
      return EMPTY;
    }
    return this.ring.peek();
  }

  /** Consume `n` bytes that `peekRead` showed, having used them in place. */
  skipRead(n: number): void {
    if (this.ring === null || n > this.ring.len) {
      throw new FdError("EINVAL", "skipRead past the bytes that wait");
    }
    this.ring.skip(n);
  }

  /**
   * Non-blocking gathered write (writev). While Node holds less than the stream's high-water
   * mark from earlier turns, hands chunks to the stream in order, taken whole or not at all;
   * returns the bytes accepted (0 if none: EAGAIN). Throws FdError if the stream failed.
   *
   * Beyond C's writev: what this turn's calls hand a stream to the kernel (`writesToKernel`,
   * unless `gatherWrites` is off) is held back (corked) and goes there together once the turn's
   * synchronous run ends (a microtask, which runs before the loop's next wait), up to
   * WRITEV_MAX_BYTES in all (at least one chunk). Same bytes, same order; a shutdown (`end`) in the same turn sends them first.
   * Other streams get each call's chunks at once, up to the same cap.
   */
  writev(chunks: readonly Uint8Array[]): number {
    const w = this.wstream;
    if (!w || this.closed) {
      throw new FdError("EBADF", "write to a closed or read-only fd");
    }
    if (this.err) {
      throw this.err;
    }
    if (w.writableEnded) {
      throw new FdError("EPIPE", "write after shutdown");
    }
    // Destroyed by its reader (a library caller's stream, a pipeline that failed): Node drops
    // such writes without an 'error' event, so the channel went on taking the peer's data and
    // crediting its window for ever. It is a pipe whose reader has gone.
    if (w.destroyed) {
      throw new FdError("EPIPE", "write to a destroyed stream");
    }
    if (this.connecting || !this.takesMore(w)) {
      return 0;
    }
    // Only writes to the kernel are gathered: a stream within the process gains nothing by it.
    const gather = this.gathering || (this.writesToKernel && this.gatherWrites);
    if (!this.gathering) {
      w.cork();
      if (gather) {
        this.gathering = true;
        queueMicrotask(this.endGather);
      }
    }
    let written = 0;
    for (const c of chunks) {
      if (this.gathered + written > 0 && this.gathered + written + c.length > WRITEV_MAX_BYTES) {
        break;
      }
      w.write(c);
      written += c.length;
    }
    this.handed += written;
    if (gather) {
      this.gathered += written;
    } else {
      w.uncork();
    }
    return written;
  }

  /**
   * A Buffer of `len` bytes for the caller to fill with bytes whose memory it reuses (a
   * channel's ring), as the first chunk of its next `writev`; then `unstage` if that took
   * nothing. Node holds a write's chunks until the kernel has them, so such bytes need a copy.
   * For a stream to the kernel the copy goes into a slab of the process's pool, lent again once
   * the stream has written everything up to it (`flushed`) or has closed: a Buffer of its own
   * costs more than the copy in a connection process, whose malloc gives the heap's top back
   * at each free (MALLOC_TOP_PAD_, svr-main.ts), so every new one is page faults and zeroed
   * pages. A stream within the process may pass the very Buffer on to its reader, every slab
   * may still be held, and a copy may be small (STAGING_MIN_BYTES): those get a Buffer of their own.
   */
  staging(len: number): Buffer {
    if (len > STAGING_MIN_BYTES && len <= STAGING_SLAB_SIZE && this.writesToKernel) {
      const pool = StreamFd.stagingPool;
      let lent = pool.find((s) => s.owner === null || s.owner.streamClosed || s.owner.flushed >= s.until);
      if (lent === undefined && pool.length < STAGING_SLABS_MAX) {
        lent = { slab: Buffer.allocUnsafe(STAGING_SLAB_SIZE), owner: null, until: LARGE_COUNT_ZERO };
        pool.push(lent);
      }
      if (lent !== undefined) {
        lent.owner = this;
        // Written out once `handed` passes its bytes, which the next writev takes first.
        lent.until = this.handed + len;
        this.lastStaging = lent;
        return lent.slab.subarray(0, len);
      }
    }
    this.lastStaging = null;
    return Buffer.allocUnsafe(len);
  }

  /** The last `staging` Buffer was not handed to the stream (writev took nothing or failed): its slab is free again. */
  unstage(): void {
    if (this.lastStaging !== null) {
      this.lastStaging.owner = null;
      this.lastStaging = null;
    }
  }

  /** The turn's writes go to the kernel, in one writev(2) where Node can. */
  private readonly endGather = (): void => {
    this.gathering = false;
    this.gathered = 0;
    this.wstream?.uncork();
  };

  /**
   * Give the stream all of `chunks`, past its high-water mark: only for peer data a channel
   * still holds as it goes (remove_channel), which C's close would leave with the kernel. The
   * close that follows flushes it, and an exiting process waits for that (oweOutput). Returns
   * false if the stream takes no more writes.
   */
  handOver(chunks: readonly Uint8Array[]): boolean {
    const w = this.wstream;
    if (!w || this.closed || this.err || w.writableEnded || w.destroyed) {
      return false;
    }
    for (const c of chunks) {
      w.write(c);
      this.handed += c.length;
    }
    return true;
  }

  /** Non-blocking write of one buffer; see `writev`. */
  write(data: Uint8Array): number {
    return this.writev([data]);
  }

  /** Of the bytes handed over (`handed`), how many the stream has written: it writes in order. */
  get flushed(): number {
    return this.handed - this.writePending;
  }

  /** Bytes handed to the stream but not yet to the kernel: the memory a slow peer costs us. */
  get writePending(): number {
    return this.wstream?.writableLength ?? 0;
  }

  /**
   * Whether what this stream is given goes to the kernel (a socket, pipe or terminal), so that
   * once writePending is 0 nothing refers to the bytes any more. A stream within the process (a
   * library caller's, a pair of streams) may hand the very Buffer on to a reader instead.
   */
  get writesToKernel(): boolean {
    return this.wstream instanceof Socket;
  }

  /** Stop reading for good and discard what arrives: C's shutdown(SHUT_RD). */
  shutdownRead(): void {
    if (!this.rstream || this.readShut) {
      return;
    }
    this.readShut = true;
    this.discardInput(this.rstream);
  }

  /** Read on and drop what arrives, so the peer is never stalled by us. */
  private discardInput(r: Readable): void {
    if (this.ring !== null) {
      this.ring.discardAll();
      return;
    }
    r.removeListener("readable", this.onReadable);
    // Flowing with no 'data' listener discards input.
    r.resume();
  }

  /** Send EOF after what was written: C's shutdown(SHUT_WR) — half-close, reads go on. */
  shutdownWrite(): void {
    if (this.wstream && !this.wstream.writableEnded && !this.closed) {
      this.wstream.end();
    }
  }

  /**
   * Like close(2): the Fd is gone for the loop at once, but bytes already handed to a socket
   * still reach the peer (the kernel keeps them in C). Node holds written data in the stream
   * until flushed, and destroy() would drop it, so a stream with unflushed output ends first
   * and is destroyed once flushed; what arrives meanwhile is discarded. "Flushed" is Node's: the
   * kernel may still be sending, and a socket closed while its peer sends answers with a reset
   * that can cost the peer that tail. So it lingers: reads on until the peer's EOF answers ours
   * (or CLOSE_LINGER_MS), then goes.
   */
  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.readableFlag = false;
    if (this.copyOf !== null) {
      // The copy still holds the file while its output flushes.
      releaseDescriptor(this.copyOf);
    }
    const stream = this.stream as Readable;
    const w = this.wstream;
    const unflushed = w !== null && this.err === null && !w.destroyed && (w.writableLength > 0 || (w.writableEnded && !w.writableFinished));
    if (unflushed) {
      let owed: () => void = () => undefined;
      oweOutput(new Promise<void>((resolve) => (owed = resolve)));
      const gone = (): void => {
        owed();
        this.runBeforeRelease();
        stream.destroy();
      };
      if (this.sharedDescriptor) {
        // Writes complete in order: this one's callback comes once the earlier ones are out (or failed).
        w.write(EMPTY_WRITE, gone);
      } else {
        const ev = stream as NodeJS.EventEmitter;
        const flushed = (): void => {
          owed();
          if (this.rstream === null || this.eof || stream.destroyed) {
            gone();
            return;
          }
          const timer = setTimeout(gone, CLOSE_LINGER_MS);
          timer.unref();
          const peerDone = (): void => {
            clearTimeout(timer);
            gone();
          };
          ev.once("end", peerDone);
          ev.once("error", peerDone);
        };
        w.once("finish", flushed);
        w.once("error", gone);
        w.once("close", owed);
        if (!w.writableEnded) {
          w.end();
        }
      }
      if (this.rstream !== null && !this.readShut) {
        this.discardInput(this.rstream);
      }
    } else {
      this.runBeforeRelease();
      stream.destroy();
      this.ring?.release();
    }
    this.notify();
  }

  private runBeforeRelease(): void {
    const fn = this.beforeRelease;
    this.beforeRelease = null;
    fn?.();
  }
}

/** An accepted connection's handle as Node's listening handle passes it (tcp_wrap, pipe_wrap). */
interface AcceptedHandle {
  close(): void;
  /** Its OS descriptor (Unix). */
  readonly fd?: number;
  /** TCP only. */
  setNoDelay?(enable: boolean): number;
  /** TCP only; the delay in seconds. */
  setKeepAlive?(enable: boolean, delay: number): number;
  /** TCP only; 0 or a negative errno. */
  getpeername?(out: PeerName): number;
}

/** What net.Server keeps of its options for the connections it accepts. */
interface ServerSocketOptions {
  noDelay?: boolean;
  keepAlive?: boolean;
  /** Seconds. */
  keepAliveInitialDelay?: number;
}

/** A net.Server's listening handle: libuv's accepts reach `onconnection`. */
interface ListeningHandle {
  onconnection: (status: number, handle?: AcceptedHandle) => void;
  readonly fd?: number;
}

/**
 * Descriptors a listener leaves to the rest of its process: once an accepted connection leaves
 * no more free, the listener stops accepting until twice as many are (ListenerFd.park). Fewer
 * under a limit close to what the process holds as it starts listening (listenReserve).
 */
export const LISTEN_FD_RESERVE = 8;
/** How often a stopped listener looks for free descriptors, ms. */
const PARKED_POLL_MS = 50;
/**
 * The shortest time between two log lines saying a listener stopped (park): where every
 * accept leaves it short, it stops once per connection.
 */
const PARKED_LOG_MS = 60_000;

let limitRead = { value: Infinity, at: -Infinity };

/** The soft descriptor limit, read at most once a second (a call through the FFI per accept costs). */
function descriptorLimit(): number {
  const now = performance.now();
  if (now - limitRead.at >= 1000) {
    limitRead = { value: nofileSoftLimit(), at: now };
  }
  return limitRead.value;
}

/**
 * Descriptors this process may still open under `limit`: the limit less those open below it
 * (/proc/self/fd, whose listing holds the one reading it), 0 when none is free to look. Without
 * /proc, the limit less the lowest free one (a copy of `fd`), ignoring any open above it.
 */
function freeDescriptors(fd: number, limit: number): number {
  if (limit === Infinity) {
    return Infinity;
  }
  let names: string[];
  try {
    names = readdirSync("/proc/self/fd");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EMFILE" || code === "ENFILE") {
      return 0;
    }
    let next: number;
    try {
      next = dup_cloexec(fd);
    } catch {
      return Infinity; // no koffi either: nothing to park with
    }
    if (next < 0) {
      return 0;
    }
    closeSync(next);
    return limit - next;
  }
  let open = 0;
  for (const name of names) {
    if (Number(name) < limit) {
      open++;
    }
  }
  return Math.max(0, limit - open + 1);
}

/** Refuse an accepted connection: close it, whichever form it came in. */
function dropAccepted(c: AcceptedHandle | Socket): void {
  if (c instanceof Socket) {
    c.destroy();
  } else {
    c.close();
  }
}

/**
 * An Fd over a listening `net.Server` created with `pauseOnConnect: true`: it is read-ready
 * while accepted connections wait, and `accept()` hands out one at a time as accept(2) does.
 * Node accepts eagerly, so the wait list is capped at `backlog` (surplus connections are
 * dropped, as a full kernel backlog would).
 *
 * Out of descriptors (EMFILE, ENFILE) libuv does not report an error: it closes a descriptor it
 * keeps in reserve, accepts and at once closes every connection waiting, takes the reserve back
 * and goes on listening. Connections reset that way are what C's accept() failing with EMFILE
 * never does (they wait in the kernel's queue), so a TCP listener stops short of it: see park().
 * Only when even that fails does the server emit 'error'; `accept()` reports it once.
 */
export class ListenerFd extends Fd {
  /** Accepted connections: handles taken from the listening handle, or sockets Node made. */
  private pending: (AcceptedHandle | Socket)[] = [];
  private err: FdError | null = null;
  /** While stopped (park): a copy of the listening socket's descriptor, and the poll for free ones. */
  private parked: { fd: number; timer: NodeJS.Timeout } | null = null;
  /** Descriptors the process held when the server first listened, null until then (or while unknown: no limit). */
  private heldAtListen: number | null = null;
  /** When this listener last logged that it stopped (park), performance.now() ms. */
  private parkedLoggedAt = -Infinity;
  /**
   * Accepts left before the free descriptors are counted again, and the limit they were
   * counted under: an accepted descriptor's number says nothing of those open above it
   * (freed ones below are handed out first), so it cannot tell how many are left.
   */
  private allowance = { left: 0, limit: 0 };

  constructor(
    readonly server: Server,
    readonly backlog: number,
  ) {
    super();
    // net.Server wraps each accepted handle in a Socket, and a socket read into our own ring
    // must be made with `onread`: the handle would be wrapped twice (about 8 % of the client's
    // CPU in a burst of forwarded connections). So the listening handle's connection callback
    // is taken over as the server listens; 'connection' only serves if it could not be.
    server.on("connection", (sock: Socket) => this.queue(sock));
    if (server.listening) {
      this.takeAccepts();
    } else {
      server.once("listening", () => this.takeAccepts());
    }
    server.on("error", (e: unknown) => this.fail(toFdError(e)));
  }

  /** The server's listening handle (Node's internal one: no public call gives its descriptor), null while it is closed. */
  private listeningHandle(): ListeningHandle | null {
    return (this.server as unknown as { _handle: ListeningHandle | null })._handle;
  }

  /** Keep the first error for `accept()` to report once. */
  private fail(err: FdError): void {
    this.err ??= err;
    this.notify();
  }

  /** Receive the accepted handles from the listening handle (Node's onconnection(status, handle)). */
  private takeAccepts(): void {
    const listening = this.listeningHandle();
    if (listening === null || typeof listening.onconnection !== "function") {
      return;
    }
    if (listening.fd !== undefined) {
      const limit = descriptorLimit();
      const free = freeDescriptors(listening.fd, limit);
      if (Number.isFinite(free)) {
        this.heldAtListen ??= limit - free;
      }
      this.allowance = { left: free - this.listenReserve(), limit };
    }
    listening.onconnection = (status, handle) => {
      if (status < 0 || handle === undefined) {
        // What net.Server would emit as 'error' ("accept EMFILE").
        const code = status < 0 ? getSystemErrorName(status) : "EIO";
        this.fail(new FdError(code, `accept ${code}`, "accept"));
        return;
      }
      // The server's own socket options, as net.Server applies them to each connection.
      const { noDelay, keepAlive, keepAliveInitialDelay } = this.server as unknown as ServerSocketOptions;
      if (noDelay === true) {
        handle.setNoDelay?.(true);
      }
      if (keepAlive === true) {
        handle.setKeepAlive?.(true, keepAliveInitialDelay ?? 0);
      }
      const peer: PeerName = {};
      if (handle.getpeername?.(peer) === 0) {
        acceptedPeers.set(handle, peer);
      }
      this.queue(handle);
      if (listening.fd !== undefined && (--this.allowance.left <= 0 || this.allowance.limit !== descriptorLimit())) {
        const limit = descriptorLimit();
        const reserve = this.listenReserve();
        const free = freeDescriptors(listening.fd, limit);
        this.allowance = { left: free - reserve, limit };
        if (free <= reserve) {
          this.park();
        }
      }
    };
  }

  /**
   * LISTEN_FD_RESERVE, or where the limit leaves the process few descriptors beyond those it
   * held as it started listening, a quarter of those few (at least one). A fixed reserve would
   * stop the listener for good there: the idle process (a daemon with its spare, started after
   * the listener) never has twice the reserve free, so unpark() would never listen again.
   */
  private listenReserve(): number {
    if (this.heldAtListen === null) {
      return LISTEN_FD_RESERVE;
    }
    const spare = descriptorLimit() - this.heldAtListen;
    return Math.max(1, Math.min(LISTEN_FD_RESERVE, Math.floor(spare / 4)));
  }

  /**
   * Stop accepting while the process is short of descriptors, so that further connections wait
   * in the kernel's queue as they do when C's accept() fails with EMFILE, rather than libuv
   * resetting them. Node cannot pause a listening handle, so the handle is closed and the
   * socket kept open (with its queue) by a copy of its descriptor, which listens again once
   * descriptors are free. A Unix socket is left as it is: closing its handle unlinks its path.
   */
  private park(): void {
    const listening = this.listeningHandle();
    if (this.parked !== null || this.closed || listening?.fd === undefined || typeof this.server.address() === "string") {
      return;
    }
    let fd: number;
    try {
      fd = dup_cloexec(listening.fd);
    } catch {
      return; // no koffi here: libuv's own behaviour stays
    }
    if (fd < 0) {
      return; // not even one descriptor for the copy: accepting on is all there is
    }
    // C's accept() failing with EMFILE says nothing; the connections that wait meanwhile (their
    // clients may time out) should have a reason in the log.
    const now = performance.now();
    if (now - this.parkedLoggedAt >= PARKED_LOG_MS) {
      this.parkedLoggedAt = now;
      dropbear_log(LOG_WARNING, `Too many open files (ulimit -n ${descriptorLimit()}): accepting again once some are closed`);
    }
    this.parked = { fd, timer: setInterval(() => this.unpark(), PARKED_POLL_MS) };
    this.server.close();
    this.keepRefState();
  }

  /** The wait holds the process as the listening handle would: not once the server is unref'd. */
  private keepRefState(): void {
    const timer = this.parked?.timer;
    if ((this.server as unknown as { _unref?: boolean })._unref === true) {
      timer?.unref();
    } else {
      timer?.ref();
    }
  }

  /**
   * Listen again on the kept socket once, after an accept, twice the reserve would be free, or
   * (under a limit one or two above what the process held as it started listening, where twice
   * the reserve never is) as many as were free then.
   */
  private unpark(): void {
    const parked = this.parked;
    if (parked === null) {
      return;
    }
    const limit = descriptorLimit();
    const free = freeDescriptors(parked.fd, limit);
    const wanted = Math.min(2 * this.listenReserve(), this.heldAtListen === null ? Infinity : limit - this.heldAtListen - 1);
    if (free - 1 < wanted) {
      this.keepRefState();
      return;
    }
    clearInterval(parked.timer);
    this.parked = null;
    TRACE(() => `listener: ${free} descriptors free, accepting again`);
    // The copy becomes the new handle's descriptor; listen(2) again on it only sets the backlog.
    this.server.listen({ fd: parked.fd, backlog: this.backlog });
    this.takeAccepts();
  }

  private queue(c: AcceptedHandle | Socket): void {
    if (this.closed || this.pending.length >= this.backlog) {
      dropAccepted(c);
      return;
    }
    this.pending.push(c);
    this.notify();
  }

  get error(): FdError | null {
    return this.err;
  }

  readReady(): boolean {
    return !this.closed && (this.pending.length > 0 || this.err !== null);
  }

  writeReady(): boolean {
    return false;
  }

  /**
   * The next accepted connection (still paused), or null if none waits (EAGAIN). An error the
   * server reported is thrown once, then cleared, as accept(2) returns it once: kept, it would
   * leave the listener read-ready for ever and the loop spinning.
   */
  accept(): Socket | null {
    const c = this.next();
    return c === null || c instanceof Socket ? c : acceptedSocket(c);
  }

  /** Like `accept()`, as a socket whose reads land in our own ring (`ownReadSocket`). */
  acceptOwnRead(): StreamFd<Socket> | null {
    const c = this.next();
    return c === null ? null : c instanceof Socket ? ownReadAccepted(c) : ownReadSocket((onread) => acceptedSocket(c, onread));
  }

  private next(): AcceptedHandle | Socket | null {
    if (this.closed) {
      throw new FdError("EBADF", "accept on a closed listener");
    }
    const c = this.pending.shift();
    if (c !== undefined) {
      return c;
    }
    const err = this.err;
    if (err !== null) {
      this.err = null;
      throw err;
    }
    return null;
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    for (const c of this.pending) {
      dropAccepted(c);
    }
    this.pending = [];
    if (this.parked !== null) {
      clearInterval(this.parked.timer);
      closeSync(this.parked.fd);
      this.parked = null;
    }
    this.server.close();
    this.notify();
  }
}

/**
 * The self-pipe a signal or child-exit handler writes to so that `select()` wakes:
 * Dropbear's `ses.signal_pipe`. `raise()` is the handler's write, `drain()` the loop's read.
 */
export class SignalPipeFd extends Fd {
  private raised = false;

  raise(): void {
    if (!this.closed) {
      this.raised = true;
      this.notify();
    }
  }

  /** Consume the wake-up; returns whether one was pending. */
  drain(): boolean {
    const was = this.raised;
    this.raised = false;
    return was;
  }

  readReady(): boolean {
    return !this.closed && this.raised;
  }

  writeReady(): boolean {
    return false;
  }

  close(): void {
    this.closed = true;
    this.raised = false;
    this.notify();
  }
}
