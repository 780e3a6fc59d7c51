package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = dispatch(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckExample(t *testing.T) {
	code, out, errOut := runCmd("check", "-c", "../../examples/fastnat.toml")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"ok: ../../examples/fastnat.toml\n",
		"  eth1  outside  all     198.18.0.254  16\n",
		"  0     10.77.0.0/24  198.18.0.204  1024-65535  endpoint-independent  38\n",
		"  0     tcp       198.18.0.204:9091  10.77.0.226:2021  44\n",
		"  ftp          9091  tcp       198.18.0.204/32  port_mapping[0], line 49\n",
		"  ftp          21    tcp       any              default\n",
		"  dns          53    tcp       any              default\n  dns          53    udp",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if want := "../../examples/fastnat.toml:46:10: warning: nat.server[0].public: "; !strings.HasPrefix(errOut, want) {
		t.Errorf("stderr = %q, want a warning starting %q", errOut, want)
	}
}

func TestCheckPositionalFile(t *testing.T) {
	if code, _, errOut := runCmd("check", "../../examples/fastnat.toml"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestCheckBrokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.toml")
	doc := "[dataplane]\nbatch = 0\n\n[[interface]]\nname = \"eth0\"\nrole = \"lan\"\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("check", "-c", file)
	if code != exitUsage || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	want := file + ":2:9: dataplane.batch: 0 is out of range; allowed: 1 to 512\n" +
		file + ":6:8: interface[0].role: \"lan\" is not allowed; allowed: \"inside\" or \"outside\"\n"
	if errOut != want {
		t.Errorf("stderr\n%s\nwant\n%s", errOut, want)
	}
}

func TestCheckUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"check"}, "fastnat check: want one file, with -c or as the argument\nusage: fastnat check [FILE] [flags]\n"},
		{"two files", []string{"check", "a", "b"}, "fastnat check: unexpected argument \"b\"\nusage: fastnat check [FILE] [flags]\n"},
		{"file twice", []string{"check", "-c", "a", "b"}, "fastnat check: want one file"},
		{"bad flag", []string{"check", "-x"}, "flag provided but not defined: -x"},
		{"missing file", []string{"check", "-c", "/nonexistent/fastnat.toml"}, "fastnat check: read config: open /nonexistent/fastnat.toml: no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, exitUsage, "", "Usage:"},
		{[]string{"help"}, exitOK, "  fastnat check [FILE] [flags]\n      validate a configuration file", ""},
		{[]string{"--help"}, exitOK, "  fastnat run [flags]\n", ""},
		{[]string{"help", "show"}, exitOK, "usage: fastnat show stats|sessions|expectations|mappings|rules [flags]\n", ""},
		{[]string{"help", "bench", "veth"}, exitOK, "  --duration DURATION    measured time per case (default 5s)\n", ""},
		{[]string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{[]string{"version"}, exitOK, "fastnat ", ""},
		{[]string{"frobnicate"}, exitUsage, "", `fastnat: unknown command "frobnicate"`},
		{[]string{"show", "stats", "--socket", "/nonexistent/fastnat.sock"}, exitFailure, "", "is fastnat running?"},
		{[]string{"show", "frobs"}, exitUsage, "", `unknown subject "frobs"`},
		{[]string{"bench"}, exitUsage, "", "fastnat bench: missing subcommand\nusage: fastnat bench pipeline|flowtable|veth|tcp ...\n(fastnat help bench lists them)\n"},
		{[]string{"bench", "nope"}, exitUsage, "", "fastnat bench: unknown subcommand \"nope\"\nusage: fastnat bench pipeline|flowtable|veth|tcp ...\n"},
		{[]string{"demo", "extra"}, exitUsage, "", "fastnat demo: unexpected argument \"extra\"\nusage: fastnat demo [flags]\n"},
		{[]string{"reload", "--socket", "/nonexistent/fastnat.sock"}, exitFailure, "", "is fastnat running?"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
			}
		})
	}
}

func TestPoolString(t *testing.T) {
	code, out, errOut := runCmd("check", writeConfig(t, `[[nat.outbound]]
inside = ["10.0.0.0/8"]
pool = ["198.18.0.1-198.18.0.3", "198.18.0.9", "198.18.1.0/30"]
`))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "198.18.0.1-198.18.0.3,198.18.0.9,198.18.1.1-198.18.1.2"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fastnat.toml")
	doc := extra + "\n[[interface]]\nname = \"eth0\"\nrole = \"inside\"\n[[interface]]\nname = \"eth1\"\nrole = \"outside\"\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestExampleConfigs: fastnat check accepts every shipped configuration
// (the examples and the packaged /etc/fastnat/fastnat.toml), with at most
// the warnings listed here.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	files = append(files, "../../deploy/fastnat.toml")
	// A server's public port inside the pool's range is reported, and fine.
	allowed := "lies in the port range 1024-65535 of the pool of nat.outbound[0]"
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errOut := runCmd("check", "-c", f)
			if code != exitOK || !strings.HasPrefix(out, "ok: "+f+"\n") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if line != "" && !strings.Contains(line, allowed) {
					t.Errorf("unexpected warning: %s", line)
				}
			}
		})
	}
}

// TestVersionStamp: a release's version, set at link time as scripts/build
// does, is what fastnat version prints.
func TestVersionStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "fastnat")
	out, err := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/fastnat/fastnat/internal/version.Version=v9.8.7", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "fastnat v9.8.7") || !strings.Contains(string(out), " go1.") {
		t.Fatalf("fastnat version: %v %q", err, out)
	}
	out, _ = exec.Command(bin, "man").Output()
	if !strings.Contains(string(out), `"fastnat v9.8.7"`) {
		t.Errorf("the man page does not carry the version:\n%.200s", out)
	}
}
