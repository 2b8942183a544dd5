# An independent SSH server (Debian's python3-asyncssh) for our dbclient, for
# tests/interop-asyncssh.test.ts. Host keys of every type both sides have are generated here and
# their public halves written into <dir> (hk_<name>.pub). Anyone logs in with a key in
# <authorized_keys> or with PASSWORD below. It listens on free loopback ports:
#   port       asyncssh's defaults, password auth
#   keepalive  sending a keepalive@openssh.com every second, hanging up after 5 unanswered
#   small      channels with a 2000-byte window and 500-byte packets
#   kbdint     the password by keyboard-interactive instead
#   rekey      starting a key re-exchange every 256 KiB it sends
#   sigalgs    a server-sig-algs (RFC 8308) of 60 made-up names before its own
# It prints {"port": N, "keepalive": N, "small": N, "kbdint": N, "rekey": N, "sigalgs": N},
# then {"auth": method, "ok": bool} for each password tried, {"session": command} as each
# session starts and {"done": command, "largest_in": bytes, "kexinits": n, "compression": alg}
# (its largest data packet received, its connection's KEXINITs so far, the compression of what
# the client sends) as it ends, and serves until its stdin closes. Port forwarding both ways is allowed.
# Commands (no shell behind them):
#   echo WORDS   prints WORDS          exit N   exits with status N
#   cat [TAG]    copies stdin to stdout until EOF (TAG names the session in "done")
#   wc           prints how many bytes stdin held
#   sleep N      waits N seconds (at most 30)
#   hangup N     exits with status N and closes the TCP connection right behind its CHANNEL_CLOSE,
#                without waiting for the client's (as tinysshd does)
#   agent        lists the fingerprints of the keys in the client's forwarded agent
#
#   python3 asyncssh-server.py <dir> <authorized_keys>
import asyncio, json, os, sys, warnings

warnings.simplefilter("ignore")
# No __pycache__ left in the source tree by the import below.
sys.dont_write_bytecode = True
import asyncssh
import asyncssh_common  # noqa: F401 (what it changes in asyncssh: see there)

workdir, authorized = sys.argv[1], sys.argv[2]
# Bounds every wait on the client: a stuck client fails its one session, never the server.
LIMIT = 30.0
# Accepted from any user, as a key in <authorized_keys> is.
PASSWORD = "asyncssh-interop-pw"
HOST_KEYS = {
    "ed25519": "ssh-ed25519",
    "ecdsa256": "ecdsa-sha2-nistp256",
    "ecdsa384": "ecdsa-sha2-nistp384",
    "ecdsa521": "ecdsa-sha2-nistp521",
    "rsa": "ssh-rsa",
}


async def read_all(stdin):
    """stdin until EOF, bounded in time."""
    chunks = []

    async def loop():
        while True:
            chunk = await stdin.read(65536)
            if not chunk:
                return
            chunks.append(chunk)
    await asyncio.wait_for(loop(), LIMIT)
    return b"".join(chunks)


# The running sessions' tasks: asyncio keeps only weak references to tasks, and one waiting on
# a forwarded agent connection was otherwise collected mid-await ("Task was destroyed but it is
# pending!"), leaving its session open for ever.
running = set()


async def handle(process):
    task = asyncio.current_task()
    running.add(task)
    try:
        await run_command(process)
    finally:
        running.discard(task)


