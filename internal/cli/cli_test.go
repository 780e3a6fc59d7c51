package cli

import (
	"bytes"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// testProgram has a plain command, a group, a command with positionals
// and a hidden one.
func testProgram(ran *[]string) *Program {
	record := func(name string) func(fs *flag.FlagSet) Run {
		return func(fs *flag.FlagSet) Run {
			n := fs.Int("n", 3, "how `many`")
			v := fs.Bool("v", false, "verbose")
			var d time.Duration
			DurationVar(fs, &d, "wait", time.Second, 10*time.Millisecond, time.Minute, "how long")
			var mode string
			ChoiceVar(fs, &mode, "mode", "fast", []string{"fast", "slow"}, "speed")
			out := fs.String("out", "", "write to `FILE`")
			return func(args []string, stdout, stderr io.Writer) int {
				*ran = append(*ran, name+" "+strings.Join(args, ",")+" n="+
					strings.Repeat("i", *n)+" v="+map[bool]string{true: "1", false: "0"}[*v]+" wait="+d.String()+" mode="+mode+" out="+*out)
				return 7
			}
		}
	}
	return &Program{
		Name: "prog", Summary: "a test program", Footer: "Exit status: 7.",
		Commands: []*Command{
			{Name: "plain", Summary: "does a thing", About: "First paragraph.\n\nSecond one.", Flags: record("plain")},
			{Name: "pos", Args: "a|b [FILE]", MinArgs: 1, MaxArgs: 2, Words: []string{"a", "b"}, Summary: "takes arguments", Flags: record("pos")},
			{Name: "group", Summary: "has subcommands", Subs: []*Command{
				{Name: "one", Summary: "the first", Flags: record("group one")},
				{Name: "two", Summary: "the second", Flags: record("group two")},
			}},
			{Name: "secret", Hidden: true, RawArgs: true, Summary: "hidden", Flags: record("secret")},
		},
	}
}

func TestExec(t *testing.T) {
	tests := []struct {
		args   string
		code   int
		ran    string // what ran, "" for nothing
		stdout string
		stderr string
	}{
		{"plain", 7, "plain  n=iii v=0 wait=1s mode=fast out=", "", ""},
		{"plain -n 2 --v --wait=20s -mode slow --out x", 7, "plain  n=ii v=1 wait=20s mode=slow out=x", "", ""},
		{"pos a -n 1 f.toml -v", 7, "pos a,f.toml n=i v=1 wait=1s mode=fast out=", "", ""},
		{"pos -- -a", 7, "pos -a n=iii v=0 wait=1s mode=fast out=", "", ""},
		{"group two -n 1", 7, "group two  n=i v=0 wait=1s mode=fast out=", "", ""},
		{"secret -x --y", 7, "secret -x,--y n=iii v=0 wait=1s mode=fast out=", "", ""},
		{"plain -h", 0, "", "prog plain: does a thing\n\nusage: prog plain [flags]\n\nFirst paragraph.\n\nSecond one.\n\nflags:\n", ""},
		{"group --help", 0, "", "prog group: has subcommands\n\nusage: prog group one|two ...\n\ncommands:\n  one  the first\n  two  the second\n", ""},
		{"--help", 0, "", "prog — a test program\n\nUsage:\n  prog plain [flags]\n      does a thing\n", ""},
		{"", 2, "", "", "Usage:"},
		{"nope", 2, "", "", "prog: unknown command \"nope\""},
		{"group", 2, "", "", "prog group: missing subcommand\nusage: prog group one|two ...\n(prog help group lists them)\n"},
		{"group three", 2, "", "", "prog group: unknown subcommand \"three\""},
		{"plain extra", 2, "", "", "prog plain: unexpected argument \"extra\"\nusage: prog plain [flags]\n(prog help plain describes every flag)\n"},
		{"pos", 2, "", "", "prog pos: missing argument"},
		{"pos a b c", 2, "", "", "prog pos: unexpected argument \"c\""},
		{"plain -wait 1ms", 2, "", "", "prog plain: invalid value \"1ms\" for flag -wait: out of range; allowed: 10ms to 1m\n"},
		{"plain -mode medium", 2, "", "", "invalid value \"medium\" for flag -mode: not allowed; allowed: fast, slow"},
		{"plain -n", 2, "", "", "prog plain: flag needs an argument: -n"},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			var ran []string
			var o, e bytes.Buffer
			code := testProgram(&ran).Exec(strings.Fields(tc.args), &o, &e)
			got := strings.Join(ran, ";")
			if code != tc.code || got != tc.ran || !strings.Contains(o.String(), tc.stdout) || !strings.Contains(e.String(), tc.stderr) {
				t.Fatalf("exit %d, ran %q\nstdout %q\nstderr %q", code, got, o.String(), e.String())
			}
		})
	}
}

