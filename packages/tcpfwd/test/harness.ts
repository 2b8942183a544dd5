// A server or client session without a transport (packets queue in clear and are read back
// from the write queue), and one turn of the session loop's forwarding part: the listener,
// pending-connect and channel fds, a select on them, then handle_connect_fds,
// handle_listeners and channelio, as session_loop orders them.
import { buf_getbyte, buf_new, buf_putbytes, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import { channelio, chaninitialise, setchannelfds } from "@dropbear-ts/channel";
import { cli_runopts, CliSession, runopts, svr_runopts, SvrSession, type ChanType, type sshsession } from "@dropbear-ts/core";
import { dequeue, isempty } from "@dropbear-ts/dbutil";
import { handle_listeners, set_listener_fds } from "@dropbear-ts/listener";
import { handle_connect_fds, set_connect_fds, type Fd } from "@dropbear-ts/netio";
import { TRANS_MAX_PAYLOAD_LEN } from "@dropbear-ts/options";

export function svrSession(chantypes: readonly ChanType<SvrSession>[], setup?: (o: svr_runopts, opts: runopts) => void): SvrSession {
  const opts = new runopts();
  const svr_opts = new svr_runopts();
  setup?.(svr_opts, opts);
  const ses = new SvrSession(opts, svr_opts);
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  chaninitialise(ses, chantypes);
  return ses;
}

export function cliSession(chantypes: readonly ChanType<CliSession>[], setup?: (o: cli_runopts, opts: runopts) => void): CliSession {
  const opts = new runopts();
  const cli_opts = new cli_runopts();
  setup?.(cli_opts, opts);
  const ses = new CliSession(opts, cli_opts);
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  chaninitialise(ses, chantypes);
  return ses;
}

/** The payloads queued since the last call, each positioned after its type byte; `type` is that byte. */
export function sent(ses: sshsession): (buffer & { type: number })[] {
  const out: (buffer & { type: number })[] = [];
  while (!isempty(ses.writequeue)) {
    const wb = dequeue(ses.writequeue);
    const len = wb.data.readUInt32BE(0);
    const p = buf_new(len - wb.data[4]! - 1);
    buf_putbytes(p, wb.data.subarray(5, 5 + p.size));
    buf_setpos(p, 0);
    out.push(Object.assign(p, { type: buf_getbyte(p) }));
  }
  ses.writequeue_len = 0;
  return out;
}

/** Run a handler on a payload (without its type byte) as process_packet would, then await what it left for the loop. */
export async function receive<S extends sshsession>(ses: S, handler: (ses: S) => void, body: Buffer): Promise<void> {
  const b = buf_new(body.length);
  buf_putbytes(b, body);
  buf_setpos(b, 0);
  ses.payload = b;
  try {
    handler(ses);
  } finally {
    ses.payload = null;
  }
  const pending = ses.awaitAfterPacket;
  ses.awaitAfterPacket = null;
  await pending;
}

function ready(r: Set<Fd>, w: Set<Fd>): boolean {
  return [...r].some((f) => f.readReady()) || [...w].some((f) => f.writeReady());
}

/** One loop turn: wait (at most 5 s) until a watched fd is ready, then handle what is. */
export async function turn(ses: sshsession): Promise<void> {
  const r = new Set<Fd>();
  const w = new Set<Fd>();
  set_listener_fds(ses, r);
  set_connect_fds(ses.conn_pending, w);
  setchannelfds(ses, r, w, true);
  // Building the sets can already answer (a connect with no address left fails there): the
  // real loop would then write that out before waiting on anything.
  if (!ready(r, w) && isempty(ses.writequeue)) {
    const fds = [...r, ...w];
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        for (const f of fds) f.removeWaiter(wake);
        if (err) reject(err);
        else resolve();
      };
      const wake = (): void => {
        if (ready(r, w)) done();
      };
      const timer = setTimeout(() => done(new Error("nothing became ready in 5 s")), 5000);
      for (const f of fds) f.addWaiter(wake);
    });
  }
  for (const f of r) if (!f.readReady()) r.delete(f);
  for (const f of w) if (!f.writeReady()) w.delete(f);
  handle_connect_fds(ses.conn_pending, w, ses.opts.disable_ip_tos);
  handle_listeners(ses, r);
  channelio(ses, r, w);
}

/** Loop turns until `want` holds for what was sent (at most 30 turns); returns all of it. */
export async function turnsUntil(ses: sshsession, want: (sofar: (buffer & { type: number })[]) => boolean): Promise<(buffer & { type: number })[]> {
  const out = sent(ses);
  for (let i = 0; i < 30 && !want(out); i++) {
    await turn(ses);
    out.push(...sent(ses));
  }
  if (!want(out)) throw new Error(`not there after 30 turns: sent types ${out.map((p) => p.type).join(",")}`);
  return out;
}
