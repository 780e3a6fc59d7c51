package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// gopacket decodes the echo request the way we mean it, checksum included.
func TestEchoRequestDecodes(t *testing.T) {
	msg := echoRequest(0x1234, 7, pingPayload)
	p := gopacket.NewPacket(msg, layers.LayerTypeICMPv4, gopacket.Default)
	ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok {
		t.Fatalf("not ICMP: %v", p)
	}
	if ic.TypeCode.Type() != layers.ICMPv4TypeEchoRequest || ic.Id != 0x1234 || ic.Seq != 7 {
		t.Errorf("decoded %v id %#x seq %d", ic.TypeCode, ic.Id, ic.Seq)
	}
	want := ic.Checksum
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ic, gopacket.Payload(ic.Payload)); err != nil {
		t.Fatal(err)
	}
	if ic.Checksum != want {
		t.Errorf("checksum %#04x, gopacket computes %#04x", want, ic.Checksum)
	}
	typ, id, seq, ok := parseEcho(msg)
	if !ok || typ != icmpEchoRequest || id != 0x1234 || seq != 7 {
		t.Errorf("parseEcho = %d %#x %d %v", typ, id, seq, ok)
	}
}

func TestParseEchoRejects(t *testing.T) {
	good := echoRequest(1, 1, nil)
	cases := []struct {
		name string
		b    []byte
	}{
		{"short", good[:7]},
		{"bad checksum", append([]byte{good[0], good[1], good[2] ^ 1}, good[3:]...)},
		{"other type", func() []byte { b := echoRequest(1, 1, nil); b[0] = 3; return b }()},
		{"nonzero code", func() []byte {
			b := echoRequest(1, 1, nil)
			b[1] = 1
			b[2], b[3] = 0, 0
			c := inetChecksum(b)
			b[2], b[3] = byte(c>>8), byte(c)
			return b
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, _, ok := parseEcho(c.b); ok {
				t.Error("accepted")
			}
		})
	}
}

func TestPingLoopback(t *testing.T) {
	needRoot(t)
	topo := MustNew(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Ping(ctx, topo.Client, RouterOutsideAddr, 3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Received != 3 {
		t.Errorf("%+v", res)
	}
	// Nothing answers an unused address on the link: all lost, no error.
	res, err = Ping(ctx, topo.Client, mustAddr("198.18.0.99"), 1, 200*time.Millisecond)
	if err != nil || res.Received != 0 {
		t.Errorf("%+v %v", res, err)
	}
}
