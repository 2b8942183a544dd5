import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as index from "../src/index.js";
import * as default_options from "../src/default_options.js";
import * as sysoptions from "../src/sysoptions.js";
import * as ssh from "../src/ssh.js";

interface HeaderDefines {
  "default_options.h": string[];
  "sysoptions.h": string[];
  "ssh.h": string[];
  skipped: { header: string; name: string; reason: string }[];
}

// Every #define name in the three headers, split into mirrored and deliberately skipped.
const fixture = JSON.parse(
  readFileSync(new URL("./fixtures/header-defines.json", import.meta.url), "utf8"),
) as HeaderDefines;

const modules = {
  "default_options.h": default_options,
  "sysoptions.h": sysoptions,
  "ssh.h": ssh,
} as const;

describe("values match Dropbear 2026.94 defaults", () => {
  it("window and packet sizes", () => {
    expect(index.DEFAULT_RECV_WINDOW).toBe(24576);
    expect(index.MAX_RECV_WINDOW).toBe(10485760);
    expect(index.RECV_MAX_PAYLOAD_LEN).toBe(32768);
    expect(index.TRANS_MAX_PAYLOAD_LEN).toBe(16384);
    expect(index.RECV_MAX_PACKET_LEN).toBe(35000);
    expect(index.MIN_PACKET_LEN).toBe(16);
  });

  it("limits", () => {
    expect(index.MAX_CHANNELS).toBe(1000);
    expect(index.MAX_DEFER_REPLY_QUEUE).toBe(1000);
    expect(index.MAX_AUTH_TRIES).toBe(10);
    expect(index.MAX_PUBKEY_QUERIES).toBe(15);
    expect(index.MAX_UNAUTH_PER_IP).toBe(5);
    expect(index.MAX_UNAUTH_CLIENTS).toBe(30);
    expect(index.DROPBEAR_MAX_SOCKS).toBe(2);
    expect(index.DROPBEAR_MAX_PORTS).toBe(10);
    expect(index.MAX_LISTEN_ADDR).toBe(30);
    expect(index.DROPBEAR_LISTEN_BACKLOG).toBe(1000);
    expect(index.KEX_REKEY_TIMEOUT).toBe(28800);
    expect(index.KEX_REKEY_DATA).toBe(2 ** 30);
    expect(index.AUTH_TIMEOUT).toBe(300);
    expect(index.MAX_STRING_LEN).toBe(9000);
    expect(index.MAX_NAME_LEN).toBe(64);
    expect(index.MAX_PROPOSED_ALGO).toBe(50);
    expect(index.MAX_HOSTKEYS).toBe(6);
    expect(index.MAX_BANNER_SIZE).toBe(2050);
    expect(index.MAX_BANNER_LINES).toBe(20);
    expect(index.MAX_CMD_LEN).toBe(9000);
    expect(index.MAX_TERM_LEN).toBe(200);
    expect(index.MAX_HOST_LEN).toBe(254);
    expect(index.DROPBEAR_MAX_PASSWORD_LEN).toBe(100);
    expect(index.DROPBEAR_MAX_LINE_LENGTH).toBe(10000);
    expect(index.MAX_AUTHKEYS_LINE_COUNT).toBe(300);
    expect(index.MAX_KEX_PARTS).toBe(2412);
    expect(index.KEXHASHBUF_MAX_INTS).toBe(3012);
    expect(index.MAX_KEY_LEN).toBe(64);
    expect(index.MAX_MAC_LEN).toBe(32);
  });

  it("timers", () => {
    expect(index.DEFAULT_KEEPALIVE).toBe(0);
    expect(index.DEFAULT_KEEPALIVE_LIMIT).toBe(3);
    expect(index.DEFAULT_IDLE_TIMEOUT).toBe(0);
    expect(index.DEFAULT_MAX_DURATION).toBe(0);
    expect(index.UNAUTH_CLOSE_DELAY).toBe(0);
  });

  it("strings", () => {
    expect(index.DROPBEAR_VERSION).toBe("2026.94");
    expect(index.LOCAL_IDENT).toBe("SSH-2.0-dropbear_2026.94");
    expect(index.PROGNAME).toBe("dropbear");
    expect(index.DROPBEAR_DEFPORT).toBe("22");
    expect(index.RSA_PRIV_FILENAME).toBe("/etc/dropbear/dropbear_rsa_host_key");
    expect(index.DROPBEAR_DEFAULT_CLI_AUTHKEY).toBe("~/.ssh/id_dropbear");
    expect(index.DROPBEAR_PIDFILE).toBe("/var/run/dropbear.pid");
    expect(index.SFTPSERVER_PATH).toBe("/usr/libexec/sftp-server");
    expect(index.DROPBEAR_PATH_SSH_PROGRAM).toBe("/usr/bin/dbclient");
    expect(index.DEFAULT_PATH).toBe("/usr/bin:/bin");
    expect(index.DEFAULT_ROOT_PATH).toBe("/usr/sbin:/usr/bin:/sbin:/bin");
    expect(index.DROPBEAR_KEEPALIVE_STRING).toBe("keepalive@openssh.com");
    expect(String.fromCharCode(index.DROPBEAR_ESCAPE_CHAR)).toBe("~");
    expect(index.COMPAT_USER_SHELLS).toEqual(["/bin/sh", "/bin/csh"]);
  });

  it("feature switches", () => {
    expect(index.DROPBEAR_X11FWD).toBe(false);
    expect(index.DROPBEAR_SVR_AGENTFWD).toBe(true);
    expect(index.DROPBEAR_CLI_AGENTFWD).toBe(true);
    expect(index.DROPBEAR_CLI_LOCALTCPFWD).toBe(true);
    expect(index.DROPBEAR_SVR_REMOTETCPFWD).toBe(true);
    expect(index.DROPBEAR_SVR_LOCALSTREAMFWD).toBe(true);
    expect(index.DROPBEAR_CLI_MULTIHOP).toBe(true);
    expect(index.DROPBEAR_USER_ALGO_LIST).toBe(true);
    expect(index.DROPBEAR_SVR_PAM_AUTH).toBe(false);
    expect(index.DROPBEAR_SVR_PASSWORD_AUTH).toBe(true);
    expect(index.DROPBEAR_SVR_DROP_PRIVS).toBe(true);
    expect(index.DROPBEAR_REEXEC).toBe(true);
    expect(index.DO_MOTD).toBe(true);
    expect(index.DO_HOST_LOOKUP).toBe(false);
    expect(index.LOG_COMMANDS).toBe(false);
    expect(index.DROPBEAR_SFTPSERVER).toBe(true);
    // Dropbear's defaults, even where our algorithm tables go further.
    expect(index.DROPBEAR_ENABLE_GCM_MODE).toBe(false);
    expect(index.DROPBEAR_SHA2_512_HMAC).toBe(false);
    expect(index.DROPBEAR_CHACHA20POLY1305).toBe(true);
    expect(index.DROPBEAR_AEAD_MODE).toBe(true);
    expect(index.DROPBEAR_SHA1).toBe(false);
    expect(index.DROPBEAR_SHA512).toBe(true);
    expect(index.DROPBEAR_EXT_INFO).toBe(true);
    expect(index.DROPBEAR_PQHYBRID).toBe(true);
    expect(index.DROPBEAR_CLIENT && index.DROPBEAR_SERVER).toBe(true);
  });

  it("return codes", () => {
    expect(index.DROPBEAR_SUCCESS).toBe(0);
    expect(index.DROPBEAR_FAILURE).toBe(-1);
  });

  it("message numbers and protocol codes", () => {
    expect(index.SSH_MSG_DISCONNECT).toBe(1);
    expect(index.SSH_MSG_EXT_INFO).toBe(7);
    expect(index.SSH_MSG_KEXINIT).toBe(20);
    expect(index.SSH_MSG_NEWKEYS).toBe(21);
    expect(index.SSH_MSG_KEXDH_INIT).toBe(30);
    expect(index.SSH_MSG_KEXDH_REPLY).toBe(31);
    expect(index.SSH_MSG_USERAUTH_REQUEST).toBe(50);
    expect(index.SSH_MSG_USERAUTH_BANNER).toBe(53);
    expect(index.SSH_MSG_USERAUTH_PK_OK).toBe(60);
    expect(index.SSH_MSG_USERAUTH_INFO_REQUEST).toBe(60);
    expect(index.SSH_MSG_USERAUTH_INFO_RESPONSE).toBe(61);
    expect(index.SSH_MSG_GLOBAL_REQUEST).toBe(80);
    expect(index.SSH_MSG_CHANNEL_OPEN).toBe(90);
    expect(index.SSH_MSG_CHANNEL_DATA).toBe(94);
    expect(index.SSH_MSG_CHANNEL_FAILURE).toBe(100);
    expect(index.SSH_EXTENDED_DATA_STDERR).toBe(1);
    expect(index.SSH_DISCONNECT_PROTOCOL_ERROR).toBe(2);
    expect(index.SSH_DISCONNECT_BY_APPLICATION).toBe(11);
    expect(index.SSH_DISCONNECT_ILLEGAL_USER_NAME).toBe(15);
    expect(index.SSH_STRICT_KEX_S).toBe("kex-strict-s-v00@openssh.com");
    expect(index.SSH_STRICT_KEX_C).toBe("kex-strict-c-v00@openssh.com");
    expect(index.SSH2_AGENTC_SIGN_REQUEST).toBe(13);
  });

  it("stated name lengths agree with the names", () => {
    expect(index.SSH_SERVICE_USERAUTH.length).toBe(index.SSH_SERVICE_USERAUTH_LEN);
    expect(index.SSH_SERVICE_CONNECTION.length).toBe(index.SSH_SERVICE_CONNECTION_LEN);
    expect(index.SSH_SIGNKEY_DSS.length).toBe(index.SSH_SIGNKEY_DSS_LEN);
    expect(index.SSH_SIGNKEY_RSA.length).toBe(index.SSH_SIGNKEY_RSA_LEN);
    expect(index.SSH_SIGNKEY_ED25519.length).toBe(index.SSH_SIGNKEY_ED25519_LEN);
  });
});

describe("completeness against the headers' #define lists", () => {
  for (const [header, mod] of Object.entries(modules)) {
    const listed = fixture[header as keyof typeof modules];
    const exported = new Set(Object.keys(mod));

    it(`${header}: every mirrored #define is exported from its file and from the index`, () => {
      expect(listed.filter((name) => !exported.has(name))).toEqual([]);
      expect(listed.filter((name) => !(name in index))).toEqual([]);
    });

    it(`${header}: the file exports nothing that is not in the header`, () => {
      const known = new Set(listed);
      expect([...exported].filter((name) => !known.has(name))).toEqual([]);
    });

    it(`${header}: skipped names are not also mirrored from it`, () => {
      const skipped = fixture.skipped.filter((s) => s.header === header).map((s) => s.name);
      expect(skipped.filter((name) => listed.includes(name))).toEqual([]);
    });
  }

  it("every skipped name carries a reason", () => {
    for (const s of fixture.skipped) {
      expect(s.reason.length, s.name).toBeGreaterThan(0);
      expect(Object.keys(modules)).toContain(s.header);
    }
  });
});
