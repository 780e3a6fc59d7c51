package testnet

import (
	"strings"
	"testing"
)

// FuzzParseTranscript: any client output parses without panicking, and
// every command and reply found is a line of the input minus its marker.
func FuzzParseTranscript(f *testing.F) {
	for i, s := range []string{curlTranscript, lftpTranscript, wgetTranscript, tnftpTranscript, ncftpTranscript, ftplibTranscript, busyboxTranscript} {
		f.Add(s, uint8(i))
	}
	f.Add("> \r\n< \n---> \n", uint8(1))
	f.Add("ftpget: cmd (null) (null) (null)\n*cmd* '\n2026-12-03 12:22:29  Cmd: \n", uint8(4))
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		tool := AllTools[int(which)%len(AllTools)]
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
		_ = checkMode(r, PASV, "RETR", nil)
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
