# What tests/helpers/asyncssh-client.py and asyncssh-server.py both change in Debian's
# python3-asyncssh 2.10 (imported by them, before any connection is made):
#
# - It goes on sending connection-protocol messages (channel data, window adjusts) after its
#   own KEXINIT in a rekey, which RFC 4253 section 7.1 forbids: only messages 1-49 may follow
#   until NEWKEYS. Dropbear ends the connection at the first one ("Unexpected packet type 94,
#   expected 30" as a server, "... expected 31" as a client; Debian's 2022.83 does, and so do
#   we, faithfully); OpenSSH happens to process them. Later asyncssh holds them back until its
#   NEWKEYS; so does this (asyncssh's rekey-by-bytes trigger moved in front of the hold), so the
#   rekey tests check our key re-exchange, not asyncssh 2.10's bug.
# - Each connection counts its KEXINITs (the first one too), to see that a rekey happened.
# - Each channel keeps the largest data packet it received: asyncssh checks the window but not
#   the maximum packet size it announced, so the tests check that one.
import asyncssh

SSHConnection = asyncssh.connection.SSHConnection
SSHChannel = asyncssh.channel.SSHChannel
MSG_KEX_LAST = 49

_send_kexinit = SSHConnection._send_kexinit
_send_packet = SSHConnection.send_packet
_accept_data = SSHChannel._accept_data


def _counting_send_kexinit(self):
    self.kexinits_sent = getattr(self, "kexinits_sent", 0) + 1
    _send_kexinit(self)


def _rfc4253_send_packet(self, pkttype, *args, handler=None):
    if pkttype > MSG_KEX_LAST and self._auth_complete:
        if self._kex_complete and self._rekey_bytes_sent >= self._rekey_bytes:
            self._send_kexinit()
            self._kexinit_sent = True
        if not self._kex_complete:
            # send_newkeys sends these, in order, once our NEWKEYS is out.
            self._deferred_packets.append((pkttype, args))
            return
    _send_packet(self, pkttype, *args, handler=handler)


def _measuring_accept_data(self, data, datatype=None):
    self.largest_in = max(getattr(self, "largest_in", 0), len(data))
    _accept_data(self, data, datatype)


SSHConnection._send_kexinit = _counting_send_kexinit
SSHConnection.send_packet = _rfc4253_send_packet
SSHChannel._accept_data = _measuring_accept_data
