package testnet

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Default passive port range of the FTP servers StartFTPServer runs.
const (
	DefaultPasvMin = 30000
	DefaultPasvMax = 30099
)

// FTPServerConfig describes a vsftpd instance.
type FTPServerConfig struct {
	NS   string         // namespace to run in
	Addr netip.AddrPort // address and port to listen on
	// Root is the directory served, read-only, to anonymous users. It
	// must be owned by root and not writable by others (vsftpd refuses a
	// writable chroot). Empty: a new directory under Topology.Dir.
	Root string
	// PasvMin and PasvMax bound the passive data ports; zero means
	// DefaultPasvMin and DefaultPasvMax.
	PasvMin, PasvMax uint16
	// Extra lines appended to vsftpd.conf (a later line wins).
	Extra []string
}

// FTPServer is a running vsftpd.
type FTPServer struct {
	Config     FTPServerConfig // with defaults filled in
	Process    *Process
	ConfigPath string
	LogPath    string // the FTP protocol log (commands and replies)
}

// StartFTPServer starts a standalone vsftpd in cfg.NS and waits until it
// greets a connection. Close stops it.
//
// The server allows anonymous read-only downloads from cfg.Root, passive
// mode on cfg.PasvMin..PasvMax announcing its own address (no pasv_address:
// behind a NAT the ALG must rewrite it), and active mode with data
// connections from port 20 (connect_from_port_20, which needs root: vsftpd
// is started as root and drops privileges per session).
func (t *Topology) StartFTPServer(ctx context.Context, cfg FTPServerConfig) (*FTPServer, error) {
	if err := CheckTools("vsftpd"); err != nil {
		return nil, err
	}
	if !cfg.Addr.IsValid() {
		return nil, fmt.Errorf("start vsftpd: invalid listen address")
	}
	if cfg.PasvMin == 0 {
		cfg.PasvMin, cfg.PasvMax = DefaultPasvMin, DefaultPasvMax
	}
	dir, err := os.MkdirTemp(t.Dir, "vsftpd-")
	if err != nil {
		return nil, fmt.Errorf("start vsftpd: %w", err)
	}
	// vsftpd checks that its secure_chroot_dir is empty and not writable
	// by the unprivileged user; a private one does not depend on the
	// Debian package's /run/vsftpd/empty surviving a reboot.
	for _, d := range []string{dir, filepath.Join(dir, "empty")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start vsftpd: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, fmt.Errorf("start vsftpd: %w", err)
		}
	}
	if cfg.Root == "" {
		cfg.Root = filepath.Join(dir, "root")
		if err := os.Mkdir(cfg.Root, 0o755); err != nil {
			return nil, fmt.Errorf("start vsftpd: %w", err)
		}
		if err := os.Chmod(cfg.Root, 0o755); err != nil {
			return nil, fmt.Errorf("start vsftpd: %w", err)
		}
	}
	s := &FTPServer{
		Config:     cfg,
		ConfigPath: filepath.Join(dir, "vsftpd.conf"),
		LogPath:    filepath.Join(dir, "vsftpd.log"),
	}
	conf := VsftpdConfig(cfg, filepath.Join(dir, "empty"), s.LogPath)
	// vsftpd refuses a config file not owned by the user running it; we
	// are root and write it as root.
	if err := os.WriteFile(s.ConfigPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("start vsftpd: %w", err)
	}
	p, err := t.Start(cfg.NS, "vsftpd", s.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("start vsftpd: %w", err)
	}
	p.Name = "vsftpd " + cfg.Addr.String()
	s.Process = p
	if err := waitFTP(ctx, cfg.NS, cfg.Addr, p); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("start vsftpd on %s in %s: %w", cfg.Addr, cfg.NS, err)
	}
	return s, nil
}

// Root is the directory the server serves; files written there can be
// fetched as ftp://ADDR/NAME.
func (s *FTPServer) Root() string { return s.Config.Root }

// URL returns the ftp URL of file name on this server as reached at addr
// (the public address when a NAT publishes the server).
func (s *FTPServer) URL(addr netip.AddrPort, name string) string {
	return "ftp://" + addr.String() + "/" + strings.TrimPrefix(name, "/")
}

// Log returns the server's protocol log: every command and reply.
func (s *FTPServer) Log() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Stop stops the server.
func (s *FTPServer) Stop() error { return s.Process.Stop() }

// VsftpdConfig renders the vsftpd.conf StartFTPServer uses. emptyDir is
// the secure_chroot_dir, logPath the protocol log.
func VsftpdConfig(cfg FTPServerConfig, emptyDir, logPath string) string {
	lines := []string{
		// Standalone, in the foreground, so the harness owns the process.
		"listen=YES",
		"listen_ipv6=NO",
		"background=NO",
		"listen_address=" + cfg.Addr.Addr().String(),
		fmt.Sprintf("listen_port=%d", cfg.Addr.Port()),
		// Anonymous, read-only.
		"anonymous_enable=YES",
		"no_anon_password=YES",
		"anon_root=" + cfg.Root,
		"anon_world_readable_only=YES",
		"local_enable=NO",
		"write_enable=NO",
		"anon_upload_enable=NO",
		"anon_mkdir_write_enable=NO",
		// Passive mode: the 227/229 reply names this server's own address
		// and a port in the range; no pasv_address.
		"pasv_enable=YES",
		fmt.Sprintf("pasv_min_port=%d", cfg.PasvMin),
		fmt.Sprintf("pasv_max_port=%d", cfg.PasvMax),
		"pasv_addr_resolve=NO",
		// Active mode from port 20, as a classic FTP server does.
		// port_promiscuous=NO (the default) makes vsftpd refuse a PORT or
		// EPRT naming another host than the control connection's peer:
		// a PORT a NAT failed to rewrite is refused, as it should be.
		"port_enable=YES",
		"connect_from_port_20=YES",
		"ftp_data_port=20",
		"port_promiscuous=NO",
		// Debian defaults that break here: PAM is for local users only,
		// the seccomp sandbox has rejected syscalls of newer kernels and
		// libcs, and SSL needs certificates.
		"ssl_enable=NO",
		"seccomp_sandbox=NO",
		"secure_chroot_dir=" + emptyDir,
		"ftp_username=ftp",
		"nopriv_user=nobody",
		"hide_ids=YES",
		// Log the protocol so a failing test can show the conversation.
		"xferlog_enable=YES",
		"xferlog_std_format=NO",
		"log_ftp_protocol=YES",
		"syslog_enable=NO",
		"vsftpd_log_file=" + logPath,
		// Quick failure when a data connection never comes.
		"data_connection_timeout=20",
		"accept_timeout=10",
		"connect_timeout=10",
		"idle_session_timeout=60",
		"max_clients=64",
	}
	lines = append(lines, cfg.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

// waitFTP dials addr from ns until a "220" greeting arrives, the process
// exits, or ctx ends.
func waitFTP(ctx context.Context, ns string, addr netip.AddrPort, p *Process) error {
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("vsftpd exited (%v): %s", err, tail(p.Output(), 2048))
		}
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		c, err := DialTCP(dctx, ns, addr)
		cancel()
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "220") {
				return nil
			}
			if rerr == nil {
				return fmt.Errorf("greeting %q: %s", strings.TrimSpace(line), tail(p.Output(), 2048))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no greeting: %w: %s", ctx.Err(), tail(p.Output(), 2048))
		case <-p.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
