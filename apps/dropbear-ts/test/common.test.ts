import { describe, expect, it } from "vitest";
import { StreamFd } from "@dropbear-ts/netio";
import { duplexOf, logHandlerFor, streamPipe } from "../src/common.js";

// The pipes between a channel's fds and a library caller's streams: back pressure, end, and
// destruction on either side, which must never throw at the other.

const tick = () => new Promise((r) => setImmediate(r));

describe("streamPipe", () => {
  it("carries bytes and the end, in order", async () => {
    const { readable, writable } = streamPipe();
    const got: Buffer[] = [];
    readable.on("data", (d: Buffer) => got.push(d));
    const ended = new Promise((r) => readable.on("end", r));
    writable.write("ab");
    writable.end("cd");
    await ended;
    expect(Buffer.concat(got).toString()).toBe("abcd");
  });

  it("holds a writer back until the reader takes the data (back pressure)", async () => {
    const { readable, writable } = streamPipe(16);
    const fd = new StreamFd(writable);
    let accepted = 0;
    for (let i = 0; i < 10 && fd.writeReady(); i++) accepted += fd.write(Buffer.alloc(16));
    // A bounded amount (the two high-water marks at most), then "would block".
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(32);
    expect(fd.writeReady()).toBe(false);
    readable.read();
    await tick();
    readable.read();
    await tick();
    expect(fd.writeReady()).toBe(true);
  });

  it("ends the reader when the writer is destroyed", async () => {
    const a = streamPipe();
    const ended = new Promise((r) => a.readable.on("end", r));
    a.readable.resume();
    a.writable.destroy();
    await ended;
  });

  it("once the reader is gone (the channel closed), the writer is destroyed as a socket whose peer left: writes fail, no 'drain', no 'error' event", async () => {
    const { readable, writable } = streamPipe(16);
    const events: string[] = [];
    for (const e of ["drain", "close", "error"]) writable.on(e, () => events.push(e));
    // A writer that waits for back pressure, as a well-behaved handler does.
    while (writable.write(Buffer.alloc(16)));
    const pending = new Promise<Error | null | undefined>((r) => writable.write("held", r));
    readable.destroy();
    await tick();
    await pending;
    expect(writable.destroyed).toBe(true);
    // A loop "write until false" stops at once instead of spinning.
    expect(writable.write("into nothing")).toBe(false);
    const failed = await new Promise<Error | null | undefined>((r) => writable.write("again", r));
    expect(failed?.message).toMatch(/destroyed/);
    await tick();
    expect(events).toEqual(["close"]);
  });

  it("a write after the writer's own end() fails that write, with no 'error' event to end the process", async () => {
    const { readable, writable } = streamPipe();
    readable.resume();
    writable.end("last");
    const failed = await new Promise<Error | null | undefined>((r) => writable.write("after end", r));
    expect(failed?.message).toMatch(/after end/);
  });

  it("lets the channel's StreamFd read what the caller wrote, then EOF", async () => {
    const { readable, writable } = streamPipe();
    const fd = new StreamFd(readable);
    writable.end("stdin bytes");
    await tick();
    expect(fd.readReady()).toBe(true);
    expect(fd.read(100)?.toString()).toBe("stdin bytes");
    await tick();
    expect(fd.read(100)?.length).toBe(0);
  });
});

describe("logHandlerFor", () => {
  it("maps syslog priorities to four levels and trims terminal newlines", () => {
    const lines: string[] = [];
    const h = logHandlerFor((level, msg) => lines.push(`${level} ${msg}`));
    h(3, "\nboom\n");
    h(4, "careful");
    h(6, "fyi");
    h(7, "detail");
    expect(lines).toEqual(["error boom", "warning careful", "info fyi", "debug detail"]);
    expect(() => logHandlerFor(undefined)(3, "dropped")).not.toThrow();
  });

  it("a logger that throws loses its line, and nothing else", () => {
    const h = logHandlerFor(() => {
      throw new Error("logger broke");
    });
    expect(() => h(3, "boom")).not.toThrow();
  });
});

describe("duplexOf (forwardOut's stream)", () => {
  it("carries both ways, and destroy() closes it without an 'error' event, as for a net.Socket", async () => {
    const fromPeer = streamPipe();
    const toPeer = streamPipe();
    const d = duplexOf(fromPeer.readable, toPeer.writable);
    const events: string[] = [];
    for (const e of ["close", "error"]) d.on(e, () => events.push(e));
    fromPeer.writable.write("in");
    const got = await new Promise<string>((r) => d.once("data", (b: Buffer) => r(b.toString())));
    expect(got).toBe("in");
    d.write("out");
    const sent = await new Promise<string>((r) => toPeer.readable.once("data", (b: Buffer) => r(b.toString())));
    expect(sent).toBe("out");
    d.destroy();
    await tick();
    await tick();
    expect(events).toEqual(["close"]);
    expect(fromPeer.readable.destroyed && toPeer.writable.destroyed).toBe(true);
  });

  it("a write once the channel is gone fails that write and closes the stream, with no 'error' left unheard", async () => {
    const fromPeer = streamPipe();
    const toPeer = streamPipe();
    const d = duplexOf(fromPeer.readable, toPeer.writable);
    // The channel closes: its reader of what we send goes.
    toPeer.readable.destroy();
    const failed = await new Promise<Error | null | undefined>((r) => d.write("late", r));
    expect(failed).toBeInstanceOf(Error);
    await tick();
    expect(d.destroyed).toBe(true);
  });
});
