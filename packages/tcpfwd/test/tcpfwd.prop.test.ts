// Hostile forwarding requests: global requests (tcpip-forward, cancel-tcpip-forward and the
// streamlocal pair) and direct-tcpip / direct-streamlocal opens with any fields. Each is
// answered at most once or ends the session with a DropbearExit; nothing listens beyond what
// the rules allow (loopback only without -a, no port below 1024, at most MAX_LISTENERS + 1).
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { chancleanup, recv_msg_channel_open } from "@dropbear-ts/channel";
import { MAX_LISTENERS, type sshsession } from "@dropbear-ts/core";
import { remove_all_listeners } from "@dropbear-ts/listener";
import { remove_connect_pending } from "@dropbear-ts/netio";
import { SSH_MSG_CHANNEL_OPEN_CONFIRMATION, SSH_MSG_CHANNEL_OPEN_FAILURE, SSH_MSG_REQUEST_FAILURE, SSH_MSG_REQUEST_SUCCESS } from "@dropbear-ts/options";
import { svr_chan_streamlocal, svr_chan_tcpdirect, svr_recv_msg_global_request } from "../src/index.js";
import { receive, sent, svrSession } from "./harness.js";
import { cleanlyAsync, fuzzParams, fuzzTimeout } from "../../../tests/helpers/fuzz.js";
import { sshString, u32 } from "../../../tests/helpers/wire.js";

// Socket paths stay in here: a streamlocal forward removes whatever is at its path first.
const dir = mkdtempSync(join(tmpdir(), "dbts-fwdprop-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const u32Arb = fc.oneof(
  fc.constantFrom(0, 1, 22, 80, 1023, 1024, 65535, 65536, 0x7fffffff, 0xffffffff),
  fc.integer({ min: 1024, max: 65535 }),
  fc.integer({ min: 0, max: 0xffffffff }),
);
// Loopback only, and no name that would need DNS: tests stay on this machine. A name over
// MAX_HOST_LEN is refused before any lookup.
const LOOPBACK = ["localhost", "127.0.0.1", "::1", "127.0.0.2"];
const loopbackArb = fc.oneof(fc.constantFrom(...LOOPBACK), fc.integer({ min: 1, max: 254 }).map((n) => `127.0.0.${n}`));
/** What a request may name: loopback, too long, or (where it is never looked up) anything. */
const addrArb = fc.oneof(loopbackArb, fc.constantFrom("a".repeat(255), "b".repeat(300)), fc.string({ maxLength: 20 }).map((junk) => ({ junk })));
const pathArb = fc.oneof(
  fc.stringMatching(/^[a-z0-9]{1,10}$/).map((n) => join(dir, n)),
  fc.constant(join(dir, "x".repeat(120))),
  fc.constant(`${dir}/nul\0byte`),
);
const nameArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com") },
  { weight: 1, arbitrary: fc.constantFrom("keepalive@openssh.com", "no-more-sessions@openssh.com", "x".repeat(65), "") },
);

/** A global request: a known name with fitting or junk fields, or cut short. */
const requestArb = fc
  .record({
    name: nameArb,
    want: fc.constantFrom(0, 1, 2, 255),
    addr: addrArb,
    path: pathArb,
    port: u32Arb,
    junk: fc.uint8Array({ maxLength: 6 }),
    cut: fc.option(fc.nat(), { freq: 5 }),
  })
  .map(({ name, want, addr, path, port, junk, cut }) => {
    const a = typeof addr === "string" ? addr : addr.junk;
    const fields = name.includes("streamlocal") ? [sshString(path)] : [sshString(a), u32(port)];
    const full = Buffer.concat([sshString(name), Buffer.of(want), ...fields, Buffer.from(junk)]);
    // Without -a the address is never looked up (loopback is bound), so junk is safe there only.
    return { name, want, lookupSafe: typeof addr === "string", body: cut === null ? full : full.subarray(0, cut % (full.length + 1)) };
  });

function listenerAddresses(ses: sshsession): AddressInfo[] {
  return ses.listeners.flatMap((l) => (l === null ? [] : l.socks.map((s) => s.server.address()).filter((a): a is AddressInfo => typeof a === "object" && a !== null)));
}

