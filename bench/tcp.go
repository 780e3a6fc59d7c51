package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TCPConfig is `fastnat bench tcp`: iperf3 through each NAT on the veth
// topology, TCP with 1, 4 and 100 streams and UDP, fastnat against the
// kernel's nftables NAT in one run.
type TCPConfig struct {
	DUTs     []string      // kernel, fastnat, none
	Streams  []int         // TCP parallel streams per case
	UDPRate  string        // iperf3 -b for the UDP case ("" or "0": no UDP case; "1G", ...)
	UDPSize  int           // UDP datagram payload bytes
	Duration time.Duration // per case
	Rounds   int           // runs per case; the median is reported
	// FastnatBinary is the fastnat executable the fastnat DUT runs.
	FastnatBinary string
	Progress      io.Writer
}

// TCPResult is one case on one DUT: the median of its rounds.
type TCPResult struct {
	DUT     string  `json:"dut"`
	Proto   string  `json:"proto"`   // "tcp" or "udp"
	Streams int     `json:"streams"` // parallel iperf3 streams
	Gbps    float64 `json:"gbit_per_second"`
	Retrans int     `json:"retransmits,omitempty"`  // TCP segments the senders retransmitted
	LostPct float64 `json:"lost_percent,omitempty"` // UDP datagrams lost on the way or at the receiver
	// RcvbufDrops counts the UDP datagrams the receiving host itself
	// dropped, its iperf3 socket's buffer full (the namespace's
	// UdpRcvbufErrors): part of LostPct that the NAT delivered.
	RcvbufDrops uint64  `json:"receiver_buffer_drops,omitempty"`
	CPUSec      float64 `json:"dut_cpu_seconds,omitempty"`
	KernelRx    uint64  `json:"dut_rx_ring_drops,omitempty"` // fastnat: frames the kernel dropped at its full rx rings
}

// TCPReport is the outcome of RunTCP.
type TCPReport struct {
	Machine  Machine `json:"machine"`
	Duration string  `json:"duration"`
	Rounds   int     `json:"rounds"`
	// Congestion is the senders' TCP congestion control (the host's
	// net.ipv4.tcp_congestion_control, which new namespaces inherit):
	// bbr keeps sending into a full ring where cubic backs off, so the
	// two give different rates and retransmissions on the same NAT.
	Congestion string      `json:"tcp_congestion_control,omitempty"`
	Results    []TCPResult `json:"results"`
}

// ErrNoIperf is returned by RunTCP without iperf3 (the Debian package
// iperf3; scripts/setup.sh installs it).
var ErrNoIperf = errors.New("iperf3 not installed")

const tcpIperfPort = 5201

// RunTCP runs the TCP and UDP cases on each DUT: one topology per DUT, an
// iperf3 server on the outside client, iperf3 clients on the inside
// server sending out through the NAT's nat outbound rule (the NAT's
// everyday direction, as in bench veth). The DUT runs unpinned, as a user
// would run it: on this topology every host and the NAT share the
// machine's CPUs, and a segment's whole path runs on them.
func RunTCP(ctx context.Context, cfg TCPConfig) (*TCPReport, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("bench tcp: %w", testnet.ErrNotRoot)
	}
	if err := testnet.CheckTools("iperf3"); err != nil {
		return nil, fmt.Errorf("bench tcp: %w: %w", ErrNoIperf, err)
	}
	if err := testnet.CheckTools("ip", "ethtool", "sysctl", "nft", "sh"); err != nil {
		return nil, fmt.Errorf("bench tcp: %w", err)
	}
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	rep := &TCPReport{Machine: ThisMachine(), Duration: cfg.Duration.String(), Rounds: cfg.Rounds}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control"); err == nil {
		rep.Congestion = strings.TrimSpace(string(b))
	}
	runs := map[string][]TCPResult{}
	for round := range cfg.Rounds {
		order := slices.Clone(cfg.DUTs)
		if round%2 == 1 {
			slices.Reverse(order) // a drift in the machine hits every DUT alike
		}
		for _, name := range order {
			var dut DUT
			switch name {
			case DUTKernel:
				dut = KernelDUT()
			case DUTFastnat:
				dut = FastnatDUT(cfg.FastnatBinary)
			case DUTNone:
				dut = ForwardDUT()
			default:
				return rep, fmt.Errorf("bench tcp: unknown DUT %q", name)
			}
			res, err := tcpOnDUT(ctx, cfg, dut, round)
			for _, r := range res {
				k := fmt.Sprintf("%s/%s/%d", r.DUT, r.Proto, r.Streams)
				runs[k] = append(runs[k], r)
			}
			if err != nil {
				return rep, err
			}
		}
	}
	for _, name := range cfg.DUTs {
		cases := []struct {
			proto   string
			streams int
		}{}
		for _, s := range cfg.Streams {
			cases = append(cases, struct {
				proto   string
				streams int
			}{"tcp", s})
		}
		if cfg.UDPRate != "" && cfg.UDPRate != "0" {
			cases = append(cases, struct {
				proto   string
				streams int
			}{"udp", 1})
		}
		for _, c := range cases {
			rs := runs[fmt.Sprintf("%s/%s/%d", name, c.proto, c.streams)]
			if len(rs) == 0 {
				continue
			}
			slices.SortFunc(rs, func(a, b TCPResult) int { return cmpFloat(a.Gbps, b.Gbps) })
			rep.Results = append(rep.Results, rs[len(rs)/2])
		}
	}
	return rep, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tcpOnDUT builds a topology, starts dut on it and runs every case.
