# An independent SSH client (Debian's python3-asyncssh) driving our dropbear, for
# tests/interop-asyncssh.test.ts. One process serves the whole test file: it reads one JSON
# request a line on stdin and answers each with one JSON line on stdout carrying the same "id".
# Requests run concurrently; connections made by "connect" are kept under a name for later ones.
#
#   python3 asyncssh-client.py <port> <user>
import asyncio, hashlib, json, os, sys, warnings

warnings.simplefilter("ignore")
# No __pycache__ left in the source tree by the import below.
sys.dont_write_bytecode = True
import asyncssh
import asyncssh_common  # noqa: F401 (what it changes in asyncssh: see there)

port, user = int(sys.argv[1]), sys.argv[2]
conns = {}

# Bounds every network wait: a hung peer fails its one request, never the whole file.
LIMIT = 30.0


def sha(b):
    return hashlib.sha256(b).hexdigest()


def data(n, seed):
    """n bytes fixed by seed (so a swapped or shifted stream fails the hash)."""
    out, i = bytearray(), 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


# Dropbear drops a sixth unauthenticated connection from one address (MAX_UNAUTH_PER_IP 5).
handshakes = asyncio.Semaphore(4)


async def connect(req):
    """A connection with exactly the algorithms asked for (None: asyncssh's defaults)."""
    opts = dict(username=user, known_hosts=None, client_keys=None, password=None, connect_timeout=LIMIT)
    if "keys" in req:
        opts["client_keys"] = req["keys"]
    if "password" in req:
        opts["password"] = req["password"]
        opts["preferred_auth"] = "password"
    for field, opt in (("kex", "kex_algs"), ("cipher", "encryption_algs"), ("mac", "mac_algs"), ("hostkey", "server_host_key_algs"), ("sig", "signature_algs")):
        if field in req:
            opts[opt] = [req[field]]
    if "rekey_bytes" in req:
        opts["rekey_bytes"] = req["rekey_bytes"]
    if "agent" in req:
        opts["agent_path"], opts["agent_forwarding"] = req["agent"], True
    async with handshakes:
        return await asyncssh.connect("127.0.0.1", req.get("port", port), **opts)


async def conn_of(req):
    return conns[req["conn"]]


async def op_connect(req):
    conn = await connect(req)
    conns[req["name"]] = conn
    key = conn.get_server_host_key()
    return {"hostkey": key.get_algorithm() if key else None}


async def op_close(req):
    conn = conns.pop(req["conn"])
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), LIMIT)
    return {}


async def op_echo(req):
    """Connect with the algorithms asked for, run `echo`, disconnect."""
    async with await connect(req) as conn:
        r = await asyncio.wait_for(conn.run(f"echo {req['word']}", check=False), LIMIT)
        key = conn.get_server_host_key()
        return {"stdout": r.stdout, "exit": r.exit_status, "hostkey": key.get_algorithm() if key else None}


async def op_auth_fails(req):
    """A connection that must be refused: what asyncssh reports."""
    try:
        conn = await connect(req)
    except asyncssh.PermissionDenied as e:
        return {"denied": True, "reason": e.reason}
    conn.close()
    return {"denied": False}


async def op_run(req):
    """One command on a kept connection: stdout, stderr, exit status/signal. stdin: "size" bytes
    of data (hash returned) or "input" text; EOF after it."""
    conn = await conn_of(req)
    inp = None
    if "size" in req:
        inp = data(req["size"], req.get("seed", 0))
    elif "input" in req:
        inp = req["input"].encode()
    pty = {}
    if "term" in req:
        # A pty with these modes (asyncssh's PTY_<name> opcodes) and a 100x30 size.
        pty = dict(term_type=req["term"], term_size=(100, 30), term_modes={getattr(asyncssh, f"PTY_{k}"): v for k, v in req.get("modes", {}).items()})
    r = await asyncio.wait_for(
        conn.run(req["cmd"], input=inp, env=req.get("env", {}), encoding=None, check=False, stdin=asyncssh.DEVNULL if inp is None else asyncssh.PIPE, **pty),
        LIMIT,
    )
    out = {"stdout": r.stdout.decode("latin1"), "stderr": r.stderr.decode("latin1"), "exit": r.exit_status, "signal": r.exit_signal[0] if r.exit_signal else None}
    if inp is not None:
        out["sent"] = sha(inp)
    if req.get("hash_stdout"):
        out["stdout_sha"], out["stdout"] = sha(r.stdout), len(r.stdout)
    return out


