// Package afxdp is fastnat's only contact with AF_XDP: the UMEM and rings of
// each worker, the XDP program that steers fastnat's traffic to them, queue
// discovery, CPU pinning, the NAT's public addresses and next-hop (neighbour)
// resolution. It implements pipeline.Port and pipeline.Waker.
//
// Draft; completed below with measurements.
package afxdp
