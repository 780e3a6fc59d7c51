package testnet

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClientArgs(t *testing.T) {
	base := FetchSpec{URL: "ftp://198.18.0.204:9091/dir/payload.bin", Dst: "/tmp/x y", ConnectTimeout: 2 * time.Second, Timeout: 30 * time.Second}
	cases := []struct {
		name    string
		tool    Tool
		mode    Mode
		want    []string // must appear (as args for curl, as script parts for lftp)
		notWant []string
	}{
		{"curl PASV", Curl, PASV, []string{"--ftp-pasv", "--disable-epsv", "--no-ftp-skip-pasv-ip"}, []string{"--ftp-port", "--retry"}},
		{"curl EPSV", Curl, EPSV, []string{"--ftp-pasv", "--epsv"}, []string{"--disable-epsv", "--ftp-port"}},
		{"curl PORT", Curl, PORT, []string{"--ftp-port", "--disable-eprt"}, []string{"--ftp-pasv", "--eprt"}},
		{"curl EPRT", Curl, EPRT, []string{"--ftp-port", "--eprt"}, []string{"--ftp-pasv", "--disable-eprt"}},
		{"lftp PASV", LFTP, PASV, []string{"set ftp:passive-mode on", "set ftp:prefer-epsv off", "set net:max-retries 1", "set ftp:fix-pasv-address no", `get "/dir/payload.bin" -o "/tmp/x y"`, `open "ftp://198.18.0.204:9091"`, "set net:timeout 2"}, nil},
		{"lftp EPSV", LFTP, EPSV, []string{"set ftp:passive-mode on", "set ftp:prefer-epsv on"}, nil},
		{"lftp PORT", LFTP, PORT, []string{"set ftp:passive-mode off"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := base
			spec.Tool, spec.Mode = c.tool, c.mode
			inv, err := clientCommand(spec)
			if err != nil {
				t.Fatal(err)
			}
			args := inv.args
			var parts []string
			if c.tool == Curl {
				parts = args
				if args[len(args)-1] != spec.URL {
					t.Errorf("url not last: %q", args)
				}
			} else {
				if len(args) != 2 || args[0] != "-c" {
					t.Fatalf("lftp args %q", args)
				}
				parts = strings.Split(args[1], "; ")
			}
			for _, w := range c.want {
				if !slices.Contains(parts, w) {
					t.Errorf("missing %q in %q", w, parts)
				}
			}
			for _, w := range c.notWant {
				if slices.Contains(parts, w) {
					t.Errorf("unexpected %q in %q", w, parts)
				}
			}
		})
	}
}

func TestFetchRefusesUnsupportedMode(t *testing.T) {
	_, err := Fetch(t.Context(), FetchSpec{NS: "none", Tool: LFTP, Mode: EPRT, URL: "ftp://h/f", Dst: "/dev/null"})
	if !errors.Is(err, ErrModeUnsupported) {
		t.Fatalf("got %v, want ErrModeUnsupported", err)
	}
}

