import { constants as osConstants } from "node:os";
import { cstring, libcErrno, libcFunc } from "./libc.js";
import { SIG_ERR, SIG_IGN, ignoredSignals, setSignalDisposition } from "./sigign.js";
import { withInheritedNofile } from "./nofile.js";

// posix_spawn(3) plumbing for dbutil.c's spawn_command / run_command. Dropbear forks, rearranges
// the child's fds, session, signals and directory in C code, then execs; Node cannot fork, so
// each of those steps is written down here as a posix_spawn file action or attribute, and the
// C library carries them out in the child between its clone and its exec. Nothing else in the
// parent changes (no putenv, no chdir), but for the moment of the spawn itself: a signal the
// child must start ignoring is ignored in the parent while it is cloned (posix_spawn can only
// keep an ignored signal ignored), and the descriptor limit is lowered (nofile.ts).

/** One step the child takes before exec, in order. */
export type SpawnFileAction =
  | { readonly op: "dup2"; readonly fd: number; readonly newfd: number }
  | { readonly op: "open"; readonly fd: number; readonly path: string; readonly oflag: number; readonly mode: number }
  | { readonly op: "close"; readonly fd: number }
  | { readonly op: "chdir"; readonly path: string | Uint8Array }
  | { readonly op: "closefrom"; readonly fd: number };

/**
 * What a forked Dropbear child would do before its exec: the file actions (dup2, open, close,
 * chdir, closing every fd from 3 up), a new session (setsid), and the environment it execs with.
 */
export class SpawnChild {
  readonly actions: SpawnFileAction[] = [];
  /** setsid() in the child (the pty case: the open of the tty then makes it the controlling terminal). */
  setsid = false;
  /** Signals the child sets to SIG_IGN before its exec (pty_make_controlling_tty's SIGTTOU). */
  readonly ignored: NodeJS.Signals[] = [];
  /**
   * The child's environment as putenv() would leave it: name → "name=value" bytes, in the
   * order first added (a later add with the same name replaces the entry in place).
   */
  readonly env = new Map<string, Buffer>();
  /**
   * The parent's descriptor that becomes the child's stderr (-1 if none), so a message the C
   * child prints on its stderr before exec can be written there by the parent first.
   */
  stderrfd = -1;
}

/** putenv("name=value") into a child's environment. */
export function spawnSetenv(child: SpawnChild, name: string, value: string | Uint8Array): void {
  const n = Buffer.from(name, "utf8");
  const v = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
  child.env.set(n.toString("latin1"), Buffer.concat([n, Buffer.from("="), v]));
}

// glibc x86_64: sizeof(posix_spawn_file_actions_t) is 80, sizeof(posix_spawnattr_t) 336,
// sizeof(sigset_t) 128. The buffers are a little larger: libc only ever writes inside its own.
const SIZEOF_FILE_ACTIONS = 128;
const SIZEOF_SPAWNATTR = 512;
const SIZEOF_SIGSET = 128;

/** posix_spawnattr flags (glibc <spawn.h>). */
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;

/** O_* for open file actions (Linux). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;

type IntFn = (...args: unknown[]) => number;

/** The C library calls of spawning and reaping a child, by name, as koffi binds them. */
const DECL = {
  pipe2: "int pipe2(_Out_ int32_t *fds, int flags)",
  posix_spawn: "int posix_spawn(_Out_ int32_t *pid, const uint8_t *path, const uint8_t *fa, const uint8_t *attr, uint8_t **argv, uint8_t **envp)",
  posix_spawn_file_actions_addchdir_np: "int posix_spawn_file_actions_addchdir_np(_Inout_ uint8_t *fa, const uint8_t *path)",
  posix_spawn_file_actions_addclose: "int posix_spawn_file_actions_addclose(_Inout_ uint8_t *fa, int fd)",
  posix_spawn_file_actions_addclosefrom_np: "int posix_spawn_file_actions_addclosefrom_np(_Inout_ uint8_t *fa, int from)",
  posix_spawn_file_actions_adddup2: "int posix_spawn_file_actions_adddup2(_Inout_ uint8_t *fa, int fd, int newfd)",
  posix_spawn_file_actions_addopen: "int posix_spawn_file_actions_addopen(_Inout_ uint8_t *fa, int fd, const uint8_t *path, int oflag, uint32_t mode)",
  posix_spawn_file_actions_destroy: "int posix_spawn_file_actions_destroy(_Inout_ uint8_t *fa)",
  posix_spawn_file_actions_init: "int posix_spawn_file_actions_init(_Inout_ uint8_t *fa)",
  posix_spawnattr_destroy: "int posix_spawnattr_destroy(_Inout_ uint8_t *attr)",
  posix_spawnattr_init: "int posix_spawnattr_init(_Inout_ uint8_t *attr)",
  posix_spawnattr_setflags: "int posix_spawnattr_setflags(_Inout_ uint8_t *attr, short flags)",
  posix_spawnattr_setsigdefault: "int posix_spawnattr_setsigdefault(_Inout_ uint8_t *attr, const uint8_t *set)",
  posix_spawnattr_setsigmask: "int posix_spawnattr_setsigmask(_Inout_ uint8_t *attr, const uint8_t *set)",
  sigemptyset: "int sigemptyset(_Inout_ uint8_t *set)",
  waitpid: "int waitpid(int pid, _Out_ int32_t *status, int options)",
} as const;

function fn(decl: string): IntFn {
  return libcFunc<IntFn>(decl);
}

/**
 * Bind every call in DECL now (1-2 ms of koffi's work), for the warm spare connection process:
 * its first spawn (the session's command) then does not.
 */
export function spawnWarmUp(): void {
  for (const decl of Object.values(DECL)) {
    fn(decl);
  }
}

