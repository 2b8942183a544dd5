// A client and a server session on the two ends of a loopback socket, each with the kex
// handlers the apps register, and a pump that plays both session loops' packet steps
// (write_packet, read_packet, process_packet) until a condition holds.
import { algo_tables_new } from "@dropbear-ts/algo";
import { buf_new, buf_putbyte, buf_putbytes } from "@dropbear-ts/buffer";
import { cli_kex_state, cli_runopts, CliSession, runopts, svr_runopts, SvrSession, type algo_type, type packettype, type sshsession } from "@dropbear-ts/core";
import { DropbearExit, isempty, setLogHandler } from "@dropbear-ts/dbutil";
import { StreamFd, type Fd } from "@dropbear-ts/netio";
import {
  LOCAL_IDENT,
  SSH_EXT_INFO_C,
  SSH_MSG_EXT_INFO,
  SSH_MSG_KEXDH_INIT,
  SSH_MSG_KEXDH_REPLY,
  SSH_MSG_KEXINIT,
  SSH_MSG_NEWKEYS,
  SSH_STRICT_KEX_C,
  SSH_STRICT_KEX_S,
  TRANS_MAX_PAYLOAD_LEN,
} from "@dropbear-ts/options";
import { encrypt_packet, process_packet, read_packet, write_packet } from "@dropbear-ts/packet";
import { DROPBEAR_SIGNKEY_ED25519, signkeyGenerateKey } from "@dropbear-ts/signkey";
import {
  kexfirstinitialise,
  recv_msg_ext_info,
  recv_msg_kexdh_init,
  recv_msg_kexdh_reply,
  recv_msg_kexinit,
  recv_msg_newkeys,
  send_msg_kexdh_init,
  send_msg_kexinit,
} from "../src/index.js";
import { tcpPair } from "../../../tests/helpers/sockets.js";

/** A message type no kex code uses, below the pre-auth limit: the tests' application data. */
export const TEST_MSG = 50;

export const hostkey = signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0);

const MARKERS = new Set([SSH_EXT_INFO_C, SSH_STRICT_KEX_C, SSH_STRICT_KEX_S, "kexguess2@matt.ucc.asn.au"]);

/** Keep only `names` usable in a table (the kex markers are left as they are). */
export function only(table: algo_type[], names: readonly string[]): void {
  for (const a of table) {
    if (!MARKERS.has(a.name)) a.usable = names.includes(a.name);
  }
}

export interface Options {
  /** Restrict each side's tables before KEXINIT is sent. */
  setup?: (cli: CliSession, svr: SvrSession) => void;
}

export interface KexPair {
  cli: CliSession;
  svr: SvrSession;
  /** Payloads of TEST_MSG each side received, type byte first. */
  got: Map<sshsession, Buffer[]>;
  close: () => void;
}

function base<S extends sshsession>(ses: S, fd: StreamFd, got: Buffer[], types: packettype<S>[]): void {
  ses.sock_in = fd;
  ses.sock_out = fd;
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  ses.requirenext = SSH_MSG_KEXINIT;
  ses.remoteident = LOCAL_IDENT;
  ses.algos = algo_tables_new();
  ses.remoteclosed = () => {
    throw new DropbearExit(1, "Remote closed the connection");
  };
  const capture: packettype<S> = {
    type: TEST_MSG,
    handler: (s) => got.push(Buffer.from(s.payload!.data.subarray(s.payload_beginning, s.payload!.len))),
  };
  ses.packettypes = [...types, capture];
}

/**
 * A client session as cli_session leaves it on `fd`, with the kex handlers (its answer to the
 * server's KEXINIT folded into that handler, as cli_sessionloop does) and `extra` ones; it
 * skips the known_hosts check and offers what the default tables have.
 */
export function kexClient(fd: StreamFd, got: Buffer[], extra: packettype<CliSession>[] = []): CliSession {
  const cli = new CliSession(new runopts(), Object.assign(new cli_runopts(), { no_hostkey_check: true, remotehost: "test" }));
  base(cli, fd, got, [
    {
      type: SSH_MSG_KEXINIT,
      handler: (s) => {
        recv_msg_kexinit(s);
        if (s.cli_ses.kex_state === cli_kex_state.KEX_NOTHING || s.kexstate.donefirstkex) {
          send_msg_kexdh_init(s);
          s.cli_ses.kex_state = cli_kex_state.KEXDH_INIT_SENT;
        }
      },
    },
    { type: SSH_MSG_KEXDH_REPLY, handler: recv_msg_kexdh_reply },
    { type: SSH_MSG_NEWKEYS, handler: recv_msg_newkeys },
    { type: SSH_MSG_EXT_INFO, handler: recv_msg_ext_info },
    ...extra,
  ]);
  // As cli_algos_initialise: the client offers only its own strict-kex marker.
  for (const a of cli.algos.sshkex) if (a.name === SSH_STRICT_KEX_S) a.usable = false;
  return cli;
}