async def op_small_window(req):
    """`cat` of `size` bytes on a session whose window and maximum packet are tiny: the output's
    hash and the largest data packet the server sent."""
    conn = await conn_of(req)
    inp = data(req["size"], 3)
    proc = await asyncio.wait_for(conn.create_process(req["cmd"], encoding=None, window=req["window"], max_pktsize=req["max_pktsize"]), LIMIT)
    try:
        proc.stdin.write(inp)
        proc.stdin.write_eof()
        out, _ = await asyncio.wait_for(proc.communicate(), LIMIT)
        return {"sent": sha(inp), "stdout_sha": sha(out), "exit": proc.exit_status, "largest": getattr(proc.channel, "largest_in", 0)}
    finally:
        proc.close()


async def read_until(stream, needle, limit=LIMIT):
    """What the stream gave until `needle` appeared (bounded)."""
    got = ""

    async def loop():
        nonlocal got
        while needle not in got:
            chunk = await stream.read(4096)
            if not chunk:
                raise EOFError(f"EOF before {needle!r}; got {got!r}")
            got += chunk
    await asyncio.wait_for(loop(), limit)
    return got


async def op_pty(req):
    """A shell on a pty: TERM and tty, then a window change seen by `stty size`."""
    conn = await conn_of(req)
    proc = await conn.create_process(term_type=req["term"], term_size=(80, 24), stderr=asyncssh.STDOUT)
    try:
        # The markers are printed by printf so the echo of the typed line does not match them.
        proc.stdin.write("echo T=$TERM; tty; stty size; printf 'D%sONE\\n' 1\n")
        first = await read_until(proc.stdout, "D1ONE\r\n")
        proc.change_terminal_size(132, 43)
        # The shell reads the new size at the next command (the kernel sends it SIGWINCH).
        proc.stdin.write("stty size; printf 'D%sONE\\n' 2\n")
        second = await read_until(proc.stdout, "D2ONE\r\n")
        proc.stdin.write("exit 3\n")
        await asyncio.wait_for(proc.wait_closed(), LIMIT)
        return {"first": first, "second": second, "exit": proc.exit_status}
    finally:
        proc.close()


async def op_sftp(req):
    """sftp subsystem: put a file, list the directory, get it back."""
    conn = await conn_of(req)
    local, back, name = req["local"], req["back"], req["name"]
    async with conn.start_sftp_client() as sftp:
        await asyncio.wait_for(sftp.put(local, name), LIMIT)
        names = await asyncio.wait_for(sftp.listdir("."), LIMIT)
        await asyncio.wait_for(sftp.get(name, back), LIMIT)
        st = await sftp.stat(name)
    with open(local, "rb") as f:
        a = sha(f.read())
    with open(back, "rb") as f:
        b = sha(f.read())
    return {"names": sorted(names), "put": a, "got": b, "size": st.size}


async def through(reader, writer, n, seed):
    """Send n bytes through a stream, EOF, and hash what comes back (an echo behind it)."""
    payload = data(n, seed)

    async def send():
        for off in range(0, n, 65536):
            writer.write(payload[off:off + 65536])
            await writer.drain()
        writer.write_eof()

    async def recv():
        h, total = hashlib.sha256(), 0
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return h.hexdigest(), total
            h.update(chunk)
            total += len(chunk)

    _, (got, total) = await asyncio.wait_for(asyncio.gather(send(), recv()), LIMIT)
    writer.close()
    return {"sent": sha(payload), "got": got, "bytes": total}


async def op_direct(req):
    """direct-tcpip (-L shape) to an echo target behind the server."""
    conn = await conn_of(req)
    reader, writer = await asyncio.wait_for(conn.open_connection("127.0.0.1", req["target"]), LIMIT)
    return await through(reader, writer, req["size"], req.get("seed", 1))


