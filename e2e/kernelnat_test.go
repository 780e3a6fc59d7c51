package e2e

import "testing"

// The kernel NAT tests prove the harness on the Linux kernel's own NAT
// (nftables, conntrack, nf_nat_ftp): the case's failure without an FTP
// helper on port 9091, its fix with one, and UDP and ICMP through the NAT.
// The scenarios are shared: fastnat runs the same ones as another router.

func TestKernelNATFTP(t *testing.T) { requireHarness(t); ftpServerInside(t, kernelRouter) }
func TestKernelNATFTPWithoutHelper(t *testing.T) {
	requireHarness(t)
	ftpServerInsideUnmapped(t, kernelRouter)
}
func TestKernelNATFTPClientInside(t *testing.T) { requireHarness(t); ftpClientInside(t, kernelRouter) }
func TestKernelNATUDP(t *testing.T)             { requireHarness(t); udpThroughNAT(t, kernelRouter) }
func TestKernelNATICMP(t *testing.T)            { requireHarness(t); icmpThroughNAT(t, kernelRouter) }
func TestKernelNATMalformedFrames(t *testing.T) { requireHarness(t); malformedBurst(t, kernelRouter) }
