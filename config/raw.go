package config

// The raw* structs are the schema: their toml tags are the keys a file may
// use, and the index walk checks every key against them. Leaves are untyped
// (any) so that decoding never fails on a value's type; the conversion pass
// checks types and reports them with positions. A nil leaf is an absent key
// (TOML has no null).

type rawConfig struct {
	Dataplane   rawDataplane     `toml:"dataplane"`
	Interface   []rawInterface   `toml:"interface"`
	Flows       rawFlows         `toml:"flows"`
	Timeouts    rawTimeouts      `toml:"timeouts"`
	NAT         rawNAT           `toml:"nat"`
	PortMapping []rawPortMapping `toml:"port_mapping"`
	ALG         rawALG           `toml:"alg"`
	ICMP        rawICMP          `toml:"icmp"`
	TCP         rawTCP           `toml:"tcp"`
	Metrics     rawMetrics       `toml:"metrics"`
	Control     rawControl       `toml:"control"`
	Logging     rawLogging       `toml:"logging"`
}

type rawDataplane struct {
	Workers        any `toml:"workers"`
	CPUs           any `toml:"cpus"`
	Poll           any `toml:"poll"`
	Batch          any `toml:"batch"`
	FramesPerQueue any `toml:"frames_per_queue"`
	FrameSize      any `toml:"frame_size"`
	XDPMode        any `toml:"xdp_mode"`
}

type rawInterface struct {
	Name    any `toml:"name"`
	Role    any `toml:"role"`
	Queues  any `toml:"queues"`
	Gateway any `toml:"gateway"`
}

type rawFlows struct {
	Max any `toml:"max"`
}

type rawTimeouts struct {
	TCPSyn         any `toml:"tcp_syn"`
	TCPEstablished any `toml:"tcp_established"`
	TCPTransitory  any `toml:"tcp_transitory"`
	TCPClosed      any `toml:"tcp_closed"`
	UDP            any `toml:"udp"`
	ICMP           any `toml:"icmp"`
	Other          any `toml:"other"`
	Expectation    any `toml:"expectation"`
}

type rawNAT struct {
	Outbound []rawOutbound `toml:"outbound"`
	Server   []rawServer   `toml:"server"`
}

type rawOutbound struct {
	Inside        any `toml:"inside"`
	Pool          any `toml:"pool"`
	Ports         any `toml:"ports"`
	Mapping       any `toml:"mapping"`
	PortsPerHost  any `toml:"ports_per_host"`
	BlockSize     any `toml:"block_size"`
	BlocksPerHost any `toml:"blocks_per_host"`
}

type rawServer struct {
	Protocol any `toml:"protocol"`
	Public   any `toml:"public"`
	Inside   any `toml:"inside"`
}

type rawPortMapping struct {
	Application any `toml:"application"`
	Port        any `toml:"port"`
	Protocol    any `toml:"protocol"`
	Hosts       any `toml:"hosts"`
}

type rawALG struct {
	FTP rawFTP `toml:"ftp"`
}

type rawFTP struct {
	Enabled         any `toml:"enabled"`
	AllowThirdParty any `toml:"allow_third_party"`
	MaxExpectations any `toml:"max_expectations"`
}

type rawICMP struct {
	RateLimit any `toml:"rate_limit"`
	Burst     any `toml:"burst"`
}

type rawTCP struct {
	MSSClamp any `toml:"mss_clamp"`
}

type rawMetrics struct {
	Listen any `toml:"listen"`
}

type rawControl struct {
	Socket any `toml:"socket"`
	Group  any `toml:"group"`
}

type rawLogging struct {
	Ring   any         `toml:"ring"`
	IPFIX  []rawIPFIX  `toml:"ipfix"`
	Syslog []rawSyslog `toml:"syslog"`
}

type rawIPFIX struct {
	Collector       any `toml:"collector"`
	Domain          any `toml:"domain"`
	TemplateRefresh any `toml:"template_refresh"`
	MaxMessage      any `toml:"max_message"`
	Events          any `toml:"events"`
}

type rawSyslog struct {
	Transport any `toml:"transport"`
	Address   any `toml:"address"`
	Facility  any `toml:"facility"`
	Hostname  any `toml:"hostname"`
	Events    any `toml:"events"`
}
