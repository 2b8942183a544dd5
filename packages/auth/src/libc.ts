import { koffi as loadKoffi, readInterruptibly, sharedLib, type Koffi, cstring } from "@dropbear-ts/dbutil";

// The C library calls authentication needs and Node lacks: the passwd, shadow and group
// databases (through NSS, so whatever /etc/nsswitch.conf says applies), getusershell(),
// libcrypt's crypt_rn() and setresgid(). Bound through dbutil's libc loader on first use, so a
// client that never authenticates anyone never loads them.

/** A passwd entry, the fields Dropbear keeps. */
export interface PasswdEntry {
  pw_name: string;
  pw_passwd: string | null;
  pw_uid: number;
  pw_gid: number;
  pw_dir: string;
  /** pw_dir's bytes: a path need not be UTF-8 (pw_dir decodes them, U+FFFD for what is not). */
  pw_dir_bytes: Buffer;
  pw_shell: string;
  /** pw_shell's bytes, as pw_dir_bytes. */
  pw_shell_bytes: Buffer;
}

interface Bindings {
  koffi: Koffi;
  passwdType: unknown;
  spwdType: unknown;
  getpwnam: (name: Buffer) => unknown;
  getspnam: (name: Buffer) => unknown;
  getgrouplist: (user: Buffer, group: number, groups: Uint32Array, ngroups: Int32Array) => number;
  setusershell: () => void;
  getusershell: () => unknown;
  endusershell: () => void;
  setresgid: (r: number, e: number, s: number) => number;
  syscall: (nr: number, ...typedArgs: unknown[]) => number;
  getpass: (prompt: Buffer) => unknown;
  getenv: (name: Buffer) => unknown;
  strlen: (s: unknown) => number | bigint;
}

let bindings: Bindings | null = null;
type CryptRn = (phrase: Buffer, setting: Buffer, data: Buffer, size: number) => string | null;
let cryptFn: CryptRn | null = null;

function libc(): Bindings {
  if (bindings !== null) {
    return bindings;
  }
  const koffi = loadKoffi();
  const lib = sharedLib();
  const passwdType = koffi.struct("dbts_passwd", {
    pw_name: "char *",
    pw_passwd: "char *",
    pw_uid: "uint32_t",
    pw_gid: "uint32_t",
    pw_gecos: "char *",
    pw_dir: "void *",
    pw_shell: "void *",
  });
  const spwdType = koffi.struct("dbts_spwd", {
    sp_namp: "char *",
    sp_pwdp: "char *",
    sp_lstchg: "long",
    sp_min: "long",
    sp_max: "long",
    sp_warn: "long",
    sp_inact: "long",
    sp_expire: "long",
    sp_flag: "unsigned long",
  });
  // Names go in as NUL-terminated bytes so what the client sent reaches NSS unchanged.
  bindings = {
    koffi,
    passwdType,
    spwdType,
    getpwnam: lib.func("void *getpwnam(const uint8_t *name)") as Bindings["getpwnam"],
    getspnam: lib.func("void *getspnam(const uint8_t *name)") as Bindings["getspnam"],
    getgrouplist: lib.func(
      "int getgrouplist(const uint8_t *user, uint32_t group, _Inout_ uint32_t *groups, _Inout_ int32_t *ngroups)",
    ) as Bindings["getgrouplist"],
    setusershell: lib.func("void setusershell(void)") as Bindings["setusershell"],
    getusershell: lib.func("void *getusershell(void)") as Bindings["getusershell"],
    endusershell: lib.func("void endusershell(void)") as Bindings["endusershell"],
    setresgid: lib.func("int setresgid(uint32_t rgid, uint32_t egid, uint32_t sgid)") as Bindings["setresgid"],
    syscall: lib.func("long syscall(long number, ...)") as Bindings["syscall"],
    getpass: lib.func("void *getpass(const uint8_t *prompt)") as Bindings["getpass"],
    getenv: lib.func("void *getenv(const uint8_t *name)") as Bindings["getenv"],
    strlen: lib.func("size_t strlen(void *s)") as Bindings["strlen"],
  };
  return bindings;
}

/** getpwnam(3): the user's passwd entry, or null. */
export function getpwnam(name: string): PasswdEntry | null {
  const b = libc();
  const p = b.getpwnam(cstring(name));
  if (p === null) {
    return null;
  }
  const pw = b.koffi.decode(p, b.passwdType) as {
    pw_name: string | null;
    pw_passwd: string | null;
    pw_uid: number;
    pw_gid: number;
    pw_dir: unknown;
    pw_shell: unknown;
  };
  const dir = cbytes(b, pw.pw_dir);
  const shell = cbytes(b, pw.pw_shell);
  return {
    pw_name: pw.pw_name ?? "",
    pw_passwd: pw.pw_passwd,
    pw_uid: pw.pw_uid,
    pw_gid: pw.pw_gid,
    pw_dir: dir.toString("utf8"),
    pw_dir_bytes: dir,
    pw_shell: shell.toString("utf8"),
    pw_shell_bytes: shell,
  };
}

/** The bytes of a C string (none for NULL), as they are: koffi's "char *" would decode them as UTF-8. */
function cbytes(b: Bindings, p: unknown): Buffer {
  if (p === null) {
    return Buffer.alloc(0);
  }
  return Buffer.from(b.koffi.decode(p, "uint8_t", Number(b.strlen(p))) as Uint8Array);
}

