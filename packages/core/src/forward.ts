// listenaddr stays null when the command line gave none: cli-tcpfwd chooses "localhost", or ""
// with -g, when it sets the forward up, as Dropbear does.
/** One -L or -R request from the command line. @dropbear forward.h TCPFwdEntry */
export class TCPFwdEntry {
  connectaddr: string | null = null;
  connectport = 0;
  listenaddr: string | null = null;
  listenport = 0;
  /** Set once the server answered the tcpip-forward request for this entry. */
  have_reply = false;
}
