package cli

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The flag values below refuse a value out of range while the flag set
// parses, so that the error names the flag: `invalid value "0s" for flag
// -duration: below the minimum 1s`. Each defines its flag on fs like the
// flag package's XxxVar.

// IntVar defines an integer flag that must lie in [lo, hi].
func IntVar(fs *flag.FlagSet, p *int, name string, def, lo, hi int, usage string) {
	*p = def
	fs.Var(&intValue{p: p, lo: lo, hi: hi}, name, usage)
}

type intValue struct {
	p      *int
	lo, hi int
}

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	if n < v.lo || n > v.hi {
		return fmt.Errorf("out of range; allowed: %d to %d", v.lo, v.hi)
	}
	*v.p = n
	return nil
}

func (v *intValue) Placeholder() string { return "N" }

// DurationVar defines a duration flag that must lie in [lo, hi].
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, def, lo, hi time.Duration, usage string) {
	*p = def
	fs.Var(&durationValue{p: p, lo: lo, hi: hi}, name, usage)
}

type durationValue struct {
	p      *time.Duration
	lo, hi time.Duration
}

func (v *durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return formatDuration(*v.p)
}

// formatDuration drops the zero units Go's Duration.String keeps:
// "1h0m0s" is "1h", "2m0s" is "2m".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration such as 500ms, 5s or 2m")
	}
	if d < v.lo || d > v.hi {
		return fmt.Errorf("out of range; allowed: %s to %s", formatDuration(v.lo), formatDuration(v.hi))
	}
	*v.p = d
	return nil
}

func (v *durationValue) Placeholder() string { return "DURATION" }

// FloatVar defines a number flag that must lie in [lo, hi].
func FloatVar(fs *flag.FlagSet, p *float64, name string, def, lo, hi float64, usage string) {
	*p = def
	fs.Var(&floatValue{p: p, lo: lo, hi: hi}, name, usage)
}

type floatValue struct {
	p      *float64
	lo, hi float64
}

func (v *floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number")
	}
	if f < v.lo || f > v.hi || f != f {
		return fmt.Errorf("out of range; allowed: %g to %g", v.lo, v.hi)
	}
	*v.p = f
	return nil
}

func (v *floatValue) Placeholder() string { return "NUMBER" }

// IntListVar defines a comma-separated list of integers in [lo, hi]; a
// "k" suffix multiplies by 1024 ("64k").
func IntListVar(fs *flag.FlagSet, p *[]int, name string, def []int, lo, hi int, usage string) {
	*p = def
	fs.Var(&intListValue{p: p, lo: lo, hi: hi}, name, usage)
}

type intListValue struct {
	p      *[]int
	lo, hi int
}

func (v *intListValue) String() string {
	if v.p == nil {
		return ""
	}
	s := make([]string, len(*v.p))
	for i, n := range *v.p {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (v *intListValue) Set(s string) error {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mul := 1
		if rest, ok := strings.CutSuffix(strings.ToLower(f), "k"); ok {
			f, mul = rest, 1024
		}
		n, err := strconv.Atoi(f)
		if err != nil || n > (1<<40)/mul || n < -(1<<40)/mul {
			return fmt.Errorf("%q is not an integer", f)
		}
		n *= mul
		if n < v.lo || n > v.hi {
			return fmt.Errorf("%d is out of range; allowed: %d to %d", n, v.lo, v.hi)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return fmt.Errorf("empty list")
	}
	*v.p = out
	return nil
}

func (v *intListValue) Placeholder() string { return "LIST" }

// StringListVar defines a comma-separated list of words, each one of
// choices.
func StringListVar(fs *flag.FlagSet, p *[]string, name string, def, choices []string, usage string) {
	*p = def
	fs.Var(&stringListValue{p: p, choices: choices}, name, usage)
}

type stringListValue struct {
	p       *[]string
	choices []string
}

func (v *stringListValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v *stringListValue) Set(s string) error {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(v.choices, f) {
			return fmt.Errorf("%q is not allowed; allowed: %s", f, strings.Join(v.choices, ", "))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return fmt.Errorf("empty list")
	}
	*v.p = out
	return nil
}

func (v *stringListValue) Placeholder() string { return "LIST" }

func (v *stringListValue) Choices() []string { return v.choices }

// ChoiceVar defines a flag whose value is one of choices ("" allowed only
// if it is one of them).
func ChoiceVar(fs *flag.FlagSet, p *string, name, def string, choices []string, usage string) {
	*p = def
	fs.Var(&choiceValue{p: p, choices: choices}, name, usage)
}

type choiceValue struct {
	p       *string
	choices []string
}

func (v *choiceValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *choiceValue) Set(s string) error {
	if !slices.Contains(v.choices, s) {
		return fmt.Errorf("not allowed; allowed: %s", strings.Join(v.choices, ", "))
	}
	*v.p = s
	return nil
}

func (v *choiceValue) Placeholder() string { return "NAME" }

func (v *choiceValue) Choices() []string { return v.choices }
