import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SignalPipeFd, StreamFd, type Fd } from "@dropbear-ts/netio";
import { SelectTimer, select } from "../src/select.js";
import { tcpPair } from "../../../tests/helpers/sockets.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function pair(): Promise<{ a: StreamFd; b: StreamFd; raw: Awaited<ReturnType<typeof tcpPair>> }> {
  const raw = await tcpPair();
  cleanups.push(raw.close);
  return { a: new StreamFd(raw.a), b: new StreamFd(raw.b), raw };
}

describe("select()", () => {
  it("times out with 0 and empty sets when nothing is ready", async () => {
    const { b } = await pair();
    const r = new Set<Fd>([b]);
    const w = new Set<Fd>();
    const t0 = performance.now();
    const n = await select(r, w, 0.2);
    const took = performance.now() - t0;
    expect(n).toBe(0);
    expect(r.size).toBe(0);
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2000);
  });

  it("polls with timeout 0", async () => {
    const { b } = await pair();
    expect(await select(new Set([b]), new Set(), 0)).toBe(0);
  });

  it("wakes for readable data and keeps only ready fds", async () => {
    const { a, b, raw } = await pair();
    const sig = new SignalPipeFd();
    setTimeout(() => raw.a.write("x"), 50);
    const r = new Set<Fd>([b, sig, a]);
    const n = await select(r, new Set(), null);
    expect(n).toBe(1);
    expect([...r]).toEqual([b]);
    expect(b.read(10)!.toString()).toBe("x");
  });

  it("reports writable sockets at once, and both sets together", async () => {
    const { a, b, raw } = await pair();
    raw.a.write("y");
    // Until the byte has arrived, as select itself would wait.
    await new Promise<void>((resolve) => {
      const arrived = (): void => {
        if (!b.readReady()) return;
        b.removeWaiter(arrived);
        resolve();
      };
      b.addWaiter(arrived);
      arrived();
    });
    const r = new Set<Fd>([b]);
    const w = new Set<Fd>([a, b]);
    const n = await select(r, w, 1);
    expect(n).toBe(3);
    expect(r.has(b)).toBe(true);
    expect(w.size).toBe(2);
  });

  it("reports EOF and errors as readable", async () => {
    const { a, b, raw } = await pair();
    raw.a.end();
    // Node may need one empty read to notice the end: allow one EAGAIN before EOF.
    let eof = false;
    for (let i = 0; i < 2 && !eof; i++) {
      expect(await select(new Set<Fd>([b]), new Set(), 5)).toBe(1);
      const d = b.read(10);
      if (d !== null && d.length === 0) eof = true;
      else expect(d).toBeNull();
    }
    expect(eof).toBe(true);

    raw.b.resetAndDestroy();
    const r2 = new Set<Fd>([a]);
    expect(await select(r2, new Set(), 5)).toBe(1);
    expect(() => a.read(10)).toThrow(/ECONNRESET|reset/i);
  });

  it("wakes on a signal-pipe raise from another callback", async () => {
    const sig = new SignalPipeFd();
    setTimeout(() => sig.raise(), 30);
    const r = new Set<Fd>([sig]);
    expect(await select(r, new Set(), 5)).toBe(1);
    expect(sig.drain()).toBe(true);
  });

  it("returns every fd made ready in the same phase of Node's event loop, not only the first", async () => {
    // Node runs promise continuations between two callbacks of one phase: a select that
    // resumed at the first event would see one fd here, and a burst of accepts, connects or
    // reads would cost the session loop a turn each. The raises are immediates queued by one
    // timer so they share a check phase for sure: three timers of 20 ms can be stamped a
    // millisecond apart on a loaded machine and fall due in different turns.
    const sigs = [new SignalPipeFd(), new SignalPipeFd(), new SignalPipeFd()];
    setTimeout(() => {
      for (const sig of sigs) setImmediate(() => sig.raise());
    }, 20);
    const r = new Set<Fd>(sigs);
    expect(await select(r, new Set(), 5)).toBe(3);
    expect(r.size).toBe(3);
  });

  it("absorbs wake-ups that change nothing and still honours the timeout", async () => {
    const { a } = await pair();
    const sig = new SignalPipeFd();
    // 'drain'-like noise: notify the waiter without making anything ready.
    const noisy = setInterval(() => (a as unknown as { notify(): void }).notify(), 10);
    cleanups.push(() => clearInterval(noisy));
    const t0 = performance.now();
    expect(await select(new Set<Fd>([sig, a]), new Set(), 0.15)).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it("runs idle work one task at a time only while nothing is ready, then waits", async () => {
    const { b, raw } = await pair();
    const ran: string[] = [];
    // Nothing ready: both tasks run (the first sends, so the second finds data waiting and
    // select returns without waiting).
    const idle = [() => ran.push("first"), () => void raw.a.write("x"), () => ran.push("third")];
    const r = new Set<Fd>([b]);
    expect(await select(r, new Set(), null, idle)).toBe(1);
    expect(ran).toEqual(["first"]);
    expect(idle.length).toBe(1);
    expect(r.has(b)).toBe(true);
    // Something ready: no task runs.
    expect(await select(new Set<Fd>([b]), new Set(), null, idle)).toBe(1);
    expect(idle.length).toBe(1);
    // A poll (timeout 0) never runs one either.
    expect(b.read(10)!.toString()).toBe("x");
    expect(await select(new Set<Fd>([b]), new Set(), 0, idle)).toBe(0);
    expect(idle.length).toBe(1);
  });

  it("refuses closed fds", async () => {
    const { b } = await pair();
    b.close();
    await expect(select(new Set<Fd>([b]), new Set(), 0)).rejects.toThrow(/closed/);
  });
});

describe("select() costs no CPU while idle", () => {
  it("a process blocked in select() with no timeout uses (almost) no CPU and holds no timer", async () => {
    // A real process: its CPU time is read from /proc while it sits in select().
    const script = fileURLToPath(new URL("./fixtures/idle-select.mjs", import.meta.url));
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    cleanups.push(() => child.kill("SIGKILL"));
    let out = "";
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^listening (\d+)$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", () => reject(new Error(`child exited early: ${out}`)));
    });
    const sock = net.connect(port, "127.0.0.1");
    cleanups.push(() => sock.destroy());
    await new Promise((r) => sock.once("connect", r));
    await waitFor(() => /^selecting timers=(\d+)$/m.test(out));
    expect(/^selecting timers=0$/m.test(out)).toBe(true);

    const cpu = (): number => {
      const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
    };
    const before = cpu();
    await new Promise((r) => setTimeout(r, 1000));
    const used = cpu() - before;
    expect(used).toBeLessThanOrEqual(2); // 20 ms of CPU in 1 s idle at most

    sock.write("wake");
    await waitFor(() => /^woke 1 read=wake$/m.test(out));
  });
});

