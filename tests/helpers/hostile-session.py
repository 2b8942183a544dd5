# A hostile client after (or during) authentication, for tests/hostile-session.test.ts: asyncssh
# (Debian's python3-asyncssh) does the key exchange and authentication, then raw packets break
# the connection protocol. Prints one JSON line: the local port (to find the server's log line
# for this connection), whether the server closed the connection, and what the case observed.
#
#   python3 hostile-session.py <port> <user> <key> <case> [<echo port>]
# The user's password, for the cases that log in with it, is in $DBTS_PASSWORD.
import asyncio, json, os, sys, warnings

warnings.simplefilter("ignore")
import asyncssh
from asyncssh.packet import Boolean, String, UInt32

port, user, key, case = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
echo_port = int(sys.argv[5]) if len(sys.argv) > 5 else 0

MSG_USERAUTH_REQUEST = 50
MSG_CHANNEL_OPEN = 90
MSG_CHANNEL_WINDOW_ADJUST = 93
MSG_CHANNEL_DATA = 94
MSG_CHANNEL_EOF = 96


async def closed(conn, secs=20.0):
    """Whether the server ends the connection within `secs`."""
    try:
        await asyncio.wait_for(conn.wait_closed(), secs)
        return True
    except asyncio.TimeoutError:
        return False


async def session(conn):
    """A session channel running a command that never reads its stdin."""
    chan, _ = await conn.create_session(asyncssh.SSHClientSession, "sleep 60")
    return chan


async def alive(conn, secs=20.0):
    """The connection still serves: a command runs and answers within `secs`."""
    r = await asyncio.wait_for(conn.run("echo alive", check=False), secs)
    return r.stdout


class Flooder(asyncssh.SSHClient):
    """Answers the first password prompt with a burst of 200 wrong password requests at once."""

    port = 0

    def connection_made(self, conn):
        self.conn = conn
        Flooder.port = conn.get_extra_info("sockname")[1]

    def password_auth_requested(self):
        for i in range(200):
            self.conn.send_packet(MSG_USERAUTH_REQUEST, String(user), String("ssh-connection"), String("password"), Boolean(False), String(f"wrong{i}"))
        return "wrong"


class Pipeliner(asyncssh.SSHClient):
    """At the password prompt sends at once, without waiting for answers: a wrong password, the
    right one and a session CHANNEL_OPEN. RFC 4252 5.1: what follows the request that succeeds
    belongs to the connection service. Then gives up on its own login, which disconnects."""

    port = 0

    def connection_made(self, conn):
        self.conn = conn
        Pipeliner.port = conn.get_extra_info("sockname")[1]

    def password_auth_requested(self):
        for pw in ("wrong", os.environ["DBTS_PASSWORD"]):
            self.conn.send_packet(MSG_USERAUTH_REQUEST, String(user), String("ssh-connection"), String("password"), Boolean(False), String(pw))
        self.conn.send_packet(MSG_CHANNEL_OPEN, String("session"), UInt32(0), UInt32(65536), UInt32(32768))
        return None


async def open_many(n, opener, at_once=50):
    """`n` channel opens, `at_once` of them in flight at a time (their answers come in order):
    one after another, each open's round trip under a loaded machine's scheduling took most of
    a case's time."""
    out = []
    for first in range(0, n, at_once):
        out += await asyncio.gather(*(opener() for _ in range(min(at_once, n - first))))
    return out


async def streaming_target(go):
    """A target that sends 4 MiB of one byte down each connection once `go` is set: the server and its port."""

    async def stream(_reader, writer):
        await go.wait()
        try:
            for _ in range(64):
                writer.write(b"x" * 65536)
                await writer.drain()
        except OSError:
            pass
        writer.close()

    target = await asyncio.start_server(stream, "127.0.0.1", 0)
    return target, target.sockets[0].getsockname()[1]


