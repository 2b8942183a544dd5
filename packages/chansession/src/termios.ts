import { libcFunc } from "@dropbear-ts/dbutil";

// struct termios and struct winsize as glibc lays them out on Linux, with the calls that read and
// write them: Node has tty.setRawMode but no tcgetattr/tcsetattr of arbitrary modes, and no
// TIOCSWINSZ on a pty master. Both sides use these (termcodes.c's table, cli-chansession.c's raw
// mode, svr-chansession.c's get_termmodes and window changes).

/** sizeof(struct termios) with glibc: four tcflag_t, c_line, c_cc[NCCS=32], padding, two speeds. */
const SIZEOF_TERMIOS = 60;
const OFF_IFLAG = 0;
const OFF_OFLAG = 4;
const OFF_CFLAG = 8;
const OFF_LFLAG = 12;
const OFF_CC = 17;
/** NCCS on Linux. */
export const NCCS = 32;

/** A c_cc value that disables the character (Linux). */
export const _POSIX_VDISABLE = 0;

// c_cc indices (Linux).
export const VINTR = 0;
export const VQUIT = 1;
export const VERASE = 2;
export const VKILL = 3;
export const VEOF = 4;
export const VTIME = 5;
export const VMIN = 6;
export const VSTART = 8;
export const VSTOP = 9;
export const VSUSP = 10;
export const VEOL = 11;
export const VREPRINT = 12;
export const VDISCARD = 13;
export const VWERASE = 14;
export const VLNEXT = 15;
export const VEOL2 = 16;

// c_iflag bits.
export const IGNPAR = 0o4;
export const PARMRK = 0o10;
export const INPCK = 0o20;
export const ISTRIP = 0o40;
export const INLCR = 0o100;
export const IGNCR = 0o200;
export const ICRNL = 0o400;
export const IUCLC = 0o1000;
export const IXON = 0o2000;
export const IXANY = 0o4000;
export const IXOFF = 0o10000;
export const IMAXBEL = 0o20000;
export const IUTF8 = 0o40000;

// c_oflag bits.
export const OPOST = 0o1;
export const OLCUC = 0o2;
export const ONLCR = 0o4;
export const OCRNL = 0o10;
export const ONOCR = 0o20;
export const ONLRET = 0o40;

// c_cflag bits.
export const CS7 = 0o40;
export const CS8 = 0o60;
export const PARENB = 0o400;
export const PARODD = 0o1000;

// c_lflag bits.
export const ISIG = 0o1;
export const ICANON = 0o2;
export const XCASE = 0o4;
export const ECHO = 0o10;
export const ECHOE = 0o20;
export const ECHOK = 0o40;
export const ECHONL = 0o100;
export const NOFLSH = 0o200;
export const TOSTOP = 0o400;
export const ECHOCTL = 0o1000;
export const ECHOKE = 0o4000;
export const PENDIN = 0o40000;
export const IEXTEN = 0o100000;

/** tcsetattr's `optional_actions`. */
export const TCSANOW = 0;
export const TCSADRAIN = 1;

const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;

/** A struct termios: the bytes libc reads and writes, with the fields Dropbear touches. */
export class termios {
  constructor(readonly raw: Buffer = Buffer.alloc(SIZEOF_TERMIOS)) {}

  get c_iflag(): number {
    return this.raw.readUInt32LE(OFF_IFLAG);
  }
  set c_iflag(v: number) {
    this.raw.writeUInt32LE(v >>> 0, OFF_IFLAG);
  }
  get c_oflag(): number {
    return this.raw.readUInt32LE(OFF_OFLAG);
  }
  set c_oflag(v: number) {
    this.raw.writeUInt32LE(v >>> 0, OFF_OFLAG);
  }
  get c_cflag(): number {
    return this.raw.readUInt32LE(OFF_CFLAG);
  }
  set c_cflag(v: number) {
    this.raw.writeUInt32LE(v >>> 0, OFF_CFLAG);
  }
  get c_lflag(): number {
    return this.raw.readUInt32LE(OFF_LFLAG);
  }
  set c_lflag(v: number) {
    this.raw.writeUInt32LE(v >>> 0, OFF_LFLAG);
  }
  /** c_cc[i] (cc_t is one byte: values are taken modulo 256, as C's assignment does). */
  getcc(i: number): number {
    return this.raw[OFF_CC + i]!;
  }
  setcc(i: number, v: number): void {
    this.raw[OFF_CC + i] = v & 0xff;
  }
  /** A copy, as C's struct assignment makes. */
  copy(): termios {
    return new termios(Buffer.from(this.raw));
  }
}

type TcgetattrFn = (fd: number, t: Buffer) => number;
type TcsetattrFn = (fd: number, when: number, t: Buffer) => number;
type IoctlWinsizeFn = (fd: number, req: number, ...rest: unknown[]) => number;

/** tcgetattr(3): the terminal's modes, or null (not a terminal, or an error). */
export function tcgetattr(fd: number): termios | null {
  const t = new termios();
  const f = libcFunc<TcgetattrFn>("int tcgetattr(int fd, _Out_ uint8_t *termios_p)");
  return f(fd, t.raw) === 0 ? t : null;
}

/** tcsetattr(3): 0, or -1 with errno set. */
export function tcsetattr(fd: number, optional_actions: number, t: termios): number {
  const f = libcFunc<TcsetattrFn>("int tcsetattr(int fd, int optional_actions, const uint8_t *termios_p)");
  return f(fd, optional_actions, t.raw);
}

/** tcsendbreak(3): 0, or -1 with errno set. (On a Linux pty it is accepted and does nothing.) */
export function tcsendbreak(fd: number, duration: number): number {
  return libcFunc<(fd: number, duration: number) => number>("int tcsendbreak(int fd, int duration)")(fd, duration);
}

/** struct winsize. */
export interface winsize {
  ws_row: number;
  ws_col: number;
  ws_xpixel: number;
  ws_ypixel: number;
}

function ioctl(): IoctlWinsizeFn {
  return libcFunc<IoctlWinsizeFn>("int ioctl(int fd, unsigned long request, ...)");
}

/** ioctl(fd, TIOCGWINSZ): the terminal's size, or null. */
export function get_winsize(fd: number): winsize | null {
  const b = Buffer.alloc(8);
  if (ioctl()(fd, TIOCGWINSZ, "uint8_t *", b) < 0) {
    return null;
  }
  return { ws_row: b.readUInt16LE(0), ws_col: b.readUInt16LE(2), ws_xpixel: b.readUInt16LE(4), ws_ypixel: b.readUInt16LE(6) };
}

/** ioctl(fd, TIOCSWINSZ): 0, or -1 with errno set. Values are truncated to 16 bits as C's. */
export function set_winsize(fd: number, ws: winsize): number {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(ws.ws_row & 0xffff, 0);
  b.writeUInt16LE(ws.ws_col & 0xffff, 2);
  b.writeUInt16LE(ws.ws_xpixel & 0xffff, 4);
  b.writeUInt16LE(ws.ws_ypixel & 0xffff, 6);
  return ioctl()(fd, TIOCSWINSZ, "uint8_t *", b);
}