/**
 * getspnam(3): the user's shadow hash (sp_pwdp) and expiry day (sp_expire: days since 1970, -1
 * for never), or null when there is no entry or it cannot be read (a daemon not running as root).
 */
export function getspnam(name: string): { sp_pwdp: string | null; sp_expire: number } | null {
  const b = libc();
  const p = b.getspnam(cstring(name));
  if (p === null) {
    return null;
  }
  const sp = b.koffi.decode(p, b.spwdType) as { sp_pwdp: string | null; sp_expire: number | bigint };
  return { sp_pwdp: sp.sp_pwdp, sp_expire: Number(sp.sp_expire) };
}

/**
 * getgrouplist(3) with room for `ngroups` entries: the list, or null when it needs more room
 * (glibc then returns -1).
 */
export function getgrouplist(user: string, group: number, ngroups: number): number[] | null {
  const b = libc();
  const groups = new Uint32Array(ngroups);
  const n = new Int32Array([ngroups]);
  const ret = b.getgrouplist(cstring(user), group >>> 0, groups, n);
  if (ret < 0) {
    return null;
  }
  return Array.from(groups.subarray(0, n[0]));
}

/**
 * Every shell getusershell(3) lists (/etc/shells, or libc's defaults when it is missing), as
 * bytes: a user's shell is matched against them as C's strcmp does.
 */
export function getusershells(): Buffer[] {
  const b = libc();
  const shells: Buffer[] = [];
  b.setusershell();
  try {
    for (let s = b.getusershell(); s !== null; s = b.getusershell()) {
      shells.push(cbytes(b, s));
    }
  } finally {
    b.endusershell();
  }
  return shells;
}

/** setresgid(2); -1 leaves an id as it is. Returns 0 or -1. */
export function setresgid(rgid: number, egid: number, sgid: number): number {
  return libc().setresgid(rgid >>> 0, egid >>> 0, sgid >>> 0);
}

/** setresuid(2) and setresgid(2)'s system call numbers where we know them. */
const SYS_SETRES: Partial<Record<NodeJS.Architecture, { uid: number; gid: number }>> = {
  x64: { uid: 117, gid: 119 },
  arm64: { uid: 147, gid: 149 },
};

/** Effective id setters: this thread's alone (threadIdSetters) or, as Node's own, every thread's. */
export interface EffectiveIdSetters {
  seteuid(uid: number): void;
  setegid(gid: number): void;
}

/**
 * Setters of the calling thread's effective uid and gid through the system calls themselves
 * (setresuid/setresgid with the other ids left as they are). Linux keeps credentials per thread;
 * only glibc's wrappers make every thread follow, by signalling each of Node's other threads and
 * waiting for it, about 0.1 ms a thread a call. For a switch that only this thread's next file
 * accesses need (svr-authpubkey's asUser) this is C's single-threaded seteuid/setegid exactly.
 * Null where this platform's numbers are not known; each setter throws when its call fails.
 */
export function threadIdSetters(): EffectiveIdSetters | null {
  const nr = process.platform === "linux" ? SYS_SETRES[process.arch] : undefined;
  if (nr === undefined) {
    return null;
  }
  const b = libc();
  const set = (call: number, name: string, id: number): void => {
    if (b.syscall(call, "int", -1, "int", id, "int", -1) !== 0) {
      throw new Error(`${name}(-1, ${id}, -1): errno ${b.koffi.errno()}`);
    }
  };
  return { seteuid: (uid) => set(nr.uid, "setresuid", uid), setegid: (gid) => set(nr.gid, "setresgid", gid) };
}

/**
 * getpass(3): prompts on /dev/tty (or stderr/stdin) with echo off; the answer's bytes as typed
 * (a password need not be UTF-8), or null on error.
 */
export function getpass(prompt: string): Buffer | null {
  const b = libc();
  // ^C or a kill while it waits for the user must act then, not after the Enter.
  const p = readInterruptibly(() => b.getpass(cstring(prompt)));
  return p === null ? null : cbytes(b, p);
}

/** getenv(3): the variable's bytes as the environment holds them (process.env decodes them as UTF-8), or null when unset. */
export function getenv_bytes(name: string): Buffer | null {
  const b = libc();
  const p = b.getenv(cstring(name));
  return p === null ? null : cbytes(b, p);
}

/** libxcrypt's struct crypt_data is 32768 bytes. */
const CRYPT_DATA_SIZE = 32768;

/**
 * crypt(3): the hash of `phrase` (its bytes up to any NUL, as C passes them) with the method
 * and salt of `setting` ($y$, $6$, $5$, ...). Done with crypt_rn so the scratch memory can be
 * wiped; where crypt_rn fails (a locked "!..." entry, "*", "") the result is the failure token
 * libxcrypt's crypt() returns, "*0" ("*1" if the setting starts with "*0"), which no hash ever
 * equals. So, as with Dropbear built on Linux, such accounts fail the comparison.
 */
export function crypt(phrase: Uint8Array, setting: string): string {
  if (cryptFn === null) {
    cryptFn = sharedLib("libcrypt.so.1").func("const char *crypt_rn(const uint8_t *phrase, const uint8_t *setting, void *data, int size)") as CryptRn;
  }
  const p = cstring(phrase);
  const data = Buffer.alloc(CRYPT_DATA_SIZE);
  try {
    return cryptFn(p, cstring(setting), data, CRYPT_DATA_SIZE) ?? (setting.startsWith("*0") ? "*1" : "*0");
  } finally {
    p.fill(0);
    data.fill(0);
  }
}
