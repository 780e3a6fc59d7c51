package testnet

import (
	"context"
	"encoding/json"
	"fmt"
)

// TsharkPackets runs tshark in the caller's namespace over the capture
// pcap, with args before its JSON output options (for example "-d",
// "udp.port==4739,cflow"), and returns each packet's dissected layers by
// protocol name.
func TsharkPackets(ctx context.Context, pcap string, args ...string) ([]map[string]json.RawMessage, error) {
	cmd := append([]string{"-r", pcap}, args...)
	out, err := runHost(ctx, "tshark", append(cmd, "-T", "json", "--no-duplicate-keys")...)
	if err != nil {
		return nil, fmt.Errorf("tshark: %w", err)
	}
	var pkts []struct {
		Source struct {
			Layers map[string]json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &pkts); err != nil {
		return nil, fmt.Errorf("tshark's JSON: %w", err)
	}
	layers := make([]map[string]json.RawMessage, len(pkts))
	for i, p := range pkts {
		layers[i] = p.Source.Layers
	}
	return layers, nil
}
