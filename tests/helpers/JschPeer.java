// JSch (Debian's libjsch-java, 0.1.5x: the SSH of Ant, older Jenkins and Eclipse) as a client of
// our dropbear, for tests/interop-jsch.test.ts, which compiles it.
//
//   java -cp jsch.jar:DIR JschPeer PORT USER KNOWN_HOSTS MODE ARG
//
// Logs in with the password in JSCH_PASSWORD, the host key checked against KNOWN_HOSTS. MODE
// exec runs ARG with our stdin as its input, its stdout and stderr to ours, and exits with its
// status; sftp-get writes the file ARG to stdout; sftp-put stores stdin as the file ARG.
// JSCH_KEX, JSCH_CIPHER and JSCH_MAC, when set, are the one algorithm of each kind offered.
// Errors go to stderr and exit 255.
import com.jcraft.jsch.ChannelExec;
import com.jcraft.jsch.ChannelSftp;
import com.jcraft.jsch.JSch;
import com.jcraft.jsch.Session;
import java.io.InputStream;
import java.io.OutputStream;

public class JschPeer {
    public static void main(String[] args) {
        try {
            System.exit(run(args));
        } catch (Exception e) {
            System.err.println("JschPeer: " + e);
            System.exit(255);
        }
    }

    static void offer(Session s, String env, String... keys) {
        String v = System.getenv(env);
        if (v != null && !v.isEmpty()) {
            for (String k : keys) s.setConfig(k, v);
        }
    }

    static int run(String[] args) throws Exception {
        JSch jsch = new JSch();
        jsch.setKnownHosts(args[2]);
        Session s = jsch.getSession(args[1], "127.0.0.1", Integer.parseInt(args[0]));
        s.setPassword(System.getenv("JSCH_PASSWORD"));
        s.setConfig("StrictHostKeyChecking", "yes");
        s.setConfig("PreferredAuthentications", "password");
        // Our server's host key type: JSch 0.1.5x verifies RSA host keys only with SHA-1, which
        // Dropbear 2026.94 does not sign with.
        s.setConfig("server_host_key", "ecdsa-sha2-nistp256");
        offer(s, "JSCH_KEX", "kex");
        offer(s, "JSCH_CIPHER", "cipher.c2s", "cipher.s2c");
        offer(s, "JSCH_MAC", "mac.c2s", "mac.s2c");
        s.connect(20000);
        int status = 0;
        switch (args[3]) {
            case "exec": {
                ChannelExec ch = (ChannelExec) s.openChannel("exec");
                ch.setCommand(args[4]);
                ch.setErrStream(System.err, true);
                InputStream out = ch.getInputStream();
                OutputStream in = ch.getOutputStream();
                ch.connect(20000);
                Thread feeder = new Thread(() -> {
                    try {
                        System.in.transferTo(in);
                        in.close();
                    } catch (Exception e) {
                        // The command ended without reading all of it: nothing to do.
                    }
                });
                feeder.start();
                out.transferTo(System.out);
                System.out.flush();
                while (!ch.isClosed()) Thread.sleep(10);
                status = ch.getExitStatus();
                ch.disconnect();
                break;
            }
            case "sftp-get": {
                ChannelSftp sftp = (ChannelSftp) s.openChannel("sftp");
                sftp.connect(20000);
                sftp.get(args[4], System.out);
                System.out.flush();
                sftp.disconnect();
                break;
            }
            case "sftp-put": {
                ChannelSftp sftp = (ChannelSftp) s.openChannel("sftp");
                sftp.connect(20000);
                sftp.put(System.in, args[4]);
                sftp.disconnect();
                break;
            }
            default:
                throw new IllegalArgumentException("no mode " + args[3]);
        }
        s.disconnect();
        return status;
    }
}