async def op_remote(req):
    """tcpip-forward (-R shape) of port 0: the server picks a port and listens, we connect to
    it, the channel comes back to us and we carry it on to the echo target. Then
    cancel-tcpip-forward (answered before wait_closed returns), and the port is closed."""
    conn = await conn_of(req)
    listener = await asyncio.wait_for(conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", req["target"]), LIMIT)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", listener.get_port()), LIMIT)
        out = await through(reader, writer, req["size"], req.get("seed", 2))
        out["port"] = listener.get_port()
    finally:
        listener.close()
        await asyncio.wait_for(listener.wait_closed(), LIMIT)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", out["port"]), LIMIT)
        writer.close()
        out["after_cancel"] = "accepted"
    except ConnectionRefusedError:
        out["after_cancel"] = "refused"
    return out


async def op_streamlocal(req):
    """direct-streamlocal to a Unix echo socket we serve at echo_path, then
    streamlocal-forward of listen_path to it, a connection through, and its cancel."""
    conn = await conn_of(req)

    async def echo(reader, writer):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()
        writer.close()

    server = await asyncio.start_unix_server(echo, req["echo_path"])
    try:
        # The server's side of the connection runs as the test user.
        os.chmod(req["echo_path"], 0o777)
        reader, writer = await asyncio.wait_for(conn.open_unix_connection(req["echo_path"]), LIMIT)
        out = {"direct": await through(reader, writer, req["size"], 6)}
        listener = await asyncio.wait_for(conn.forward_remote_path(req["listen_path"], req["echo_path"]), LIMIT)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(req["listen_path"]), LIMIT)
            out["remote"] = await through(reader, writer, req["size"], 7)
        finally:
            listener.close()
            await asyncio.wait_for(listener.wait_closed(), LIMIT)
        out["after_cancel"] = os.path.exists(req["listen_path"])
        return out
    finally:
        server.close()
        os.unlink(req["echo_path"])


async def op_signal(req):
    """A "signal" request to a running command: how the command ended."""
    conn = await conn_of(req)
    proc = await asyncio.wait_for(conn.create_process(req["cmd"], stdin=asyncssh.DEVNULL), LIMIT)
    try:
        # The command is running once its output says so.
        await read_until(proc.stdout, "started\n")
        proc.send_signal(req["signal"])
        await asyncio.wait_for(proc.wait_closed(), LIMIT)
        sig = proc.exit_signal
        return {"exit": proc.exit_status, "signal": sig[0] if sig else None}
    finally:
        proc.close()


async def op_direct_refused(req):
    """direct-tcpip to a port nobody listens on: the open failure's code and reason."""
    conn = await conn_of(req)
    try:
        _, writer = await asyncio.wait_for(conn.open_connection("127.0.0.1", req["target"]), LIMIT)
        writer.close()
        return {"opened": True}
    except asyncssh.ChannelOpenError as e:
        return {"opened": False, "code": e.code, "reason": e.reason}


async def op_global(req):
    """A global request with want-reply: which answer came."""
    conn = await conn_of(req)
    pkttype, _ = await asyncio.wait_for(conn._make_global_request(req["request"].encode()), LIMIT)
    return {"answer": {81: "success", 82: "failure"}.get(pkttype, pkttype)}


async def op_rekey_cat(req):
    """`cat` of `size` bytes on a connection that rekeys every `rekey_bytes` sent."""
    conn = await conn_of(req)
    r = await op_run({"conn": req["conn"], "cmd": "cat", "size": req["size"], "seed": 5, "hash_stdout": True})
    r["kexinits"] = conn.kexinits_sent
    return r


async def op_handshakes(req):
    """`count` connections, at most `at_once` of them connecting and authenticating at a time
    (not the global bound), each held open briefly once in: how many failed, and the first errors."""
    gate = asyncio.Semaphore(req["at_once"])
    opts = dict(username=user, known_hosts=None, client_keys=req["keys"], password=None, connect_timeout=LIMIT)
    errors = []

    async def one():
        try:
            async with gate:
                conn = await asyncssh.connect("127.0.0.1", port, **opts)
            async with conn:
                await asyncio.sleep(0.2)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(one() for _ in range(req["count"])))
    return {"failed": len(errors), "errors": errors[:3]}


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


async def handle(req, out):
    try:
        res = await OPS[req["op"]](req)
        res["ok"] = True
    except Exception as e:
        res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    res["id"] = req["id"]
    out.write((json.dumps(res) + "\n").encode())


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = os.fdopen(sys.stdout.fileno(), "wb", buffering=0)
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        t = asyncio.ensure_future(handle(json.loads(line), out))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    for t in list(tasks):
        t.cancel()
    for c in conns.values():
        c.close()


asyncio.run(main())