func tcpOnDUT(ctx context.Context, cfg TCPConfig, dut DUT, round int) ([]TCPResult, error) {
	topo, err := testnet.New(ctx, testnet.Options{})
	if err != nil {
		return nil, err
	}
	defer topo.Close()
	if _, err := topo.Start(topo.Client, "iperf3", "-s", "-p", strconv.Itoa(tcpIperfPort)); err != nil {
		return nil, err
	}
	run, err := dut.Start(ctx, topo, DUTEnv{CPU: -1, Flows: 256})
	if err != nil {
		return nil, err
	}
	defer run.Stop()
	var out []TCPResult
	do := func(proto string, streams int) error {
		fmt.Fprintf(cfg.Progress, "%s, round %d: %s, %d streams... ", dut.Name, round+1, proto, streams)
		before := dutCPU(run.PID)
		drops0 := fastnatRxDrops(ctx, cfg.FastnatBinary, topo, run.PID)
		rcvbuf0, rcvbufErr := testnet.UDPRcvbufErrors(topo.Client)
		r, err := iperf(ctx, topo.Server, proto, streams, cfg)
		if err != nil {
			fmt.Fprintln(cfg.Progress, "failed")
			return err
		}
		r.DUT = dut.Name
		if proto == "udp" {
			if n, err := testnet.UDPRcvbufErrors(topo.Client); err == nil && rcvbufErr == nil {
				r.RcvbufDrops = n - rcvbuf0
			}
		}
		if run.PID != 0 {
			r.CPUSec = (dutCPU(run.PID) - before).Seconds()
			r.KernelRx = fastnatRxDrops(ctx, cfg.FastnatBinary, topo, run.PID) - drops0
		}
		if run.Check != nil {
			if err := run.Check(); err != nil {
				return err
			}
		}
		fmt.Fprintf(cfg.Progress, "%.2f Gbit/s\n", r.Gbps)
		out = append(out, r)
		return nil
	}
	for _, s := range cfg.Streams {
		if err := do("tcp", s); err != nil {
			return out, err
		}
	}
	if cfg.UDPRate != "" && cfg.UDPRate != "0" {
		if err := do("udp", 1); err != nil {
			return out, err
		}
	}
	return out, nil
}

