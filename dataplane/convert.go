package dataplane

import (
	"net/netip"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/pipeline"
)

// NATRules translates the configuration into the NAT engine's rules
// (`fastnat lookup` inverts them offline). Read offline, they know none
// of the host's addresses (nat.Rules.Local): the running dataplane adds
// them.
func NATRules(cfg *config.Config) nat.Rules { return natRules(cfg, nil) }

// natRules translates the configuration into the engine's rules, with
// local the host's own addresses and their prefixes (nat.Rules.Local).
func natRules(cfg *config.Config, local []netip.Prefix) nat.Rules {
	r := nat.Rules{
		Local:   local,
		PortMap: cfg.PortMap,
		FTPALG:  cfg.ALG.FTP.Enabled,
		Timeouts: nat.Timeouts{
			TCPSyn: cfg.Timeouts.TCPSyn, TCPEstablished: cfg.Timeouts.TCPEstablished,
			TCPTransitory: cfg.Timeouts.TCPTransitory, TCPClosed: cfg.Timeouts.TCPClosed, UDP: cfg.Timeouts.UDP,
			ICMP: cfg.Timeouts.ICMP, Other: cfg.Timeouts.Other, Expectation: cfg.Timeouts.Expectation,
		},
	}
	for _, o := range cfg.NAT.Outbound {
		r.Outbound = append(r.Outbound, nat.Outbound{
			Inside: o.Inside, Pool: o.Pool, PortLo: o.Ports.Lo, PortHi: o.Ports.Hi,
			// A deterministic host's range is endpoint independent too.
			EndpointIndependent: o.Mapping != config.AddressAndPortDependent,
			Deterministic:       o.Mapping == config.Deterministic,
			PortsPerHost:        o.PortsPerHost,
			BlockSize:           o.BlockSize,
			BlocksPerHost:       o.BlocksPerHost,
		})
	}
	for _, s := range cfg.NAT.Server {
		r.Servers = append(r.Servers, nat.Server{Proto: s.Proto, Public: s.Public, Inside: s.Inside})
	}
	return r
}

// publicAddrs are the addresses the NAT answers for: pools and server
// public addresses, each once, in the order the file names them.
func publicAddrs(cfg *config.Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, o := range cfg.NAT.Outbound {
		for _, a := range o.Pool {
			add(a)
		}
	}
	for _, s := range cfg.NAT.Server {
		add(s.Public.Addr())
	}
	return out
}

// filter is what the XDP programs steer to fastnat for cfg: the public
// addresses on the outside, the inside prefixes on the inside except
// traffic to the host's own addresses (read through addrs' netlink
// handle, so in the dataplane's namespace).
func filter(cfg *config.Config, public []netip.Addr, addrs *afxdp.Addresses) (afxdp.Filter, error) {
	f := afxdp.Filter{Public: public}
	for _, o := range cfg.NAT.Outbound {
		f.Inside = append(f.Inside, o.Inside...)
	}
	for _, s := range cfg.NAT.Server {
		f.Inside = append(f.Inside, netip.PrefixFrom(s.Inside.Addr(), 32))
	}
	host, err := addrs.HostAddrs()
	if err != nil {
		return f, err
	}
	isPublic := map[netip.Addr]bool{}
	for _, a := range public {
		isPublic[a] = true
	}
	for _, a := range host {
		if !isPublic[a] {
			f.Local = append(f.Local, a)
		}
	}
	return f, nil
}

// routerConfig is what the workers do as routers besides translating:
// the ICMP error rate limit and MSS clamping.
func routerConfig(cfg *config.Config) pipeline.RouterConfig {
	c := pipeline.RouterConfig{ICMPRateLimit: cfg.ICMP.RateLimit, ICMPBurst: cfg.ICMP.Burst, MSSClamp: cfg.TCP.MSSClamp}
	if cfg.TCP.MSSClamp == config.MSSClampMTU {
		c.MSSClamp = pipeline.MSSClampMTU
	}
	return c
}

func xdpMode(m config.XDPMode) afxdp.Mode {
	switch m {
	case config.XDPNative:
		return afxdp.ModeNative
	case config.XDPGeneric:
		return afxdp.ModeGeneric
	}
	return afxdp.ModeAuto
}

func pollMode(m config.PollMode) pipeline.PollMode {
	switch m {
	case config.PollBusy:
		return pipeline.PollBusy
	case config.PollInterrupt:
		return pipeline.PollInterrupt
	}
	return pipeline.PollAdaptive
}
