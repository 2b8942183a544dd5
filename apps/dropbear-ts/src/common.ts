// What the library's client and server share: the caller's logger, and the pipes that join a
// channel's fds (StreamFd, as the session loop reads and writes them) to the caller's streams.
import { Duplex, Readable, Writable } from "node:stream";
import { LOG_ERR, LOG_INFO, LOG_WARNING, type LogHandler } from "@dropbear-ts/dbutil";

/** How serious a log line is (syslog's priorities folded into four). */
export type LogLevel = "error" | "warning" | "info" | "debug";

/** Receives a session's log lines (Dropbear's dropbear_log), the messages dbclient / dropbear print. */
export type Logger = (level: LogLevel, message: string) => void;

/**
 * @internal `text` with its control characters (C0, DEL, C1) written in octal (`\012`, `\033`), as
 * OpenSSH's log lines write them (vis(3)), and a backslash doubled: what a client chose,
 * such as a user name, can neither start a line of its own in the caller's log nor send a
 * terminal escape sequence.
 */
export function visibleText(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f\\]/g, (c) => (c === "\\" ? "\\\\" : `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`));
}

/**
 * @internal What a caller's code threw, as text: an Error's message, else the value's String().
 * Never a throw of its own: a null-prototype object, a Proxy or a throwing `message` getter or
 * toString() would otherwise turn the caller's refusal into our failure (an unhandled rejection
 * in the middle of a session's auth).
 */
export function thrownText(e: unknown): string {
  try {
    return String(e instanceof Error ? e.message : e);
  } catch {
    try {
      return Object.prototype.toString.call(e);
    } catch {
      return "(a value that cannot be shown)";
    }
  }
}

/**
 * @internal The dbutil log handler for a caller's logger; without one, nothing is logged.
 * `visible`: each line goes through visibleText, for the server, whose lines carry names a client
 * chose (a library server has no system accounts to check a user name against first, as
 * dropbear's getpwnam does before one is logged).
 */
export function logHandlerFor(logger: Logger | undefined, visible = false): LogHandler {
  if (logger === undefined) {
    return () => {};
  }
  return (priority, msg) => {
    const level: LogLevel = priority <= LOG_ERR ? "error" : priority === LOG_WARNING ? "warning" : priority <= LOG_INFO ? "info" : "debug";
    try {
      // Dropbear's lines carry newlines meant for a terminal.
      const line = msg.trim();
      logger(level, visible ? visibleText(line) : line);
    } catch {
      // A logger that throws loses its line; it must not end a session, or the process.
    }
  };
}

/**
 * @internal Every option name an options object may have, each marked true: typed as a Record
 * over the interface's keys, a name added to the interface and not here fails to compile.
 */
export type OptionNames<T> = Record<keyof T, true>;

/**
 * @internal The first own name of `options` that `known` does not list, or null. A misspelt
 * option (privatKeyPath) left unread would be what the program never asked for (no key, no
 * check), found out only when the server says no.
 */
export function unknownOption(options: object, known: object): string | null {
  return Object.keys(options).find((k) => !Object.hasOwn(known, k)) ?? null;
}

/**
 * @internal Resolves once libuv has closed the handles closed so far. A destroyed socket is
 * `closed` at once and a net.Server emits "close" on a tick, but libuv closes their handles in
 * the loop's close phase, after the check phase: an immediate can come first, the second cannot.
 * Until then process.getActiveResourcesInfo() still lists them.
 */
export function handlesGone(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * @internal Whether a callback's answer is to be awaited: a promise, or any other thenable (another
 * library's promise, a query builder) that a caller's code returns. Taken for a plain answer, it
 * was an object (a refusal, or a host key accepted at once) whose settling nothing watched.
 */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/**
 * @internal A one-way pipe: what is written to `writable` is read from `readable`. A write completes
 * once the reader has room (back pressure reaches the writer), end is carried over, and
 * neither side's destruction can throw at the other: a destroyed writer ends the reader, and a
 * destroyed reader (the channel is gone) destroys the writer, as a socket whose peer has gone
 * is: its writes then fail (write() returns false, 'close' is emitted, pipe() stops) instead of
 * completing at once, which kept a writer that waits for back pressure looping for ever. The
 * writer has an 'error' listener of ours, so that a write after its end() only fails.
 *
 * One side is the session loop's, the other the caller's: the loop's write emits the reader's
 * 'data', and its read completes the writer's write (its callback, 'drain', 'finish'), on the
 * loop's stack. A caller's listener that throws there is thrown again from a tick of its own,
 * the process's uncaught exception as a socket's listener's is: caught by the loop it ended the
 * whole session as our own bug, and caught by Readable.read() it cut the caller's stdin short
 * as if it had ended, silently.
 */
export function streamPipe(highWaterMark = 64 * 1024): { readable: Readable; writable: Writable } {
  let waiting: ((error?: Error | null) => void) | null = null;
  let ended = false;
  const release = (): void => {
    const cb = waiting;
    waiting = null;
    callersCode(() => cb?.());
  };
  const end = (): void => {
    if (!ended && !readable.destroyed) {
      ended = true;
      readable.push(null);
    }
  };
  const readable = new Readable({
    highWaterMark,
    read: release,
    destroy(error, cb) {
      // The writer's destroy releases its waiting write; destroyed by then, it emits no 'drain'.
      writable.destroy();
      cb(error);
    },
  });
  const writable = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, cb) {
      // A listener that threw has had the chunk: taken.
      let taken = true;
      callersCode(() => (taken = ended || readable.destroyed || readable.push(chunk)));
      if (taken) {
        cb();
      } else {
        waiting = cb;
      }
    },
    final(cb) {
      end();
      cb();
    },
    destroy(error, cb) {
      end();
      release();
      cb(error);
    },
  });
  writable.on("error", () => {
    // The writer's own misuse (a write after end()) is reported to that write's callback.
  });
  return { readable, writable };
}

/** Run what calls a caller's listeners; what they throw is thrown again from a tick of its own. */
function callersCode(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
  }
}

/**
 * @internal One Duplex over a streamPipe's reading end (what comes from the peer) and another's
 * writing end (what goes to it). destroy() closes it without an error, as it closes a
 * net.Socket (Duplex.from reports an AbortError then: an 'error' event, which ends a program
 * that has no listener).
 */
export function duplexOf(readable: Readable, writable: Writable): Duplex {
  const d = new Duplex({
    allowHalfOpen: true,
    read() {
      readable.resume();
    },
    write(chunk: Buffer, _encoding, cb) {
      writable.write(chunk, cb);
    },
    final(cb) {
      writable.end();
      cb();
    },
    destroy(error, cb) {
      readable.destroy();
      writable.destroy();
      cb(error);
    },
  });
  readable.on("data", (chunk: Buffer) => {
    if (!d.push(chunk)) {
      readable.pause();
    }
  });
  readable.on("end", () => d.push(null));
  // The channel gone (the peer closed it, or the session ended) closes what we wrote into:
  // the Duplex closes too once what came before it is read, as a socket closes when its peer
  // has gone. With its writing side open it waited for ever, and 'close' and finished() with it.
  writable.on("close", () => {
    if (d.readableEnded) {
      d.destroy();
    } else {
      d.once("end", () => d.destroy());
    }
  });
  d.on("error", () => {
    // A write into a channel that is gone fails that write (its callback has the error) and
    // closes the stream, as EPIPE does a socket's, but never ends a program that has no listener.
  });
  return d;
}
