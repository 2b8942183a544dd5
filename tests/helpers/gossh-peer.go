// Go's golang.org/x/crypto/ssh (Debian's golang-golang-x-crypto-dev) as a peer of ours, for
// tests/interop-gossh.test.ts, built there in GOPATH mode against Debian's sources.
//
//	gossh-peer client PORT USER KEYFILE HOST_SHA256 MODE ARG
//	  MODE exec: run ARG, this program's stdin to it, its stdout and stderr to ours; exit with
//	  its status. MODE forward: a direct-tcpip channel to 127.0.0.1:ARG (a path starting "/":
//	  direct-streamlocal@openssh.com to that Unix socket), stdin through it and what comes back
//	  to stdout. MODE listen: a tcpip-forward request for 127.0.0.1:ARG (0: the server picks; a
//	  path: streamlocal-forward@openssh.com), the port bound printed as {"port":N}; each
//	  connection the server forwards is echoed back to it, until stdin closes. MODE keepalive:
//	  ARG keepalive@openssh.com requests, each answer printed. MODE signal: ARG run, its
//	  status and signal printed. MODE many: ARG sessions at once, the number that answered
//	  right printed. The host key is taken only if its fingerprint is
//	  HOST_SHA256 ("SHA256:...", as ssh-keygen -l prints it). With GOSSH_PASSWORD set, that
//	  password is the one way to log in, else KEYFILE (with the OpenSSH certificate in
//	  GOSSH_CERT, when set). GOSSH_KEX, GOSSH_CIPHER, GOSSH_MAC and GOSSH_HOSTKEY, when set,
//	  are the one algorithm of each kind offered; GOSSH_REKEY, a RekeyThreshold in bytes (client
//	  and server). Prints what was agreed to stderr first; exits 255 on an error.
//
//	gossh-peer server HOSTKEY AUTHORIZED_KEY
//	  A server on 127.0.0.1 (a free port) taking only AUTHORIZED_KEY: commands run by /bin/sh
//	  as this user, with their exit status; direct-tcpip to any 127.0.0.1 port, tcpip-forward
//	  on 127.0.0.1. Prints
//	  {"port":N}, then serves until its stdin closes.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "gossh-peer: %s: %v\n", what, err)
	os.Exit(255)
}

func main() {
	if len(os.Args) >= 8 && os.Args[1] == "client" {
		client(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7])
	} else if len(os.Args) == 4 && os.Args[1] == "server" {
		server(os.Args[2], os.Args[3])
	} else {
		fmt.Fprintln(os.Stderr, "usage: gossh-peer client PORT USER KEYFILE HOST_SHA256 MODE ARG | server HOSTKEY AUTHORIZED_KEY")
		os.Exit(255)
	}
}

// readSigner reads an OpenSSH private key file.
func readSigner(path, what string) ssh.Signer {
	pem, err := os.ReadFile(path)
	if err != nil {
		die(what+" file", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		die(what, err)
	}
	return signer
}

// serveListener prints ln's port as {"port":N}, hands each connection to handle, and exits
// once stdin closes.
func serveListener(ln net.Listener, handle func(net.Conn)) {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		fmt.Printf("{\"port\":%d}\n", a.Port)
	} else {
		fmt.Printf("{\"path\":%q}\n", ln.Addr().String())
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			die("accept", err)
		}
		go handle(c)
	}
}

// one returns the environment variable's value as a one-element list, or nil when unset.
func one(name string) []string {
	if v := os.Getenv(name); v != "" {
		return []string{v}
	}
	return nil
}

