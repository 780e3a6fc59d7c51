package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the README's synopsis from the commands")

// squash folds every run of white space into one space, so that text
// wrapped at any column compares equal.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// commands lists every command help shows, by its words.
func commands() [][]string {
	var out [][]string
	for _, c := range program.All() {
		if !c.Hidden {
			out = append(out, strings.Fields(c.FullName()))
		}
	}
	return out
}

// TestHelpEveryCommand: `help COMMAND`, `COMMAND -h`, `-help` and
// `--help` print the same help on stdout and exit 0, for every command;
// the help names every flag with its value and default.
func TestHelpEveryCommand(t *testing.T) {
	for _, words := range commands() {
		name := strings.Join(words, " ")
		t.Run(name, func(t *testing.T) {
			code, help, errOut := runCmd(append([]string{"help"}, words...)...)
			if code != exitOK || errOut != "" {
				t.Fatalf("help %s: exit %d, stderr %q", name, code, errOut)
			}
			c := program.Find(words...)
			if want := "fastnat " + name + ": " + c.Summary + "\n\nusage: fastnat " + name; !strings.HasPrefix(help, want) {
				t.Errorf("help starts %q, want %q", help[:min(len(help), len(want))], want)
			}
			for _, h := range []string{"-h", "-help", "--help"} {
				code, out, errOut := runCmd(append(slices.Clone(words), h)...)
				if code != exitOK || out != help || errOut != "" {
					t.Errorf("%s %s: exit %d, stderr %q, stdout differs from help: %v", name, h, code, errOut, out != help)
				}
			}
			fs, _ := c.FlagSet()
			flat := squash(help)
			fs.VisitAll(func(f *flag.Flag) {
				dash := "--"
				if len(f.Name) == 1 {
					dash = "-"
				}
				if !strings.Contains(flat, " "+dash+f.Name+" ") {
					t.Errorf("help lacks %s%s", dash, f.Name)
				}
				_, isBool := f.Value.(interface{ IsBoolFlag() bool })
				if f.DefValue != "" && !(isBool && f.DefValue == "false") && !strings.Contains(flat, "(default "+f.DefValue+")") {
					t.Errorf("help lacks the default of %s: %q", f.Name, f.DefValue)
				}
			})
			for _, s := range c.Subs {
				if !strings.Contains(help, "\n  "+s.Name+" ") {
					t.Errorf("help lacks subcommand %s", s.Name)
				}
			}
		})
	}
}

// TestFlagsEveryCommand: every flag's default is a value the flag
// accepts; an unknown flag, a value flag without its value and an
// unexpected argument are usage errors (exit 2, the message, the usage
// line), for every command.
func TestFlagsEveryCommand(t *testing.T) {
	for _, words := range commands() {
		name := strings.Join(words, " ")
		c := program.Find(words...)
		t.Run(name, func(t *testing.T) {
			usage := "\nusage: fastnat " + name
			fs, _ := c.FlagSet()
			fs.VisitAll(func(f *flag.Flag) {
				// A default one can type is a value the flag accepts ("" is
				// a list left unset, not a value).
				if err := fs.Set(f.Name, f.DefValue); f.DefValue != "" && err != nil {
					t.Errorf("default %q of %s is refused: %v", f.DefValue, f.Name, err)
				}
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					return
				}
				code, _, errOut := runCmd(append(slices.Clone(words), "--"+f.Name)...)
				if code != exitUsage || !strings.Contains(errOut, "flag needs an argument: -"+f.Name) || !strings.Contains(errOut, usage) {
					t.Errorf("--%s without a value: exit %d, stderr %q", f.Name, code, errOut)
				}
			})
			args := append(slices.Clone(words), "--no-such-flag")
			if len(c.Subs) > 0 {
				args = append(slices.Clone(words), "no-such-command")
			}
			code, out, errOut := runCmd(args...)
			if code != exitUsage || out != "" || !strings.HasPrefix(errOut, "fastnat "+name+": ") || !strings.Contains(errOut, usage) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
			if c.MaxArgs == 0 && len(c.Subs) == 0 {
				code, _, errOut := runCmd(append(slices.Clone(words), "extra")...)
				if code != exitUsage || !strings.Contains(errOut, `unexpected argument "extra"`) {
					t.Errorf("an extra argument: exit %d, stderr %q", code, errOut)
				}
			}
		})
	}
}

