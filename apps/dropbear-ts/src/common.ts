// What the library's client and server share: the caller's logger, and the pipes that join a
// channel's fds (StreamFd, as the session loop reads and writes them) to the caller's streams.
import { Readable, Writable } from "node:stream";
import { LOG_ERR, LOG_INFO, LOG_WARNING, type LogHandler } from "@dropbear-ts/dbutil";

/** How serious a log line is (syslog's priorities folded into four). */
export type LogLevel = "error" | "warning" | "info" | "debug";

/** Receives a session's log lines (Dropbear's dropbear_log), the messages dbclient / dropbear print. */
export type Logger = (level: LogLevel, message: string) => void;

/** @internal The dbutil log handler for a caller's logger; without one, nothing is logged. */
export function logHandlerFor(logger: Logger | undefined): LogHandler {
  if (logger === undefined) {
    return () => {};
  }
  return (priority, msg) => {
    const level: LogLevel = priority <= LOG_ERR ? "error" : priority === LOG_WARNING ? "warning" : priority <= LOG_INFO ? "info" : "debug";
    // Dropbear's lines carry newlines meant for a terminal.
    logger(level, msg.trim());
  };
}

/**
 * @internal A one-way pipe: what is written to `writable` is read from `readable`. A write completes
 * once the reader has room (back pressure reaches the writer), end is carried over, and
 * neither side's destruction can throw at the other: a destroyed writer ends the reader, and
 * once the reader is destroyed further writes vanish, as writes into a closed channel do.
 */
export function streamPipe(highWaterMark = 64 * 1024): { readable: Readable; writable: Writable } {
  let waiting: ((error?: Error | null) => void) | null = null;
  let ended = false;
  const release = (): void => {
    const cb = waiting;
    waiting = null;
    cb?.();
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
      release();
      cb(error);
    },
  });
  const writable = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, cb) {
      if (ended || readable.destroyed || readable.push(chunk)) {
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
  return { readable, writable };
}
