import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { Channel, CliSession, cli_runopts, runopts } from "@dropbear-ts/core";
import { DropbearExit, libcFunc } from "@dropbear-ts/dbutil";
import { dropbear_prio } from "@dropbear-ts/netio";
import { describe, expect, it } from "vitest";
import { cli_escape_handler, clichansess, getFdFlags } from "../src/cli-chansession.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

function session(): CliSession {
  return new CliSession(new runopts(), new cli_runopts());
}

function chan(): Channel {
  return new Channel(0, clichansess, 0, 0, 0, dropbear_prio.DROPBEAR_PRIO_LOWDELAY);
}

/** Feed reads to the escape handler; what each one leaves to send. */
function feed(ses: CliSession, ...reads: string[]): number[] {
  return reads.map((r) => cli_escape_handler(ses, chan(), Buffer.from(r, "latin1")));
}

/** Run an ES module in a node of its own, stdin an empty pipe; the JSON it prints after "RESULT". */
function resultOf(lines: string[]): unknown {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", lines.join("\n")], { cwd: ROOT, encoding: "utf8", input: "", timeout: 30_000 });
  const m = /RESULT(.*)$/m.exec(r.stdout);
  expect(m, r.stdout + r.stderr).not.toBeNull();
  return JSON.parse(m![1]!);
}

describe("getFdFlags", () => {
  it("says what fcntl(F_GETFL) says: a file opened to append, a non-blocking close-on-exec socket, stdio, and -1 for a closed fd", async () => {
    const fcntl = libcFunc<(fd: number, cmd: number) => number>("int fcntl(int fd, int cmd, ...)");
    const F_GETFL = 3;
    const file = openSync(fileURLToPath(import.meta.url), "r");
    const appended = openSync("/dev/null", "a");
    const server = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const sock = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    try {
      const sockFd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
      for (const fd of [0, 1, 2, file, appended, sockFd]) {
        expect(getFdFlags(fd), `fd ${fd}`).toBe(fcntl(fd, F_GETFL));
      }
      expect(getFdFlags(sockFd) & 0o4000).toBe(0o4000); // O_NONBLOCK, and no O_CLOEXEC
      expect(getFdFlags(appended) & 0o2000).toBe(0o2000); // O_APPEND
    } finally {
      sock.destroy();
      server.close();
      closeSync(file);
      closeSync(appended);
    }
    expect(getFdFlags(file)).toBe(-1);
  });
});

describe("cli_escape_handler (the ~ escapes of a pty session)", () => {
  it("~. after a CR, one byte per read, ends the session with 'Terminated'", () => {
    const ses = session();
    ses.cli_ses.last_char = 0x0d; // as cli_initchansess leaves it
    expect(feed(ses, "~")).toEqual([0]);
    let err: unknown = null;
    try {
      feed(ses, ".");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DropbearExit);
    expect((err as DropbearExit).exitmsg).toBe("Terminated");
    expect((err as DropbearExit).exitcode).toBe(1);
  });

  it("~R asks for a rekey and is swallowed", () => {
    const ses = session();
    expect(feed(ses, "\r", "~", "R", "x")).toEqual([1, 0, 0, 1]);
    expect(ses.kexstate.needrekey).toBe(true);
  });

  it("~B asks for a break at the next loop turn and is swallowed", () => {
    const ses = session();
    expect(feed(ses, "\r", "~", "B", "x")).toEqual([1, 0, 0, 1]);
    expect(ses.cli_ses.sendbreak).toBe(true);
  });

  it("~ not after a CR is passed through, and so is what follows", () => {
    const ses = session();
    expect(feed(ses, "a", "~", ".")).toEqual([1, 1, 1]);
  });

  it("a read of several bytes is never an escape, and resets the CR state", () => {
    const ses = session();
    expect(feed(ses, "\r", "~.")).toEqual([1, 2]);
    expect(feed(ses, "\r", "ab", "~", ".")).toEqual([1, 2, 1, 1]);
  });

  it("~ followed by an unknown byte: the ~ is swallowed, the byte is sent", () => {
    const ses = session();
    expect(feed(ses, "\r", "~", "q")).toEqual([1, 0, 1]);
  });
});