// TestFlagValidation: values out of range are refused before anything
// runs, naming the flag and what is allowed.
func TestFlagValidation(t *testing.T) {
	tests := []struct {
		args string
		want string
	}{
		{"bench veth -duration 0s", `invalid value "0s" for flag -duration: out of range; allowed: 1s to 1h`},
		{"bench veth -duration 1ms", `invalid value "1ms" for flag -duration: out of range; allowed: 1s to 1h`},
		{"bench veth --duration=forever", `invalid value "forever" for flag -duration: not a duration`},
		{"bench veth -warmup 0s", `for flag -warmup: out of range; allowed: 100ms to 1h`},
		{"bench veth -rounds 0", `invalid value "0" for flag -rounds: out of range; allowed: 1 to 1000`},
		{"bench veth -dut kernel,pf", `invalid value "kernel,pf" for flag -dut: "pf" is not allowed; allowed: kernel, fastnat, none`},
		{"bench veth -sizes 64,9000", `for flag -sizes: 9000 is out of range; allowed: 64 to 1518`},
		{"bench veth -flows 0", `for flag -flows: 0 is out of range`},
		{"bench veth -rate -1", `for flag -rate: out of range; allowed: 0 to 1e+09`},
		{"bench veth -probe-rate 0", `for flag -probe-rate: out of range`},
		{"bench veth -gen-cpu -2", `for flag -gen-cpu: out of range; allowed: -1 to 8191`},
		{"bench pipeline -size 63", `for flag -size: out of range; allowed: 64 to 1518`},
		{"bench pipeline -batch 0", `for flag -batch: out of range; allowed: 1 to 256`},
		{"bench pipeline -batch 257", `for flag -batch: out of range; allowed: 1 to 256`},
		{"bench pipeline -packets 0", `for flag -packets: out of range`},
		{"bench pipeline -flows 1,x", `for flag -flows: "x" is not an integer`},
		{"bench flowtable -goroutines 0", `for flag -goroutines: 0 is out of range; allowed: 1 to 1024`},
		{"bench flowtable -sessions -5", `for flag -sessions: -5 is out of range`},
		{"bench flowtable -lookups 1", `for flag -lookups: out of range`},
		{"demo -queues 0", `for flag -queues: out of range; allowed: 1 to 64`},
		{"demo -bench 0s", `for flag -bench: out of range; allowed: 1s to 1h`},
		{"demo -size 0", `for flag -size: out of range`},
		{"show sessions --limit -1", `for flag -limit: out of range; allowed: 0 to`},
		{"show sessions --limit many", `for flag -limit: not an integer`},
		{"show", "fastnat show: missing argument"},
		{"show stats sessions", `fastnat show: unexpected argument "sessions"`},
		{"show frobs", `fastnat show: unknown subject "frobs"`},
		{"show stats --app ftp", "fastnat show: --app: only for sessions"},
		{"completion tcsh", `fastnat completion: no completion for shell "tcsh"; want one of bash, zsh, fish`},
		{"completion", "fastnat completion: missing argument"},
		{"help bench nope", `fastnat help: unknown command "bench nope"`},
		{"version extra", `fastnat version: unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			code, out, errOut := runCmd(strings.Fields(tc.args)...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant exit 2 and %q", code, out, errOut, tc.want)
			}
		})
	}
}

// TestREADMESynopsis: the README's command-line synopsis is the one the
// commands generate (-update rewrites it).
func TestREADMESynopsis(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	begin := strings.Index(readme, "<!-- synopsis:")
	end := strings.Index(readme, "<!-- end of synopsis -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md lacks the synopsis markers")
	}
	begin += strings.Index(readme[begin:], "\n") + 1
	var syn bytes.Buffer
	syn.WriteString("```\n")
	program.WriteSynopsis(&syn)
	syn.WriteString("```\n")
	if readme[begin:end] == syn.String() {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:begin]+syn.String()+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's synopsis differs from the commands; go test ./cmd/fastnat -run TestREADMESynopsis -update rewrites it:\n%s", syn.String())
}

// TestManPage: the man page names every command and flag and renders
// without a warning from groff.
func TestManPage(t *testing.T) {
	code, page, errOut := runCmd("man")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, words := range commands() {
		c := program.Find(words...)
		if !strings.Contains(page, ".SS "+strings.ReplaceAll("fastnat "+c.FullName(), "-", `\-`)) {
			t.Errorf("no section for %s", c.FullName())
		}
		fs, _ := c.FlagSet()
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(page, `\-`+strings.ReplaceAll(f.Name, "-", `\-`)) {
				t.Errorf("%s: flag %s missing", c.FullName(), f.Name)
			}
		})
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed: the page's roff is not checked")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("groff: %v\n%s", err, out)
	}
}

