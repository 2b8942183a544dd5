# A hostile client of the library server (tests/hostile-channels.test.ts): asyncssh logs in with
# "none" auth, then raw packets misuse the connection protocol. Prints one JSON line: the local
# port (to find the server's log line for this connection), whether the server closed the
# connection, and what the case observed.
#
#   python3 hostile-channels.py <port> <case>
import asyncio, json, sys, warnings

warnings.simplefilter("ignore")
import asyncssh
import asyncssh.connection
from asyncssh.packet import Boolean, String, UInt32

# asyncssh would refuse the control characters of the "forged-name" case's user name.
asyncssh.connection.saslprep = lambda s: s

port, case = int(sys.argv[1]), sys.argv[2]
# The socket path of streamlocal-forward-then-leave.
path = sys.argv[3].encode() if len(sys.argv) > 3 else b""

MSG_GLOBAL_REQUEST = 80
MSG_CHANNEL_OPEN = 90
MSG_CHANNEL_OPEN_CONFIRMATION = 91
MSG_CHANNEL_REQUEST = 98
MSG_CHANNEL_SUCCESS = 99
MSG_CHANNEL_FAILURE = 100


class Raw:
    """A channel asyncssh does not know it has: records what the server sends on it."""

    def __init__(self, log):
        self.log = log

    def process_packet(self, pkttype, _pktid, packet):
        self.log.append((pkttype, packet.get_remaining_payload()))
        return True

    def process_open_confirmation(self, send_chan, *_args):
        self.log.append((MSG_CHANNEL_OPEN_CONFIRMATION, send_chan))

    def __getattr__(self, _name):
        return lambda *a, **k: None


async def closed(conn, secs):
    try:
        await asyncio.wait_for(conn.wait_closed(), secs)
        return True
    except asyncio.TimeoutError:
        return False


async def main():
    res = {}
    if case == "forged-name":
        # A user name holding a log line of its own and a terminal escape, with a password the
        # server refuses: no credentials are needed to have it logged.
        name = "evil\n[info] Exit (root) from <10.0.0.1:22>: forged\x1b[2J"
        try:
            await asyncssh.connect("127.0.0.1", port, username=name, known_hosts=None, client_keys=None, password="x", preferred_auth="password")
            res["closed"] = False
        except (asyncssh.Error, OSError):
            res["closed"] = True
        res["port"] = 0
        print(json.dumps(res), flush=True)
        return
    conn = await asyncssh.connect("127.0.0.1", port, username="hostile", known_hosts=None, client_keys=None, password="x", preferred_auth="none")
    res["port"] = conn.get_extra_info("sockname")[1]
    if case == "unknown-channel":
        # A request for a channel never opened: Dropbear ends the connection ("Unknown channel").
        conn.send_packet(MSG_CHANNEL_REQUEST, UInt32(999), String(b"exec"), Boolean(True), String(b"id"))
        res["closed"] = await closed(conn, 10)
    elif case == "ptys":
        # 100 session channels, each with a pty-req (accepted, no pty made for it), then gone
        # without closing any: the session's end must free them all.
        logs = []
        for i in range(100):
            log = []
            logs.append(log)
            conn._channels[1000 + i] = Raw(log)
            conn.send_packet(MSG_CHANNEL_OPEN, String(b"session"), UInt32(1000 + i), UInt32(65536), UInt32(32768))
        for _ in range(200):
            if all(log for log in logs):
                break
            await asyncio.sleep(0.05)
        for log in logs:
            conn.send_packet(MSG_CHANNEL_REQUEST, UInt32(log[0][1]), String(b"pty-req"), Boolean(True), String(b"xterm"), UInt32(80), UInt32(24), UInt32(0), UInt32(0), String(b""))
        for _ in range(200):
            if all(len(log) > 1 for log in logs):
                break
            await asyncio.sleep(0.05)
        res["ptys"] = sum(1 for log in logs if len(log) > 1 and log[1][0] == MSG_CHANNEL_SUCCESS)
        conn._transport.abort()
        res["closed"] = True
    elif case == "forward-then-leave":
        # A tcpip-forward the server approves only after this client has gone.
        conn._global_request_waiters.append(asyncio.get_running_loop().create_future())
        conn.send_packet(MSG_GLOBAL_REQUEST, String(b"tcpip-forward"), Boolean(True), String(b"127.0.0.1"), UInt32(0))
        await asyncio.sleep(0.1)
        conn._transport.abort()
        res["closed"] = True
    elif case == "streamlocal-forward-then-leave":
        # The same for a streamlocal-forward@openssh.com of `path`.
        conn._global_request_waiters.append(asyncio.get_running_loop().create_future())
        conn.send_packet(MSG_GLOBAL_REQUEST, String(b"streamlocal-forward@openssh.com"), Boolean(True), String(path))
        await asyncio.sleep(0.1)
        conn._transport.abort()
        res["closed"] = True
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(res), flush=True)


asyncio.run(main())