func client(port, user, keyfile, fingerprint, mode, arg string) {
	var auth ssh.AuthMethod
	if password := os.Getenv("GOSSH_PASSWORD"); password != "" {
		auth = ssh.Password(password)
	} else {
		signer := readSigner(keyfile, "key")
		if certFile := os.Getenv("GOSSH_CERT"); certFile != "" {
			signer = certSigner(certFile, signer)
		}
		auth = ssh.PublicKeys(signer)
	}
	var agreed string
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{auth},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != fingerprint {
				return fmt.Errorf("host key %s is not %s", got, fingerprint)
			}
			agreed = key.Type()
			return nil
		},
		HostKeyAlgorithms: one("GOSSH_HOSTKEY"),
		Config: ssh.Config{
			KeyExchanges: one("GOSSH_KEX"),
			Ciphers:      one("GOSSH_CIPHER"),
			MACs:         one("GOSSH_MAC"),
		},
	}
	cfg.RekeyThreshold = rekeyThreshold()
	conn, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", port), cfg)
	if err != nil {
		die("connect", err)
	}
	defer conn.Close()
	fmt.Fprintf(os.Stderr, "gossh-peer: hostkey %s server %s\n", agreed, conn.ServerVersion())
	switch mode {
	case "exec":
		sess, err := conn.NewSession()
		if err != nil {
			die("session", err)
		}
		sess.Stdin = os.Stdin
		sess.Stdout = os.Stdout
		sess.Stderr = os.Stderr
		err = sess.Run(arg)
		if exit, ok := err.(*ssh.ExitError); ok {
			os.Exit(exit.ExitStatus())
		} else if err != nil {
			die("exec", err)
		}
	case "forward":
		var c net.Conn
		var err error
		if strings.HasPrefix(arg, "/") {
			c, err = conn.Dial("unix", arg)
		} else {
			c, err = conn.Dial("tcp", net.JoinHostPort("127.0.0.1", arg))
		}
		if err != nil {
			die("direct-tcpip", err)
		}
		go func() {
			if _, err := io.Copy(c, os.Stdin); err != nil {
				die("send", err)
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		if _, err := io.Copy(os.Stdout, c); err != nil {
			die("receive", err)
		}
	case "listen":
		var ln net.Listener
		var err error
		if strings.HasPrefix(arg, "/") {
			ln, err = conn.ListenUnix(arg)
		} else {
			ln, err = conn.Listen("tcp", net.JoinHostPort("127.0.0.1", arg))
		}
		if err != nil {
			die("tcpip-forward", err)
		}
		serveListener(ln, func(c net.Conn) {
			io.Copy(c, c)
			c.Close()
		})
	case "keepalive":
		// ARG global requests wanting a reply, as OpenSSH's ServerAliveInterval sends: each
		// answer printed as ok or refused.
		n, _ := strconv.Atoi(arg)
		for i := 0; i < n; i++ {
			ok, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			if err != nil {
				die("keepalive", err)
			}
			if ok {
				fmt.Println("ok")
			} else {
				fmt.Println("refused")
			}
		}
	case "signal":
		// ARG run; how it ended printed as its signal name, or its status.
		sess, err := conn.NewSession()
		if err != nil {
			die("session", err)
		}
		err = sess.Run(arg)
		if exit, ok := err.(*ssh.ExitError); ok {
			fmt.Printf("status %d signal %s\n", exit.ExitStatus(), exit.Signal())
		} else if err != nil {
			die("exec", err)
		} else {
			fmt.Println("status 0")
		}
	case "many":
		// ARG sessions open at once on the one connection, each running `echo I`: prints how
		// many answered right.
		n, _ := strconv.Atoi(arg)
		var wg sync.WaitGroup
		var mu sync.Mutex
		right := 0
		var failures []string
		sessions := make([]*ssh.Session, n)
		for i := 0; i < n; i++ {
			sess, err := conn.NewSession()
			if err != nil {
				die(fmt.Sprintf("session %d", i), err)
			}
			sessions[i] = sess
		}
		for i, sess := range sessions {
			wg.Add(1)
			go func(i int, sess *ssh.Session) {
				defer wg.Done()
				out, err := sess.Output(fmt.Sprintf("echo %d", i))
				mu.Lock()
				defer mu.Unlock()
				if err == nil && strings.TrimSpace(string(out)) == strconv.Itoa(i) {
					right++
				} else {
					failures = append(failures, fmt.Sprintf("%d: %q %v", i, out, err))
				}
			}(i, sess)
		}
		wg.Wait()
		fmt.Println(right)
		for _, f := range failures {
			fmt.Fprintln(os.Stderr, f)
		}
	default:
		die("mode", fmt.Errorf("no mode %q", mode))
	}
}

// rekeyThreshold is GOSSH_REKEY as a number of bytes (0, x/crypto's default, when unset).
func rekeyThreshold() uint64 {
	n, _ := strconv.ParseUint(os.Getenv("GOSSH_REKEY"), 10, 64)
	return n
}

// readAuthorizedKey parses the first line of file, in authorized_keys format.
func readAuthorizedKey(file, what string) ssh.PublicKey {
	line, err := os.ReadFile(file)
	if err != nil {
		die(what+" file", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		die(what, err)
	}
	return pub
}

// certSigner pairs signer with the OpenSSH certificate in certFile.
func certSigner(certFile string, signer ssh.Signer) ssh.Signer {
	cert, ok := readAuthorizedKey(certFile, "certificate").(*ssh.Certificate)
	if !ok {
		die("certificate", fmt.Errorf("not a certificate"))
	}
	cs, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		die("certificate", err)
	}
	return cs
}

func server(hostkeyFile, authorizedFile string) {
	hostkey := readSigner(hostkeyFile, "host key")
	allowed := readAuthorizedKey(authorizedFile, "authorized key")
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), allowed.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key not authorized")
		},
	}
	cfg.RekeyThreshold = rekeyThreshold()
	cfg.AddHostKey(hostkey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("listen", err)
	}
	serveListener(ln, func(c net.Conn) { serve(c, cfg) })
}

