package flowtable

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHotFunctionsInline fails if a function on the lookup or Touch path
// stops being inlinable, which would add a call per key or per packet.
func TestHotFunctionsInline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	out, err := exec.Command(goTool, "build", "-gcflags=-m", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	inlinable := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if _, fn, ok := strings.Cut(line, ": can inline "); ok {
			fn, _, _ = strings.Cut(fn, " ")
			inlinable[fn] = true
		}
	}
	for _, fn := range []string{"hash2", "zeroBytes", "tagOf", "(*Table).home", "(*Table).bucketOf", "words", "tagLanes", "laneOf", "genOf",
		"(*Table).Hot", "Hot.SrcAddr", "Hot.DstAddr", "Hot.SrcPort", "Hot.DstPort", "Hot.L3Delta", "Hot.L4Delta", "Hot.Flags", "Hot.Xlate", "(*Table).TryTouch"} {
		if !inlinable[fn] {
			t.Errorf("%s is not inlinable", fn)
		}
	}
}