// TestCompletion: the completion hook answers like a shell needs, for
// every command and subcommand name.
func TestCompletion(t *testing.T) {
	complete := func(line string) string {
		words := strings.Split(line, " ")
		_, out, _ := runCmd(append([]string{cli.CompleteCommand}, words...)...)
		return strings.Join(strings.Fields(out), " ")
	}
	tests := []struct{ line, want string }{
		{"", "run check doctor show clear reload events lookup explain bench demo version help completion man"},
		{"events --type session-c", "session-create"},
		{"events --type ", "session-create session-delete binding-create binding-delete block-alloc block-release addresses-exhausted ports-exhausted quota-exceeded"},
		{"re", "reload"},
		{"bench ", "pipeline flowtable veth tcp"},
		{"bench veth --du", "--duration --dut --dut-cpu"},
		{"bench veth --dut kernel,", "kernel,kernel kernel,fastnat kernel,none"},
		{"bench veth --json ", cli.CompleteFiles},
		{"show ", "stats sessions expectations mappings rules"},
		{"show sessions -", "--addr --app -c --json --limit --port --proto --rule --socket --state --verbose"},
		{"clear ", "sessions"},
		{"clear sessions --a", "--addr --all --app"},
		{"show sessions -c ", cli.CompleteFiles},
		{"check ", cli.CompleteFiles},
		{"run --pcap-drops=", cli.CompleteFiles},
		{"completion ", "bash zsh fish"},
		{"help b", "bench"},
		{"explain ", "tcp udp icmp sctp dccp udp-lite"},
		{"explain tcp --from ", "auto inside outside"},
		{"nope ", ""},
	}
	for _, tc := range tests {
		if got := complete(tc.line); got != tc.want {
			t.Errorf("complete %q = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestCompletionBash runs the bash script against the real binary, as
// bash would on Tab.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fastnat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	code, script, _ := runCmd("completion", "bash")
	if code != exitOK {
		t.Fatal("completion bash failed")
	}
	if err := os.WriteFile(filepath.Join(dir, "fastnat.bash"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "example.toml"), nil, 0o644)
	for _, tc := range []struct {
		words string // COMP_WORDS, the last one being completed
		want  string
	}{
		{"fastnat bench v", "veth"},
		{"fastnat show ses", "sessions"},
		{"fastnat bench veth --dut kernel,f", "kernel,fastnat"},
		{"fastnat check exa", "example.toml"},
		{"fastnat run -c = exa", "example.toml"},
	} {
		prog := `source fastnat.bash; COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); ` +
			`_fastnat; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "-c", prog)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%s<Tab>: %v %q, want %q", tc.words, err, out, tc.want)
		}
	}
	// zsh and fish, where installed, at least parse their scripts.
	for _, sh := range []string{"zsh", "fish"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		_, script, _ := runCmd("completion", sh)
		cmd := exec.Command(path, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}