async def run_command(process):
    """The few commands the tests run; anything else is status 127 with a message."""
    # Each session's command, for the test to see which ones ran (-N runs none).
    print(json.dumps({"session": process.command}), flush=True)
    cmd = (process.command or "").split()
    status = 0
    hangup = False
    try:
        if cmd[:1] == ["echo"]:
            process.stdout.write((" ".join(cmd[1:]) + "\n").encode())
        elif cmd[:1] == ["exit"] and len(cmd) == 2:
            status = int(cmd[1])
        elif cmd[:1] == ["hangup"] and len(cmd) == 2:
            status = int(cmd[1])
            hangup = True
        elif cmd[:1] == ["cat"]:
            async def copy():
                while True:
                    chunk = await process.stdin.read(65536)
                    if not chunk:
                        return
                    process.stdout.write(chunk)
                    await process.stdout.drain()
            await asyncio.wait_for(copy(), LIMIT)
        elif cmd[:1] == ["sleep"] and len(cmd) == 2:
            await asyncio.sleep(min(float(cmd[1]), LIMIT))
        elif cmd == ["agent"]:
            path = process.channel.get_agent_path()
            if path is None:
                process.stdout.write(b"no agent forwarded\n")
            else:
                async with asyncssh.connect_agent(path) as agent:
                    for key in await asyncio.wait_for(agent.get_keys(), LIMIT):
                        process.stdout.write(f"{asyncssh.public_key.decode_ssh_public_key(key.public_data).get_fingerprint()}\n".encode())
        elif cmd == ["wc"]:
            process.stdout.write(f"{len(await read_all(process.stdin))}\n".encode())
        else:
            process.stderr.write(f"unknown command {process.command!r}\n".encode())
            status = 127
    except Exception as e:  # reported to the client, which fails the test with it
        process.stderr.write(f"{type(e).__name__}: {e}\n".encode())
        status = 125
    conn = process.channel.get_connection()
    print(json.dumps({"done": process.command, "largest_in": getattr(process.channel, "largest_in", 0), "kexinits": conn.kexinits_sent, "compression": conn.get_extra_info("recv_compression")}), flush=True)
    process.exit(status)
    if hangup:
        # exit() has queued exit-status, EOF and CLOSE; asyncio sends them, then the FIN.
        conn._transport.close()


class Server(asyncssh.SSHServer):
    def password_auth_supported(self):
        return True

    def validate_password(self, username, password):
        print(json.dumps({"auth": "password", "ok": password == PASSWORD}), flush=True)
        return password == PASSWORD

    def kbdint_auth_supported(self):
        return False

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        # -L: asyncssh connects to the destination itself.
        return True

    def server_requested(self, listen_host, listen_port):
        # -R: asyncssh listens and opens forwarded-tcpip channels back.
        return True


class KbdintServer(Server):
    """Keyboard-interactive instead of password: one round, one hidden prompt."""

    def password_auth_supported(self):
        return False

    def kbdint_auth_supported(self):
        return True

    def get_kbdint_challenge(self, username, lang, submethods):
        return "Interop", "Type the password.", "", [("Password: ", False)]

    def validate_kbdint_response(self, username, responses):
        print(json.dumps({"auth": "keyboard-interactive", "ok": responses == [PASSWORD]}), flush=True)
        return responses == [PASSWORD]


class ManySigAlgsServer(Server):
    """More than the 50 names C Dropbear's dbclient reads from a list ("Too many remote
    algorithms"): made-up ones first, asyncssh's own after them."""

    def connection_made(self, conn):
        conn._sig_algs = [b"made-up-%d@example.com" % i for i in range(60)] + list(conn._sig_algs)


async def main():
    keys = []
    for name, alg in HOST_KEYS.items():
        key = asyncssh.generate_private_key(alg, key_size=2048) if alg == "ssh-rsa" else asyncssh.generate_private_key(alg)
        key.write_public_key(os.path.join(workdir, f"hk_{name}.pub"))
        keys.append(key)

    async def listen(server_factory=Server, **extra):
        server = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=keys,
            authorized_client_keys=authorized,
            process_factory=handle,
            encoding=None,
            allow_pty=False,
            login_timeout=LIMIT,
            server_factory=server_factory,
            **extra,
        )
        return server, server.sockets[0].getsockname()[1]

    default, port = await listen()
    servers = [default]
    keepalive, keepalive_port = await listen(keepalive_interval=1, keepalive_count_max=5)
    small, small_port = await listen(window=2000, max_pktsize=500)
    kbdint, kbdint_port = await listen(server_factory=KbdintServer)
    rekey, rekey_port = await listen(rekey_bytes=256 * 1024)
    sigalgs, sigalgs_port = await listen(server_factory=ManySigAlgsServer)
    servers += [keepalive, small, kbdint, rekey, sigalgs]
    print(json.dumps({"port": port, "keepalive": keepalive_port, "small": small_port, "kbdint": kbdint_port, "rekey": rekey_port, "sigalgs": sigalgs_port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    for server in servers:
        server.close()


asyncio.run(main())
