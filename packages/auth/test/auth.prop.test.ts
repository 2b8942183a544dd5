// Hostile bytes: every parser that reads what a peer (or an authorized_keys line) sends either
// answers or ends the session with a DropbearExit, never anything else.
import fc from "fast-check";
import { fuzzParams } from "../../../tests/helpers/fuzz.js";
import { describe, expect, it } from "vitest";
import { buf_new, buf_putbyte, buf_putbytes, buf_putstring } from "@dropbear-ts/buffer";
import { cli_state } from "@dropbear-ts/core";
import { DropbearExit, setLogHandler } from "@dropbear-ts/dbutil";
import { MAX_STRING_LEN, SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_REQUEST } from "@dropbear-ts/options";
import { DROPBEAR_SIGNKEY_ED25519, signkeyGenerateKey, signkeyPubBlob, signkeyPubLine } from "@dropbear-ts/signkey";
import {
  cliAuthHooks,
  checkpubkey_line,
  recv_msg_userauth_banner,
  recv_msg_userauth_failure,
  recv_msg_userauth_request,
  recv_msg_userauth_specific_60,
  svr_authinitialise,
  svr_parse_pubkey_options,
  svrAuthCleanup,
} from "../src/index.js";
import { deliver, newCliSession, newSvrSession, takePayloads } from "./harness.js";

/** Run fn; a DropbearExit is an allowed outcome, anything else fails the property. */
function cleanly(fn: () => void): void {
  const prev = setLogHandler(() => undefined);
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DropbearExit)) {
      throw e;
    }
  } finally {
    setLogHandler(prev);
  }
}

const key = signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0);
const wordish = fc.oneof(
  fc.constantFrom("ssh-connection", "publickey", "password", "none", "root", "ssh-ed25519", "keyboard-interactive"),
  fc.string({ maxLength: 20 }),
);

/** A USERAUTH_REQUEST made of SSH strings and bytes in random order. */
const requestArb = fc
  .array(fc.oneof(wordish.map((s) => ({ s })), fc.uint8Array({ maxLength: 40 }).map((b) => ({ b })), fc.integer({ min: 0, max: 255 }).map((n) => ({ n }))), {
    maxLength: 8,
  })
  .map((parts) => {
    const b = buf_new(4096);
    buf_putbyte(b, SSH_MSG_USERAUTH_REQUEST);
    for (const p of parts) {
      if ("s" in p) buf_putstring(b, p.s);
      else if ("b" in p) buf_putbytes(b, p.b);
      else buf_putbyte(b, p.n);
    }
    return Buffer.from(b.data.subarray(0, b.len));
  });

/** A well-formed start (user, service, known method) with random bytes after it. */
const deepRequestArb = fc
  .tuple(
    fc.constantFrom("root", "no-such-user-dbts", ""),
    fc.constantFrom("none", "password", "publickey", "hostbased", "keyboard-interactive"),
    fc.uint8Array({ maxLength: 200 }),
    fc.option(fc.constantFrom("ssh-ed25519", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-rsa", "bogus")),
  )
  .map(([user, method, tail, algo]) => {
    const b = buf_new(4096);
    buf_putbyte(b, SSH_MSG_USERAUTH_REQUEST);
    buf_putstring(b, user);
    buf_putstring(b, "ssh-connection");
    buf_putstring(b, method);
    if (algo !== null) {
      buf_putbyte(b, tail[0] ?? 0);
      buf_putstring(b, algo);
    }
    buf_putbytes(b, tail);
    return Buffer.from(b.data.subarray(0, b.len));
  });

describe("hostile input", () => {
  it("recv_msg_userauth_request answers or exits", () => {
    fc.assert(
      fc.property(fc.oneof(requestArb, deepRequestArb), (payload) => {
        const ses = newSvrSession();
        svr_authinitialise(ses);
        cleanly(() => deliver(ses, payload, recv_msg_userauth_request));
        svrAuthCleanup(ses);
      }),
      fuzzParams(300),
    );
  });

  it("a huge username is refused, one past MAX_STRING_LEN ends the session", () => {
    const request = (n: number) => {
      const b = buf_new(n + 64);
      buf_putbyte(b, SSH_MSG_USERAUTH_REQUEST);
      buf_putstring(b, "u".repeat(n));
      buf_putstring(b, "ssh-connection");
      buf_putstring(b, "none");
      return Buffer.from(b.data.subarray(0, b.len));
    };
    const ses = newSvrSession();
    svr_authinitialise(ses);
    deliver(ses, request(MAX_STRING_LEN), recv_msg_userauth_request);
    expect(takePayloads(ses).map((p) => p[0])).toEqual([SSH_MSG_USERAUTH_FAILURE]);
    expect(ses.authstate.username).toBeNull();
    expect(() => deliver(ses, request(MAX_STRING_LEN + 1), recv_msg_userauth_request)).toThrow("String too long");
  });

  it("authorized_keys lines and options never throw", () => {
    const blob = signkeyPubBlob(key);
    const good = signkeyPubLine(key);
    const lineArb = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.string({ maxLength: 60 }), fc.string({ maxLength: 20 })).map(([opts, tail]) => Buffer.from(`${opts} ${good} ${tail}`)),
      fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
    );
    fc.assert(
      fc.property(lineArb, (bytes) => {
        const line = buf_new(Math.max(bytes.length, 1));
        buf_putbytes(line, bytes);
        line.pos = 0;
        const ret = { value: null };
        const prev = setLogHandler(() => undefined);
        try {
          expect(typeof checkpubkey_line(line, 1, "f", "ssh-ed25519", blob, ret)).toBe("boolean");
          const opts = buf_new(Math.max(bytes.length, 1));
          buf_putbytes(opts, bytes);
          svr_parse_pubkey_options(opts, 1, "f");
        } finally {
          setLogHandler(prev);
        }
      }),
      fuzzParams(500),
    );
  });

  it("client handlers answer or exit", () => {
    cliAuthHooks.getpass = () => Buffer.from("x");
    cliAuthHooks.getline = () => Buffer.from("y");
    const handlers = [recv_msg_userauth_failure, recv_msg_userauth_banner, recv_msg_userauth_specific_60];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 200 }), (h, lastauthtype, body) => {
        const cli = newCliSession();
        cli.cli_ses.state = cli_state.USERAUTH_REQ_SENT;
        cli.cli_ses.lastauthtype = lastauthtype;
        const stderr = process.stderr.write;
        process.stderr.write = () => true;
        try {
          cleanly(() => deliver(cli, Buffer.concat([Buffer.from([60]), body]), handlers[h]));
        } finally {
          process.stderr.write = stderr;
        }
      }),
      fuzzParams(300),
    );
  });
});