function cleanup(ses: sshsession): void {
  remove_all_listeners(ses);
  remove_connect_pending(ses.conn_pending);
  chancleanup(ses);
}

describe("global requests from a hostile client", () => {
  it("are answered at most once each, bind only what the rules allow, or end the session cleanly", async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(requestArb, { minLength: 1, maxLength: 6 }), async (all, k, reqs) => {
        const ses = svrSession([], (s, opts) => {
          opts.listen_fwd_all = all;
          s.noremotefwd = k;
        });
        try {
          for (const r of reqs) {
            if (all && !r.lookupSafe) continue;
            const exit = await cleanlyAsync(() => receive(ses, svr_recv_msg_global_request, r.body));
            const replies = sent(ses).map((p) => p.type);
            if (exit !== null) return;
            expect(replies.length).toBeLessThanOrEqual(1);
            if (r.want === 0) expect(replies).toEqual([]);
            for (const t of replies) expect([SSH_MSG_REQUEST_SUCCESS, SSH_MSG_REQUEST_FAILURE]).toContain(t);
            if (k) expect(replies.filter((t) => t === SSH_MSG_REQUEST_SUCCESS)).toEqual([]);
            expect(ses.listeners.filter((l) => l !== null).length).toBeLessThanOrEqual(MAX_LISTENERS + 1);
            for (const a of listenerAddresses(ses)) {
              if (!all) expect(["127.0.0.1", "::1"]).toContain(a.address);
              expect(a.port).toBeGreaterThanOrEqual(1024);
            }
          }
        } finally {
          cleanup(ses);
        }
      }),
      fuzzParams(100),
    );
  }, fuzzTimeout());
});

/** A channel open of `type` with host, port, origin fields that may be anything. */
const openArb = fc
  .record({
    type: fc.constantFrom("direct-tcpip", "direct-streamlocal@openssh.com"),
    // The destination is looked up and connected to (later): loopback or refused before that.
    host: fc.oneof(loopbackArb, fc.constant("a".repeat(255)), pathArb),
    port: u32Arb,
    orighost: addrArb.map((a) => (typeof a === "string" ? a : a.junk)),
    origport: u32Arb,
    cut: fc.option(fc.nat(), { freq: 4 }),
  })
  .map(({ type, host, port, orighost, origport, cut }) => {
    const fields = type === "direct-tcpip" ? [sshString(host), u32(port), sshString(orighost), u32(origport)] : [sshString(host), sshString(orighost), u32(origport)];
    const full = Buffer.concat([sshString(type), u32(3), u32(1 << 20), u32(32768), ...fields]);
    return cut === null ? full : full.subarray(0, cut % (full.length + 1));
  });

describe("direct-tcpip and direct-streamlocal opens from a hostile client", () => {
  it("are refused at once, left connecting, or end the session cleanly; a bad port never connects", async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), openArb, async (j, body) => {
        const ses = svrSession([svr_chan_tcpdirect, svr_chan_streamlocal], (s) => (s.nolocaltcp = j));
        try {
          const err = await cleanlyAsync(() => receive(ses, recv_msg_channel_open, body));
          const replies = sent(ses).map((p) => p.type);
          if (err !== null) {
            expect(replies).toEqual([]);
            return;
          }
          expect(replies.length).toBeLessThanOrEqual(1);
          if (replies.length === 1) {
            expect([SSH_MSG_CHANNEL_OPEN_FAILURE, SSH_MSG_CHANNEL_OPEN_CONFIRMATION]).toContain(replies[0]);
          } else {
            // Left connecting: a channel waits for its connect, which only a sane request starts.
            expect(ses.chancount).toBe(1);
            expect(ses.conn_pending.first).not.toBeNull();
            const name = body.subarray(4, 4 + body.readUInt32BE(0)).toString();
            if (name === "direct-tcpip") {
              const hostLen = body.readUInt32BE(16);
              const port = body.readUInt32BE(20 + hostLen);
              expect(port).toBeLessThanOrEqual(65535);
              expect(j).toBe(false);
            }
          }
        } finally {
          cleanup(ses);
        }
      }),
      fuzzParams(300),
    );
  }, fuzzTimeout());
});
