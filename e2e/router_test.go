package e2e

import (
	"testing"

	"github.com/fastnat/fastnat/internal/testnet"
)

// router is a NAT under test, set up in a topology's router namespace.
// Every scenario in this package runs against each router the same way.
type router struct {
	name string
	// opts are the topology options the router needs (ip_forward on for
	// the kernel, off for fastnat).
	opts testnet.Options
	// setup configures the case's NAT: the inside FTP server published
	// as public:9091 (nat server), the inside network behind the public
	// address (nat outbound), the extra static mappings, and, with
	// ftpMapping, FTP recognised on port 9091 (fastnat: port_mapping ftp
	// 9091; kernel: the conntrack FTP helper on 9091). Calling it again
	// replaces the configuration.
	setup func(t *testing.T, topo *testnet.Topology, ftpMapping bool, extra []testnet.Forward)
}

// kernelRouter is the Linux kernel's NAT: nftables, conntrack, nf_nat_ftp.
var kernelRouter = router{
	name: "kernel",
	opts: testnet.Options{Forwarding: true},
	setup: func(t *testing.T, topo *testnet.Topology, ftpMapping bool, extra []testnet.Forward) {
		t.Helper()
		cfg := testnet.DefaultKernelNAT(ftpMapping)
		cfg.Servers = append(cfg.Servers, extra...)
		topo.MustKernelNAT(t, cfg)
	},
}

// newTopology builds a topology for r, with an inside host if asked.
func (r router) newTopology(t *testing.T, insideHost bool) *testnet.Topology {
	t.Helper()
	o := r.opts
	o.InsideHost = insideHost
	return testnet.MustNew(t, o)
}

// bothRouters runs scenario as a subtest through fastnat and then
// through the kernel's NAT twin, each skipped when it cannot run here.
func bothRouters(t *testing.T, scenario func(t *testing.T, r router)) {
	for _, r := range []router{fastnatRouter, kernelRouter} {
		t.Run(r.name, func(t *testing.T) {
			if r.name == fastnatRouter.name {
				requireFastnat(t)
			} else {
				requireHarness(t)
			}
			scenario(t, r)
		})
	}
}