/** pipe2(O_CLOEXEC): [read end, write end], or null with errno left set. */
export function cloexecPipe(): [number, number] | null {
  const fds = new Int32Array(2);
  if (fn(DECL.pipe2)(fds, O_CLOEXEC) !== 0) {
    return null;
  }
  return [fds[0]!, fds[1]!];
}

/** errno after the last failed libc call. */
export function spawnErrno(): number {
  return libcErrno();
}

/**
 * posix_spawn(path, argv, child.env) with the child's file actions and attributes. Every
 * signal but those still ignored from our parent (sigign.ts) goes back to its default in the
 * child (Node ignores SIGPIPE, and an ignored signal would survive exec: run_command's
 * `signal(SIGPIPE, SIG_DFL)`), and its signal mask is emptied, as after a fork of a
 * single-threaded process. Returns the child's pid, or a negative errno when the child could
 * not be started (posix_spawn reports a failed file action or exec instead of C's child dying).
 */
export function spawnChild(path: string | Uint8Array, argv: readonly Uint8Array[], child: SpawnChild): number {
  const fa = Buffer.alloc(SIZEOF_FILE_ACTIONS);
  const attr = Buffer.alloc(SIZEOF_SPAWNATTR);
  let r = fn(DECL.posix_spawn_file_actions_init)(fa);
  if (r !== 0) {
    return -r;
  }
  r = fn(DECL.posix_spawnattr_init)(attr);
  if (r !== 0) {
    fn(DECL.posix_spawn_file_actions_destroy)(fa);
    return -r;
  }
  try {
    for (const a of child.actions) {
      switch (a.op) {
        case "dup2":
          r = fn(DECL.posix_spawn_file_actions_adddup2)(fa, a.fd, a.newfd);
          break;
        case "open":
          r = fn(DECL.posix_spawn_file_actions_addopen)(
            fa,
            a.fd,
            cstring(a.path),
            a.oflag,
            a.mode,
          );
          break;
        case "close":
          r = fn(DECL.posix_spawn_file_actions_addclose)(fa, a.fd);
          break;
        case "chdir":
          r = fn(DECL.posix_spawn_file_actions_addchdir_np)(fa, cstring(a.path));
          break;
        case "closefrom":
          r = fn(DECL.posix_spawn_file_actions_addclosefrom_np)(fa, a.fd);
          break;
      }
      if (r !== 0) {
        return -r;
      }
    }
    // Every signal 1-64 back to SIG_DFL. The bits are set by hand: sigfillset leaves out the
    // two C-library-internal signals (32, 33), which glibc's spawn then sets to SIG_IGN in the
    // child, and an ignored signal survives exec. But not those our parent left ignored: C's
    // child keeps them ignored through its exec (sigign.ts).
    const sigs = Buffer.alloc(SIZEOF_SIGSET);
    sigs.fill(0xff, 0, 8);
    for (const n of [...ignoredSignals(), ...child.ignored].map((s) => osConstants.signals[s])) sigs[(n - 1) >> 3]! &= ~(1 << ((n - 1) & 7));
    fn(DECL.posix_spawnattr_setsigdefault)(attr, sigs);
    const mask = Buffer.alloc(SIZEOF_SIGSET);
    fn(DECL.sigemptyset)(mask);
    fn(DECL.posix_spawnattr_setsigmask)(attr, mask);
    const flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (child.setsid ? POSIX_SPAWN_SETSID : 0);
    r = fn(DECL.posix_spawnattr_setflags)(attr, flags);
    if (r !== 0) {
      return -r;
    }
    const pid = new Int32Array(1);
    const args: (Buffer | null)[] = [...argv.map((a) => cstring(a)), null];
    const envp: (Buffer | null)[] = [...[...child.env.values()].map((e) => cstring(e)), null];
    // As a forked C child would, it starts with the descriptor limit we were started with.
    r = withIgnored(child.ignored, () => withInheritedNofile(() => fn(DECL.posix_spawn)(pid, cstring(path), fa, attr, args, envp) as number));
    if (r !== 0) {
      return -r;
    }
    return pid[0]!;
  } finally {
    fn(DECL.posix_spawnattr_destroy)(attr);
    fn(DECL.posix_spawn_file_actions_destroy)(fa);
  }
}

/** Run `start` with `signals` ignored in this process, then give each its disposition back. */
function withIgnored<T>(signals: readonly NodeJS.Signals[], start: () => T): T {
  const before = signals.map((s) => [osConstants.signals[s], setSignalDisposition(osConstants.signals[s], SIG_IGN)] as const);
  try {
    return start();
  } finally {
    // glibc's signal() installs a handler with SA_RESTART, as libuv installs its own.
    for (const [n, old] of before) if (old !== SIG_ERR) setSignalDisposition(n, old);
  }
}

/** waitpid(pid, WNOHANG): [pid, status] of a child that has ended, or null (still running, or none). */
export function waitpidNohang(pid: number): [number, number] | null {
  const status = new Int32Array(1);
  const r = fn(DECL.waitpid)(pid, status, 1 /* WNOHANG */);
  return r > 0 ? [r, status[0]!] : null;
}

/** <sys/wait.h>'s status macros. */
export function WIFEXITED(status: number): boolean {
  return (status & 0x7f) === 0;
}
export function WEXITSTATUS(status: number): number {
  return (status >> 8) & 0xff;
}
export function WIFSIGNALED(status: number): boolean {
  const sig = status & 0x7f;
  return sig !== 0 && sig !== 0x7f;
}
export function WTERMSIG(status: number): number {
  return status & 0x7f;
}
export function WCOREDUMP(status: number): boolean {
  return (status & 0x80) !== 0;
}
