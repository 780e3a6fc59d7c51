package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFastnatRunErrors: what operators get wrong is refused with a clear
// message and a non-zero exit, and leaves nothing behind.
func TestFastnatRunErrors(t *testing.T) {
	requireFastnat(t)
	bin := fastnatBinary(t)
	ns := fmt.Sprintf("fnt-%06x-err", rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := fastnatConfig(true, nil, filepath.Join(dir, "sock"))
	cases := []struct {
		name, file string
		exit       int
		want       string
	}{
		{"no such interface", write("noif.toml", good), 1, "outside: no such network interface"},
		{"bad config", write("bad.toml", strings.Replace(good, `role = "inside"`, `role = "middle"`, 1)), 2, "bad.toml:11:8: interface[1].role: \"middle\" is not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "run", "-c", c.file).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != c.exit {
				t.Fatalf("exit %v, want %d\n%s", err, c.exit, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("output lacks %q:\n%s", c.want, out)
			}
		})
	}
}