describe("back pressure on a slow reader", () => {
  it("a writer driven by select() keeps memory flat however much it offers", async () => {
    const { a, raw } = await pair();
    // The reader takes 16 KiB every 10 ms: far slower than the writer could produce.
    raw.b.pause();
    let received = 0;
    const reader = setInterval(() => {
      let chunk: Buffer | null;
      let got = 0;
      while (got < 16384 && (chunk = raw.b.read() as Buffer | null) !== null) got += chunk.length;
      received += got;
    }, 10);
    cleanups.push(() => clearInterval(reader));

    const chunk = Buffer.alloc(32 * 1024, 1);
    const hwm = raw.a.writableHighWaterMark;
    let offered = 0;
    let accepted = 0;
    let maxPending = 0;
    const rss0 = process.memoryUsage().rss;
    const end = performance.now() + 1500;
    while (performance.now() < end) {
      const w = new Set<Fd>([a]);
      await select(new Set(), w, 0.05);
      offered += chunk.length;
      if (w.has(a)) accepted += a.write(chunk);
      maxPending = Math.max(maxPending, a.writePending);
    }
    const rssGrowth = process.memoryUsage().rss - rss0;
    expect(maxPending).toBeLessThanOrEqual(hwm + chunk.length);
    expect(accepted).toBeLessThan(offered);
    expect(accepted - received).toBeLessThan(16 * 1024 * 1024); // kernel buffers + ours, bounded
    expect(rssGrowth).toBeLessThan(64 * 1024 * 1024);
    expect(received).toBeGreaterThan(0);
  });
});

describe("SelectTimer: one timer for a loop's waits", () => {
  it("waits of a loop with the same deadline far off make one Node timer, not one each", async () => {
    const { a, b, raw } = await pair();
    const timer = new SelectTimer();
    cleanups.push(() => timer.stop());
    const made = vi.spyOn(globalThis, "setTimeout");
    try {
      for (let i = 0; i < 20; i++) {
        setImmediate(() => raw.a.write("z"));
        const r = new Set<Fd>([b]);
        expect(await select(r, new Set(), 3600, [], timer)).toBe(1);
        expect(b.read(10)!.toString()).toBe("z");
      }
      // Node's own timers (the sockets') are not select's: count those made with our callback.
      const ours = made.mock.calls.filter(([, ms]) => typeof ms === "number" && ms > 3_000_000);
      expect(ours.length).toBe(1);
    } finally {
      made.mockRestore();
    }
    void a;
  });

  it("a sooner deadline re-arms it; one armed for later than a select's deadline never makes that select late", async () => {
    const { b } = await pair();
    const timer = new SelectTimer();
    cleanups.push(() => timer.stop());
    const r = (): Set<Fd> => new Set<Fd>([b]);
    // Armed for 30 s by a first wait that an immediate event ends.
    const sig = new SignalPipeFd();
    cleanups.push(() => sig.close());
    setImmediate(() => sig.raise());
    expect(await select(new Set<Fd>([sig]), new Set(), 30, [], timer)).toBe(1);
    const t0 = performance.now();
    expect(await select(r(), new Set(), 0.15, [], timer)).toBe(0);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(2000);
  });

  it("one that fires before a later select's deadline (armed by an earlier one) only makes it wait on", async () => {
    const { b } = await pair();
    const timer = new SelectTimer();
    cleanups.push(() => timer.stop());
    const sig = new SignalPipeFd();
    cleanups.push(() => sig.close());
    setImmediate(() => sig.raise());
    // Armed for 0.1 s from now by a select an event ends at once.
    expect(await select(new Set<Fd>([sig]), new Set(), 0.1, [], timer)).toBe(1);
    sig.drain();
    const t0 = performance.now();
    expect(await select(new Set<Fd>([b]), new Set(), 0.3, [], timer)).toBe(0);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
  });
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}
