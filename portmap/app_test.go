package portmap

import (
	"errors"
	"strings"
	"testing"
)

func TestParseApp(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want App
		err  error
	}{
		{"ftp", "ftp", AppFTP, nil},
		{"upper case", "FTP", AppFTP, nil},
		{"mixed case", "Http", AppHTTP, nil},
		{"tftp", "tftp", AppTFTP, nil},
		{"https", "https", AppHTTPS, nil},
		{"ssh", "ssh", AppSSH, nil},
		{"smtp", "smtp", AppSMTP, nil},
		{"dns", "dns", AppDNS, nil},
		{"sip", "sip", AppSIP, nil},
		{"h323", "H323", AppH323, nil},
		{"rtsp", "rtsp", AppRTSP, nil},
		{"pptp", "pptp", AppPPTP, nil},
		{"empty", "", AppOther, ErrNameLength},
		{"64 characters", strings.Repeat("a", 64), AppOther, ErrNameLength},
		{"63 characters unknown", strings.Repeat("a", 63), AppOther, ErrUnknownApp},
		{"invalid reserved", "invalid", AppOther, ErrReservedName},
		{"INVALID reserved", "INVALID", AppOther, ErrReservedName},
		{"other reserved", "other", AppOther, ErrReservedName},
		{"Other reserved", "Other", AppOther, ErrReservedName},
		{"ftp-data not mappable", "ftp-data", AppOther, ErrReservedName},
		{"unknown", "gopher", AppOther, ErrUnknownApp},
		{"space around", " ftp", AppOther, ErrUnknownApp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseApp(tc.in)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("ParseApp(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("ParseApp(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if err != nil && tc.err != ErrNameLength && !strings.Contains(err.Error(), "ftp, tftp") {
				t.Errorf("error %q does not list the known applications", err)
			}
		})
	}
}

func TestAppStringRoundTrip(t *testing.T) {
	for a := AppFTP; a < AppFTPData; a++ {
		got, err := ParseApp(a.String())
		if err != nil || got != a {
			t.Errorf("ParseApp(%q) = %v, %v; want %v", a.String(), got, err, a)
		}
	}
	if AppOther.String() != "other" || AppFTPData.String() != "ftp-data" {
		t.Errorf("AppOther, AppFTPData = %q, %q", AppOther, AppFTPData)
	}
	if s := App(200).String(); s != "app(200)" {
		t.Errorf("App(200) = %q", s)
	}
	if len(Names()) != int(AppFTPData-AppFTP) {
		t.Errorf("Names() = %v", Names())
	}
}

func TestParseProto(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint8
		ok   bool
	}{
		{"tcp", "tcp", ProtoTCP, true},
		{"udp", "udp", ProtoUDP, true},
		{"dccp", "dccp", ProtoDCCP, true},
		{"sctp", "sctp", ProtoSCTP, true},
		{"udp-lite", "udp-lite", ProtoUDPLite, true},
		{"upper", "TCP", ProtoTCP, true},
		{"icmp refused", "icmp", 0, false},
		{"udplite spelled wrong", "udplite", 0, false},
		{"empty", "", 0, false},
		{"number", "6", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProto(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseProto(%q) = %d, %v", tc.in, got, err)
			}
			if err != nil && (!errors.Is(err, ErrUnknownProto) || !strings.Contains(err.Error(), "udp-lite")) {
				t.Fatalf("error %q should wrap ErrUnknownProto and list the allowed names", err)
			}
			if err == nil && ProtoName(got) != strings.ToLower(tc.in) {
				t.Fatalf("ProtoName(%d) = %q", got, ProtoName(got))
			}
		})
	}
	if ProtoName(ProtoAny) != "any" || ProtoName(1) != "icmp" || ProtoName(99) != "99" {
		t.Errorf("ProtoName(0), ProtoName(1), ProtoName(99) = %q, %q, %q", ProtoName(0), ProtoName(1), ProtoName(99))
	}
}
