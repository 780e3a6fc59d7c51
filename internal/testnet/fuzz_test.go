package testnet

import (
	"strings"
	"testing"
)

// FuzzParseTranscript: any client output parses without panicking, and
// every command and reply found is a line of the input minus its marker.
func FuzzParseTranscript(f *testing.F) {
	f.Add(curlTranscript, false)
	f.Add(lftpTranscript, true)
	f.Add("> \r\n< \n---> \n", true)
	f.Fuzz(func(t *testing.T, s string, lftp bool) {
		tool := Curl
		if lftp {
			tool = LFTP
		}
		sent, received := parseTranscript(tool, s)
		for _, l := range append(sent, received...) {
			if !strings.Contains(s, l) {
				t.Fatalf("%q is not in the input", l)
			}
			if strings.ContainsAny(l, "\n") {
				t.Fatalf("%q spans lines", l)
			}
		}
		r := FetchResult{Sent: sent, Received: received}
		_ = checkMode(r, PASV, nil)
		_ = r.Reply("227")
	})
}

// FuzzParseEcho: parseEcho never panics and accepts only messages whose
// checksum verifies, and it round-trips what echoRequest builds.
func FuzzParseEcho(f *testing.F) {
	f.Add(echoRequest(1, 2, pingPayload))
	f.Add([]byte{0, 0, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{8})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, _, _, ok := parseEcho(b)
		if ok && (inetChecksum(b) != 0 || (typ != icmpEchoReply && typ != icmpEchoRequest)) {
			t.Fatalf("accepted % x", b)
		}
		if len(b) >= 4 {
			id, seq := uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3])
			typ, gid, gseq, ok := parseEcho(echoRequest(id, seq, b[4:]))
			if !ok || typ != icmpEchoRequest || gid != id || gseq != seq {
				t.Fatalf("round trip of id %d seq %d failed", id, seq)
			}
		}
	})
}
