import { describe, expect, it } from "vitest";
import { StreamFd } from "@dropbear-ts/netio";
import { logHandlerFor, streamPipe } from "../src/common.js";

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

  it("ends the reader when the writer is destroyed, and swallows writes once the reader is gone", async () => {
    const a = streamPipe();
    const ended = new Promise((r) => a.readable.on("end", r));
    a.readable.resume();
    a.writable.destroy();
    await ended;
    const b = streamPipe();
    b.readable.destroy();
    const done = new Promise<Error | null | undefined>((r) => b.writable.write("into nothing", r));
    expect(await done).toBeFalsy();
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
});
