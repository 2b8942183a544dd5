/*
 * libssh (Debian's libssh-dev) as a peer of ours, built by tests/interop-libssh.test.ts. Errors
 * go to stderr and exit 255.
 *
 *   libssh-peer client PORT USER KEYFILE HOSTKEY_SHA256 MODE ARG
 *     One connection to our dropbear, the host key taken only if its fingerprint is
 *     HOSTKEY_SHA256 ("SHA256:...", as ssh-keygen -l prints it). MODE is one of
 *       exec COMMAND    run COMMAND, stdin to it, its stdout and stderr to ours; exit with its status
 *       forward PORT    a direct-tcpip channel to 127.0.0.1:PORT: stdin through it, what comes back to stdout
 *       sftp-get PATH   PATH read over SFTP to stdout
 *     The environment may set LIBSSH_KEX, LIBSSH_CIPHERS, LIBSSH_MACS and LIBSSH_HOSTKEYS to the
 *     algorithm lists libssh offers (each direction alike), and LIBSSH_REKEY to a number of bytes
 *     after which libssh starts a new key exchange (SSH_OPTIONS_REKEY_DATA; the server too).
 *
 *   libssh-peer server HOSTKEY AUTHORIZED_KEY
 *     A server on 127.0.0.1 (a free port) taking only AUTHORIZED_KEY (an OpenSSH .pub file), a
 *     process per connection: one session channel whose exec request runs under /bin/sh as this
 *     user, its stdin fed from the channel, its output and exit status sent back. Prints
 *     {"port":N}, then serves until its stdin closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <libssh/sftp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* The server uses libssh's message API (ssh_message_get and friends), deprecated in 0.10 for its
 * callbacks but still built and much shorter for one exec. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static void die(ssh_session s, const char *what) {
	fprintf(stderr, "libssh-peer: %s: %s\n", what, s != NULL ? ssh_get_error(s) : "");
	exit(255);
}

static void set_algos(ssh_session s, const char *env, enum ssh_options_e a, enum ssh_options_e b) {
	const char *v = getenv(env);
	if (v == NULL || *v == '\0') return;
	if (ssh_options_set(s, a, v) < 0 || (b != a && ssh_options_set(s, b, v) < 0)) die(s, env);
}

/* LIBSSH_REKEY, when set: a new key exchange after that many bytes each way (SSH_OPTIONS_REKEY_DATA). */
static void set_rekey(ssh_session s) {
	const char *v = getenv("LIBSSH_REKEY");
	if (v == NULL || *v == '\0') return;
	uint64_t n = strtoull(v, NULL, 10);
	if (ssh_options_set(s, SSH_OPTIONS_REKEY_DATA, &n) < 0) die(s, "LIBSSH_REKEY");
}

/* Send all of stdin on the channel, then EOF. */
static void send_stdin(ssh_session s, ssh_channel ch) {
	char buf[16384];
	ssize_t n;
	while ((n = read(0, buf, sizeof buf)) > 0) {
		for (ssize_t off = 0; off < n;) {
			int w = ssh_channel_write(ch, buf + off, (uint32_t)(n - off));
			if (w < 0) die(s, "channel write");
			off += w;
		}
	}
	if (ssh_channel_send_eof(ch) != SSH_OK) die(s, "channel eof");
}

/* Copy the channel's stdout (and stderr) to ours until its EOF. */
static void drain(ssh_session s, ssh_channel ch) {
	char buf[16384];
	for (int is_stderr = 0; is_stderr < 2; is_stderr++) {
		int n;
		while ((n = ssh_channel_read(ch, buf, sizeof buf, is_stderr)) > 0) {
			if (fwrite(buf, 1, (size_t)n, is_stderr ? stderr : stdout) != (size_t)n) die(NULL, "write");
		}
		if (n < 0) die(s, "channel read");
	}
	fflush(stdout);
}

