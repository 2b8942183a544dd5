import { gettime_wrapper } from "@dropbear-ts/dbutil";
import type { Fd } from "@dropbear-ts/netio";

/** An fd set as the loop builds it: `FD_SET` is `add`, `FD_ISSET` is `has`, `FD_ZERO` is `clear`. */
export type FdSet = Set<Fd>;

/**
 * Wait until an Fd in `readfds` is readable or one in `writefds` is writable, or `timeout`
 * seconds pass (`null`: no limit; 0: just poll). Like select(2) it leaves only the ready Fds in
 * the two sets and returns how many there are, 0 on timeout.
 *
 * It always yields to the event loop at least once, so Node's I/O callbacks run between two
 * loop iterations, and while waiting it holds no timer unless a timeout was asked for: an idle
 * session costs no CPU. Wake-ups that change nothing (a 'drain' on an Fd only watched for
 * reading) are absorbed here and never surface as a spurious 0.
 *
 * `idle` (the session's idle_work) is run from one task at a time whenever nothing is ready
 * after Node has delivered what I/O it had, each followed by another look; only with it empty
 * does select wait. `timer`: what the timeout is kept by (SelectTimer: a loop passes its own).
 */
export async function select(
  readfds: FdSet,
  writefds: FdSet,
  timeout: number | null,
  idle: (() => void)[] = [],
  timer?: SelectTimer,
): Promise<number> {
  // Read off the clock only if it comes to waiting: most turns of a busy loop find an Fd ready.
  let deadline: number | null = null;
  let ready = countReadyOpen(readfds, writefds);
  if (ready > 0 || timeout === 0 || idle.length > 0) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    ready = keepReady(readfds, writefds);
  }
  while (ready === 0 && idle.length > 0 && timeout !== 0) {
    idle.shift()!();
    await new Promise<void>((resolve) => setImmediate(resolve));
    ready = keepReady(readfds, writefds);
  }
  while (ready === 0) {
    const now = timeout === null ? 0 : gettime_wrapper();
    if (timeout !== null) {
      deadline ??= now + Math.max(0, timeout) * 1000;
      if (deadline - now <= 0) {
        readfds.clear();
        writefds.clear();
        break;
      }
    }
    await waitForEvent(readfds, writefds, deadline === null ? null : (timer ??= new SelectTimer(true)).arm(deadline, now));
    ready = keepReady(readfds, writefds);
  }
  return ready;
}

/**
 * The timer a select() waits with for its timeout. A loop that passes the same one to each of
 * its select() calls keeps it armed from one call to the next: a busy loop waits for a moment
 * on most turns, and a Node timer made and cleared for each wait (each with a new duration)
 * cost about 2 % of a tunnel's server CPU. Kept armed, it may fire before a later call's
 * deadline (Dropbear's timeouts count whole seconds, so a deadline moves back by up to a second
 * as the clock passes one); that select() then finds nothing ready and waits again.
 */
export class SelectTimer {
  private timeout: NodeJS.Timeout | null = null;
  /** When it fires, on gettime_wrapper's clock. */
  private due = 0;
  /** The waiting select()'s wake-up, while one waits. */
  private wake: (() => void) | null = null;
  private readonly fire = (): void => {
    this.timeout = null;
    this.wake?.();
  };

  /** `once`: a select()'s own, for one wait: cleared as that wait ends. */
  constructor(private readonly once = false) {}

  /**
   * Make sure it fires by `deadline` (ms on gettime_wrapper's clock, `now` being the time now);
   * returns itself, for waitForEvent.
   */
  arm(deadline: number, now: number): SelectTimer {
    if (this.timeout === null || this.due > deadline) {
      if (this.timeout !== null) {
        clearTimeout(this.timeout);
      }
      this.due = deadline;
      this.timeout = setTimeout(this.fire, Math.ceil(deadline - now));
    }
    return this;
  }

  /** A select() waits: `wake` runs if the timer fires first. */
  wait(wake: () => void): void {
    this.wake = wake;
  }

  /** The wait ended; the timer stays armed for the loop's next one (a `once` timer is cleared). */
  done(): void {
    this.wake = null;
    if (this.once) {
      this.stop();
    }
  }

  /** Clear it: the loop is done (an armed timer holds the event loop, as a waiting select does). */
  stop(): void {
    this.wake = null;
    if (this.timeout !== null) {
      clearTimeout(this.timeout);
      this.timeout = null;
    }
  }
}

/** How many Fds are ready; a closed one is the caller's bug (C's EBADF). */
function countReadyOpen(readfds: FdSet, writefds: FdSet): number {
  let n = 0;
  for (const fd of readfds) {
    if (fd.closed) {
      throw new Error(`select() on closed fd ${fd.fd}`);
    }
    if (fd.readReady()) n++;
  }
  for (const fd of writefds) {
    if (fd.closed) {
      throw new Error(`select() on closed fd ${fd.fd}`);
    }
    if (fd.writeReady()) n++;
  }
  return n;
}

/** Fds keepReady found not ready; one array reused, as keepReady runs synchronously to its end. */
const notReadyScratch: Fd[] = [];

/**
 * If any Fd is ready, leave only the ready ones in the sets; return how many. With none ready the
 * sets stay whole for the wait. One readiness check per Fd.
 */
function keepReady(readfds: FdSet, writefds: FdSet): number {
  const notReady = notReadyScratch;
  let n = 0;
  for (const fd of readfds) {
    if (fd.readReady()) n++;
    else notReady.push(fd);
  }
  const split = notReady.length;
  for (const fd of writefds) {
    if (fd.writeReady()) n++;
    else notReady.push(fd);
  }
  if (n > 0) {
    for (let i = 0; i < notReady.length; i++) {
      (i < split ? readfds : writefds).delete(notReady[i]!);
    }
  }
  notReady.length = 0;
  return n;
}

/**
 * Resolve after the next event from any watched Fd, or after `ms` (if not null), once the
 * event loop has run the rest of that I/O phase. Node runs promise continuations right after
 * each I/O callback, so resolving at the first event would run a whole loop turn for one
 * accepted connection, one completed connect or one socket's data, before libuv delivers the
 * others it already has in hand: a burst of hundreds then cost a turn (and a write to the
 * transport) each. Resolving from setImmediate lets that phase finish first, as select(2)
 * returns every fd ready at the time, and costs no waiting: the check phase follows at once.
 */
function waitForEvent(readfds: FdSet, writefds: FdSet, timer: SelectTimer | null): Promise<void> {
  return new Promise<void>((resolve) => {
    // An Fd in both sets gets the same callback twice: its waiter set keeps it once.
    const wake = (): void => {
      for (const fd of readfds) {
        fd.removeWaiter(wake);
      }
      for (const fd of writefds) {
        fd.removeWaiter(wake);
      }
      timer?.done();
      setImmediate(resolve);
    };
    for (const fd of readfds) {
      fd.addWaiter(wake);
    }
    for (const fd of writefds) {
      fd.addWaiter(wake);
    }
    timer?.wait(wake);
  });
}
