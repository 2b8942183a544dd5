// Our back pressure assumes SOCKET_HIGH_WATER_MARK on every socket, whatever Node's default
// (16 KiB up to Node 20, 64 KiB from Node 22): accepted and connected sockets both carry it.
import { once } from "node:events";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { SOCKET_HIGH_WATER_MARK, dropbear_listen, socketStreamOptions } from "../src/index.js";

describe("socket high-water marks", () => {
  it("are pinned for accepted sockets (dropbear_listen) and for outgoing ones (socketStreamOptions)", async () => {
    const { socks, errstring } = await dropbear_listen(null, "0", 1);
    expect(errstring).toBeNull();
    const listener = socks[0]!;
    const port = (listener.server.address() as { port: number }).port;
    const out = connect({ host: "127.0.0.1", port, ...socketStreamOptions });
    await once(out, "connect");
    let accepted = listener.accept();
    for (let i = 0; accepted === null && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
      accepted = listener.accept();
    }
    expect(accepted).not.toBeNull();
    for (const s of [out, accepted!]) {
      expect(s.readableHighWaterMark).toBe(SOCKET_HIGH_WATER_MARK);
      expect(s.writableHighWaterMark).toBe(SOCKET_HIGH_WATER_MARK);
    }
    out.destroy();
    accepted!.destroy();
    listener.close();
  });
});
