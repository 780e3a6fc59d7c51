package testnet

import (
	"bytes"
	"context"
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
	Curl Tool = iota // curl(1)
	LFTP             // lftp(1)
)

// Tools lists every Tool.
var Tools = []Tool{Curl, LFTP}

func (t Tool) String() string {
	switch t {
	case Curl:
		return "curl"
	case LFTP:
		return "lftp"
	}
	return "tool(" + strconv.Itoa(int(t)) + ")"
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
// sends EPRT only for IPv6 data addresses, so it cannot do EPRT here.
func (t Tool) Supports(m Mode) bool {
	return !(t == LFTP && m == EPRT)
}

// FetchSpec is one download.
type FetchSpec struct {
	NS   string // namespace the client runs in
	Tool Tool
	Mode Mode
	URL  string // ftp://host:port/path
	Dst  string // local file to write
	// ConnectTimeout bounds each TCP connect (control and data); zero
	// means 10 s. Tests that expect a failure use a short one.
	ConnectTimeout time.Duration
	// Timeout bounds the whole run; zero means 60 s.
	Timeout time.Duration
	// Quote are raw commands the client sends after logging in and before
	// the transfer (curl -Q, lftp quote); curl fails when one gets a reply
	// of 400 or more. Commands of the mode's verb among them do not count
	// against the one the transfer must use.
	Quote []string
	// CurlArgs are extra curl arguments; LFTPSet extra lftp settings, as
	// "NAME VALUE" (each becomes "set NAME VALUE").
	CurlArgs []string
	LFTPSet  []string
}

// FetchResult is what a download did.
type FetchResult struct {
	SHA256 string // of Dst, when the client succeeded
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
func (r FetchResult) Reply(code string) string {
	for _, l := range r.Received {
		if strings.HasPrefix(l, code+" ") || strings.HasPrefix(l, code+"-") {
			return l
		}
	}
	return ""
}

// Fetch downloads spec.URL with spec.Tool in spec.Mode, once: the clients
// are told not to retry, so success means the first try worked. It checks
// that the transfer used the requested data-connection command exactly
// once, no fallback, and one RETR (ErrModeNotUsed otherwise). A failing
// client yields an error that quotes its debug output; the result is
// filled in as far as the run got either way.
func Fetch(ctx context.Context, spec FetchSpec) (FetchResult, error) {
	var res FetchResult
	if !spec.Tool.Supports(spec.Mode) {
		return res, fmt.Errorf("%s %s: %w", spec.Tool, spec.Mode, ErrModeUnsupported)
	}
	if err := CheckTools(spec.Tool.String()); err != nil {
		return res, err
	}
	if spec.Timeout == 0 {
		spec.Timeout = 60 * time.Second
	}
	if spec.ConnectTimeout == 0 {
		spec.ConnectTimeout = 10 * time.Second
	}
	args, err := clientArgs(spec)
	if err != nil {
		return res, err
	}
	_ = os.Remove(spec.Dst)
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	cmd := Command(ctx, spec.NS, spec.Tool.String(), args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	runErr := cmd.Run()
	res.Elapsed = time.Since(start)
	res.Transcript = out.String()
	res.Sent, res.Received = parseTranscript(spec.Tool, res.Transcript)
	what := fmt.Sprintf("%s %s %s from %s", spec.Tool, spec.Mode, spec.URL, spec.NS)
	if runErr != nil {
		return res, fmt.Errorf("%s: %w\n%s", what, runErr, tail(res.Transcript, 4096))
	}
	if err := checkMode(res, spec.Mode, spec.Quote); err != nil {
		return res, fmt.Errorf("%s: %w\n%s", what, err, tail(res.Transcript, 4096))
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
// (besides the quoted commands), never its fallback, and retrieved exactly
// once.
func checkMode(res FetchResult, mode Mode, quote []string) error {
	quoted := FetchResult{Sent: quote}.Count(mode.String())
	if n := res.Count(mode.String()) - quoted; n != 1 {
		return fmt.Errorf("%w: %d %s commands sent", ErrModeNotUsed, n, mode)
	}
	if n := res.Count(mode.fallback()) - (FetchResult{Sent: quote}).Count(mode.fallback()); n != 0 {
		return fmt.Errorf("%w: fell back to %s", ErrModeNotUsed, mode.fallback())
	}
	if n := res.Count("RETR"); n != 1 {
		return fmt.Errorf("%w: %d RETR commands sent (retried?)", ErrModeNotUsed, n)
	}
	return nil
}

// clientArgs returns the command-line arguments of spec.Tool.
func clientArgs(spec FetchSpec) ([]string, error) {
	secs := func(d time.Duration) string {
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	}
	switch spec.Tool {
	case Curl:
		args := []string{
			"--silent", "--show-error", "--verbose",
			// curl ≥ 7.74 ignores the address in a 227 reply and reuses
			// the control connection's; we want the 227 to matter.
			"--no-ftp-skip-pasv-ip",
			"--connect-timeout", secs(spec.ConnectTimeout),
			"--max-time", secs(spec.Timeout),
			"--output", spec.Dst,
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
			return nil, fmt.Errorf("curl: %w: %s", ErrModeUnsupported, spec.Mode)
		}
		for _, q := range spec.Quote {
			args = append(args, "--quote", q)
		}
		args = append(args, spec.CurlArgs...)
		return append(args, spec.URL), nil
	case LFTP:
		u, err := url.Parse(spec.URL)
		if err != nil || u.Scheme != "ftp" || u.Host == "" {
			return nil, fmt.Errorf("lftp: bad url %q", spec.URL)
		}
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
		script = append(script, "get "+lftpQuote(u.Path)+" -o "+lftpQuote(spec.Dst))
		return []string{"-c", strings.Join(script, "; ")}, nil
	}
	return nil, fmt.Errorf("%w: unknown tool %v", ErrMissingTool, spec.Tool)
}

// lftpQuote quotes s for lftp's command parser.
func lftpQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// parseTranscript extracts the FTP commands sent and replies received from
// a client's debug output: curl -v marks them "> " and "< ", lftp's debug
// "---> " and "<--- ". Line ends (CR) are trimmed.
func parseTranscript(tool Tool, s string) (sent, received []string) {
	out, in := "> ", "< "
	if tool == LFTP {
		out, in = "---> ", "<--- "
	}
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		if c, ok := strings.CutPrefix(line, out); ok {
			sent = append(sent, strings.TrimRight(c, "\r"))
		} else if r, ok := strings.CutPrefix(line, in); ok {
			received = append(received, strings.TrimRight(r, "\r"))
		}
	}
	return sent, received
}