describe("cliTtyCleanupAfterOutput", () => {
  it("gives the terminal its modes back only once the output handed to stdout is written", () => {
    // In a node of its own whose stdin is a pipe: tcsetattr fails there ("Failed restoring
    // TTY"), which shows when the restore ran, and no terminal of the test's is touched.
    const events = resultOf([
      'import { Writable } from "node:stream";',
      'import { CliSession, cli_runopts, runopts } from "@dropbear-ts/core";',
      'import { cliTtyCleanupAfterOutput } from "@dropbear-ts/chansession";',
      'import { setLogHandler } from "@dropbear-ts/dbutil";',
      'import { StreamFd } from "@dropbear-ts/netio";',
      "const events = [];",
      "setLogHandler((_p, msg) => events.push(msg));",
      "const ses = new CliSession(new runopts(), new cli_runopts());",
      "const out = new StreamFd(new Writable({ write: (_c, _e, done) => setTimeout(() => { events.push('written'); done(); }, 100) }));",
      "ses.cli_ses.stdiofds[1] = out;",
      "out.write(Buffer.from('a\\r\\nb\\r\\n'));",
      "ses.cli_ses.tty_raw_mode = true;",
      "ses.cli_ses.saved_tio = Buffer.alloc(60);",
      "cliTtyCleanupAfterOutput(ses, () => { events.push('after'); console.log('RESULT' + JSON.stringify(events)); });",
      "events.push('returned');",
    ]);
    expect(events).toEqual(["returned", "written", "Failed restoring TTY", "after"]);
  });
});

describe("put_termcodes and put_winsize on a real terminal (under script(1))", () => {
  const script = "/usr/bin/script";
  const run = existsSync(script) ? it : it.skip;
  run("sends c_cc values and each flag as 0 or 1 (RFC 4254 section 8), then TTY_OP_END; the size from TIOCGWINSZ", () => {
    const snippet = [
      'import { buf_new, buf_getint, buf_getbyte, buf_setpos } from "@dropbear-ts/buffer";',
      'import { CliSession, cli_runopts, runopts } from "@dropbear-ts/core";',
      'import { put_termcodes, put_winsize } from "@dropbear-ts/chansession";',
      "const ses = new CliSession(new runopts(), new cli_runopts());",
      "ses.writepayload = buf_new(4096);",
      "put_winsize(ses); put_termcodes(ses);",
      "const b = ses.writepayload; const end = b.pos; buf_setpos(b, 0);",
      "const size = [buf_getint(b), buf_getint(b), buf_getint(b), buf_getint(b)];",
      "const len = buf_getint(b); const modes = {}; let op;",
      "while ((op = buf_getbyte(b)) !== 0) modes[op] = buf_getint(b);",
      "console.log('RESULT' + JSON.stringify({ size, len, end, modes }));",
    ].join("\n");
    // A known terminal: 33 rows, 99 columns, ^G as VINTR, no icanon, echo on, onlcr on.
    const cmd = `stty rows 33 cols 99 intr ^G -icanon echo onlcr; ${process.execPath} --input-type=module -e '${snippet.replace(/'/g, `'\\''`)}'`;
    const r = spawnSync(script, ["-qec", cmd, "/dev/null"], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    const m = /RESULT(\{.*\})/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    const res = JSON.parse(m![1]!) as { size: number[]; len: number; end: number; modes: Record<string, number> };
    expect(res.size).toEqual([99, 33, 0, 0]);
    // The length covers the opcode/value pairs and the end byte.
    expect(res.len).toBe(res.end - 16 - 4);
    expect(res.modes[1]).toBe(7); // VINTR = ^G
    expect(res.modes[51]).toBe(0); // ICANON off
    // ECHO and ONLCR: 1, not the bit's value Dropbear sends (8, 4), which Erlang/OTP refuses.
    expect(res.modes[53]).toBe(1);
    expect(res.modes[72]).toBe(1);
    expect(Object.values(res.modes).filter((v, i) => Number(Object.keys(res.modes)[i]) >= 30 && v > 1)).toEqual([]);
    // Opcodes Linux lacks are left out, as Dropbear's #ifdefs do.
    expect(res.modes[11]).toBeUndefined();
    expect(Object.keys(res.modes).length).toBeGreaterThan(40);
  });

  it("with stdin not a terminal: just the terminator, and 80x25", () => {
    const got = resultOf([
      'import { buf_new, buf_getint, buf_getbyte, buf_setpos } from "@dropbear-ts/buffer";',
      'import { CliSession, cli_runopts, runopts } from "@dropbear-ts/core";',
      'import { put_termcodes, put_winsize } from "@dropbear-ts/chansession";',
      'import { setLogHandler } from "@dropbear-ts/dbutil";',
      "setLogHandler(() => undefined);",
      "const ses = new CliSession(new runopts(), new cli_runopts());",
      "ses.writepayload = buf_new(4096);",
      "put_winsize(ses); put_termcodes(ses);",
      "const b = ses.writepayload; const end = b.pos; buf_setpos(b, 0);",
      "console.log('RESULT' + JSON.stringify([buf_getint(b), buf_getint(b), buf_getint(b), buf_getint(b), buf_getint(b), buf_getbyte(b), end]));",
    ]);
    expect(got).toEqual([80, 25, 0, 0, 1, 0, 21]);
  });
});
