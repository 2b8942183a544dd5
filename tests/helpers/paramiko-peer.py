# Debian's python3-paramiko as a peer for tests/interop-paramiko.test.ts.
#
#   python3 paramiko-peer.py server <dir>
#     A paramiko SSH server on a free loopback port with an ed25519 host key made in <dir>
#     (its public line written to <dir>/hk.pub). Anyone logs in with PASSWORD. An exec request
#     "echo WORDS" prints WORDS, "exit N" exits with status N, "zlib-end WORDS" (on a compressed
#     connection) prints WORDS in a packet that ends the zlib stream, as no SSH peer may, then
#     "after". Prints {"port": N}, serves until stdin closes.
#   python3 paramiko-peer.py client <port> <user> <key> <command> <sftp-path>
#     Logs in to 127.0.0.1:<port> with the private key <key> (host key not checked), runs
#     <command> and prints {"out": stdout, "status": N}, then puts 1 MiB of random bytes to
#     <sftp-path> over SFTP, reads them back and prints {"sftp": true} if they match.
#   python3 paramiko-peer.py sk-line <name>
#     Prints the public line of a made-up FIDO key (sk-ssh-ed25519 or sk-ecdsa, application
#     "ssh:"), derived from <name>: `sked...` or `skec...`.
#   python3 paramiko-peer.py sk-auth <port> <user> <name:flags>...
#     On one connection to 127.0.0.1:<port>, tries each key in turn, signing as its authenticator
#     would with the flags byte given (hex: 01 user presence, 04 user verification), and prints
#     a JSON list of which were accepted, stopping at the first that is.
import json, os, socket, sys, threading, time, warnings, zlib

warnings.simplefilter("ignore")
sys.dont_write_bytecode = True
import paramiko
from paramiko.compress import ZlibCompressor, ZlibDecompressor

PASSWORD = "paramiko-interop-pw"


class EndingCompressor(ZlibCompressor):
    """paramiko's compressor, able to end its stream once (a final block) when told to."""

    end = False

    def __call__(self, data):
        if not self.end:
            return super().__call__(data)
        self.end = False
        out = self.z.compress(data) + self.z.flush(zlib.Z_FINISH)
        self.z = zlib.compressobj()
        return out


paramiko.Transport._compression_info = {
    **paramiko.Transport._compression_info,
    "zlib@openssh.com": (EndingCompressor, ZlibDecompressor),
    "zlib": (EndingCompressor, ZlibDecompressor),
}


class Server(paramiko.ServerInterface):
    def __init__(self):
        self.command = threading.Event()
        self.cmd = b""

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        return paramiko.AUTH_SUCCESSFUL if password == PASSWORD else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        self.cmd = command
        self.command.set()
        return True


def serve_one(sock, host_key):
    t = paramiko.Transport(sock)
    t.add_server_key(host_key)
    t.use_compression(True)  # taken only by a client that asks for it
    server = Server()
    try:
        t.start_server(server=server)
        chan = t.accept(20)
        if chan is None or not server.command.wait(20):
            return
        words = server.cmd.decode().split(" ", 1)
        if words[0] == "echo":
            chan.sendall((words[1] if len(words) > 1 else "") + "\n")
            chan.send_exit_status(0)
        elif words[0] == "zlib-end":
            t.packetizer._Packetizer__compress_engine_out.end = True
            chan.sendall(words[1] + "\n")
            chan.sendall("after\n")
            chan.send_exit_status(0)
        elif words[0] == "exit":
            chan.send_exit_status(int(words[1]))
        else:
            chan.sendall_stderr("unknown command\n")
            chan.send_exit_status(127)
        chan.shutdown_write()
        chan.close()
        # The client hangs up once the channel is closed both ways: closing the transport
        # before that would cut it off ("Remote closed the connection").
        deadline = time.monotonic() + 20
        while t.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
    except Exception as e:  # one client's failure must not end the server
        print(json.dumps({"error": repr(e)}), flush=True)
    finally:
        t.close()


