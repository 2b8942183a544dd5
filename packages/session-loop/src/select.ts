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
 * does select wait.
 */
export async function select(readfds: FdSet, writefds: FdSet, timeout: number | null, idle: (() => void)[] = []): Promise<number> {
  const deadline = timeout === null ? null : gettime_wrapper() + Math.max(0, timeout) * 1000;
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
    const remaining = deadline === null ? null : deadline - gettime_wrapper();
    if (remaining !== null && remaining <= 0) {
      readfds.clear();
      writefds.clear();
      break;
    }
    await waitForEvent(readfds, writefds, remaining);
    ready = keepReady(readfds, writefds);
  }
  return ready;
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
function waitForEvent(readfds: FdSet, writefds: FdSet, ms: number | null): Promise<void> {
  return new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    // An Fd in both sets gets the same callback twice: its waiter set keeps it once.
    const wake = (): void => {
      for (const fd of readfds) {
        fd.removeWaiter(wake);
      }
      for (const fd of writefds) {
        fd.removeWaiter(wake);
      }
      if (timer !== null) {
        clearTimeout(timer);
      }
      setImmediate(resolve);
    };
    for (const fd of readfds) {
      fd.addWaiter(wake);
    }
    for (const fd of writefds) {
      fd.addWaiter(wake);
    }
    if (ms !== null) {
      timer = setTimeout(wake, Math.ceil(ms));
    }
  });
}
