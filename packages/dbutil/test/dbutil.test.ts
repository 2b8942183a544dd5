import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DropbearExit,
  argBytes,
  argBytesEnv,
  argsBytesEnv,
  bytesText,
  textBytes,
  textShown,
  EXIT_FAILURE,
  EXIT_SUCCESS,
  LOG_INFO,
  TRACE,
  constant_time_memcmp,
  dropbear_assert,
  dropbear_close,
  dropbear_exit,
  dropbear_log,
  dropbear_trace1,
  invokedName,
  m_burn,
  monotonic_now,
  set_debug_trace,
  setLogHandler,
  snprintf_str,
} from "../src/dbutil.js";

afterEach(() => {
  set_debug_trace(0);
  setLogHandler(null);
  vi.restoreAllMocks();
});

describe("snprintf_str", () => {
  it("leaves what fits in size - 1 bytes, and cuts before a character that does not fit whole", () => {
    expect(snprintf_str("abc", 4)).toBe("abc");
    expect(snprintf_str("abcd", 4)).toBe("abc");
    expect(snprintf_str("x".repeat(2000), 1024)).toHaveLength(1023);
    // "é" is 2 bytes: "aé" is 3, so a 3-byte buffer holds only "a".
    expect(snprintf_str("aé", 3)).toBe("a");
    expect(snprintf_str("aé", 4)).toBe("aé");
    expect(snprintf_str("€€", 6)).toBe("€");
    expect(snprintf_str("€€", 7)).toBe("€€");
  });
});

describe("dropbear_exit / dropbear_close", () => {
  it("throw DropbearExit with the exit code and message", () => {
    const e1 = (() => {
      try {
        dropbear_exit("Bad buf_getptr");
      } catch (e) {
        return e;
      }
    })();
    expect(e1).toBeInstanceOf(DropbearExit);
    expect((e1 as DropbearExit).exitcode).toBe(EXIT_FAILURE);
    expect((e1 as DropbearExit).exitmsg).toBe("Bad buf_getptr");
    expect(() => dropbear_close("Disconnect received")).toThrow(
      expect.objectContaining({ exitcode: EXIT_SUCCESS, exitmsg: "Disconnect received" }),
    );
  });

  it("dropbear_assert exits on a false condition only", () => {
    expect(() => dropbear_assert(true)).not.toThrow();
    expect(() => dropbear_assert(false, "ses.payload == NULL")).toThrow(/Failed assertion .*ses.payload == NULL/);
    const checkPayload = (): void => dropbear_assert(false, "ses.payload == NULL");
    expect(checkPayload).toThrow(new DropbearExit(1, "Failed assertion (checkPayload): `ses.payload == NULL'", "EINTERNAL"));
  });
});

describe("dropbear_log", () => {
  it("goes to the installed handler, and by default to stderr", () => {
    const seen: Array<[number, string]> = [];
    setLogHandler((p, m) => seen.push([p, m]));
    dropbear_log(LOG_INFO, "Child connection from 127.0.0.1:1234");
    expect(seen).toEqual([[LOG_INFO, "Child connection from 127.0.0.1:1234"]]);
    setLogHandler(null);
    const w = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    dropbear_log(LOG_INFO, "hello");
    expect(w).toHaveBeenCalledWith("hello\n");
  });
});

