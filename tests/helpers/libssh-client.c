/*
 * A small client on libssh (Debian's libssh-dev), built by tests/interop-libssh.test.ts and run
 * against our dropbear. One connection per run:
 *
 *   libssh-client PORT USER KEYFILE HOSTKEY_SHA256 MODE [ARG...]
 *
 * HOSTKEY_SHA256 is the server key's fingerprint as ssh-keygen -l prints it ("SHA256:..."); the
 * run fails unless it matches. MODE is one of
 *   exec COMMAND       run COMMAND, stdin to it, its stdout and stderr to ours; exit with its status
 *   forward PORT       a direct-tcpip channel to 127.0.0.1:PORT: stdin through it, what comes back to stdout
 *   sftp-get PATH      PATH read over SFTP to stdout
 * The environment may set LIBSSH_KEX, LIBSSH_CIPHERS, LIBSSH_MACS and LIBSSH_HOSTKEYS to the
 * algorithm lists libssh offers (each direction alike). Errors go to stderr and exit 255.
 */
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(ssh_session s, const char *what) {
	fprintf(stderr, "libssh-client: %s: %s\n", what, s != NULL ? ssh_get_error(s) : "");
	exit(255);
}

static void set_algos(ssh_session s, const char *env, enum ssh_options_e a, enum ssh_options_e b) {
	const char *v = getenv(env);
	if (v == NULL || *v == '\0') return;
	if (ssh_options_set(s, a, v) < 0 || (b != a && ssh_options_set(s, b, v) < 0)) die(s, env);
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

int main(int argc, char **argv) {
	if (argc < 7) {
		fprintf(stderr, "usage: libssh-client PORT USER KEYFILE HOSTKEY_SHA256 MODE ARG\n");
		return 255;
	}
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
	if (ssh_connect(s) != SSH_OK) die(s, "connect");

	ssh_key hostkey = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	if (ssh_get_server_publickey(s, &hostkey) != SSH_OK) die(s, "server key");
	if (ssh_get_publickey_hash(hostkey, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0) die(s, "key hash");
	char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	if (fp == NULL || strcmp(fp, argv[4]) != 0) {
		fprintf(stderr, "libssh-client: host key %s is not %s\n", fp != NULL ? fp : "?", argv[4]);
		return 255;
	}
	/* Which algorithms were agreed, for the test to check. */
	fprintf(stderr, "libssh-client: kex %s cipher %s hostkey %s\n", ssh_get_kex_algo(s), ssh_get_cipher_out(s), ssh_key_type_to_char(ssh_key_type(hostkey)));
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
			fprintf(stderr, "libssh-client: no mode %s\n", mode);
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
