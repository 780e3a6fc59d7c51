package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Tool is an FTP client program.
type Tool uint8

// The FTP clients Fetch can drive.
const (
	Curl    Tool = iota // curl(1)
	LFTP                // lftp(1)
	Wget                // wget(1): PASV and PORT, downloads only
	TNFTP               // tnftp(1), NetBSD's ftp, driven by a script on its input
	NcFTP               // ncftpget(1) and ncftpput(1): PASV and PORT
	FTPLib              // Python's ftplib, by a short script
	Busybox             // busybox ftpget and ftpput: EPSV only
)

// Tools lists the clients the ALG's edge tests drive: the ones that take
// FetchSpec.Quote and their own extra arguments.
var Tools = []Tool{Curl, LFTP}

// AllTools lists every Tool, for the interoperability matrix.
var AllTools = []Tool{Curl, LFTP, Wget, TNFTP, NcFTP, FTPLib, Busybox}

func (t Tool) String() string {
	switch t {
	case Curl:
		return "curl"
	case LFTP:
		return "lftp"
	case Wget:
		return "wget"
	case TNFTP:
		return "tnftp"
	case NcFTP:
		return "ncftp"
	case FTPLib:
		return "ftplib"
	case Busybox:
		return "busybox"
	}
	return "tool(" + strconv.Itoa(int(t)) + ")"
}

// program is the executable that runs t for a download or an upload.
func (t Tool) program(upload bool) string {
	switch t {
	case NcFTP:
		if upload {
			return "ncftpput"
		}
		return "ncftpget"
	case FTPLib:
		return "python3"
	}
	return t.String()
}

// Mode is how an FTP data connection is set up.
type Mode uint8

// The four data-connection commands an FTP ALG must handle.
const (
	PASV Mode = iota // passive, RFC 959: "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)"
	EPSV             // extended passive, RFC 2428: "229 Entering Extended Passive Mode (|||port|)"
	PORT             // active, RFC 959: "PORT h1,h2,h3,h4,p1,p2"
	EPRT             // extended active, RFC 2428: "EPRT |1|addr|port|"
)

// Modes lists every Mode.
var Modes = []Mode{PASV, EPSV, PORT, EPRT}