describe("TRACE", () => {
  it("prints nothing below its level and Dropbear's format at or above it", () => {
    const w = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    let built = 0;
    TRACE(() => `enter session_loop ${++built}`);
    expect(w).not.toHaveBeenCalled();
    expect(built).toBe(0); // the message thunk is not even evaluated
    set_debug_trace(1);
    dropbear_trace1("level one");
    TRACE("still hidden");
    set_debug_trace(4);
    TRACE("enter session_loop");
    const lines = w.mock.calls.map((c) => String(c[0]));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^TRACE1 \\(${process.pid}\\) \\d+\\.\\d{6}: level one\\n$`));
    expect(lines[1]).toMatch(new RegExp(`^TRACE4 \\(${process.pid}\\) \\d+\\.\\d{6}: enter session_loop\\n$`));
  });

  it("stamps lines to the microsecond, as C's gettimeofday, not to the millisecond", () => {
    const w = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    set_debug_trace(4);
    for (let i = 0; i < 20; i++) TRACE("tick");
    const micros = w.mock.calls.map((c) => /\) \d+\.\d{3}(\d{3}):/.exec(String(c[0]))![1]);
    expect(micros.some((u) => u !== "000")).toBe(true);
  });
});

describe("helpers", () => {
  it("constant_time_memcmp compares exactly n bytes", () => {
    const a = Buffer.from("abcdef");
    expect(constant_time_memcmp(a, Buffer.from("abcdef"), 6)).toBe(0);
    expect(constant_time_memcmp(a, Buffer.from("abcdeg"), 6)).not.toBe(0);
    expect(constant_time_memcmp(a, Buffer.from("abcxxx"), 3)).toBe(0);
    expect(constant_time_memcmp(a, Buffer.from("abc"), 6)).not.toBe(0);
  });

  it("m_burn zeroes", () => {
    const b = Buffer.from("secret");
    m_burn(b);
    expect([...b]).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("invokedName: the command's base name (a link's too), else the program's own name", () => {
    expect(invokedName("dbclient", "/usr/bin/dbclient")).toBe("dbclient");
    expect(invokedName("dbclient", "/usr/local/bin/ssh")).toBe("ssh");
    expect(invokedName("dropbear", "./sshd")).toBe("sshd");
    expect(invokedName("dbclient", "/work/apps/dbclient/dist/main.js")).toBe("dbclient");
    expect(invokedName("dbclient", "/work/apps/dbclient/dist/bundle.cjs")).toBe("dbclient");
    expect(invokedName("dbclient", undefined)).toBe("dbclient");
  });

  it("argBytes: the kernel's bytes for the program's own command line, the string's UTF-8 for any other", () => {
    // This process's command line, as dropbearMain passes it: its bytes from /proc/self/cmdline.
    const mine = ["prog", ...process.argv.slice(2)];
    for (let k = 1; k < mine.length; k++) expect(argBytes(mine, k).toString()).toBe(mine[k]);
    // Another argv (the library's, a test's): the strings' UTF-8.
    expect(argBytes(["dbclient", "h", "caf\u00e9"], 2)).toEqual(Buffer.from("café"));
    expect(argBytes(["dbclient"], 3)).toEqual(Buffer.alloc(0));
    // This process's arguments are UTF-8: a copy of it needs nothing more than the strings.
    expect(argBytesEnv()).toEqual({});
  });

  it("bytesText keeps every byte as text (surrogateescape) and textBytes gives them back", () => {
    const cases = [
      Buffer.from("plain"),
      Buffer.from("café \u{1f600}"),
      Buffer.from([0x75, 0x73, 0xe9, 0x72]), // "usér" in Latin-1
      Buffer.from([0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x98, 0xed, 0xa0, 0x80, 0xc0, 0xaf, 0xff, 0x80]),
      Buffer.from([0xf0, 0x90, 0x82, 0x80, 0xe9]), // U+10080 is a pair whose low half is U+DC80: not an escape
    ];
    for (const b of cases) {
      expect(textBytes(bytesText(b))).toEqual(b);
    }
    expect(bytesText(Buffer.from([0x61, 0xe9]))).toBe("a\udce9");
    expect(textShown("a\udce9\u{10080}")).toBe("a\ufffd\u{10080}");
    expect(argsBytesEnv(["-B", "h:22", "a@b"])).toEqual({});
    expect(Object.values(argsBytesEnv(["x", "us\udce9r"]))).toEqual([`${Buffer.from("x").toString("base64")},${Buffer.from([0x75, 0x73, 0xe9, 0x72]).toString("base64")}`]);
  });

  it("monotonic_now counts whole seconds and does not go back", () => {
    const t = monotonic_now();
    expect(Number.isInteger(t)).toBe(true);
    expect(monotonic_now()).toBeGreaterThanOrEqual(t);
  });
});

describe("syslog", () => {
  it("startsyslog loads libc's syslog and a line can be sent without error", async () => {
    const { startsyslog, syslogLine } = await import("../src/dbutil.js");
    syslogLine(LOG_INFO, "before start: ignored");
    startsyslog("dropbear-ts-test");
    // With no syslog daemon the C library drops the line quietly, as it does for Dropbear.
    expect(() => syslogLine(LOG_INFO, "100% not a %s format")).not.toThrow();
  });
});

describe("disallow_core", () => {
  it("sets the soft core limit to 0 and keeps the hard one, for the process and what it starts", async () => {
    const { spawnSync } = await import("node:child_process");
    const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
    const script = [
      `const d = await import(${mod});`,
      `const core = () => /^Max core file size\\s+(\\S+)\\s+(\\S+)/m.exec(require("node:fs").readFileSync("/proc/self/limits", "utf8")).slice(1).join(" ");`,
      "const before = core(); d.disallow_core();",
      `const child = require("node:child_process").execFileSync("/bin/sh", ["-c", "ulimit -S -c; ulimit -H -c"], { encoding: "utf8" }).trim().split("\\n").join(" ");`,
      "console.log(JSON.stringify([before, core(), child]));",
    ].join(" ");
    const r = spawnSync("/bin/sh", ["-c", `ulimit -S -c 1000 && ulimit -H -c 2000 && exec "$0" --input-type=commonjs -e "$1"`, process.execPath, `(async () => { ${script} })()`], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    // (/proc counts bytes, the shell's ulimit its own blocks.)
    const [before, after, child] = JSON.parse(r.stdout) as string[];
    const hard = before!.split(" ")[1];
    expect(before).not.toMatch(/^0 /);
    expect(after).toBe(`0 ${hard}`);
    expect(child).toBe("0 2000");
  });
});

describe("dropbearMain's bound on the exit", () => {
  // Node's teardown after the 'exit' event can wait for ever on a V8 worker thread (a Node bug):
  // an exit that does not end is stood in for by an 'exit' listener that never returns.
  it(`ends a process whose exit has not ended within EXIT_HANG_LIMIT_S by SIGALRM, where koffi is loaded`, async () => {
    const { spawn } = await import("node:child_process");
    const { once } = await import("node:events");
    const { EXIT_HANG_LIMIT_S } = await import("../src/dbutil.js");
    const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
    const script = [
      `const d = await import(${mod});`,
      `d.dropbearMain("hang", () => { d.libcFunc("int getpid(void)")(); process.on("exit", () => { console.log("exiting"); for (;;); }); return 0; });`,
    ].join(" ");
    const child = spawn(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${script} })()`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const started = Date.now();
    const timer = setTimeout(() => child.kill("SIGKILL"), (EXIT_HANG_LIMIT_S + 20) * 1000);
    const [status, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    expect(out.trim()).toBe("exiting");
    expect([status, signal]).toEqual([null, "SIGALRM"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(EXIT_HANG_LIMIT_S * 1000 - 500);
  }, 60_000);
});
