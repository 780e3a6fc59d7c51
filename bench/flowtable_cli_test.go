package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunFlowtableSmall(t *testing.T) {
	rep, err := RunFlowtable(FlowtableBenchConfig{Sessions: []int{1000}, Goroutines: []int{1, 2}, Lookups: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 6 {
		t.Fatalf("%d results, want 3 tables × 2 goroutine counts", len(rep.Results))
	}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fastnat", "xsync", "sync.Map", "fastnat ×"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
