package testnet

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needRoot skips tests that build namespaces when the harness cannot run.
func needRoot(tb testing.TB, tools ...string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces")
	}
	if err := CheckTools(append([]string{"ip", "ethtool", "sysctl"}, tools...)...); err != nil {
		tb.Skipf("%v (Debian: iproute2 ethtool procps nftables vsftpd curl lftp; .ci/run installs them)", err)
	}
}

func TestTopologyRouting(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := MustNew(t, Options{Queues: 2, Forwarding: true, InsideHost: true})

	cases := []struct {
		name string
		ns   string
		dst  string
	}{
		{"client to router", topo.Client, RouterOutsideAddr.String()},
		{"client to server routed", topo.Client, ServerAddr.String()},
		{"host to client routed", topo.Host, ClientAddr.String()},
		{"server to host bridged", topo.Server, HostAddr.String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Ping(ctx, c.ns, mustAddr(c.dst), 2, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Received != 2 {
				t.Fatalf("got %d of %d replies", r.Received, r.Sent)
			}
		})
	}

	t.Run("forwarding off isolates", func(t *testing.T) {
		if err := topo.SetForwarding(ctx, false); err != nil {
			t.Fatal(err)
		}
		r, err := Ping(ctx, topo.Client, ServerAddr, 1, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if r.Received != 0 {
			t.Fatalf("reply through a router with ip_forward=0")
		}
	})

	t.Run("own resolv.conf", func(t *testing.T) {
		for _, ns := range topo.Namespaces() {
			out, err := Run(ctx, ns, "cat", "/etc/resolv.conf")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), "nameserver 127.0.0.1\n") || strings.Count(string(out), "nameserver") != 1 {
				t.Errorf("%s: resolv.conf names another name server:\n%s", ns, out)
			}
		}
	})

	t.Run("tx checksum offload off", func(t *testing.T) {
		for _, l := range topo.veths() {
			out, err := Run(ctx, l[0], "ethtool", "-k", l[1])
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"tx-checksumming: off", "tx-tcp-segmentation: off"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("%s %s: no %q in ethtool -k", l[0], l[1], want)
				}
			}
		}
	})

	t.Run("queues", func(t *testing.T) {
		for _, l := range [][2]string{{topo.Router, RouterOutsideLink}, {topo.Client, NodeLink}} {
			out, err := Run(ctx, l[0], "ip", "-d", "link", "show", l[1])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), "numtxqueues 2 numrxqueues 2") {
				t.Errorf("%s %s: want 2 queues:\n%s", l[0], l[1], out)
			}
		}
	})
}

func TestTopologyCloseRemovesEverything(t *testing.T) {
	needRoot(t)
	topo, err := New(context.Background(), Options{InsideHost: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := topo.Start(topo.Server, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	// A process the topology did not start itself, left in a namespace.
	if _, err := Run(context.Background(), topo.Client, "sh", "-c", "sleep 600 >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Error("started process still running")
	}
	for _, ns := range topo.Namespaces() {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists", ns)
		}
		if _, err := os.Stat(filepath.Join(netnsEtc, ns)); !os.IsNotExist(err) {
			t.Errorf("%s/%s still exists", netnsEtc, ns)
		}
	}
	if _, err := os.Stat(topo.Dir); !os.IsNotExist(err) {
		t.Errorf("dir %s still exists", topo.Dir)
	}
	if err := topo.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := topo.Start(topo.Server, "true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestToolPath(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	cases := []struct {
		name, tool string
		abs        bool
	}{
		{"in PATH", "sh", true},
		{"missing", "no-such-tool-fastnat", false},
		{"relative path kept", "./x/y", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := ToolPath(c.tool)
			if got := strings.HasPrefix(p, "/"); got != c.abs {
				t.Errorf("ToolPath(%q) = %q", c.tool, p)
			}
		})
	}
	if _, err := os.Stat("/usr/sbin/vsftpd"); err == nil {
		if p := ToolPath("vsftpd"); !strings.HasPrefix(p, "/") {
			t.Errorf("ToolPath(vsftpd) = %q: not found in /usr/sbin, outside PATH", p)
		}
	}
	if err := CheckTools("sh", "no-such-tool-fastnat"); !errors.Is(err, ErrMissingTool) || !strings.Contains(err.Error(), "no-such-tool-fastnat") || strings.Contains(err.Error(), "sh,") {
		t.Errorf("CheckTools: %v", err)
	}
}
