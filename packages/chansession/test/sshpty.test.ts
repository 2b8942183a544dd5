import { closeSync, readSync, statSync, writeSync } from "node:fs";
import { userInfo } from "node:os";
import { describe, expect, it } from "vitest";
import { getpwnam } from "@dropbear-ts/auth";
import { pty_allocate, pty_change_window_size, pty_setowner } from "../src/sshpty.js";
import { get_winsize } from "../src/termios.js";

describe("sshpty.c", () => {
  it("pty_allocate opens a master/slave pair named /dev/pts/N", () => {
    const p = pty_allocate()!;
    try {
      expect(p.name).toMatch(/^\/dev\/pts\/\d+$/);
      expect(statSync(p.name).isCharacterDevice()).toBe(true);
      // What the slave writes comes out of the master (with the line discipline's ONLCR).
      writeSync(p.ttyfd, "ping\n");
      const b = Buffer.alloc(64);
      const n = readSync(p.ptyfd, b, 0, 64, null);
      expect(b.subarray(0, n).toString()).toBe("ping\r\n");
    } finally {
      closeSync(p.ttyfd);
      closeSync(p.ptyfd);
    }
  });

  it("pty_change_window_size sets rows, columns and pixels (16 bits each)", () => {
    const p = pty_allocate()!;
    try {
      pty_change_window_size(p.ptyfd, 50, 132, 800, 600);
      expect(get_winsize(p.ptyfd)).toEqual({ ws_row: 50, ws_col: 132, ws_xpixel: 800, ws_ypixel: 600 });
      pty_change_window_size(p.ptyfd, 0x10001, 0xffffffff, 0, 0);
      expect(get_winsize(p.ptyfd)).toMatchObject({ ws_row: 1, ws_col: 0xffff });
    } finally {
      closeSync(p.ttyfd);
      closeSync(p.ptyfd);
    }
  });

  it("pty_setowner leaves the tty to its user, mode 0620 with the tty group", () => {
    const p = pty_allocate()!;
    try {
      const pw = getpwnam(userInfo().username)!;
      pty_setowner(pw, p.name);
      const st = statSync(p.name);
      expect(st.uid).toBe(pw.pw_uid);
      expect(st.mode & 0o777).toBe(0o620);
    } finally {
      closeSync(p.ttyfd);
      closeSync(p.ptyfd);
    }
  });
});
