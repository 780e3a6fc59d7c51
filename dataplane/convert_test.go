package dataplane

import (
	"errors"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
)

// TestAllocationModesNotWiredYet: deterministic mapping and port blocks
// reach the NAT's rules, which refuse them until session creation uses
// their allocators, so that fastnat never runs such a file with the
// dynamic allocator (`fastnat lookup` would then answer wrongly).
func TestAllocationModesNotWiredYet(t *testing.T) {
	table, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{`mapping = "deterministic"`, `block_size = 512`} {
		cfg := parse(t, strings.Replace(baseConfig, `"10.0.0.0/8"`, `"10.0.0.0/24"`, 1)+extra+"\n")
		r := natRules(cfg)
		if o := r.Outbound[0]; o.Deterministic != (cfg.NAT.Outbound[0].PortsPerHost > 0) || o.BlockSize != cfg.NAT.Outbound[0].BlockSize {
			t.Fatalf("%s: rules %+v", extra, o)
		}
		if _, err := nat.New(r, table, 1); !errors.Is(err, nat.ErrNotWired) {
			t.Errorf("%s: nat.New = %v, want ErrNotWired", extra, err)
		}
	}
}
