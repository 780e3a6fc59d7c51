package testnet

import (
	"bufio"
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVsftpdConfig(t *testing.T) {
	conf := VsftpdConfig(FTPServerConfig{
		Addr: netip.MustParseAddrPort("10.77.0.226:2021"), Root: "/srv/x",
		PasvMin: 30000, PasvMax: 30099, Extra: []string{"max_clients=3"},
	}, "/e", "/l")
	for _, want := range []string{
		"listen=YES", "background=NO", "listen_address=10.77.0.226", "listen_port=2021",
		"anonymous_enable=YES", "anon_root=/srv/x", "write_enable=NO",
		"pasv_min_port=30000", "pasv_max_port=30099", "connect_from_port_20=YES",
		"seccomp_sandbox=NO", "secure_chroot_dir=/e", "vsftpd_log_file=/l",
	} {
		if !strings.Contains(conf, "\n"+want+"\n") && !strings.HasPrefix(conf, want+"\n") {
			t.Errorf("missing line %q", want)
		}
	}
	if strings.Contains(conf, "pasv_address") {
		t.Error("pasv_address set: the 227 must name the server's own address")
	}
	if !strings.HasSuffix(conf, "max_clients=3\n") {
		t.Error("extra lines must come last so they win")
	}
}

func TestProFTPDConfig(t *testing.T) {
	cfg := FTPServerConfig{Addr: netip.MustParseAddrPort("10.77.0.226:2021"), Root: "/srv/x",
		PasvMin: 30000, PasvMax: 30099, Upload: true, Extra: []string{"MaxInstances 3"}}
	conf := ProFTPDConfig(cfg, "/d")
	for _, want := range []string{
		"DefaultAddress 10.77.0.226", "SocketBindTight on", "Port 2021", "PassivePorts 30000 30099",
		`ExtendedLog "/d/commands.log" ALL`, "<Anonymous /srv/x>", "  UserAlias anonymous ftp",
		"  <Directory upload>", "</Anonymous>",
	} {
		if !strings.Contains(conf, "\n"+want+"\n") {
			t.Errorf("missing line %q in\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "MasqueradeAddress") {
		t.Error("MasqueradeAddress set: the 227 must name the server's own address")
	}
	if !strings.HasSuffix(conf, "MaxInstances 3\n") {
		t.Error("extra lines must come last so they win")
	}
	cfg.PasvAddress = PublicAddr
	if conf := ProFTPDConfig(cfg, "/d"); !strings.Contains(conf, "\nMasqueradeAddress 198.18.0.204\n<Anonymous") {
		t.Errorf("MasqueradeAddress missing or inside <Anonymous>:\n%s", conf)
	}
	if conf := VsftpdConfig(cfg, "/e", "/l"); !strings.Contains(conf, "\npasv_address=198.18.0.204\n") ||
		!strings.Contains(conf, "\nanon_upload_enable=YES\n") {
		t.Errorf("vsftpd: pasv_address or uploads missing:\n%s", conf)
	}
}

// Every server the harness starts greets, serves the file and takes an
// upload from a client in its own namespace, announces its own address,
// and dies with the topology.
func TestFTPServerServes(t *testing.T) {
	for _, d := range Daemons {
		t.Run(d.String(), func(t *testing.T) {
			needRoot(t, d.program(), "curl")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			topo := MustNew(t, Options{})
			addr := netip.AddrPortFrom(ServerAddr, FTPInsidePort)
			s := topo.MustStartFTPServer(t, FTPServerConfig{NS: topo.Server, Addr: addr, Daemon: d, Upload: true})
			sum := MustWriteRandomFile(t, filepath.Join(s.Root(), "f.bin"), 1<<20, 1)
			res, err := FetchCheck(ctx, FetchSpec{
				NS: topo.Server, Tool: Curl, Mode: PASV, URL: s.URL(addr, "f.bin"),
				Dst: filepath.Join(t.TempDir(), "f.bin"),
			}, sum)
			if err != nil {
				t.Fatal(err)
			}
			if r := res.Reply("227"); !strings.Contains(r, "(10,77,0,226,") {
				t.Errorf("227 %q: want the server's own address", r)
			}
			if d != PureFTPd && !strings.Contains(s.Log(), "RETR f.bin") {
				t.Errorf("protocol log lacks the RETR:\n%s", s.Log())
			}
			if _, err := Fetch(ctx, FetchSpec{NS: topo.Server, Tool: Curl, Mode: EPSV, URL: s.URL(addr, UploadDir+"/g.bin"),
				Src: filepath.Join(s.Root(), "f.bin")}); err != nil {
				t.Fatal(err)
			}
			if got, _, err := FileSHA256(s.UploadPath("g.bin")); err != nil || got != sum {
				t.Errorf("upload: %s, %v", got, err)
			}
			c, err := DialTCP(ctx, topo.Server, addr)
			if err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if !strings.HasPrefix(line, "220") {
				t.Errorf("greeting %q", line)
			}
			if err := s.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
}

func TestWriteRandomFile(t *testing.T) {
	dir := t.TempDir()
	a, err := WriteRandomFile(filepath.Join(dir, "a"), 100000, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, err := WriteRandomFile(filepath.Join(dir, "b"), 100000, 42)
	if err != nil {
		t.Fatal(err)
	}
	c, err := WriteRandomFile(filepath.Join(dir, "c"), 100000, 43)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a == c {
		t.Errorf("same seed %s %s, other seed %s", a, b, c)
	}
	got, n, err := FileSHA256(filepath.Join(dir, "a"))
	if err != nil || got != a || n != 100000 {
		t.Errorf("FileSHA256 = %s %d %v, want %s 100000", got, n, err, a)
	}
}