func serve(c net.Conn, cfg *ssh.ServerConfig) {
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go globalRequests(conn, reqs)
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go session(ch, creqs)
		case "direct-tcpip":
			go directTCPIP(nc)
		default:
			nc.Reject(ssh.UnknownChannelType, "unknown channel type")
		}
	}
}

// session serves one session channel: its exec request runs under /bin/sh.
func session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			req.Reply(false, nil)
			continue
		}
		n := binary.BigEndian.Uint32(req.Payload)
		if int(n) > len(req.Payload)-4 {
			req.Reply(false, nil)
			continue
		}
		cmd := exec.Command("/bin/sh", "-c", string(req.Payload[4:4+n]))
		cmd.Stdout = ch
		cmd.Stderr = ch.Stderr()
		stdin, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		go func() {
			io.Copy(stdin, ch)
			stdin.Close()
		}()
		status := 0
		if err := cmd.Wait(); err != nil {
			status = 255
			if exit, ok := err.(*exec.ExitError); ok {
				status = exit.ExitCode()
			}
		}
		ch.CloseWrite()
		ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(status)))
		return
	}
}

// globalRequests serves tcpip-forward for 127.0.0.1 (port 0: one is picked and sent back): each
// connection there becomes a forwarded-tcpip channel. Anything else is refused.
func globalRequests(conn *ssh.ServerConn, reqs <-chan *ssh.Request) {
	for req := range reqs {
		var fwd struct {
			Addr string
			Port uint32
		}
		if req.Type != "tcpip-forward" || ssh.Unmarshal(req.Payload, &fwd) != nil || fwd.Addr != "127.0.0.1" {
			req.Reply(false, nil)
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(fwd.Addr, strconv.Itoa(int(fwd.Port))))
		if err != nil {
			req.Reply(false, nil)
			continue
		}
		port := uint32(ln.Addr().(*net.TCPAddr).Port)
		if fwd.Port == 0 {
			req.Reply(true, binary.BigEndian.AppendUint32(nil, port))
		} else {
			req.Reply(true, nil)
		}
		go func() {
			defer ln.Close()
			go func() {
				conn.Wait()
				ln.Close()
			}()
			for {
				tc, err := ln.Accept()
				if err != nil {
					return
				}
				origin := tc.RemoteAddr().(*net.TCPAddr)
				ch, creqs, err := conn.OpenChannel("forwarded-tcpip", ssh.Marshal(struct {
					Addr       string
					Port       uint32
					OriginAddr string
					OriginPort uint32
				}{fwd.Addr, port, origin.IP.String(), uint32(origin.Port)}))
				if err != nil {
					tc.Close()
					continue
				}
				go ssh.DiscardRequests(creqs)
				go splice(ch, tc.(*net.TCPConn))
			}
		}()
	}
}

// splice copies between a channel and a TCP connection both ways, each direction's end passed on.
func splice(ch ssh.Channel, tc *net.TCPConn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		io.Copy(tc, ch)
		tc.CloseWrite()
		wg.Done()
	}()
	go func() {
		io.Copy(ch, tc)
		ch.CloseWrite()
		wg.Done()
	}()
	wg.Wait()
	ch.Close()
	tc.Close()
}

// directTCPIP connects a direct-tcpip channel to its 127.0.0.1 target port.
func directTCPIP(nc ssh.NewChannel) {
	var target struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &target); err != nil || target.Host != "127.0.0.1" {
		nc.Reject(ssh.Prohibited, "only 127.0.0.1")
		return
	}
	tc, err := net.Dial("tcp", net.JoinHostPort(target.Host, strconv.Itoa(int(target.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		tc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	splice(ch, tc.(*net.TCPConn))
}
