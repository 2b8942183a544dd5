# libssh2 1.10 through Perl's Net::SSH2 (Debian's libnet-ssh2-perl) as a client of our
# dropbear, for tests/interop-netssh2.test.ts: perl netssh2-peer.pl PORT USER MODE [ARG...].
# The server's host key must be one in $NETSSH2_HOSTKEY (.pub lines); logs in with the key
# $NETSSH2_KEY (and its .pub), else the password $NETSSH2_PASSWORD.
#   algos             a connection for each key exchange (and each host key, cipher, MAC) libssh2 and we share
#   exec CMD          CMD with our stdin; its stdout and stderr to ours; exits with its status
#   shell             a pty (100x30) and a shell given "stty size; exit 3"; its output, its status
#   tcpip PORT        a direct-tcpip channel to 127.0.0.1:PORT: our stdin there, echoed back to stdout
#   forward           a tcpip-forward for port 0; a connection to the bound port is answered
#   scp-put L R | scp-get R L | sftp-put L R | sftp-get R L
use strict;
use warnings;
use Net::SSH2;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Fcntl ();

$| = 1;
binmode STDIN; binmode STDOUT;
my ($port, $user, $mode, @args) = @ARGV;
open my $hk, '<', $ENV{NETSSH2_HOSTKEY} or die "NETSSH2_HOSTKEY: $!\n";
my %known = map { (split ' ')[1] => 1 } <$hk>;
require MIME::Base64;

# A session logged in, its host key checked, after `methods` (libssh2's method types to names).
sub login {
  my (%methods) = @_;
  my $s = Net::SSH2->new(timeout => 30000);
  $s->method($_, $methods{$_}) or die "libssh2 has no $_ $methods{$_}\n" for sort keys %methods;
  $s->connect('127.0.0.1', $port) or die "connect: " . join(' ', $s->error) . "\n";
  my ($key) = $s->remote_hostkey;
  die "host key mismatch\n" unless $known{MIME::Base64::encode_base64($key, '')};
  if ($ENV{NETSSH2_KEY}) {
    $s->auth_publickey($user, "$ENV{NETSSH2_KEY}.pub", $ENV{NETSSH2_KEY});
  } else {
    $s->auth_password($user, $ENV{NETSSH2_PASSWORD});
  }
  die "auth: " . join(' ', $s->error) . "\n" unless $s->auth_ok;
  return $s;
}

if ($mode eq 'algos') {
  # One connection per key exchange, with each host key, cipher and MAC in turn: a line each.
  my @kex = qw(curve25519-sha256 curve25519-sha256@libssh.org ecdh-sha2-nistp256 ecdh-sha2-nistp384 ecdh-sha2-nistp521 diffie-hellman-group14-sha256 diffie-hellman-group16-sha512);
  my @hostkey = qw(ssh-ed25519 ecdsa-sha2-nistp256);
  my @cipher = qw(aes128-ctr aes256-ctr);
  my @mac = qw(hmac-sha2-256 hmac-sha2-512);
  for my $i (0 .. $#kex) {
    my %m = (KEX => $kex[$i], HOSTKEY => $hostkey[$i % 2], CRYPT_CS => $cipher[$i % 2], CRYPT_SC => $cipher[($i + 1) % 2], MAC_CS => $mac[$i % 2], MAC_SC => $mac[($i + 1) % 2]);
    my $s = login(%m);
    my $ch = $s->channel or die "channel\n";
    $ch->exec('echo ok') or die "exec\n";
    my ($out, $buf) = ('', '');
    while ($ch->read($buf, 100)) { $out .= $buf }
    $ch->wait_closed;
    print join(' ', map { $s->method($_) } sort keys %m), " $out";
    $s->disconnect;
  }
  exit 0;
}
my $ssh = login();

# Reads what a channel has in non-blocking mode: its data, or undef when it has nothing now.
sub take { my ($ch, $ext) = @_; my $buf; my $n = $ch->read($buf, 65536, $ext); return defined $n && $n > 0 ? $buf : undef }

