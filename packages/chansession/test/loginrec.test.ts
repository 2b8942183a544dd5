import { userInfo } from "node:os";
import { describe, expect, it } from "vitest";
import { LTYPE_LOGIN, LTYPE_LOGOUT, construct_utmpx, line_abbrevname, line_fullname, line_stripname, login_alloc_entry, login_set_current_time } from "../src/loginrec.js";

describe("loginrec.c", () => {
  it("names the line three ways", () => {
    expect(line_fullname("pts/3", 64)).toBe("/dev/pts/3");
    expect(line_fullname("/dev/pts/3", 64)).toBe("/dev/pts/3");
    expect(line_stripname("/dev/pts/3", 32)).toBe("pts/3");
    expect(line_abbrevname("/dev/pts/3", 4)).toEqual(Buffer.from("ts/3"));
    expect(line_abbrevname("/dev/pts/12", 4)).toEqual(Buffer.from("s/12"));
    expect(line_abbrevname("/dev/tty1", 4)).toEqual(Buffer.from("tty1"));
  });

  it("builds a struct utmpx as glibc x86_64 lays it out", () => {
    const me = userInfo().username;
    const li = login_alloc_entry(4242, me, "192.0.2.7", "/dev/pts/3");
    li.type = LTYPE_LOGIN;
    li.tv_sec = 1_700_000_000;
    li.tv_usec = 123_456;
    const u = construct_utmpx(li);
    expect(u.length).toBe(384);
    expect(u.readInt16LE(0)).toBe(7); // USER_PROCESS
    expect(u.readInt32LE(4)).toBe(4242);
    expect(u.subarray(8, 8 + 32).toString().replace(/\0+$/, "")).toBe("pts/3");
    expect(u.subarray(40, 44).toString()).toBe("ts/3");
    expect(u.subarray(44, 44 + 32).toString().replace(/\0+$/, "")).toBe(me);
    expect(u.subarray(76, 76 + 256).toString().replace(/\0+$/, "")).toBe("192.0.2.7");
    expect(u.readInt32LE(340)).toBe(1_700_000_000);
    expect(u.readInt32LE(344)).toBe(123_456);

    li.type = LTYPE_LOGOUT;
    const out = construct_utmpx(li);
    expect(out.readInt16LE(0)).toBe(8); // DEAD_PROCESS
    // A logout keeps line, id, pid and user but not the host.
    expect(out.subarray(76, 76 + 256).every((b) => b === 0)).toBe(true);
    expect(out.subarray(44, 44 + 32).toString().replace(/\0+$/, "")).toBe(me);
  });

  it("time-stamps to the microsecond, from the wall clock", () => {
    const li = login_alloc_entry(1, userInfo().username, null, "pts/1");
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const before = Date.now();
      login_set_current_time(li);
      const after = Date.now();
      const ms = li.tv_sec * 1000 + li.tv_usec / 1000;
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThan(after + 1);
      expect(li.tv_usec).toBeGreaterThanOrEqual(0);
      expect(li.tv_usec).toBeLessThan(1_000_000);
      seen.add(li.tv_usec % 1000);
    }
    // Milliseconds times 1000 would leave the last three digits 0 every time.
    expect([...seen].some((us) => us !== 0)).toBe(true);
  });

  it("ends the session for an unknown user, as C does", () => {
    expect(() => login_alloc_entry(1, "no-such-user-dbts", null, "pts/1")).toThrow(/login_init_entry: Cannot find user "no-such-user-dbts"/);
  });
});
