import type { Server, Socket } from "node:net";
import type { Readable, Writable } from "node:stream";

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
 * The most bytes one `StreamFd.writev` hands its stream in a call. The high-water mark says
 * whether a stream takes writes at all (what Node still holds, unsent, is under it); this says
 * how much one gathered write may carry, so a call moves several packets to the kernel in one
 * writev(2) instead of one packet per loop turn. What Node may hold for a slow peer is bounded by
 * the mark plus this plus one chunk.
 */
export const WRITEV_MAX_BYTES = 128 * 1024;

/**
 * Options for `new net.Socket()` / `net.connect()`: both stream sides at SOCKET_HIGH_WATER_MARK.
 * (Node passes them on to the Duplex; @types/node does not list them for sockets.)
 */
export const socketStreamOptions: { readableHighWaterMark: number; writableHighWaterMark: number } = {
  readableHighWaterMark: SOCKET_HIGH_WATER_MARK,
  writableHighWaterMark: SOCKET_HIGH_WATER_MARK,
};

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
  ) {
    super(message);
  }
}

function toFdError(err: unknown): FdError {
  if (err instanceof FdError) {
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  return new FdError(e?.code ?? "EIO", e?.message ?? String(err));
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
 * memory held for a slow peer is bounded by that mark plus one write, never by the sender.
 */
export class StreamFd extends Fd {
  private readonly rstream: Readable | null;
  private readonly wstream: Writable | null;
  /** 'readable' seen and not yet consumed down to empty. */
  private readableFlag = false;
  private eof = false;
  private readShut = false;
  private err: FdError | null = null;
  private readonly onReadable = (): void => {
    this.readableFlag = true;
    this.notify();
  };

  constructor(readonly stream: AnyStream) {
    super();
    this.rstream = isReadable(stream) ? stream : null;
    this.wstream = isWritable(stream) ? stream : null;
    // The same stream object can be both (a socket): listen once, for both sides.
    const ev = stream as NodeJS.EventEmitter;
    if (this.rstream) {
      // A 'readable' listener puts the stream in paused mode: data waits for read().
      this.rstream.on("readable", this.onReadable);
      ev.on("end", () => {
        this.eof = true;
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
    ev.on("close", () => this.notify());
    // Events that fired before we listened (a socket handed over after its peer closed).
    if (this.rstream?.readableEnded) {
      this.eof = true;
    }
    const errored = (stream as Readable).errored;
    if (errored) {
      this.err = toFdError(errored);
    }
  }

  /** The pending error, if any: what getsockopt(SO_ERROR) returns after a failed connect. */
  get error(): FdError | null {
    return this.err;
  }

  /** True while a socket's connect() is still in progress. */
  get connecting(): boolean {
    return (this.stream as Socket).connecting === true;
  }

  readReady(): boolean {
    if (this.closed || !this.rstream || this.readShut) {
      return false;
    }
    return this.err !== null || this.eof || this.readableFlag || this.rstream.readableLength > 0;
  }

  writeReady(): boolean {
    if (this.closed || !this.wstream) {
      return false;
    }
    if (this.err !== null) {
      return true;
    }
    if (this.connecting || this.wstream.writableEnded) {
      return false;
    }
    return this.belowMark(this.wstream);
  }

  /**
   * Node holds less than the stream's high-water mark, unsent. Not `writableNeedDrain`: that
   * stays set until a tick after the kernel took everything, which would cost a loop turn per
   * write. When this is false Node's 'drain' is due (the length reached the mark with this write
   * or an earlier one), so a waiting select() still wakes.
   */
  private belowMark(w: Writable): boolean {
    return w.writableLength < w.writableHighWaterMark;
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
    if (this.err) {
      throw this.err;
    }
    if (this.eof) {
      return Buffer.alloc(0);
    }
    return null;
  }

  /**
   * Non-blocking gathered write (writev). While Node holds less than the stream's high-water
   * mark, hands chunks to the stream in order, up to WRITEV_MAX_BYTES (at least one chunk), all
   * in one corked batch; returns the bytes accepted (0 if none: EAGAIN). A chunk is taken whole
   * or not at all. Throws FdError if the stream failed.
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
    if (this.connecting || !this.belowMark(w)) {
      return 0;
    }
    let written = 0;
    // cork: the kernel gets the batch in one writev(), not one syscall per packet.
    w.cork();
    for (const c of chunks) {
      if (written > 0 && written + c.length > WRITEV_MAX_BYTES) {
        break;
      }
      w.write(c);
      written += c.length;
    }
    w.uncork();
    return written;
  }

  /** Non-blocking write of one buffer; see `writev`. */
  write(data: Uint8Array): number {
    return this.writev([data]);
  }

  /** Bytes handed to the stream but not yet to the kernel: the memory a slow peer costs us. */
  get writePending(): number {
    return this.wstream?.writableLength ?? 0;
  }

  /** Stop reading for good and discard what arrives: C's shutdown(SHUT_RD). */
  shutdownRead(): void {
    if (!this.rstream || this.readShut) {
      return;
    }
    this.readShut = true;
    this.rstream.removeListener("readable", this.onReadable);
    // Flowing with no 'data' listener discards input, so the peer is never stalled by us.
    this.rstream.resume();
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
   * and is destroyed once flushed; what arrives meanwhile is discarded.
   */
  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.readableFlag = false;
    const stream = this.stream as Readable;
    const w = this.wstream;
    const unflushed = w !== null && this.err === null && !w.destroyed && (w.writableLength > 0 || (w.writableEnded && !w.writableFinished));
    if (unflushed) {
      const done = (): void => {
        stream.destroy();
      };
      w.once("finish", done);
      w.once("error", done);
      if (!w.writableEnded) {
        w.end();
      }
      if (this.rstream !== null && !this.readShut) {
        this.rstream.removeListener("readable", this.onReadable);
        this.rstream.resume();
      }
    } else {
      stream.destroy();
    }
    this.notify();
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
 * and goes on listening, so the server accepts again by itself as soon as descriptors are free.
 * Only when even that fails does the server emit 'error'; `accept()` reports it once.
 */
export class ListenerFd extends Fd {
  private pending: Socket[] = [];
  private err: FdError | null = null;

  constructor(
    readonly server: Server,
    readonly backlog: number,
  ) {
    super();
    server.on("connection", (sock: Socket) => {
      if (this.closed || this.pending.length >= this.backlog) {
        sock.destroy();
        return;
      }
      this.pending.push(sock);
      this.notify();
    });
    server.on("error", (e: unknown) => {
      this.err ??= toFdError(e);
      this.notify();
    });
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
    if (this.closed) {
      throw new FdError("EBADF", "accept on a closed listener");
    }
    const sock = this.pending.shift();
    if (sock !== undefined) {
      return sock;
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
    for (const s of this.pending) {
      s.destroy();
    }
    this.pending = [];
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