// iperf runs one iperf3 client in namespace ns to the outside client.
func iperf(ctx context.Context, ns, proto string, streams int, cfg TCPConfig) (TCPResult, error) {
	dst := netip.AddrPortFrom(testnet.ClientAddr, tcpIperfPort)
	args := []string{"-c", dst.Addr().String(), "-p", strconv.Itoa(tcpIperfPort), "-t", strconv.Itoa(max(1, int(cfg.Duration.Seconds()))),
		"-P", strconv.Itoa(streams), "-J"}
	if proto == "udp" {
		args = append(args, "-u", "-b", cfg.UDPRate, "-l", strconv.Itoa(cfg.UDPSize))
	}
	var b []byte
	var err error
	for try := 0; try < 5; try++ {
		if b, err = testnet.Run(ctx, ns, "iperf3", args...); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond) // the server may still be ending the last test
	}
	if err != nil {
		return TCPResult{}, fmt.Errorf("iperf3 %v: %w: %s", args, err, tail(string(b), 1024))
	}
	var res struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bps float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			Sum struct {
				Bps         float64 `json:"bits_per_second"`
				LostPercent float64 `json:"lost_percent"`
			} `json:"sum"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &res); err != nil || res.Error != "" {
		return TCPResult{}, fmt.Errorf("iperf3 output: %v %s: %s", err, res.Error, tail(string(b), 1024))
	}
	r := TCPResult{Proto: proto, Streams: streams}
	if proto == "udp" {
		r.Gbps, r.LostPct = res.End.Sum.Bps*(1-res.End.Sum.LostPercent/100)/1e9, res.End.Sum.LostPercent
	} else {
		r.Gbps, r.Retrans = res.End.SumReceived.Bps/1e9, res.End.SumSent.Retransmits
	}
	return r, nil
}

// WriteTable prints the report, fastnat beside the kernel per case.
func (r *TCPReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "fastnat bench tcp — iperf3 through the NAT on veth, inside to outside, %s per case, median of %d\n%s\n", r.Duration, r.Rounds, r.Machine)
	if r.Congestion != "" {
		fmt.Fprintf(w, "TCP congestion control: %s\n", r.Congestion)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tdut\tGbit/s\tvs kernel\tretransmits\tUDP lost %\treceiver drops\tDUT CPU s\trx ring drops\t")
	kernel := map[string]float64{}
	for _, x := range r.Results {
		if x.DUT == DUTKernel {
			kernel[x.caseName()] = x.Gbps
		}
	}
	for _, x := range r.Results {
		ratio := "-"
		if k := kernel[x.caseName()]; k > 0 && x.DUT != DUTKernel {
			ratio = fmt.Sprintf("%.2fx", x.Gbps/k)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%d\t%.2f\t%d\t%.1f\t%d\t\n", x.caseName(), x.DUT, x.Gbps, ratio, x.Retrans, x.LostPct, x.RcvbufDrops, x.CPUSec, x.KernelRx)
	}
	return tw.Flush()
}

func (x TCPResult) caseName() string {
	if x.Proto == "udp" {
		return "udp"
	}
	return fmt.Sprintf("tcp x%d", x.Streams)
}

// WriteJSON writes the report to path.
func (r *TCPReport) WriteJSON(path string) error {
	return writeJSON(path, r)
}

// Plot writes a grouped bar chart of Gbit/s per case and DUT to path.
func (r *TCPReport) Plot(path string) error {
	if len(r.Results) == 0 {
		return fmt.Errorf("plot %s: no results", path)
	}
	p := plot.New()
	p.Title.Text = "fastnat bench tcp: iperf3 through the NAT, Gbit/s\n" + r.Machine.String()
	p.Y.Label.Text = "Gbit/s"
	p.Y.Min = 0
	var cases []string
	for _, x := range r.Results {
		if !slices.Contains(cases, x.caseName()) {
			cases = append(cases, x.caseName())
		}
	}
	var series []barSeries
	for _, dut := range []string{DUTKernel, DUTFastnat, DUTNone} {
		vals := make(plotter.Values, len(cases))
		labels := make([]string, len(cases))
		seen := false
		for _, x := range r.Results {
			if x.DUT == dut {
				i := slices.Index(cases, x.caseName())
				vals[i], labels[i], seen = x.Gbps, fmt.Sprintf("%.2f", x.Gbps), true
			}
		}
		if seen {
			series = append(series, barSeries{name: dut, color: vethColors[dut], vals: vals, labels: labels})
		}
	}
	ymax, err := groupedBars(p, series, 40)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	p.NominalX(cases...)
	p.Y.Max = ymax * 1.25
	p.Legend.Top = true
	return savePlot(p, len(cases), path)
}

// dutCPU is the CPU time process pid has used, 0 when there is none (the
// kernel DUT).
func dutCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, _ := processCPU(pid)
	return d
}

// fastnatRxDrops asks the fastnat DUT (pid, its control socket in the
// topology's directory) for the frames the kernel dropped at its sockets'
// full rx rings: XDP_STATISTICS rx_dropped and rx_ring_full. 0 for the
// kernel DUT or when the daemon does not answer.
func fastnatRxDrops(ctx context.Context, binary string, t *testnet.Topology, pid int) uint64 {
	if pid == 0 || binary == "" {
		return 0
	}
	out, err := exec.CommandContext(ctx, binary, "show", "stats", "--json", "--socket", filepath.Join(t.Dir, "fastnat.sock")).Output()
	if err != nil {
		return 0
	}
	var st struct {
		Workers []struct {
			Ports []struct {
				Drops map[string]uint64 `json:"drops"`
			} `json:"ports"`
		} `json:"workers"`
	}
	if json.Unmarshal(out, &st) != nil {
		return 0
	}
	var n uint64
	for _, w := range st.Workers {
		for _, p := range w.Ports {
			n += p.Drops["rx_dropped"] + p.Drops["rx_ring_full"]
		}
	}
	return n
}
