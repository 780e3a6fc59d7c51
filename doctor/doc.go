// Package doctor inspects a host for running fastnat with a given
// configuration and says what is wrong, each finding with the command that
// fixes it: `fastnat doctor`.
//
// It is read-only. It reads /sys and /proc, asks the kernel for each
// driver's XDP features (afxdp.DeviceXDPFeatures), and runs only commands
// that report (ethtool -l/-k/-n/-i/-S, ip -j link, ip netns list-id); it
// never changes a setting, so it is safe on a box carrying traffic. Every
// fix it prints is a command the operator runs, or a configuration key.
//
// What it checks, per configured interface and for the host:
//
//   - queues: receive queues against [dataplane] workers (fastnat runs one
//     worker per queue of the first interface and clamps a larger count),
//     the same count on every interface, queues without a worker;
//   - rss: UDP hashed by ports (ethtool -n IF rx-flow-hash udp4), without
//     which every UDP flow between two hosts lands on one queue;
//   - mtu: the MTU against [dataplane] frame_size;
//   - offloads: LRO and hardware GRO (merged frames), GRO in generic mode,
//     VLAN tag stripping on an interface with VLANs;
//   - xdp: native XDP and AF_XDP zero copy as the driver reports them,
//     drivers that differ between interfaces (one UMEM, one mode), mlx5's
//     separate zero-copy queue range on kernels before 6.1, another XDP
//     program already attached;
//   - checksum: transmit checksum offload on the peer of a veth, which
//     makes every TCP and UDP packet fastnat forwards arrive with a wrong
//     checksum (the pipeline also notices it at run time);
//   - irqbalance and irq: each queue's interrupt pinned to one CPU, the
//     worker's, found through the device's MSI vectors so that every
//     driver's naming (ens1f0-TxRx-3, mlx5_comp3@pci:..., virtio2-input.3)
//     works;
//   - numa: the NIC's node against the workers' CPUs;
//   - cpus and memlock: [dataplane] cpus exist; pinned UMEM is allowed;
//   - forwarding: the kernel does not forward IPv4, which would route out
//     untranslated every packet the XDP program leaves to it;
//   - unit: the installed fastnat.service's IPAddressDeny= and
//     IPAddressAllow=, with its drop-ins, read as systemd reads them, let
//     the event log reach every collector and Prometheus the metrics.
//
// System is the seam: the checks see the host only through it, so tests
// run them against recorded command outputs and files, and the end-to-end
// test runs the real one in network namespaces set up right and wrong.
package doctor