async def main():
    res = {}
    if case in ("auth-flood", "pipelined-login"):
        # Password only: the key is not offered.
        client = Flooder if case == "auth-flood" else Pipeliner
        try:
            await asyncio.wait_for(asyncssh.create_connection(client, "127.0.0.1", port, username=user, known_hosts=None, client_keys=None, preferred_auth="password"), 30)
            res["closed"] = False
        except (asyncssh.Error, OSError) as e:
            res["closed"], res["error"] = True, str(e)
        res["port"] = client.port
        print(json.dumps(res), flush=True)
        return
    conn = await asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=None)
    res["port"] = conn.get_extra_info("sockname")[1]
    if case == "data-beyond-window":
        chan = await session(conn)
        # Twice the window the server granted, in packets within its maximum packet size.
        window, pkt = chan._send_window, chan._send_pktsize
        sent = 0
        while sent < 2 * window:
            conn.send_packet(MSG_CHANNEL_DATA, UInt32(chan._send_chan), String(b"x" * pkt))
            sent += pkt
        res["window"] = window
    elif case == "data-after-eof":
        chan = await session(conn)
        conn.send_packet(MSG_CHANNEL_EOF, UInt32(chan._send_chan))
        conn.send_packet(MSG_CHANNEL_DATA, UInt32(chan._send_chan), String(b"late"))
    elif case == "unknown-channel":
        conn.send_packet(MSG_CHANNEL_DATA, UInt32(12345), String(b"to nobody"))
    elif case == "window-adjust-overflow":
        # Dropbear clamps the sum at 2^32-1 rather than wrap: the session goes on.
        chan = await session(conn)
        for _ in range(3):
            conn.send_packet(MSG_CHANNEL_WINDOW_ADJUST, UInt32(chan._send_chan), UInt32(0xFFFFFFFF))
        res["alive"] = await alive(conn)
    elif case == "1001-channels":
        # direct-tcpip channels to an echo server: a channel each, and no process each.
        async def opener():
            try:
                return await conn.open_connection("127.0.0.1", echo_port)
            except asyncssh.ChannelOpenError:
                return None

        opened = await open_many(1001, opener)
        chans = [c for c in opened if c is not None]
        res["opened"], res["refused"] = len(chans), len(opened) - len(chans)
        # One freed, a command runs again.
        chans[0][1].close()
        await chans[0][1].wait_closed()
        res["alive"] = await alive(conn)
    elif case == "stalled-readers":
        # 300 direct-tcpip channels to a target that streams 4 MiB down each, never read: once
        # a channel's window is spent the server must leave the rest in the kernel (Dropbear
        # does not read an fd it may not send from), not read it ahead into its own memory.
        go = asyncio.Event()
        go.set()
        target, target_port = await streaming_target(go)
        # A 64 KiB window each, which the server spends at once; asyncssh's stream stops
        # reading its channel at its buffer limit, so the window is never extended.
        chans = await open_many(300, lambda: conn.open_connection("127.0.0.1", target_port, window=65536))
        await asyncio.sleep(3)
        res["opened"] = len(chans)
        res["alive"] = await alive(conn)
        target.close()
    elif case == "stalled-transport":
        # 300 direct-tcpip channels at asyncssh's default window (2 MiB) to targets that stream
        # 4 MiB of one byte each, and a client that stops reading its SSH socket: the server
        # stops reading its channels once its write queue is full, and what they read ahead
        # meanwhile is bounded per session. Compressed (asyncssh's default zlib@openssh.com),
        # each packet is a few bytes on the wire, so the queue's mark alone does not bound it.
        go = asyncio.Event()
        target, target_port = await streaming_target(go)
        chans = await open_many(300, lambda: conn.open_connection("127.0.0.1", target_port))
        res["compressed"] = conn.get_extra_info("recv_compression") not in (None, "none")
        conn._transport.pause_reading()
        go.set()
        await asyncio.sleep(4)
        conn._transport.resume_reading()
        for _reader, writer in chans:
            writer.close()
        res["opened"] = len(chans)
        # Before the command's answer the client inflates what the server queued within the
        # windows: some 600 MiB from under 2 MB on the wire, 4 s of Python here when idle, over
        # 20 s under the whole suite's load.
        res["alive"] = await alive(conn, 90.0)
        target.close()
        # Idle up to 20 s (two of check_memory's looks, 10 s apart), then the connection process's
        # RSS as a command it runs sees it: looked at every 2 s, done once it is well down.
        for _ in range(10):
            await asyncio.sleep(2)
            r = await asyncio.wait_for(conn.run("grep VmRSS /proc/$PPID/status", check=False), 20)
            res["rss_after_kib"] = int(r.stdout.split()[1]) if r.stdout.startswith("VmRSS") else None
            if res["rss_after_kib"] is not None and res["rss_after_kib"] < 110 * 1024:
                break
    elif case == "pty-close":
        # A pty session closed by the client (CLOSE, no EOF) while its command runs: the server
        # hangs the pty up, as Dropbear closing its master does, and answers CLOSE once the
        # command is gone, rather than leaving it running on a channel nobody reads.
        chan, _ = await conn.create_session(asyncssh.SSHClientSession, "sleep 60", term_type="xterm")
        await asyncio.sleep(0.5)
        started = asyncio.get_running_loop().time()
        chan.close()
        try:
            await asyncio.wait_for(chan.wait_closed(), 10)
            res["close_answered_in"] = round(asyncio.get_running_loop().time() - started, 2)
        except asyncio.TimeoutError:
            res["close_answered_in"] = None
        res["alive"] = await alive(conn)
    elif case == "adjust-after-close":
        # A window adjust behind our own CLOSE, as paramiko's reader threads can send one when
        # the last data is read as the server's CLOSE is answered: OpenSSH's sshd ignores it.
        # cat runs until our EOF: the channel is still open when its server-side number is read
        # (asyncssh forgets it once the channel has closed, which `true` could already have).
        chan, _ = await conn.create_session(asyncssh.SSHClientSession, "cat")
        server_chan = chan._send_chan
        chan.write_eof()
        await asyncio.wait_for(chan.wait_closed(), 20)
        conn.send_packet(MSG_CHANNEL_WINDOW_ADJUST, UInt32(server_chan), UInt32(65536))
        res["alive"] = await alive(conn)
    elif case == "env-too-long":
        # OpenSSH's `-o SetEnv=LC_X=<10000 bytes>`: Dropbear refuses an env request without
        # reading it, so the command runs.
        r = await asyncio.wait_for(conn.run("echo ran", env={"LC_X": "x" * 10000}, check=False), 20)
        res["alive"] = r.stdout
    else:
        raise SystemExit(f"unknown case {case}")
    res["closed"] = await closed(conn, 20.0 if "alive" not in res else 0.5)
    print(json.dumps(res), flush=True)


asyncio.run(main())