func TestLFTPQuote(t *testing.T) {
	if got, want := lftpQuote(`a "b" \c`), `"a \"b\" \\c"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Transcripts as curl 7.88 and lftp 4.9 print them.
const (
	curlTranscript = "*   Trying 198.18.0.204:9091...\r\n" +
		"* Connected to 198.18.0.204 (198.18.0.204) port 9091 (#0)\r\n" +
		"< 220 (vsFTPd 3.0.3)\r\n" +
		"> USER anonymous\r\n" +
		"< 230 Login successful.\r\n" +
		"> PASV\r\n" +
		"* Connect data stream passively\r\n" +
		"< 227 Entering Passive Mode (198,18,0,204,117,54).\r\n" +
		"> RETR payload.bin\r\n" +
		"< 150 Opening BINARY mode data connection\r\n"
	lftpTranscript = "---- Connecting to 198.18.0.204 (198.18.0.204) port 9091\n" +
		"<--- 220 (vsFTPd 3.0.3)\n" +
		"---> USER anonymous\n" +
		"<--- 230 Login successful.\n" +
		"---> EPSV\n" +
		"<--- 229 Entering Extended Passive Mode (|||30001|)\n" +
		"---> RETR payload.bin\n"
)

// Transcripts as wget 1.21, tnftp 20210827, ncftp 3.2.6, Python 3.11's
// ftplib and busybox 1.35 print them (shortened).
const (
	wgetTranscript = "Connecting to 127.0.0.1:2021... connected.\n" +
		"220 pyftpdlib 1.5.7 ready.\n" +
		"Logging in as anonymous ... \n" +
		"--> USER anonymous\r\n\n" +
		"331 Username ok, send password.\n" +
		"--> PASS -wget@\r\n\n" +
		"==> SIZE f.bin ... \n" +
		"--> SIZE f.bin\r\n\n" +
		"213 100000\n" +
		"100000\n" +
		"--> PASV\r\n\n" +
		"227 Entering passive mode (127,0,0,1,117,86).\n" +
		"--> RETR f.bin\r\n\n" +
		"     0K .......... .......... 51% 64.0M 0s\n" +
		"226 Transfer complete.\n"
	tnftpTranscript = "220 pyftpdlib 1.5.7 ready.\n" +
		"EPSV/EPRT on IPv4 on.\n" +
		"---> EPRT |1|10.77.0.5|50043|\n" +
		"200 Active data connection established.\n" +
		"---> RETR f.bin\n" +
		"100000 bytes received in 00:00 (215.27 MiB/s)\n" +
		"226 Transfer complete.\n"
	ncftpTranscript = "2026-12-03 12:22:29  220: pyftpdlib 1.5.7 ready.\n" +
		"2026-12-03 12:22:29  Connected to 127.0.0.1.\n" +
		"2026-12-03 12:22:29  Cmd: USER anonymous\n" +
		"2026-12-03 12:22:29  331: Username ok, send password.\n" +
		"2026-12-03 12:22:29  211: Features supported:\n" +
		"2026-12-03 12:22:29        EPRT\n" +
		"2026-12-03 12:22:29  Cmd: PORT 127,0,0,1,207,209\n" +
		"2026-12-03 12:22:29  200: Active data connection established.\n" +
		"2026-12-03 12:22:29  Cmd: RETR f.bin\n" +
		"2026-12-03 12:22:29  226: Transfer complete.\n"
	ftplibTranscript = "*get* '220 (vsFTPd 3.0.3)\\r\\n'\n" +
		"*resp* '220 (vsFTPd 3.0.3)'\n" +
		"*cmd* 'USER anonymous'\n" +
		"*resp* '257 \"/\" is the current directory'\n" +
		"*cmd* 'EPSV'\n" +
		"*resp* '229 Entering Extended Passive Mode (|||30001|)'\n" +
		"*cmd* 'RETR f.bin'\n" +
		"*resp* '226 Transfer complete.'\n"
	busyboxTranscript = "Connecting to 127.0.0.1 (127.0.0.1:2021)\n" +
		"ftpput: cmd (null) (null)\n" +
		"ftpput: cmd USER anonymous\n" +
		"ftpput: cmd PASS busybox\n" +
		"ftpput: cmd TYPE I (null)\n" +
		"ftpput: cmd EPSV (null)\n" +
		"ftpput: cmd STOR upload/b.bin\n" +
		"ftpput: cmd QUIT (null)\n"
)

func TestParseTranscript(t *testing.T) {
	cases := []struct {
		name          string
		tool          Tool
		text          string
		sent, receive []string
	}{
		{"curl", Curl, curlTranscript,
			[]string{"USER anonymous", "PASV", "RETR payload.bin"},
			[]string{"220 (vsFTPd 3.0.3)", "230 Login successful.", "227 Entering Passive Mode (198,18,0,204,117,54).", "150 Opening BINARY mode data connection"}},
		{"lftp", LFTP, lftpTranscript,
			[]string{"USER anonymous", "EPSV", "RETR payload.bin"},
			[]string{"220 (vsFTPd 3.0.3)", "230 Login successful.", "229 Entering Extended Passive Mode (|||30001|)"}},
		{"wget", Wget, wgetTranscript,
			[]string{"USER anonymous", "PASS -wget@", "SIZE f.bin", "PASV", "RETR f.bin"},
			[]string{"220 pyftpdlib 1.5.7 ready.", "331 Username ok, send password.", "213 100000", "227 Entering passive mode (127,0,0,1,117,86).", "226 Transfer complete."}},
		{"tnftp", TNFTP, tnftpTranscript,
			[]string{"EPRT |1|10.77.0.5|50043|", "RETR f.bin"},
			[]string{"220 pyftpdlib 1.5.7 ready.", "200 Active data connection established.", "226 Transfer complete."}},
		{"ncftp", NcFTP, ncftpTranscript,
			[]string{"USER anonymous", "PORT 127,0,0,1,207,209", "RETR f.bin"},
			[]string{"220: pyftpdlib 1.5.7 ready.", "331: Username ok, send password.", "211: Features supported:", "200: Active data connection established.", "226: Transfer complete."}},
		{"ftplib", FTPLib, ftplibTranscript,
			[]string{"USER anonymous", "EPSV", "RETR f.bin"},
			[]string{"220 (vsFTPd 3.0.3)", `257 "/" is the current directory`, "229 Entering Extended Passive Mode (|||30001|)", "226 Transfer complete."}},
		{"busybox", Busybox, busyboxTranscript,
			[]string{"USER anonymous", "PASS busybox", "TYPE I", "EPSV", "STOR upload/b.bin", "QUIT"}, nil},
		{"empty", Curl, "", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, r := parseTranscript(c.tool, c.text)
			if !slices.Equal(s, c.sent) {
				t.Errorf("sent %q, want %q", s, c.sent)
			}
			if !slices.Equal(r, c.receive) {
				t.Errorf("received %q, want %q", r, c.receive)
			}
		})
	}
}

func TestCheckMode(t *testing.T) {
	cases := []struct {
		name string
		sent []string
		mode Mode
		ok   bool
	}{
		{"pasv", []string{"USER a", "PASV", "RETR f"}, PASV, true},
		{"epsv fell back to pasv", []string{"EPSV", "PASV", "RETR f"}, EPSV, false},
		{"eprt fell back to port", []string{"EPRT |1|1.2.3.4|5|", "PORT 1,2,3,4,0,5", "RETR f"}, EPRT, false},
		{"port", []string{"PORT 1,2,3,4,0,5", "RETR f"}, PORT, true},
		{"mode missing", []string{"RETR f"}, PORT, false},
		{"retried", []string{"PASV", "RETR f", "PASV", "RETR f"}, PASV, false},
		{"no retr", []string{"PASV"}, PASV, false},
		{"lower case verbs", []string{"pasv", "retr f"}, PASV, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkMode(FetchResult{Sent: c.sent}, c.mode, "RETR", nil)
			if c.ok && err != nil {
				t.Fatal(err)
			}
			if !c.ok && !errors.Is(err, ErrModeNotUsed) {
				t.Fatalf("got %v, want ErrModeNotUsed", err)
			}
		})
	}
}

func TestFetchResultReply(t *testing.T) {
	if r := (FetchResult{Received: []string{"227: Entering Passive Mode (1,2,3,4,5,6)"}}); r.Reply("227") == "" {
		t.Error("ncftp's reply not found")
	}
	r := FetchResult{Received: []string{"220 hi", "227 Entering Passive Mode (1,2,3,4,5,6)", "2270 nonsense"}}
	if got := r.Reply("227"); got != "227 Entering Passive Mode (1,2,3,4,5,6)" {
		t.Errorf("Reply(227) = %q", got)
	}
	if got := r.Reply("229"); got != "" {
		t.Errorf("Reply(229) = %q", got)
	}
}

func TestModeAndToolNames(t *testing.T) {
	for _, m := range Modes {
		if m.fallback() == "" || m.fallback() == m.String() {
			t.Errorf("%v fallback %q", m, m.fallback())
		}
	}
	if PASV.String() != "PASV" || EPRT.String() != "EPRT" || Mode(9).String() != "mode(9)" {
		t.Error("mode names")
	}
	if Curl.String() != "curl" || LFTP.String() != "lftp" || Tool(9).String() != "tool(9)" {
		t.Error("tool names")
	}
	if LFTP.Supports(EPRT) || !Curl.Supports(EPRT) || !LFTP.Supports(PORT) {
		t.Error("Supports")
	}
	for _, tool := range AllTools {
		if strings.HasPrefix(tool.String(), "tool(") || tool.program(false) == "" || tool.program(true) == "" {
			t.Errorf("tool %d has no name or program", tool)
		}
		n := 0
		for _, m := range Modes {
			if tool.Supports(m) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%v supports no mode", tool)
		}
	}
	if Wget.CanUpload() || !Busybox.CanUpload() || Busybox.Supports(PASV) || Wget.Supports(EPSV) {
		t.Error("capabilities")
	}
	for _, d := range Daemons {
		if strings.HasPrefix(d.String(), "daemon(") {
			t.Errorf("daemon %d has no name", d)
		}
	}
}
