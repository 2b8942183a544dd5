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


if sys.argv[1] == "server":
    server(sys.argv[2])
else:
    client(*sys.argv[2:7])
