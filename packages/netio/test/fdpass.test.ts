import { closeSync, fstatSync, openSync, readFileSync, readSync, readlinkSync, writeSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { receiveFd, sendFd, unixSocketPair } from "../src/fdpass.js";

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // already closed by the test
    }
  }
});

function pair(): [number, number] {
  const p = unixSocketPair();
  opened.push(...p);
  return p;
}

/** Is `fd` close-on-exec? (/proc/self/fdinfo's flags, octal, carry O_CLOEXEC 02000000.) */
function cloexec(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "latin1"))![1]!;
  return (parseInt(flags, 8) & 0o2000000) !== 0;
}

describe("descriptor passing (SCM_RIGHTS)", () => {
  it("makes a close-on-exec pair of Unix stream sockets", () => {
    const [a, b] = pair();
    expect(fstatSync(a).isSocket()).toBe(true);
    expect(cloexec(a) && cloexec(b)).toBe(true);
    writeSync(a, Buffer.from("x"));
    const got = Buffer.alloc(1);
    expect(readSync(b, got)).toBe(1);
    expect(got.toString()).toBe("x");
  });

  it("hands a descriptor across: the same open file, close-on-exec; nothing more waits after it", () => {
    const [a, b] = pair();
    const file = openSync("/proc/self/status", "r");
    opened.push(file);
    expect(receiveFd(b)).toBeNull();
    sendFd(a, file);
    const { fd, data } = receiveFd(b)!;
    opened.push(fd);
    expect(data).toEqual(Buffer.of(0));
    expect(fd).not.toBe(file);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe(readlinkSync(`/proc/self/fd/${file}`));
    expect(cloexec(fd)).toBe(true);
    expect(receiveFd(b)).toBeNull();
  });

  it("still delivers what was sent when the sender closed at once, with unread data of its own", () => {
    // As a daemon that hands a connection over and closes its end before reading the ready
    // byte the connection process wrote.
    const [a, b] = pair();
    writeSync(b, Buffer.from("r"));
    const [x, y] = pair();
    sendFd(a, x);
    closeSync(a);
    opened.splice(opened.indexOf(a), 1);
    const { fd } = receiveFd(b)!;
    opened.push(fd);
    writeSync(fd, Buffer.from("through"));
    const got = Buffer.alloc(16);
    expect(got.subarray(0, readSync(y, got)).toString()).toBe("through");
    expect(() => receiveFd(b)).toThrow(/closed its end|reset/);
  });

  it("carries the message's data with the descriptor, up to what the receiver takes", () => {
    const [a, b] = pair();
    const [x, y] = pair();
    sendFd(a, x, Buffer.from("127.0.0.1 40022"));
    const got = receiveFd(b, 64)!;
    opened.push(got.fd);
    expect(got.data.toString()).toBe("127.0.0.1 40022");
    writeSync(got.fd, Buffer.from("same"));
    const back = Buffer.alloc(8);
    expect(back.subarray(0, readSync(y, back)).toString()).toBe("same");
    expect(() => sendFd(a, x, Buffer.alloc(0))).toThrow(RangeError);
  });

  it("refuses plain data that carries no descriptor, and reports the sender's end of file", () => {
    const [a, b] = pair();
    writeSync(a, Buffer.from("?"));
    expect(() => receiveFd(b)).toThrow(/no descriptor/);
    closeSync(a);
    opened.splice(opened.indexOf(a), 1);
    expect(() => receiveFd(b)).toThrow(/closed its end/);
  });

  it("fails loudly on a descriptor that is not open", () => {
    const [a] = pair();
    expect(() => sendFd(a, 1_000_000)).toThrow(/sendmsg: Bad file descriptor/);
  });
});
