import { type Stats, closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { getSystemErrorMap } from "node:util";

// The one koffi binding of the C library. Dropbear calls libc directly; Node lacks some of the
// calls (syslog, the passwd and shadow databases, ptys, termios, posix_spawn, utmpx), so every
// package that needs one declares it here through libcFunc, and libc is loaded once, on first
// use: a run that never needs one never loads koffi. The running program itself (programLib)
// is loaded here too, for the OpenSSL symbols the node binary exports.

/** What koffi's loaded-library object offers that we use. */
export interface KoffiLib {
  func(decl: string): (...args: unknown[]) => unknown;
}

/** The part of koffi's module we use (it ships no types that fit NodeNext here). */
export interface Koffi {
  /** null: the running program itself (dlopen(NULL)), with the symbols it exports. */
  load(path: string | null): KoffiLib;
  struct(name: string, def: Record<string, string>): unknown;
  decode(ptr: unknown, type: unknown, len?: number): unknown;
  pointer(type: unknown): unknown;
  /** errno as the last call through koffi left it. */
  errno(): number;
}

let koffiModule: Koffi | null = null;
const libs = new Map<string, KoffiLib>();
const funcs = new Map<string, (...args: unknown[]) => unknown>();

/** The koffi module, loaded on first use. Throws where koffi is not installed or cannot load. */
export function koffi(): Koffi {
  if (koffiModule === null) {
    const req = createRequire(import.meta.url);
    koffiModule = koffiNative(req) ?? (req("koffi") as Koffi);
  }
  return koffiModule;
}

/**
 * koffi's prebuilt native module for glibc Linux on x64 or arm64, loaded straight from the file
 * koffi's loader picks there, or null (another platform or layout, another version, a musl
 * Node): then koffi's loader runs. That loader, and Node's resolution of a package with
 * "exports", is JavaScript compiled afresh in every process: about 8 of the 12 ms that loading
 * koffi took here, on dbclient's way to its first key exchange. What the loader adds to the
 * native module is deprecated aliases we do not call; its check that the binary is koffi's own
 * version is made here too. The packages are found where require() would look for them.
 */
function koffiNative(req: NodeJS.Require): Koffi | null {
  if (process.platform !== "linux" || (process.arch !== "x64" && process.arch !== "arm64") || !glibcProgram()) {
    return null;
  }
  const platformPkg = `@koromix/koffi-linux-${process.arch}`;
  const binary = join(`linux_${process.arch}`, "koffi.node");
  try {
    const koffiDir = packageDir(req, "koffi", "package.json");
    if (koffiDir === null) return null;
    const version = (JSON.parse(readFileSync(join(koffiDir, "package.json"), "utf8")) as { version?: unknown }).version;
    const nativeDir = packageDir(createRequire(join(koffiDir, "package.json")), platformPkg, binary);
    if (nativeDir === null) return null;
    const mod = { exports: {} as { version?: unknown } };
    process.dlopen(mod, join(nativeDir, binary));
    return mod.exports.version === version ? (mod.exports as unknown as Koffi) : null;
  } catch {
    return null;
  }
}

/** The directory of package `name` where require() would look first and `file` is in it, or null. */
function packageDir(req: NodeJS.Require, name: string, file: string): string | null {
  for (const dir of req.resolve.paths(name) ?? []) {
    if (existsSync(join(dir, name, file))) return join(dir, name);
  }
  return null;
}

/** Whether the running node binary asks for glibc's dynamic loader (its ELF interpreter, within its first page). */
function glibcProgram(): boolean {
  let fd: number | null = null;
  try {
    fd = openSync(process.execPath, "r");
    const head = Buffer.alloc(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).includes("/ld-linux-");
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** A shared library by soname (libc.so.6 unless named), loaded once. */
export function sharedLib(soname = "libc.so.6"): KoffiLib {
  let lib = libs.get(soname);
  if (lib === undefined) {
    lib = koffi().load(soname);
    libs.set(soname, lib);
  }
  return lib;
}

/** Whether koffi is loaded already: for work worth doing only where it costs no load. */
export function koffiLoaded(): boolean {
  return koffiModule !== null;
}

let program: KoffiLib | null = null;

/**
 * The running program itself (dlopen(NULL)), for the symbols the node binary exports: its
 * statically linked OpenSSL, which the crypto package binds. Throws where that cannot be done.
 */
export function programLib(): KoffiLib {
  program ??= koffi().load(null);
  return program;
}

/** How many C functions libcFunc has bound so far (what a warm-up step did, for its tests). */
export function libcBindings(): number {
  return funcs.size;
}

/**
 * A C function from libc (or `soname`) by its koffi declaration, bound once however many
 * callers ask. The caller casts it to the TypeScript signature the declaration implies.
 */
export function libcFunc<F extends (...args: never[]) => unknown>(decl: string, soname = "libc.so.6"): F {
  const key = `${soname}\0${decl}`;
  let f = funcs.get(key);
  if (f === undefined) {
    f = sharedLib(soname).func(decl);
    funcs.set(key, f);
  }
  return f as unknown as F;
}

/** A struct rlimit: rlim_cur (the soft limit) and rlim_max (the hard one). */
export interface Rlimit {
  soft: bigint;
  hard: bigint;
}

/** getrlimit(2), or null where it fails. (Throws where the FFI library cannot load, as libcFunc does.) */
export function getrlimit(resource: number): Rlimit | null {
  // rlim_cur and rlim_max, 64 bits each on Linux's 64-bit ABIs.
  const rlim = Buffer.alloc(16);
  if (libcFunc<(resource: number, rlim: Buffer) => number>("int getrlimit(int resource, _Out_ uint8_t *rlim)")(resource, rlim) < 0) {
    return null;
  }
  return { soft: rlim.readBigUInt64LE(0), hard: rlim.readBigUInt64LE(8) };
}

/** setrlimit(2): whether it took. (Throws where the FFI library cannot load, as libcFunc does.) */
export function setrlimit(resource: number, lim: Rlimit): boolean {
  const rlim = Buffer.alloc(16);
  rlim.writeBigUInt64LE(lim.soft, 0);
  rlim.writeBigUInt64LE(lim.hard, 8);
  return libcFunc<(resource: number, rlim: Buffer) => number>("int setrlimit(int resource, const uint8_t *rlim)")(resource, rlim) === 0;
}

/**
 * setsid(2): a new session and process group, with no controlling terminal. Whether it took: it
 * fails where the process leads a process group already. (Throws where the FFI library cannot
 * load, as libcFunc does.)
 */
export function setsid(): boolean {
  return libcFunc<() => number>("int setsid()")() >= 0;
}

let groupType: unknown = null;

/**
 * getgrnam(3)'s gr_gid: the group as the system's name service knows it (nsswitch.conf: files,
 * systemd's userdb, LDAP, ...), or null when there is no such group. (Throws where the FFI
 * library cannot load, as libcFunc does.)
 */
export function getgrnam_gid(name: string): number | null {
  const k = koffi();
  groupType ??= k.struct("dbts_dbutil_group", { gr_name: "char *", gr_passwd: "char *", gr_gid: "uint32_t", gr_mem: "void *" });
  const p = libcFunc<(n: Buffer) => unknown>("void *getgrnam(const uint8_t *name)")(cstring(name));
  if (p === null) {
    return null;
  }
  return (k.decode(p, groupType) as { gr_gid: number }).gr_gid;
}

/** fcntl(2)'s F_DUPFD_CLOEXEC. */
const F_DUPFD_CLOEXEC = 1030;

/** fstat of descriptors `a` and `b` when both are open on one file (same device and inode), else null. */
export function sameOpenFile(a: number, b: number): Stats | null {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino ? x : null;
  } catch {
    return null;
  }
}

/** A close-on-exec copy of descriptor `fd`, numbered 3 or above (never a stdio number), or -1. */
export function dup_cloexec(fd: number): number {
  return libcFunc<(fd: number, cmd: number, type: string, arg: number) => number>("int fcntl(int fd, int cmd, ...)")(fd, F_DUPFD_CLOEXEC, "int", 3);
}

/**
 * Let go of what descriptor `fd` refers to, as close(fd) does, but keep the number taken by
 * /dev/null, so nothing opened later lands on it (Node's process.stdout would write there).
 * Does nothing where /dev/null cannot be opened.
 */
export function releaseDescriptor(fd: number): void {
  let devnull: number;
  try {
    devnull = openSync("/dev/null", "r+");
  } catch {
    return;
  }
  try {
    libcFunc<(oldfd: number, newfd: number) => number>("int dup2(int oldfd, int newfd)")(devnull, fd);
  } finally {
    closeSync(devnull);
  }
}

/** errno after the last failed libc call. */
export function libcErrno(): number {
  return koffi().errno();
}

/** Bytes of a C string: up to the first NUL, as C sees it, plus a NUL. */
export function cstring(s: string | Uint8Array): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : Buffer.from(s);
  const nul = bytes.indexOf(0);
  const used = nul < 0 ? bytes : bytes.subarray(0, nul);
  const out = Buffer.alloc(used.length + 1);
  used.copy(out);
  return out;
}

/**
 * strerror(3) of an errno number, as C prints it. Where libc cannot be reached (koffi's files
 * cannot be opened when the process is out of descriptors), libuv's words, capitalised as C's.
 */
export function strerror_errno(errnum: number): string {
  try {
    return libcFunc<(e: number) => string>("const char *strerror(int errnum)")(errnum);
  } catch {
    const text = getSystemErrorMap().get(-errnum)?.[1] ?? `Unknown error ${errnum}`;
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
}

/** strerror(3) of a Node error's code ("ENOENT" → "No such file or directory"), else `fallback`. */
export function strerror_code(code: string | undefined, fallback = "Unknown error"): string {
  const n = code === undefined ? undefined : (osConstants.errno as Record<string, number>)[code];
  return n === undefined ? fallback : strerror_errno(n);
}

/** The errno code ("EEXIST") of a thrown Node error, or "" for anything else. */
export function errnoCode(err: unknown): string {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string"
    ? (err as { code: string }).code
    : "";
}

/**
 * The errno ("EMFILE", "ENFILE", "ENOMEM") of a thrown error that came of the process being out
 * of descriptors or memory, not of anything being wrong; else null. Node's module loader reports
 * a file it could not open under other names (MODULE_NOT_FOUND, ERR_INVALID_PACKAGE_CONFIG), so
 * for an error without such an errno, whether a descriptor can be had now decides.
 */
export function outOfResources(err: unknown): string | null {
  const shortage = (code: string): boolean => code === "EMFILE" || code === "ENFILE" || code === "ENOMEM";
  const code = errnoCode(err);
  if (shortage(code)) {
    return code;
  }
  try {
    closeSync(openSync("/dev/null", "r"));
    return null;
  } catch (e) {
    return shortage(errnoCode(e)) ? errnoCode(e) : null;
  }
}

/** strerror(errno) for whatever a failed Node call threw: C's text for its code, else its message. */
export function strerror(err: unknown): string {
  return strerror_code(errnoCode(err) || undefined, err instanceof Error ? err.message : String(err));
}

/**
 * Hand the C heap's free pages back to the kernel (glibc's malloc_trim(0)): V8's compilers and
 * node:crypto free what they used while a connection started, but glibc keeps those pages, so
 * an idle process would hold them for its life. Best effort, never an error.
 */
export function malloc_trim(): void {
  try {
    libcFunc<(pad: number) => number>("int malloc_trim(size_t pad)")(0);
  } catch {
    // Not glibc, or no koffi for the platform: the memory stays with the process.
  }
}