def server(workdir):
    host_key = paramiko.Ed25519Key.from_private_key_file(os.path.join(workdir, "hk"))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    print(json.dumps({"port": lsock.getsockname()[1]}), flush=True)

    def accept():
        while True:
            s, _ = lsock.accept()
            threading.Thread(target=serve_one, args=(s, host_key), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()


def client(port, user, key, command, sftp_path):
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    c.connect("127.0.0.1", int(port), username=user, key_filename=key, look_for_keys=False, allow_agent=False, timeout=20)
    _, out, _ = c.exec_command(command, timeout=20)
    data = out.read().decode()
    print(json.dumps({"out": data, "status": out.channel.recv_exit_status()}), flush=True)
    blob = os.urandom(1 << 20)
    sftp = c.open_sftp()
    with sftp.open(sftp_path, "wb") as f:
        f.write(blob)
    with sftp.open(sftp_path, "rb") as f:
        back = f.read()
    sftp.remove(sftp_path)
    print(json.dumps({"sftp": back == blob}), flush=True)
    c.close()


def sstr(b):
    return len(b).to_bytes(4, "big") + b


class MadeUpSkKey(paramiko.PKey):
    """A FIDO key paramiko can offer: the authenticator's signature (OpenSSH PROTOCOL.u2f) is
    made here, over SHA-256(application) || flags || counter || SHA-256(data)."""

    def __init__(self, name, flags=1):
        import hashlib
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

        self.public_blob = None
        self.flags = flags
        self.app = b"ssh:"
        seed = hashlib.sha256(name.encode()).digest()
        if name.startswith("sked"):
            self.kind = "sk-ssh-ed25519@openssh.com"
            k = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.blob = sstr(self.kind.encode()) + sstr(pub) + sstr(self.app)
            self.raw_sign = lambda m: sstr(k.sign(m))
        else:
            self.kind = "sk-ecdsa-sha2-nistp256@openssh.com"
            k = ec.derive_private_key(int.from_bytes(seed, "big") >> 1, ec.SECP256R1())
            q = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            self.blob = sstr(self.kind.encode()) + sstr(b"nistp256") + sstr(q) + sstr(self.app)

            def raw_sign(m):
                r, s = utils.decode_dss_signature(k.sign(m, ec.ECDSA(hashes.SHA256())))
                mp = lambda n: sstr(n.to_bytes(n.bit_length() // 8 + 1, "big"))
                return sstr(mp(r) + mp(s))

            self.raw_sign = raw_sign
        self.sha256 = lambda b: hashlib.sha256(b).digest()

    def get_name(self):
        return self.kind

    def asbytes(self):
        return self.blob

    def can_sign(self):
        return True

    def sign_ssh_data(self, data, algorithm=None):
        tail = bytes([self.flags]) + (7).to_bytes(4, "big")
        m = paramiko.Message()
        m.add_bytes(sstr(self.kind.encode()) + self.raw_sign(self.sha256(self.app) + tail + self.sha256(data)) + tail)
        return m


def sk_auth(port, user, *tries):
    t = paramiko.Transport(socket.create_connection(("127.0.0.1", int(port)), timeout=20))
    t.start_client(timeout=20)
    accepted = []
    for spec in tries:
        name, flags = spec.split(":")
        try:
            t.auth_publickey(user, MadeUpSkKey(name, int(flags, 16)))
        except paramiko.AuthenticationException:
            pass
        accepted.append(t.is_authenticated())
        if accepted[-1]:
            break
    t.close()
    print(json.dumps(accepted), flush=True)


if sys.argv[1] == "sk-line":
    import base64

    k = MadeUpSkKey(sys.argv[2])
    print(k.kind, base64.b64encode(k.blob).decode())
elif sys.argv[1] == "sk-auth":
    sk_auth(*sys.argv[2:])
elif sys.argv[1] == "server":
    server(sys.argv[2])
else:
    client(*sys.argv[2:7])
