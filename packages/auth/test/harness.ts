// Sessions without a transport: packets go to ses.writequeue in clear (no cipher, no MAC), and
// tests take their payloads out and hand them to the other side's handlers directly.
import { randomBytes } from "node:crypto";
import { buf_getbyte, buf_new, buf_putbytes, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import { CliSession, SvrSession, cli_runopts, runopts, svr_runopts, type sshsession } from "@dropbear-ts/core";
import { dropbear_aes128 } from "@dropbear-ts/crypto";
import { svrAuthDelayPending } from "../src/index.js";
import { dequeue, isempty, setLogHandler } from "@dropbear-ts/dbutil";
import { TRANS_MAX_PAYLOAD_LEN } from "@dropbear-ts/options";

export function newSvrSession(setup?: (o: svr_runopts) => void): SvrSession {
  const svr_opts = new svr_runopts();
  setup?.(svr_opts);
  const ses = new SvrSession(new runopts(), svr_opts);
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  ses.session_id = randomBytes(32);
  ses.svr_ses.addrstring = "127.0.0.1:40000";
  return ses;
}

export function newCliSession(setup?: (o: cli_runopts) => void): CliSession {
  const cli_opts = new cli_runopts();
  cli_opts.username = "root";
  cli_opts.remotehost = "testhost";
  setup?.(cli_opts);
  const ses = new CliSession(new runopts(), cli_opts);
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  // A cipher with a descriptor, so password auth counts as encrypted; the mode stays "none".
  ses.keys.trans.algo_crypt = dropbear_aes128;
  return ses;
}

/** Share the session id, as a finished key exchange would. */
export function pair(svr: sshsession, cli: sshsession): void {
  cli.session_id = svr.session_id;
}

/** The payloads queued so far (type byte first), oldest first; the queue is emptied. */
export function takePayloads(ses: sshsession): Buffer[] {
  const out: Buffer[] = [];
  while (!isempty(ses.writequeue)) {
    const wb = dequeue(ses.writequeue);
    const packet_length = wb.data.readUInt32BE(0);
    const padlen = wb.data[4];
    out.push(Buffer.from(wb.data.subarray(5, 5 + packet_length - padlen - 1)));
  }
  ses.writequeue_len = 0;
  return out;
}

/** Run a handler on a payload as process_packet would: pos after the type byte. */
export function deliver<S extends sshsession>(ses: S, payload: Uint8Array, handler: (ses: S) => void): void {
  const b: buffer = buf_new(payload.length);
  buf_putbytes(b, payload);
  buf_setpos(b, 0);
  ses.payload_beginning = 0;
  buf_getbyte(b);
  ses.payload = b;
  try {
    handler(ses);
  } finally {
    ses.payload = null;
  }
}

/** Collect log lines while fn runs (async allowed). */
export async function withLogs<T>(fn: (logs: string[]) => Promise<T> | T): Promise<{ result: T; logs: string[] }> {
  const logs: string[] = [];
  const prev = setLogHandler((_p, msg) => logs.push(msg));
  try {
    const result = await fn(logs);
    return { result, logs };
  } finally {
    setLogHandler(prev);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once the session's failure delay is over (its timer has fired); rejects after 5 s. */
export async function delayOver(ses: SvrSession): Promise<void> {
  const end = Date.now() + 5000;
  while (svrAuthDelayPending(ses)) {
    if (Date.now() > end) throw new Error("the failure delay did not end within 5 s");
    await sleep(10);
  }
}