static int client(char **argv) {
	int port = atoi(argv[1]);
	const char *mode = argv[5];
	ssh_session s = ssh_new();
	if (s == NULL) die(NULL, "ssh_new");
	ssh_options_set(s, SSH_OPTIONS_HOST, "127.0.0.1");
	ssh_options_set(s, SSH_OPTIONS_PORT, &port);
	ssh_options_set(s, SSH_OPTIONS_USER, argv[2]);
	int no = 0;
	ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
	set_algos(s, "LIBSSH_KEX", SSH_OPTIONS_KEY_EXCHANGE, SSH_OPTIONS_KEY_EXCHANGE);
	set_algos(s, "LIBSSH_CIPHERS", SSH_OPTIONS_CIPHERS_C_S, SSH_OPTIONS_CIPHERS_S_C);
	set_algos(s, "LIBSSH_MACS", SSH_OPTIONS_HMAC_C_S, SSH_OPTIONS_HMAC_S_C);
	set_algos(s, "LIBSSH_HOSTKEYS", SSH_OPTIONS_HOSTKEYS, SSH_OPTIONS_HOSTKEYS);
	set_rekey(s);
	if (ssh_connect(s) != SSH_OK) die(s, "connect");

	ssh_key hostkey = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	if (ssh_get_server_publickey(s, &hostkey) != SSH_OK) die(s, "server key");
	if (ssh_get_publickey_hash(hostkey, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0) die(s, "key hash");
	char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	if (fp == NULL || strcmp(fp, argv[4]) != 0) {
		fprintf(stderr, "libssh-peer: host key %s is not %s\n", fp != NULL ? fp : "?", argv[4]);
		return 255;
	}
	/* Which algorithms were agreed, for the test to check. */
	fprintf(stderr, "libssh-peer: kex %s cipher %s hostkey %s\n", ssh_get_kex_algo(s), ssh_get_cipher_out(s), ssh_key_type_to_char(ssh_key_type(hostkey)));
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(hostkey);

	ssh_key priv = NULL;
	if (ssh_pki_import_privkey_file(argv[3], NULL, NULL, NULL, &priv) != SSH_OK) die(s, "key file");
	if (ssh_userauth_publickey(s, NULL, priv) != SSH_AUTH_SUCCESS) die(s, "publickey auth");
	ssh_key_free(priv);

	int status = 0;
	if (strcmp(mode, "sftp-get") == 0) {
		sftp_session sftp = sftp_new(s);
		if (sftp == NULL || sftp_init(sftp) != SSH_OK) die(s, "sftp");
		sftp_file f = sftp_open(sftp, argv[6], O_RDONLY, 0);
		if (f == NULL) die(s, "sftp open");
		char buf[32768];
		ssize_t n;
		while ((n = sftp_read(f, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
		if (n < 0) die(s, "sftp read");
		sftp_close(f);
		sftp_free(sftp);
	} else {
		ssh_channel ch = ssh_channel_new(s);
		if (ch == NULL) die(s, "channel");
		if (strcmp(mode, "exec") == 0) {
			if (ssh_channel_open_session(ch) != SSH_OK) die(s, "session channel");
			if (ssh_channel_request_exec(ch, argv[6]) != SSH_OK) die(s, "exec");
		} else if (strcmp(mode, "forward") == 0) {
			if (ssh_channel_open_forward(ch, "127.0.0.1", atoi(argv[6]), "127.0.0.1", 5555) != SSH_OK) die(s, "direct-tcpip");
		} else {
			fprintf(stderr, "libssh-peer: no mode %s\n", mode);
			return 255;
		}
		send_stdin(s, ch);
		drain(s, ch);
		if (strcmp(mode, "exec") == 0) status = ssh_channel_get_exit_status(ch);
		ssh_channel_close(ch);
		ssh_channel_free(ch);
	}
	fflush(stdout);
	ssh_disconnect(s);
	ssh_free(s);
	return status;
}

/* The next message, or exit: the client went away. */
static ssh_message next_message(ssh_session s) {
	ssh_message m = ssh_message_get(s);
	if (m == NULL) exit(1);
	return m;
}

/* Serve one connection (in its own process): publickey auth, one session channel, one exec. */
static int serve(ssh_session s, ssh_key authorized) {
	set_rekey(s);
	if (ssh_handle_key_exchange(s) != SSH_OK) die(s, "key exchange");
	ssh_set_auth_methods(s, SSH_AUTH_METHOD_PUBLICKEY);
	for (int authed = 0; !authed;) {
		ssh_message m = next_message(s);
		if (ssh_message_type(m) == SSH_REQUEST_AUTH && ssh_message_subtype(m) == SSH_AUTH_METHOD_PUBLICKEY &&
		    ssh_key_cmp(ssh_message_auth_pubkey(m), authorized, SSH_KEY_CMP_PUBLIC) == 0) {
			/* A query gets PK_OK; a signed request (verified by libssh) succeeds. */
			enum ssh_publickey_state_e st = ssh_message_auth_publickey_state(m);
			if (st == SSH_PUBLICKEY_STATE_NONE) {
				ssh_message_auth_reply_pk_ok_simple(m);
			} else if (st == SSH_PUBLICKEY_STATE_VALID) {
				ssh_message_auth_reply_success(m, 0);
				authed = 1;
			} else {
				ssh_message_reply_default(m);
			}
		} else {
			ssh_message_auth_set_methods(m, SSH_AUTH_METHOD_PUBLICKEY);
			ssh_message_reply_default(m);
		}
		ssh_message_free(m);
	}
	ssh_channel ch = NULL;
	char *cmd = NULL;
	while (cmd == NULL) {
		ssh_message m = next_message(s);
		if (ch == NULL && ssh_message_type(m) == SSH_REQUEST_CHANNEL_OPEN && ssh_message_subtype(m) == SSH_CHANNEL_SESSION) {
			ch = ssh_message_channel_request_open_reply_accept(m);
		} else if (ch != NULL && ssh_message_type(m) == SSH_REQUEST_CHANNEL && ssh_message_subtype(m) == SSH_CHANNEL_REQUEST_EXEC) {
			cmd = strdup(ssh_message_channel_request_command(m));
			ssh_message_channel_request_reply_success(m);
		} else {
			ssh_message_reply_default(m);
		}
		ssh_message_free(m);
	}

	int in[2], out[2], err[2];
	if (pipe(in) < 0 || pipe(out) < 0 || pipe(err) < 0) die(NULL, "pipe");
	pid_t pid = fork();
	if (pid < 0) die(NULL, "fork");
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(in[1]);
		close(out[0]);
		close(err[0]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	/* The command's stdin is written without blocking: a command that writes as it reads (cat)
	 * must have its output taken meanwhile. The channel is read only once what it gave last has
	 * gone to the command, so a slow command holds the client back through the window. */
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	char buf[32768], pend[32768];
	size_t pend_off = 0, pend_len = 0;
	int outs[2] = {out[0], err[0]};
	while (outs[0] >= 0 || outs[1] >= 0) {
		struct pollfd p[4] = {{outs[0], POLLIN, 0}, {outs[1], POLLIN, 0}, {ssh_get_fd(s), POLLIN, 0}, {pend_len > 0 ? in[1] : -1, POLLOUT, 0}};
		poll(p, 4, 10);
		for (int i = 0; i < 2; i++) {
			if (outs[i] < 0 || p[i].revents == 0) continue;
			ssize_t n = read(outs[i], buf, sizeof buf);
			if (n <= 0) {
				close(outs[i]);
				outs[i] = -1;
			} else if ((i == 0 ? ssh_channel_write(ch, buf, (uint32_t)n) : ssh_channel_write_stderr(ch, buf, (uint32_t)n)) < 0) {
				die(s, "channel write");
			}
		}
		if (in[1] < 0) continue;
		if (pend_len == 0) {
			/* libssh may hold data already read from the socket: asked every turn. */
			int n = ssh_channel_read_nonblocking(ch, pend, sizeof pend, 0);
			if (n > 0) {
				pend_off = 0;
				pend_len = (size_t)n;
			} else if (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch)) {
				close(in[1]);
				in[1] = -1;
				continue;
			}
		}
		if (pend_len > 0) {
			ssize_t w = write(in[1], pend + pend_off, pend_len);
			if (w > 0) {
				pend_off += (size_t)w;
				pend_len -= (size_t)w;
			} else if (w < 0 && errno != EAGAIN) {
				/* The command stopped reading: the rest of its input is dropped. */
				close(in[1]);
				in[1] = -1;
			}
		}
	}
	int status = 0;
	waitpid(pid, &status, 0);
	ssh_channel_request_send_exit_status(ch, WIFEXITED(status) ? WEXITSTATUS(status) : 255);
	ssh_channel_send_eof(ch);
	ssh_channel_close(ch);
	/* All of it sent, then the connection left for the client to end once it has the close
	 * (ssh_disconnect here would cut off what the kernel has not sent yet). */
	ssh_blocking_flush(s, 20000);
	struct pollfd p = {ssh_get_fd(s), POLLIN, 0};
	while (poll(&p, 1, 20000) > 0 && read(p.fd, buf, sizeof buf) > 0) {
	}
	return 0;
}

static int server(char **argv) {
	ssh_key authorized = NULL;
	if (ssh_pki_import_pubkey_file(argv[2], &authorized) != SSH_OK) die(NULL, "authorized key");
	ssh_bind b = ssh_bind_new();
	int port0 = 0;
	ssh_bind_options_set(b, SSH_BIND_OPTIONS_BINDADDR, "127.0.0.1");
	ssh_bind_options_set(b, SSH_BIND_OPTIONS_BINDPORT, &port0);
	if (ssh_bind_options_set(b, SSH_BIND_OPTIONS_HOSTKEY, argv[1]) < 0) die(NULL, "host key");
	if (ssh_bind_listen(b) < 0) {
		fprintf(stderr, "libssh-peer: listen: %s\n", ssh_get_error(b));
		return 255;
	}
	struct sockaddr_in sa;
	socklen_t salen = sizeof sa;
	if (getsockname(ssh_bind_get_fd(b), (struct sockaddr *)&sa, &salen) < 0) die(NULL, "getsockname");
	printf("{\"port\":%d}\n", ntohs(sa.sin_port));
	fflush(stdout);
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		struct pollfd p[2] = {{ssh_bind_get_fd(b), POLLIN, 0}, {0, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) continue;
		if (p[1].revents != 0) {
			char c;
			if (read(0, &c, 1) <= 0) return 0;
		}
		if (p[0].revents == 0) continue;
		ssh_session s = ssh_new();
		if (ssh_bind_accept(b, s) != SSH_OK) {
			ssh_free(s);
			continue;
		}
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGCHLD, SIG_DFL);
			/* A command that exits without reading all its input is no error of ours. */
			signal(SIGPIPE, SIG_IGN);
			_exit(serve(s, authorized));
		}
		ssh_free(s);
	}
}

int main(int argc, char **argv) {
	if (argc == 8 && strcmp(argv[1], "client") == 0) return client(argv + 1);
	if (argc == 4 && strcmp(argv[1], "server") == 0) return server(argv + 1);
	fprintf(stderr, "usage: libssh-peer client PORT USER KEYFILE HOSTKEY_SHA256 MODE ARG | server HOSTKEY AUTHORIZED_KEY\n");
	return 255;
}