func (m Mode) String() string {
	switch m {
	case PASV:
		return "PASV"
	case EPSV:
		return "EPSV"
	case PORT:
		return "PORT"
	case EPRT:
		return "EPRT"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Passive reports whether the client opens the data connection.
func (m Mode) Passive() bool { return m == PASV || m == EPSV }

// fallback is the command a client falls back to when m fails; seeing it
// in a transcript means the transfer did not test m alone.
func (m Mode) fallback() string {
	switch m {
	case PASV:
		return "EPSV"
	case EPSV:
		return "PASV"
	case PORT:
		return "EPRT"
	case EPRT:
		return "PORT"
	}
	return ""
}

// Supports reports whether tool can be made to use mode over IPv4. lftp
// sends EPRT only for IPv6 data addresses, so it cannot do EPRT here;
// wget and ncftp speak EPSV and EPRT only over IPv6; busybox always asks
// EPSV first (and PASV only after a refusal).
func (t Tool) Supports(m Mode) bool {
	switch t {
	case LFTP:
		return m != EPRT
	case Wget, NcFTP:
		return m == PASV || m == PORT
	case Busybox:
		return m == EPSV
	}
	return true
}

// CanUpload reports whether tool can store a file on the server.
func (t Tool) CanUpload() bool { return t != Wget }

// FetchSpec is one download, or with Src one upload.
type FetchSpec struct {
	NS   string // namespace the client runs in
	Tool Tool
	Mode Mode
	URL  string // ftp://host:port/path
	Dst  string // local file to write
	// Src, when set, is a local file to store (STOR) as URL's path
	// instead of downloading; Dst is then unused.
	Src string
	// ConnectTimeout bounds each TCP connect (control and data); zero
	// means 10 s. Tests that expect a failure use a short one.
	ConnectTimeout time.Duration
	// Timeout bounds the whole run; zero means 60 s.
	Timeout time.Duration
	// Quote are raw commands the client sends after logging in and before
	// the transfer (curl -Q, lftp quote; the other clients take none);
	// curl fails when one gets a reply of 400 or more. Commands of the
	// mode's verb among them do not count against the one the transfer
	// must use.
	Quote []string
	// CurlArgs are extra curl arguments; LFTPSet extra lftp settings, as
	// "NAME VALUE" (each becomes "set NAME VALUE").
	CurlArgs []string
	LFTPSet  []string
}

// verb is the transfer command of the spec.
func (s FetchSpec) verb() string {
	if s.Src != "" {
		return "STOR"
	}
	return "RETR"
}

// FetchResult is what a download or upload did.
type FetchResult struct {
	SHA256 string // of Dst, when a download succeeded
	Size   int64
	// Sent and Received are the FTP commands the client sent and the
	// replies it got, in order, as its debug output shows them.
	Sent, Received []string
	Transcript     string // the client's complete debug output
	Elapsed        time.Duration
}

// Count returns how many commands with verb were sent.
func (r FetchResult) Count(verb string) int {
	n := 0
	for _, c := range r.Sent {
		if v, _, _ := strings.Cut(c, " "); strings.EqualFold(v, verb) {
			n++
		}
	}
	return n
}

// Reply returns the first reply with the given code ("227"), or "".
// ncftp logs a reply's code with a colon ("227: Entering ...").
func (r FetchResult) Reply(code string) string {
	for _, l := range r.Received {
		if rest, ok := strings.CutPrefix(l, code); ok && rest != "" && strings.ContainsRune(" -:", rune(rest[0])) {
			return l
		}
	}
	return ""
}

// Fetch downloads spec.URL with spec.Tool in spec.Mode, or uploads
// spec.Src to it, once: the clients are told not to retry, so success
// means the first try worked. It checks that the transfer used the
// requested data-connection command exactly once, no fallback, and one
// RETR or STOR (ErrModeNotUsed otherwise). A failing client yields an
// error that quotes its debug output; the result is filled in as far as
// the run got either way.
func Fetch(ctx context.Context, spec FetchSpec) (FetchResult, error) {
	var res FetchResult
	if !spec.Tool.Supports(spec.Mode) {
		return res, fmt.Errorf("%s %s: %w", spec.Tool, spec.Mode, ErrModeUnsupported)
	}
	if spec.Src != "" && !spec.Tool.CanUpload() {
		return res, fmt.Errorf("%s upload: %w", spec.Tool, ErrModeUnsupported)
	}
	if err := CheckTools(spec.Tool.program(spec.Src != "")); err != nil {
		return res, err
	}
	if spec.Timeout == 0 {
		spec.Timeout = 60 * time.Second
	}
	if spec.ConnectTimeout == 0 {
		spec.ConnectTimeout = 10 * time.Second
	}
	inv, err := clientCommand(spec)
	if err != nil {
		return res, err
	}
	if spec.Src == "" {
		_ = os.Remove(spec.Dst)
	}
	if inv.log != "" {
		defer os.Remove(inv.log)
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	cmd := Command(ctx, spec.NS, inv.prog, inv.args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if inv.stdin != "" {
		cmd.Stdin = strings.NewReader(inv.stdin)
	}
	start := time.Now()
	runErr := cmd.Run()
	res.Elapsed = time.Since(start)
	res.Transcript = out.String()
	if inv.log != "" {
		b, err := os.ReadFile(inv.log)
		if err != nil && runErr == nil {
			runErr = err
		}
		res.Transcript += string(b)
	}
	res.Sent, res.Received = parseTranscript(spec.Tool, res.Transcript)
	what := fmt.Sprintf("%s %s %s %s from %s", spec.Tool, spec.Mode, spec.verb(), spec.URL, spec.NS)
	if runErr == nil && inv.failed != nil {
		runErr = inv.failed(res)
	}
	if runErr != nil {
		return res, fmt.Errorf("%s: %w\n%s", what, runErr, tail(res.Transcript, 4096))
	}
	if err := checkMode(res, spec.Mode, spec.verb(), spec.Quote); err != nil {
		return res, fmt.Errorf("%s: %w\n%s", what, err, tail(res.Transcript, 4096))
	}
	if spec.Src != "" {
		return res, nil
	}
	res.SHA256, res.Size, err = FileSHA256(spec.Dst)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

// FetchCheck is Fetch followed by a comparison with the expected sha256
// (ErrChecksum on mismatch).
func FetchCheck(ctx context.Context, spec FetchSpec, sha256 string) (FetchResult, error) {
	res, err := Fetch(ctx, spec)
	if err != nil {
		return res, err
	}
	if res.SHA256 != sha256 {
		return res, fmt.Errorf("%s %s %s: got %s (%d bytes), want %s: %w",
			spec.Tool, spec.Mode, spec.URL, res.SHA256, res.Size, sha256, ErrChecksum)
	}
	return res, nil
}

// checkMode verifies that a successful transfer used mode exactly once
// (besides the quoted commands), never its fallback, and sent its
// transfer command verb (RETR or STOR) exactly once.
func checkMode(res FetchResult, mode Mode, verb string, quote []string) error {
	quoted := FetchResult{Sent: quote}.Count(mode.String())
	if n := res.Count(mode.String()) - quoted; n != 1 {
		return fmt.Errorf("%w: %d %s commands sent", ErrModeNotUsed, n, mode)
	}
	if n := res.Count(mode.fallback()) - (FetchResult{Sent: quote}).Count(mode.fallback()); n != 0 {
		return fmt.Errorf("%w: fell back to %s", ErrModeNotUsed, mode.fallback())
	}
	if n := res.Count(verb); n != 1 {
		return fmt.Errorf("%w: %d %s commands sent (retried?)", ErrModeNotUsed, n, verb)
	}
	return nil
}

// invocation is how to run one client for one transfer.
type invocation struct {
	prog  string
	args  []string
	stdin string // the script of a client driven by its input
	// log is a file the client writes its protocol log to, appended to
	// its output after the run ("" when its output has it).
	log string
	// failed, when set, tells from the transcript whether a client whose
	// exit status does not say so failed.
	failed func(FetchResult) error
}

// clientCommand returns how to run spec.Tool for spec.
func clientCommand(spec FetchSpec) (invocation, error) {
	secs := func(d time.Duration) string {
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	}
	u, err := url.Parse(spec.URL)
	if err != nil || u.Scheme != "ftp" || u.Hostname() == "" {
		return invocation{}, fmt.Errorf("%s: bad url %q", spec.Tool, spec.URL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "21"
	}
	path := strings.TrimPrefix(u.Path, "/")
	if spec.Tool != Curl && spec.Tool != LFTP && (len(spec.Quote) > 0 || len(spec.CurlArgs) > 0 || len(spec.LFTPSet) > 0) {
		return invocation{}, fmt.Errorf("%s: quoted commands and extra arguments are for curl and lftp", spec.Tool)
	}
	inv := invocation{prog: spec.Tool.program(spec.Src != "")}
	switch spec.Tool {
	case Curl:
		args := []string{
			"--silent", "--show-error", "--verbose",
			// curl ≥ 7.74 ignores the address in a 227 reply and reuses
			// the control connection's; we want the 227 to matter.
			"--no-ftp-skip-pasv-ip",
			"--connect-timeout", secs(spec.ConnectTimeout),
			"--max-time", secs(spec.Timeout),
		}
		if spec.Src != "" {
			args = append(args, "--upload-file", spec.Src)
		} else {
			args = append(args, "--output", spec.Dst)
		}
		switch spec.Mode {
		case PASV:
			args = append(args, "--ftp-pasv", "--disable-epsv")
		case EPSV:
			args = append(args, "--ftp-pasv", "--epsv")
		case PORT:
			// "-": listen on the control connection's local address.
			args = append(args, "--ftp-port", "-", "--disable-eprt")
		case EPRT:
			args = append(args, "--ftp-port", "-", "--eprt")
		default:
			return inv, fmt.Errorf("curl: %w: %s", ErrModeUnsupported, spec.Mode)
		}
		for _, q := range spec.Quote {
			args = append(args, "--quote", q)
		}
		args = append(args, spec.CurlArgs...)
		inv.args = append(args, spec.URL)
	case LFTP:
		onOff := func(b bool) string {
			if b {
				return "on"
			}
			return "off"
		}
		script := []string{
			"debug 5",
			"set cmd:fail-exit yes",
			// First try only.
			"set net:max-retries 1",
			"set net:persist-retries 0",
			"set net:reconnect-interval-base 1",
			"set net:timeout " + secs(spec.ConnectTimeout),
			"set ftp:ssl-allow no",
			"set ftp:passive-mode " + onOff(spec.Mode.Passive()),
			"set ftp:prefer-epsv " + onOff(spec.Mode == EPSV),
			// lftp would otherwise "fix" a 227 naming a private address
			// by substituting the server's; we want the 227 to matter.
			"set ftp:fix-pasv-address no",
			"set ftp:ignore-pasv-address no",
			"set xfer:clobber on",
		}
		for _, set := range spec.LFTPSet {
			script = append(script, "set "+set)
		}
		script = append(script, "open "+lftpQuote("ftp://"+u.Host))
		for _, q := range spec.Quote {
			script = append(script, "quote "+q)
		}
		if spec.Src != "" {
			script = append(script, "put "+lftpQuote(spec.Src)+" -o "+lftpQuote(u.Path))
		} else {
			script = append(script, "get "+lftpQuote(u.Path)+" -o "+lftpQuote(spec.Dst))
		}
		inv.args = []string{"-c", strings.Join(script, "; ")}
	case Wget:
		// -d prints every command; --tries=1: first try only.
		inv.args = []string{"--no-config", "-d", "--tries=1", "--timeout=" + secs(spec.ConnectTimeout), "-O", spec.Dst}
		if spec.Mode == PORT {
			inv.args = append(inv.args, "--no-passive-ftp")
		}
		inv.args = append(inv.args, spec.URL)
	case TNFTP:
		// -n no auto-login, -v print replies, -q quit a stalled transfer;
		// debug prints every command; epsv4 chooses EPSV/EPRT over
		// PASV/PORT for IPv4.
		onOff := map[bool]string{true: "on", false: "off"}
		inv.args = []string{"-n", "-v", "-q", secs(spec.Timeout)}
		script := []string{"debug", "open " + host + " " + port, "user anonymous fastnat@", "binary",
			"passive " + onOff[spec.Mode.Passive()], "epsv4 " + onOff[spec.Mode == EPSV || spec.Mode == EPRT]}
		if spec.Src != "" {
			script = append(script, "put "+spec.Src+" "+path)
		} else {
			script = append(script, "get "+path+" "+spec.Dst)
		}
		inv.stdin = strings.Join(append(script, "quit"), "\n") + "\n"
		// tnftp reading a script exits 0 whatever happened.
		inv.failed = func(r FetchResult) error {
			if r.Reply("226") == "" && r.Reply("250") == "" {
				return errors.New("no transfer-complete reply")
			}
			return nil
		}
	case NcFTP:
		log, err := tempName("ncftp-log-")
		if err != nil {
			return inv, err
		}
		inv.log = log
		inv.args = []string{"-V", "-t", secs(spec.ConnectTimeout), "-d", log, "-P", port, "-F"}
		if spec.Mode == PORT {
			inv.args[len(inv.args)-1] = "-E"
		}
		if spec.Src != "" {
			inv.args = append(inv.args, "-C", host, spec.Src, path)
		} else {
			inv.args = append(inv.args, "-C", host, path, spec.Dst)
		}
	case FTPLib:
		op, local := "get", spec.Dst
		if spec.Src != "" {
			op, local = "put", spec.Src
		}
		inv.args = []string{"-c", ftplibScript, spec.Mode.String(), host, port, op, path, local, secs(spec.ConnectTimeout)}
	case Busybox:
		// -v prints every command.
		if spec.Src != "" {
			inv.args = []string{"ftpput", "-v", "-P", port, host, path, spec.Src}
		} else {
			inv.args = []string{"ftpget", "-v", "-P", port, host, spec.Dst, path}
		}
	default:
		return inv, fmt.Errorf("%w: unknown tool %v", ErrMissingTool, spec.Tool)
	}
	return inv, nil
}

// ftplibScript drives Python's ftplib in one of the four modes: PASV and
// PORT are its own (trusting the 227's address, which by default it
// ignores), EPSV and EPRT replace how it makes the data connection, which
// for IPv4 would be PASV and PORT. Debug level 1 prints every command and
// reply.
const ftplibScript = `import ftplib, socket, sys
mode, host, port, op, remote, local, timeout = sys.argv[1:8]
class Client(ftplib.FTP):
    def makepasv(self):
        if mode == "EPSV":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return ftplib.parse227(self.sendcmd("PASV"))
    def makeport(self):
        sock = socket.create_server((self.sock.getsockname()[0], 0), backlog=1)
        h, p = sock.getsockname()[:2]
        if mode == "EPRT":
            self.sendeprt(h, p)
        else:
            self.sendport(h, p)
        sock.settimeout(self.timeout)
        return sock
ftp = Client(timeout=float(timeout))
ftp.set_debuglevel(1)
ftp.connect(host, int(port))
ftp.login()
ftp.set_pasv(mode in ("PASV", "EPSV"))
if op == "get":
    with open(local, "wb") as f:
        ftp.retrbinary("RETR " + remote, f.write)
else:
    with open(local, "rb") as f:
        ftp.storbinary("STOR " + remote, f)
ftp.quit()
`

// tempName returns the name of a new empty file in the temporary
// directory.
func tempName(prefix string) (string, error) {
	f, err := os.CreateTemp("", prefix)
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), nil
}

// lftpQuote quotes s for lftp's command parser.
func lftpQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// parseTranscript extracts the FTP commands sent and replies received from
// a client's debug output, line ends (CR) trimmed. curl -v marks them "> "
// and "< ", lftp's debug "---> " and "<--- ", Python's ftplib "*cmd* '…'"
// and "*resp* '…'", ncftp's log "Cmd: " and "NNN: " after a time stamp.
// wget -d marks commands "--> ", tnftp's debug "---> ", and both print
// replies bare; busybox -v prints "ftpget: cmd VERB ARG" (a missing
// argument as "(null)") and no replies.
func parseTranscript(tool Tool, s string) (sent, received []string) {
	out, in := "> ", "< "
	switch tool {
	case LFTP:
		out, in = "---> ", "<--- "
	case Wget:
		out, in = "--> ", ""
	case TNFTP:
		out, in = "---> ", ""
	}
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		switch tool {
		case FTPLib:
			if c, ok := strings.CutPrefix(line, "*cmd* "); ok {
				sent = append(sent, unquotePy(c))
			} else if r, ok := strings.CutPrefix(line, "*resp* "); ok {
				received = append(received, unquotePy(r))
			}
			continue
		case NcFTP:
			// "2026-12-03 12:22:29  Cmd: PASV", "2026-12-03 12:22:29  227: Entering ..."
			if len(line) < 21 || line[4] != '-' || line[19:21] != "  " {
				continue
			}
			l := line[21:]
			if c, ok := strings.CutPrefix(l, "Cmd: "); ok {
				sent = append(sent, c)
			} else if isReply(l, ':') {
				received = append(received, l)
			}
			continue
		case Busybox:
			_, c, ok := strings.Cut(line, ": cmd ")
			if !ok || (!strings.HasPrefix(line, "ftpget:") && !strings.HasPrefix(line, "ftpput:")) {
				continue
			}
			for {
				t, ok := strings.CutSuffix(c, " (null)")
				if !ok {
					break
				}
				c = t
			}
			if c != "" && c != "(null)" {
				sent = append(sent, c)
			}
			continue
		}
		if c, ok := strings.CutPrefix(line, out); ok {
			sent = append(sent, strings.TrimRight(c, "\r"))
		} else if in != "" {
			if r, ok := strings.CutPrefix(line, in); ok {
				received = append(received, strings.TrimRight(r, "\r"))
			}
		} else if isReply(line, ' ') || isReply(line, '-') {
			received = append(received, line)
		}
	}
	return sent, received
}

// isReply reports whether line starts as an FTP reply does: three digits
// and then sep.
func isReply(line string, sep byte) bool {
	return len(line) >= 4 && line[3] == sep && line[0] >= '1' && line[0] <= '5' &&
		line[1] >= '0' && line[1] <= '9' && line[2] >= '0' && line[2] <= '9'
}

// unquotePy strips the quotes of a Python repr() of a string.
func unquotePy(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}
