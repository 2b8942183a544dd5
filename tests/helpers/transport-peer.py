# A scripted SSH client speaking the transport layer by hand past the first NEWKEYS, for tests
# that need encrypted packets an SSH library would not send: curve25519-sha256, strict kex,
# aes128-ctr and hmac-sha2-256, written with Debian's python3-cryptography only.
#
#   python3 transport-peer.py <port> <case>
# Prints one JSON line with what the case observed.
#
# Cases:
#   rekey-hostkeys <algos>  a first exchange offering ssh-ed25519 first, then a client-started
#                           re-exchange offering <algos>: prints the host key algorithms of the
#                           server's KEXINITs ("first", "rekey": absent if it hung up before), and
#                           the type of its answer to our KEXDH_INIT in the re-exchange ("next",
#                           "closed" if it hung up).
#   pubkey-sig <user> <blob> <sig>  a publickey login as <user> with the key blob and the
#                           signature blob given in hex, signed or not: prints the type of the
#                           server's answer ("auth": 52 success, 51 failure, "closed").
import hashlib, hmac, json, os, socket, struct, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

STRICT_C = b"kex-strict-c-v00@openssh.com"
STRICT_S = b"kex-strict-s-v00@openssh.com"


def u32(n):
    return struct.pack(">I", n)


def string(b):
    b = b.encode() if isinstance(b, str) else b
    return u32(len(b)) + b


def strings(b, count):
    """The first `count` SSH strings of b."""
    out, pos = [], 0
    for _ in range(count):
        n = struct.unpack(">I", b[pos : pos + 4])[0]
        out.append(b[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def kexinit(hostkeys):
    lists = ["curve25519-sha256,ext-info-c," + STRICT_C.decode(), hostkeys, "aes128-ctr", "aes128-ctr", "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""]
    return bytes([20]) + os.urandom(16) + b"".join(string(x) for x in lists) + b"\0" + u32(0)


class Closed(Exception):
    pass


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.seq = [0, 0]  # sent, received
        self.enc = self.dec = None
        self.mac = [None, None]
        self.session_id = None
        self.sock.sendall(b"SSH-2.0-transport_peer\r\n")
        self.ident = b"SSH-2.0-transport_peer"
        while not self.buf.startswith(b"SSH-") or b"\n" not in self.buf:
            self.buf = self.buf.split(b"\n", 1)[1] if b"\n" in self.buf else self.buf
            self.more()
        line, self.buf = self.buf.split(b"\n", 1)
        self.remote = line.rstrip(b"\r")

    def more(self):
        d = self.sock.recv(65536)
        if not d:
            raise Closed()
        self.buf += d

    def take(self, n):
        while len(self.buf) < n:
            self.more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, payload):
        pad = 16 - (len(payload) + 5) % 16
        pad += 16 if pad < 4 else 0
        pkt = u32(len(payload) + pad + 1) + bytes([pad]) + payload + os.urandom(pad)
        if self.enc:
            tag = hmac.new(self.mac[0], u32(self.seq[0]) + pkt, hashlib.sha256).digest()
            pkt = self.enc.update(pkt) + tag
        self.seq[0] = (self.seq[0] + 1) & 0xFFFFFFFF
        self.sock.sendall(pkt)

    def recv(self):
        """The next payload, passing over IGNORE, DEBUG and EXT_INFO."""
        while True:
            if self.dec:
                first = self.dec.update(self.take(16))
                pkt = first + self.dec.update(self.take(struct.unpack(">I", first[:4])[0] - 12))
                tag = self.take(32)
                if tag != hmac.new(self.mac[1], u32(self.seq[1]) + pkt, hashlib.sha256).digest():
                    raise ValueError("bad MAC")
            else:
                head = self.take(4)
                pkt = head + self.take(struct.unpack(">I", head)[0])
            self.seq[1] = (self.seq[1] + 1) & 0xFFFFFFFF
            payload = pkt[5 : len(pkt) - pkt[4]]
            if payload[0] not in (2, 4, 7):
                return payload

    def exchange(self, mine, theirs):
        """Finish a key exchange after both KEXINITs and take the new keys, resetting the
        sequence numbers as strict kex says."""
        priv = X25519PrivateKey.generate()
        q_c = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.send(bytes([30]) + string(q_c))
        reply = self.recv()
        assert reply[0] == 31, reply[0]
        hostkey, q_s, _sig = strings(reply[1:], 3)
        secret = priv.exchange(X25519PublicKey.from_public_bytes(q_s)).lstrip(b"\0")
        K = string(b"\0" + secret if secret[0] & 0x80 else secret)
        H = hashlib.sha256(b"".join(string(x) for x in (self.ident, self.remote, mine, theirs, hostkey, q_c, q_s)) + K).digest()
        self.session_id = self.session_id or H
        assert self.recv()[0] == 21
        self.send(bytes([21]))

        def key(letter, n):
            return hashlib.sha256(K + H + letter + self.session_id).digest()[:n]

        self.enc = Cipher(algorithms.AES(key(b"C", 16)), modes.CTR(key(b"A", 16))).encryptor()
        self.dec = Cipher(algorithms.AES(key(b"D", 16)), modes.CTR(key(b"B", 16))).decryptor()
        self.mac = [key(b"E", 32), key(b"F", 32)]
        self.seq = [0, 0]


def hostkey_list(kexinit_payload):
    return strings(kexinit_payload[17:], 2)[1].decode()


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    c = Client(port)
    out = {}
    if case == "rekey-hostkeys":
        mine = kexinit("ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-256")
        c.send(mine)
        theirs = c.recv()
        out["first"] = hostkey_list(theirs)
        c.exchange(mine, theirs)
        c.send(kexinit(sys.argv[3]))
        try:
            out["rekey"] = hostkey_list(c.recv())
            c.send(bytes([30]) + string(X25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)))
            out["next"] = c.recv()[0]
        except (Closed, ConnectionResetError, BrokenPipeError):
            out["next"] = "closed"
    elif case == "pubkey-sig":
        mine = kexinit("ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-256")
        c.send(mine)
        c.exchange(mine, c.recv())
        c.send(bytes([5]) + string("ssh-userauth"))
        assert c.recv()[0] == 6
        blob, sig = bytes.fromhex(sys.argv[4]), bytes.fromhex(sys.argv[5])
        algo = strings(blob, 1)[0]
        c.send(bytes([50]) + string(sys.argv[3]) + string("ssh-connection") + string("publickey") + b"\1" + string(algo) + string(blob) + string(sig))
        try:
            out["auth"] = c.recv()[0]
        except (Closed, ConnectionResetError, BrokenPipeError):
            out["auth"] = "closed"
    print(json.dumps(out), flush=True)


main()