# Moves `in` into the channel while copying what comes back to `out` (and stderr to STDERR),
# without blocking either way, until the channel ends: libssh2 in blocking mode can wait on a
# full window while the server waits on it to read.
sub pump {
  my ($ch, $in, $out) = @_;
  $ssh->blocking(0);
  my $sel = IO::Select->new($ssh->sock);
  my ($pending, $in_done) = ('', !defined $in);
  until ($ch->eof) {
    my $moved = 0;
    if (!$in_done && $pending eq '') {
      my $n = sysread($in, $pending, 65536);
      if (!$n) { $in_done = 1; $ch->send_eof }
    }
    if ($pending ne '') {
      my $w = $ch->write($pending);
      if (defined $w && $w > 0) { substr($pending, 0, $w) = ''; $moved = 1 }
    }
    while (defined(my $d = take($ch, 0))) { print {$out} $d; $moved = 1 }
    while (defined(my $d = take($ch, 1))) { print STDERR $d; $moved = 1 }
    $sel->can_read(0.05) unless $moved;
  }
  $ssh->blocking(1);
  $ch->wait_closed;
}

if ($mode eq 'exec') {
  my $ch = $ssh->channel or die "channel\n";
  $ch->exec($args[0]) or die "exec\n";
  pump($ch, \*STDIN, \*STDOUT);
  exit $ch->exit_status;
} elsif ($mode eq 'shell') {
  my $ch = $ssh->channel or die "channel\n";
  $ch->pty('xterm', '', 100, 30) or die "pty\n";
  $ch->shell or die "shell\n";
  $ch->write("stty size; exit 3\n");
  pump($ch, undef, \*STDOUT);
  exit $ch->exit_status;
} elsif ($mode eq 'tcpip') {
  my $ch = $ssh->tcpip('127.0.0.1', $args[0]) or die "tcpip: " . join(' ', $ssh->error) . "\n";
  pump($ch, \*STDIN, \*STDOUT);
} elsif ($mode eq 'forward') {
  my $bound = 0;
  my $l = $ssh->listen(0, '127.0.0.1', \$bound, 1) or die "listen: " . join(' ', $ssh->error) . "\n";
  my $pid = fork // die "fork\n";
  if (!$pid) {
    # The child's exit must not run Net::SSH2's destructors on the shared session.
    my $c = IO::Socket::INET->new("127.0.0.1:$bound") or POSIX::_exit(1);
    print $c "hello\n";
    my $reply = <$c> // '';
    print "bound $bound, the connection got: $reply";
    POSIX::_exit(0);
  }
  my $ch = $l->accept or die "accept: " . join(' ', $ssh->error) . "\n";
  my ($line, $buf) = ('', '');
  while ($line !~ /\n/) { my $n = $ch->read($buf, 100); die "read\n" unless $n; $line .= $buf }
  $ch->write("back: $line");
  $ch->send_eof;
  waitpid $pid, 0;
  exit($? >> 8);
} elsif ($mode eq 'scp-put') {
  $ssh->scp_put($args[0], $args[1]) or die "scp_put: " . join(' ', $ssh->error) . "\n";
} elsif ($mode eq 'scp-get') {
  $ssh->scp_get($args[0], $args[1]) or die "scp_get: " . join(' ', $ssh->error) . "\n";
} elsif ($mode eq 'sftp-put' || $mode eq 'sftp-get') {
  my $sftp = $ssh->sftp or die "sftp: " . join(' ', $ssh->error) . "\n";
  my ($from, $to) = @args;
  if ($mode eq 'sftp-put') {
    open my $f, '<:raw', $from or die "$from: $!\n";
    my $fh = $sftp->open($to, Fcntl::O_WRONLY() | Fcntl::O_CREAT() | Fcntl::O_TRUNC()) or die "open $to\n";
    my $buf;
    while (read($f, $buf, 100000)) {
      # A write may take only part of what it is given (libssh2 sends at most 30000 bytes).
      while (length $buf) { my $w = $fh->write($buf) or die "sftp write\n"; substr($buf, 0, $w) = '' }
    }
  } else {
    my $fh = $sftp->open($from) or die "open $from\n";
    open my $f, '>:raw', $to or die "$to: $!\n";
    my $buf;
    while (my $n = $fh->read($buf, 100000)) { print {$f} $buf }
    close $f or die "$to: $!\n";
  }
} else {
  die "unknown mode $mode\n";
}
$ssh->disconnect;