func TestHelpFlags(t *testing.T) {
	var o bytes.Buffer
	p := testProgram(new([]string))
	p.WriteHelp(&o, p.Find("plain"))
	want := `flags:
  --mode NAME      speed (default fast)
  -n MANY          how many (default 3)
  --out FILE       write to FILE
  -v               verbose
  --wait DURATION  how long (default 1s)
`
	if !strings.HasSuffix(o.String(), want) {
		t.Fatalf("help\n%s\nwant it to end\n%s", o.String(), want)
	}
}

func TestComplete(t *testing.T) {
	p := testProgram(new([]string))
	tests := []struct {
		words []string
		want  []string
	}{
		{nil, []string{"plain", "pos", "group"}},
		{[]string{"p"}, []string{"plain", "pos"}},
		{[]string{"group", ""}, []string{"one", "two"}},
		{[]string{"group", "one", "--m"}, []string{"--mode"}},
		{[]string{"plain", "-mode", "s"}, []string{"slow"}},
		{[]string{"plain", "--mode=f"}, []string{"fast"}},
		{[]string{"plain", "--mode", "=", "f"}, []string{"fast"}}, // bash splits at =
		{[]string{"plain", "--out", ""}, []string{CompleteFiles}},
		{[]string{"plain", "-n", "4", ""}, nil},
		{[]string{"pos", ""}, []string{"a", "b"}},
		{[]string{"pos", "a", ""}, []string{CompleteFiles}},
		{[]string{"pos", "-v", "b", "-n", "2", ""}, []string{CompleteFiles}},
		{[]string{"secret", ""}, nil},
		{[]string{"nope", ""}, nil},
	}
	for _, tc := range tests {
		if got := p.Complete(tc.words); !slices.Equal(got, tc.want) {
			t.Errorf("Complete(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	v := fs.Bool("v", false, "")
	pos, err := ParseInterleaved(fs, []string{"a", "-v", "b", "--", "-c", "d"})
	if err != nil || !*v || !slices.Equal(pos, []string{"a", "b", "-c", "d"}) {
		t.Fatalf("%q %v %v", pos, *v, err)
	}
}

func TestFlagValues(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var ints []int
	var words []string
	var f float64
	var n int
	IntListVar(fs, &ints, "ints", []int{1}, 1, 1<<20, "")
	StringListVar(fs, &words, "words", nil, []string{"x", "y"}, "")
	FloatVar(fs, &f, "f", 0.5, 0, 1, "")
	IntVar(fs, &n, "n", 5, 1, 9, "")
	for _, tc := range []struct {
		flag, value string
		ok          bool
	}{
		{"ints", "1, 64k,3", true}, {"ints", "0", false}, {"ints", "2k", true}, {"ints", "2048k", false}, {"ints", ",", false},
		{"words", "x,y", true}, {"words", "z", false}, {"words", " ", false},
		{"f", "1", true}, {"f", "1.5", false}, {"f", "NaN", false}, {"f", "x", false},
		{"n", "9", true}, {"n", "10", false}, {"n", "1.5", false},
	} {
		if err := fs.Set(tc.flag, tc.value); (err == nil) != tc.ok {
			t.Errorf("-%s %q: %v", tc.flag, tc.value, err)
		}
	}
	if !slices.Equal(ints, []int{2048}) || !slices.Equal(words, []string{"x", "y"}) || f != 1 || n != 9 {
		t.Errorf("values %v %v %v %v", ints, words, f, n)
	}
}

func TestRoff(t *testing.T) {
	for in, want := range map[string]string{
		"a-b":          `a\-b`,
		`back\slash`:   `back\eslash`,
		".starts":      `\&.starts`,
		"'quote":       `\&'quote`,
		"x — y ≥ 2":    `x \(em y \(>= 2`,
		"two\n  lines": "two lines",
	} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
	var o bytes.Buffer
	p := testProgram(new([]string))
	p.WriteMan(&o, ManPage{Date: "2025-01-31", Version: "v1", Description: "About it.", SeeAlso: "ip(8)"})
	for _, want := range []string{".TH PROG 1 \"2025-01-31\" \"prog v1\"", ".SS prog group one [flags]", ".B \\-\\-wait DURATION\nhow long (default 1s)", ".SH \"EXIT STATUS\""} {
		if !strings.Contains(o.String(), want) {
			t.Errorf("man page lacks %q:\n%s", want, o.String())
		}
	}
	if strings.Contains(o.String(), "secret") {
		t.Error("the man page shows a hidden command")
	}
}

func TestCompletionScripts(t *testing.T) {
	p := testProgram(new([]string))
	for _, sh := range Shells {
		s, err := p.CompletionScript(sh)
		if err != nil || !strings.Contains(s, "prog "+CompleteCommand) {
			t.Errorf("%s: %v\n%s", sh, err, s)
		}
	}
	if _, err := p.CompletionScript("csh"); err == nil {
		t.Error("csh accepted")
	}
}
