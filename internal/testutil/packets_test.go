package testutil

import "testing"

// TestDecodeIgnoresPayloadGuess: a UDP datagram to a port gopacket
// decodes an application protocol on (Geneve, 6081) whose payload is not
// one still decodes, with its headers and checksums checked.
func TestDecodeIgnoresPayloadGuess(t *testing.T) {
	d := Decode(t, UDP(t, "10.77.0.5:40000", "198.18.0.1:6081", []byte{1, 2, 3}))
	if d.UDP == nil || d.UDP.DstPort != 6081 {
		t.Fatalf("decoded %+v", d.UDP)
	}
}
