# Debian's python3-twisted (Twisted Conch 22.4) as a peer for tests/interop-conch.test.ts.
#
#   python3 conch-peer.py client <port> <user> <key> <known_hosts> <command>
#     Logs in to 127.0.0.1:<port> as <user> with the private key <key>, the host key checked
#     against <known_hosts> (lines "127.0.0.1 <type> <base64>"), and runs <command>: this
#     program's stdin goes to it (EOF once all of it is sent), its stdout and stderr come out
#     here, and this program exits with its status (255 with a message when the connection
#     fails). Last on stderr: "negotiated <kex> <host key> <cipher> <mac> <comp in> <comp out>".
#     CONCH_KEX, CONCH_CIPHER, CONCH_MAC, CONCH_HOSTKEY, CONCH_COMP (comma lists) narrow what
#     it offers.
#   python3 conch-peer.py server <host key> <user> <authorized public key>
#     A Conch server on a free loopback port that logs <user> in with that key and runs its
#     commands as that user (Twisted's UnixSSHRealm; needs root). Prints {"port": N}, serves
#     until stdin closes.
import json, os, sys, warnings

warnings.simplefilter("ignore")
sys.dont_write_bytecode = True
from twisted.internet import defer, protocol, reactor, stdio
from twisted.conch.ssh.keys import Key
from twisted.conch.ssh.transport import SSHTransportBase


def client(port, user, keyfile, known_hosts, command):
    from twisted.conch import endpoints
    from twisted.conch.client.knownhosts import KnownHostsFile
    from twisted.python.filepath import FilePath

    for env, attr in (("CONCH_KEX", "supportedKeyExchanges"), ("CONCH_CIPHER", "supportedCiphers"), ("CONCH_MAC", "supportedMACs"),
                      ("CONCH_HOSTKEY", "supportedPublicKeys"), ("CONCH_COMP", "supportedCompressions")):
        if os.environ.get(env):
            setattr(SSHTransportBase, attr, [x.encode() for x in os.environ[env].split(",")])

    # The endpoint's channel drops stderr and reports status 0 as a plain close; keep both.
    chan = endpoints._CommandChannel
    chan.extReceived = lambda self, kind, data: sys.stderr.buffer.write(data)
    record_status = chan.request_exit_status

    def request_exit_status(self, data):
        self.exit_status = int.from_bytes(data[:4], "big")
        return record_status(self, data)

    chan.request_exit_status = request_exit_status
    data = sys.stdin.buffer.read()
    result = {"status": 255}

    class Command(protocol.Protocol):
        def connectionMade(self):
            self.done = defer.Deferred()
            if data:
                self.transport.write(data)
            self.eof_when_sent()

        def eof_when_sent(self):
            # Twisted's channel holds what the peer's window does not take yet, and its sendEOF
            # does not wait for it: EOF only once all of it has gone.
            ch = self.transport
            if ch.buf:
                reactor.callLater(0.01, self.eof_when_sent)
            else:
                ch.conn.sendEOF(ch)

        def dataReceived(self, d):
            sys.stdout.buffer.write(d)

        def connectionLost(self, reason):
            ch = self.transport
            t = ch.conn.transport
            enc = t.currentEncryptions
            sys.stdout.flush()
            sys.stderr.write("negotiated %s %s %s %s %s %s\n" % tuple(x.decode() for x in (
                t.kexAlg, t.keyAlg, enc.inCipType, enc.inMACType, t.incomingCompressionType, t.outgoingCompressionType)))
            self.done.callback(getattr(ch, "exit_status", None))

    @defer.inlineCallbacks
    def main():
        try:
            ep = endpoints.SSHCommandClientEndpoint.newConnection(
                reactor, command.encode(), user.encode(), b"127.0.0.1", int(port),
                keys=[Key.fromFile(keyfile)], knownHosts=KnownHostsFile.fromPath(FilePath(known_hosts)))
            p = yield ep.connect(protocol.Factory.forProtocol(Command))
            status = yield p.done
            result["status"] = 255 if status is None else status
        except Exception as e:
            sys.stderr.write("conch-peer: %r\n" % (e,))
        reactor.stop()

    reactor.callWhenRunning(main)
    reactor.run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(result["status"])


def server(hostkey, user, authorized):
    from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
    from twisted.conch.ssh.factory import SSHFactory
    from twisted.conch.unix import UnixSSHRealm
    from twisted.cred.portal import Portal

    class Realm(UnixSSHRealm):
        # Twisted 22.4's UnixConchUser gives the checker's avatar id (bytes) to pwd.getpwnam.
        def requestAvatar(self, username, mind, *interfaces):
            return UnixSSHRealm.requestAvatar(self, username.decode(), mind, *interfaces)

    class StopOnEOF(protocol.Protocol):
        def connectionLost(self, reason):
            reactor.stop()

    f = SSHFactory()
    k = Key.fromFile(hostkey)
    f.privateKeys = {k.sshType(): k}
    f.publicKeys = {k.sshType(): k.public()}
    f.portal = Portal(Realm(), [SSHPublicKeyChecker(InMemorySSHKeyDB({user.encode(): [Key.fromFile(authorized)]}))])
    port = reactor.listenTCP(0, f, interface="127.0.0.1")
    print(json.dumps({"port": port.getHost().port}), flush=True)
    stdio.StandardIO(StopOnEOF())
    reactor.run()


if __name__ == "__main__":
    {"client": client, "server": server}[sys.argv[1]](*sys.argv[2:])
