# Ruby's Net::SSH (Debian's ruby-net-ssh 7.0.1, with ruby-net-sftp and ruby-net-scp: the SSH of
# Vagrant, Capistrano and Chef) as a client of our dropbear, for tests/interop-netssh.test.ts.
#
#   ruby netssh-peer.rb PORT USER MODE ARG
#
# Logs in with the keys named in NETSSH_KEYS (comma-separated files) or the password in
# NETSSH_PASSWORD, the host key checked against NETSSH_KNOWN_HOSTS. MODE exec runs ARG with our
# stdin as its input, its stdout and stderr to ours, and exits with its status (Net::SSH
# rekeying after every NETSSH_REKEY_LIMIT bytes, when set). MODE algos
# connects once per JSON object in ARG (Net::SSH options such as kex, host_key, encryption,
# hmac, keys, auth_methods) and prints, per line, the algorithms negotiated and the output of
# `echo ok`, or the error. MODE session runs the checks of one session (see below), a JSON
# line each. Errors go to stderr (with a backtrace when NETSSH_DEBUG is set) and exit 255.
require 'net/ssh'
require 'net/sftp'
require 'net/scp'
require 'digest'
require 'json'
require 'socket'
require 'stringio'

PORT, USER, MODE, ARG = ARGV[0].to_i, ARGV[1], ARGV[2], ARGV[3]

def options(extra = {})
  o = { port: PORT, non_interactive: true, timeout: 10, user_known_hosts_file: ENV['NETSSH_KNOWN_HOSTS'],
        global_known_hosts_file: [], verify_host_key: :always }
  o[:keys] = ENV['NETSSH_KEYS'].split(',') if ENV['NETSSH_KEYS']
  o[:password] = ENV['NETSSH_PASSWORD'] if ENV['NETSSH_PASSWORD']
  o.merge(extra)
end

# Opens a channel running cmd, sending input then EOF; the block gets [stdout, stderr, status, signal].
def run_command(ssh, cmd, input = nil, &done)
  out, err, status, signal = ''.b, ''.b, nil, nil
  ssh.open_channel do |c|
    c.exec(cmd) do |_, ok|
      raise "exec refused: #{cmd}" unless ok
      c.on_data { |_, d| out << d }
      c.on_extended_data { |_, _, d| err << d }
      c.on_request('exit-status') { |_, d| status = d.read_long }
      c.on_request('exit-signal') { |_, d| signal = d.read_string }
      c.on_close { done&.call([out, err, status, signal]) }
      c.send_data(input) if input
      c.eof!
    end
  end
end

# A TCP server on loopback answering each connection's first `size` bytes with their SHA-256.
def hash_server(size, count)
  srv = TCPServer.new('127.0.0.1', 0)
  thread = Thread.new { count.times { s = srv.accept; s.write(Digest::SHA256.digest(s.read(size))); s.close } }
  [srv.addr[1], thread]
end

# Sends data through loopback port and returns whether the SHA-256 that comes back is data's.
def through(port, data)
  Thread.new do
    s = TCPSocket.new('127.0.0.1', port)
    s.write(data)
    r = s.read
    s.close
    r == Digest::SHA256.digest(data)
  end
end

def say(h) = puts(JSON.generate(h))

def session
  Net::SSH.start('127.0.0.1', USER, **options(forward_agent: true, keepalive: true, keepalive_interval: 1)) do |ssh|
    # The agent forwarded from SSH_AUTH_SOCK (Net::SSH asks for it on the first channel only)
    # lists its keys to the server's ssh-add; keepalives (every second) answered while it sleeps.
    agent = nil
    run_command(ssh, 'ssh-add -L; sleep 2') { |r| agent = r }
    ssh.loop { agent.nil? }
    say(agent: agent[0], agent_status: agent[2])

    # Twenty commands at once on one session, each with its own output and status; and a signal.
    results = {}
    20.times { |i| run_command(ssh, "head -c #{10_000 * (i + 1)} /dev/zero; exit #{i}") { |r| results[i] = r } }
    run_command(ssh, 'kill -TERM $$') { |r| results[:sig] = r }
    ssh.loop { results.size < 21 }
    say(channels: (0...20).all? { |i| results[i][0].bytesize == 10_000 * (i + 1) && results[i][2] == i }, signal: results[:sig][3])

    # A local forward to a loopback server and a remote forward back to it, reached through a
    # second local forward to the remote one's port on the server, three connections of 1 MB each.
    data = Random.new.bytes(1_000_000)
    tport, served = hash_server(data.bytesize, 3)
    rport = nil
    ssh.forward.remote(tport, '127.0.0.1', 0, '127.0.0.1') { |p| rport = p; :no_exception }
    ssh.loop(0.1) { rport.nil? }
    raise 'remote forward refused' unless rport.is_a?(Integer)
    direct = ssh.forward.local(0, '127.0.0.1', tport)
    via_remote = ssh.forward.local(0, '127.0.0.1', rport)
    clients = [through(direct, data), through(direct, data), through(via_remote, data)]
    ssh.loop(0.1) { clients.any?(&:alive?) }
    served.join
    say(local: clients[0].value && clients[1].value, remote: clients[2].value)
    ssh.forward.cancel_remote(rport, '127.0.0.1')
    ssh.loop(0.1) { ssh.forward.active_remotes.any? }

    # SFTP and SCP, 2 MB each way.
    data = Random.new.bytes(2_000_000)
    home = ssh.exec!('pwd').strip
    sftp = ssh.sftp.connect!
    sftp.upload!(StringIO.new(data), "#{home}/netssh-sftp.bin")
    say(sftp: sftp.download!("#{home}/netssh-sftp.bin").b == data)
    sftp.close_channel
    ssh.scp.upload!(StringIO.new(data), "#{home}/netssh-scp.bin")
    say(scp: ssh.scp.download!("#{home}/netssh-scp.bin").b == data)
  end
end

def algos
  JSON.parse(ARG, symbolize_names: true).each do |c|
    extra = c.to_h { |k, v| [k, k == :auth_methods || k == :keys ? Array(v) : v] }
    %i[kex host_key encryption hmac].each { |k| extra[k] = Array(extra[k]) if extra[k] }
    Net::SSH.start('127.0.0.1', USER, **options(extra)) do |ssh|
      a = ssh.transport.algorithms
      say(kex: a.kex, host_key: a.host_key, encryption: a.encryption_client, hmac: a.hmac_client, out: ssh.exec!('echo ok'))
    end
  rescue StandardError => e
    say(error: "#{e.class}: #{e.message.lines.first&.strip}")
  end
end

def exec_mode
  input = $stdin.binmode.read
  status = nil
  Net::SSH.start('127.0.0.1', USER, **options(rekey_limit: ENV['NETSSH_REKEY_LIMIT']&.to_i || 1 << 30)) do |ssh|
    run_command(ssh, ARG, input) do |out, err, st, _|
      $stdout.binmode.write(out)
      $stderr.write(err)
      status = st
    end
    ssh.loop
  end
  exit(status || 255)
end

begin
  case MODE
  when 'exec' then exec_mode
  when 'algos' then algos
  when 'session' then session
  else raise "unknown mode #{MODE}"
  end
rescue StandardError => e
  warn "netssh-peer: #{e.class}: #{e.message}"
  warn e.backtrace.first(4).join("\n") if ENV["NETSSH_DEBUG"]
  exit 255
end