/**
 * Two sessions set up as svr_session and cli_session leave them, over a real socket pair, with
 * both KEXINITs sent. The server has an ed25519 host key; the client skips the known_hosts check.
 */
export async function kexPair(o: Options = {}): Promise<KexPair> {
  const p = await tcpPair();
  const svr_opts = new svr_runopts();
  svr_opts.hostkey = hostkey;
  const svr = new SvrSession(new runopts(), svr_opts);
  const got = { cli: [] as Buffer[], svr: [] as Buffer[] };
  base(svr, new StreamFd(p.b), got.svr, [
    { type: SSH_MSG_KEXINIT, handler: recv_msg_kexinit },
    { type: SSH_MSG_KEXDH_INIT, handler: recv_msg_kexdh_init },
    { type: SSH_MSG_NEWKEYS, handler: recv_msg_newkeys },
  ]);
  const cli = kexClient(new StreamFd(p.a), got.cli);
  // As svr_algos_initialise: the server offers only its own markers, and signs with ed25519.
  only(svr.algos.sigalgs, ["ssh-ed25519"]);
  for (const a of svr.algos.sshkex) if (a.name === SSH_EXT_INFO_C || a.name === SSH_STRICT_KEX_C) a.usable = false;
  o.setup?.(cli, svr);
  for (const ses of [cli, svr]) {
    kexfirstinitialise(ses);
  }
  return {
    cli,
    svr,
    got: new Map<sshsession, Buffer[]>([
      [cli, got.cli],
      [svr, got.svr],
    ]),
    close: p.close,
  };
}

/** Resolves when one of the sockets may be read (or after 15 s, rejecting: a busy machine may take seconds over a key exchange). */
function readable(fds: Fd[]): Promise<void> {
  if (fds.some((f) => f.readReady())) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const wake = (): void => {
      if (!fds.some((f) => f.readReady())) return;
      clearTimeout(timer);
      for (const f of fds) f.removeWaiter(wake);
      resolve();
    };
    const timer = setTimeout(() => {
      for (const f of fds) f.removeWaiter(wake);
      reject(new Error("no packet arrived within 15 s"));
    }, 15_000);
    for (const f of fds) f.addWaiter(wake);
  });
}

/**
 * Run the sessions' packet steps (both of a pair, or the ones given) until `done()` holds:
 * flush each write queue, read and process whatever arrived. A DropbearExit on any side is
 * thrown to the caller. At most 200 turns.
 */
export async function pump(k: KexPair | readonly sshsession[], done: () => boolean): Promise<void> {
  const sessions = "cli" in k ? [k.cli, k.svr] : k;
  const prev = setLogHandler(() => undefined);
  try {
    for (let turn = 0; turn < 200; turn++) {
      for (const ses of sessions) {
        if (!isempty(ses.writequeue)) write_packet(ses);
      }
      if (done()) return;
      await readable(sessions.map((s) => s.sock_in!));
      for (const ses of sessions) {
        for (let i = 0; i < 50 && ses.sock_in!.readReady(); i++) {
          read_packet(ses);
          if (ses.payload === null) break;
          process_packet(ses);
        }
      }
    }
    throw new Error("the sessions did not get there in 200 turns");
  } finally {
    setLogHandler(prev);
  }
}

/** Send both KEXINITs and run until both sides took their new keys both ways. */
export async function fullKex(k: KexPair): Promise<void> {
  send_msg_kexinit(k.cli);
  send_msg_kexinit(k.svr);
  await pump(k, () => k.cli.kexstate.donefirstkex && k.svr.kexstate.donefirstkex && k.cli.newkeys === null && k.svr.newkeys === null && isempty(k.svr.writequeue));
}

/** Queue a message of `type` (TEST_MSG unless told) carrying `body`. */
export function sendTest(ses: sshsession, body: Buffer, type = TEST_MSG): void {
  buf_putbyte(ses.writepayload, type);
  buf_putbytes(ses.writepayload, body);
  encrypt_packet(ses);
}
