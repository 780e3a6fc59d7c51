package cli

import (
	"cmp"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fastnat/fastnat/config"
)

// The flag values below refuse a value out of range while the flag set
// parses, so that the error names the flag: `invalid value "0s" for flag
// -duration: out of range; allowed: 1s to 1h`. Each defines its flag on
// fs like the flag package's XxxVar.

// rangeValue is a flag value of an ordered type that must lie in
// [lo, hi].
type rangeValue[T cmp.Ordered] struct {
	p           *T
	lo, hi      T
	parse       func(string) (T, error)
	format      func(T) string
	placeholder string
}

func (v *rangeValue[T]) String() string {
	if v.p == nil {
		var zero T
		return fmt.Sprint(zero)
	}
	return v.format(*v.p)
}

func (v *rangeValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	if x < v.lo || x > v.hi || x != x { // x != x: NaN
		return fmt.Errorf("out of range; allowed: %s to %s", v.format(v.lo), v.format(v.hi))
	}
	*v.p = x
	return nil
}

func (v *rangeValue[T]) Placeholder() string { return v.placeholder }

// IntVar defines an integer flag that must lie in [lo, hi].
func IntVar(fs *flag.FlagSet, p *int, name string, def, lo, hi int, usage string) {
	*p = def
	fs.Var(&rangeValue[int]{p: p, lo: lo, hi: hi, placeholder: "N", format: strconv.Itoa,
		parse: func(s string) (int, error) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return 0, fmt.Errorf("not an integer")
			}
			return n, nil
		}}, name, usage)
}

// DurationVar defines a duration flag that must lie in [lo, hi].
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, def, lo, hi time.Duration, usage string) {
	*p = def
	fs.Var(&rangeValue[time.Duration]{p: p, lo: lo, hi: hi, placeholder: "DURATION", format: config.FormatDuration,
		parse: func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return 0, fmt.Errorf("not a duration such as 500ms, 5s or 2m")
			}
			return d, nil
		}}, name, usage)
}

// FloatVar defines a number flag that must lie in [lo, hi].
func FloatVar(fs *flag.FlagSet, p *float64, name string, def, lo, hi float64, usage string) {
	*p = def
	fs.Var(&rangeValue[float64]{p: p, lo: lo, hi: hi, placeholder: "NUMBER",
		format: func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) },
		parse: func(s string) (float64, error) {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, fmt.Errorf("not a number")
			}
			return f, nil
		}}, name, usage)
}

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
		if err != nil || n > math.MaxInt/mul || n < math.MinInt/mul {
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
