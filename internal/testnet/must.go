package testnet

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// mustTimeout bounds each Must… helper.
const mustTimeout = 60 * time.Second

// MustNew builds a topology for a test or benchmark and closes it in
// tb.Cleanup; when the test has failed by then, the cleanup first logs
// Diagnose. Any error is fatal.
func MustNew(tb testing.TB, opt Options) *Topology {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mustTimeout)
	defer cancel()
	t, err := New(ctx, opt)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tb.Logf("testnet %s state:\n%s", t.ID, t.Diagnose(ctx))
		}
		if err := t.Close(); err != nil {
			tb.Errorf("testnet close: %v", err)
		}
	})
	return t
}

// MustStartFTPServer is StartFTPServer that fails tb on error.
func (t *Topology) MustStartFTPServer(tb testing.TB, cfg FTPServerConfig) *FTPServer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mustTimeout)
	defer cancel()
	s, err := t.StartFTPServer(ctx, cfg)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	return s
}

// MustKernelNAT is KernelNAT that fails tb on error.
func (t *Topology) MustKernelNAT(tb testing.TB, cfg KernelNATConfig) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mustTimeout)
	defer cancel()
	if err := t.KernelNAT(ctx, cfg); err != nil {
		tb.Fatalf("testnet: %v", err)
	}
}

// MustWriteRandomFile is WriteRandomFile that fails tb on error.
func MustWriteRandomFile(tb testing.TB, path string, size int64, seed uint64) string {
	tb.Helper()
	sum, err := WriteRandomFile(path, size, seed)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	return sum
}

// MustUDPEcho is StartUDPEcho that fails tb on error and closes the echo
// server in tb.Cleanup.
func MustUDPEcho(tb testing.TB, ns string, addr netip.AddrPort) *UDPEcho {
	tb.Helper()
	e, err := StartUDPEcho(ns, addr)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// MustRun is Run that fails tb on error.
func MustRun(tb testing.TB, ns, name string, args ...string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mustTimeout)
	defer cancel()
	out, err := Run(ctx, ns, name, args...)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	return out
}

// MustStart is Topology.Start that fails tb on error. Close stops the
// process; if the test failed, MustNew's cleanup logs its output.
func (t *Topology) MustStart(tb testing.TB, ns, name string, args ...string) *Process {
	tb.Helper()
	p, err := t.Start(ns, name, args...)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	return p
}
