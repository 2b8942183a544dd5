# What tests/helpers/asyncssh-client.py and asyncssh-server.py both change in Debian's
# python3-asyncssh 2.10 (imported by them, before any connection is made):
#
# - Each connection counts its KEXINITs (the first one too), to see that a rekey happened.
# - Each channel keeps the largest data packet it received: asyncssh checks the window but not
#   the maximum packet size it announced, so the tests check that one.
#
# Its rekeys are left as they are: it goes on sending connection-protocol messages (channel data,
# window adjusts) after its own KEXINIT, which RFC 4253 section 7.1 forbids. C Dropbear ends the
# connection at the first one ("Unexpected packet type 94, expected 30"); we take them, as
# OpenSSH does (docs/deviations.md).
import asyncssh

SSHConnection = asyncssh.connection.SSHConnection
SSHChannel = asyncssh.channel.SSHChannel

_send_kexinit = SSHConnection._send_kexinit
_accept_data = SSHChannel._accept_data


def _counting_send_kexinit(self):
    self.kexinits_sent = getattr(self, "kexinits_sent", 0) + 1
    _send_kexinit(self)


def _measuring_accept_data(self, data, datatype=None):
    self.largest_in = max(getattr(self, "largest_in", 0), len(data))
    _accept_data(self, data, datatype)


SSHConnection._send_kexinit = _counting_send_kexinit
SSHChannel._accept_data = _measuring_accept_data
