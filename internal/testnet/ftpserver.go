package testnet

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Default passive port range of the FTP servers StartFTPServer runs.
const (
	DefaultPasvMin = 30000
	DefaultPasvMax = 30099
)

// Daemon is an FTP server program.
type Daemon uint8

// The FTP servers StartFTPServer can run. Each formats its 227 and 229
// replies, and connects its active-mode data connections, its own way.
const (
	Vsftpd    Daemon = iota // vsftpd(8)
	ProFTPD                 // proftpd(8), unpacked by scripts/setup.sh
	PureFTPd                // pure-ftpd(8), unpacked by scripts/setup.sh
	Pyftpdlib               // python3 -m pyftpdlib
)

// Daemons lists every Daemon.
var Daemons = []Daemon{Vsftpd, ProFTPD, PureFTPd, Pyftpdlib}

func (d Daemon) String() string {
	switch d {
	case Vsftpd:
		return "vsftpd"
	case ProFTPD:
		return "proftpd"
	case PureFTPd:
		return "pure-ftpd"
	case Pyftpdlib:
		return "pyftpdlib"
	}
	return "daemon(" + strconv.Itoa(int(d)) + ")"
}

// program is the executable that runs d.
func (d Daemon) program() string {
	if d == Pyftpdlib {
		return debianPython
	}
	return d.String()
}

// debianPython is Debian's python3, the one python3-pyftpdlib installs
// into (PATH may name another first).
const debianPython = "/usr/bin/python3"

// FTPServerConfig describes an FTP server instance.
type FTPServerConfig struct {
	NS     string         // namespace to run in
	Addr   netip.AddrPort // address and port to listen on
	Daemon Daemon         // which server; the zero value is vsftpd
	// Root is the directory served, read-only, to anonymous users. It
	// must be owned by root and not writable by others (vsftpd refuses a
	// writable chroot). Empty: a new directory under Topology.Dir.
	Root string
	// Upload lets anonymous users store files (STOR) in the directory
	// "upload" of Root, which StartFTPServer makes, owned by the user
	// "ftp"; nowhere else is writable.
	Upload bool
	// PasvMin and PasvMax bound the passive data ports; zero means
	// DefaultPasvMin and DefaultPasvMax.
	PasvMin, PasvMax uint16
	// PasvAddress, when valid, is the address the server announces in its
	// 227 replies instead of its own — as operators configure a server
	// behind a NAT with its public address (vsftpd pasv_address, proftpd
	// MasqueradeAddress, pure-ftpd -P, pyftpdlib --nat-address).
	PasvAddress netip.Addr
	// Extra lines appended to vsftpd.conf or proftpd.conf (a later line
	// wins); the other servers take none.
	Extra []string
}

// FTPServer is a running FTP server.
type FTPServer struct {
	Config     FTPServerConfig // with defaults filled in
	Process    *Process
	ConfigPath string // vsftpd's and proftpd's; "" for the others
	// LogPath is the FTP protocol log (commands and replies) of vsftpd
	// and proftpd; "" for the others, whose log is their output.
	LogPath string
}

// UploadDir is the directory below Root that Config.Upload makes
// writable.
const UploadDir = "upload"

// StartFTPServer starts a standalone FTP server in cfg.NS and waits until
// it greets a connection. Close stops it.
//
// Every server allows anonymous downloads from cfg.Root (and uploads to
// UploadDir with cfg.Upload), passive mode on cfg.PasvMin..PasvMax
// announcing its own address (no masquerade address: behind a NAT the ALG
// must rewrite it), active mode, and refuses a PORT or EPRT naming another
// host than the control connection's peer.
//
//   - vsftpd connects its active data connections from port 20
//     (connect_from_port_20, which needs root: it is started as root and
//     drops privileges per session); see VsftpdConfig.
//   - proftpd runs as nobody with the anonymous user ftp; see
//     ProFTPDConfig.
//   - pure-ftpd serves anonymous users the home directory of the user ftp
//     and nothing else, so it runs in a mount namespace of its own (ip
//     netns exec makes one) with Root bound over that directory.
//   - pyftpdlib runs as root (Debian's python3 -m pyftpdlib).
func (t *Topology) StartFTPServer(ctx context.Context, cfg FTPServerConfig) (*FTPServer, error) {
	name := cfg.Daemon.String()
	if err := CheckTools(cfg.Daemon.program()); err != nil {
		return nil, err
	}
	if !cfg.Addr.IsValid() {
		return nil, fmt.Errorf("start %s: invalid listen address", name)
	}
	if cfg.PasvMin == 0 {
		cfg.PasvMin, cfg.PasvMax = DefaultPasvMin, DefaultPasvMax
	}
	dir, err := os.MkdirTemp(t.Dir, name+"-")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// vsftpd checks that its secure_chroot_dir is empty and not writable
	// by the unprivileged user; a private one does not depend on the
	// Debian package's /run/vsftpd/empty surviving a reboot.
	for _, d := range []string{dir, filepath.Join(dir, "empty")} {
		if err := mkdir755(d); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	if cfg.Root == "" {
		cfg.Root = filepath.Join(dir, "root")
		if err := mkdir755(cfg.Root); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	ftpUser, err := user.Lookup("ftp")
	if err != nil && cfg.Daemon != Vsftpd {
		return nil, fmt.Errorf("start %s: the anonymous user: %w (installing vsftpd creates it)", name, err)
	}
	if cfg.Upload {
		if err := uploadDir(cfg.Root, ftpUser); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	s := &FTPServer{Config: cfg}
	var args []string
	prog := cfg.Daemon.program()
	switch cfg.Daemon {
	case Vsftpd:
		s.ConfigPath, s.LogPath = filepath.Join(dir, "vsftpd.conf"), filepath.Join(dir, "vsftpd.log")
		args = []string{s.ConfigPath}
		err = os.WriteFile(s.ConfigPath, []byte(VsftpdConfig(cfg, filepath.Join(dir, "empty"), s.LogPath)), 0o600)
	case ProFTPD:
		s.ConfigPath, s.LogPath = filepath.Join(dir, "proftpd.conf"), filepath.Join(dir, "commands.log")
		args = []string{"-n", "-c", s.ConfigPath}
		err = os.WriteFile(s.ConfigPath, []byte(ProFTPDConfig(cfg, dir)), 0o600)
	case PureFTPd:
		if len(cfg.Extra) > 0 {
			return nil, fmt.Errorf("start %s: extra configuration lines are for vsftpd and proftpd", name)
		}
		// -e anonymous only, -A chroot, -H no reverse lookups, -f none no
		// syslog; anonymous uploads are allowed unless -i.
		pure := []string{ToolPath("pure-ftpd"), "-S", fmt.Sprintf("%s,%d", cfg.Addr.Addr(), cfg.Addr.Port()),
			"-p", fmt.Sprintf("%d:%d", cfg.PasvMin, cfg.PasvMax), "-e", "-A", "-H", "-f", "none"}
		if cfg.PasvAddress.IsValid() {
			pure = append(pure, "-P", cfg.PasvAddress.String())
		}
		prog = "sh"
		args = []string{"-c", `mount --bind "$1" "$2" && shift 2 && exec "$@"`, "sh", cfg.Root, ftpUser.HomeDir}
		args = append(args, pure...)
	case Pyftpdlib:
		if len(cfg.Extra) > 0 {
			return nil, fmt.Errorf("start %s: extra configuration lines are for vsftpd and proftpd", name)
		}
		// -w lets the anonymous user write anywhere under Root; -D logs
		// every command and reply.
		args = []string{"-m", "pyftpdlib", "-i", cfg.Addr.Addr().String(), "-p", strconv.Itoa(int(cfg.Addr.Port())),
			"-d", cfg.Root, "-r", fmt.Sprintf("%d-%d", cfg.PasvMin, cfg.PasvMax), "-D"}
		if cfg.Upload {
			args = append(args, "-w")
		}
		if cfg.PasvAddress.IsValid() {
			args = append(args, "-n", cfg.PasvAddress.String())
		}
	default:
		return nil, fmt.Errorf("start %s: unknown server", name)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p, err := t.Start(cfg.NS, prog, args...)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.Name = name + " " + cfg.Addr.String()
	s.Process = p
	if err := waitFTP(ctx, cfg.NS, cfg.Addr, p); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("start %s on %s in %s: %w", name, cfg.Addr, cfg.NS, err)
	}
	return s, nil
}

// mkdir755 makes directory d (and its parents) with mode 0755 whatever
// the umask: the servers' unprivileged users must reach it.
func mkdir755(d string) error {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	return os.Chmod(d, 0o755)
}

// uploadDir makes root/UploadDir writable by the anonymous user u (by
// everyone when there is no such user).
func uploadDir(root string, u *user.User) error {
	d := filepath.Join(root, UploadDir)
	if err := mkdir755(d); err != nil {
		return err
	}
	if u == nil {
		return os.Chmod(d, 0o777)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return os.Chown(d, uid, gid)
}

// UploadPath is where a file stored as UploadDir/name arrives.
func (s *FTPServer) UploadPath(name string) string {
	return filepath.Join(s.Config.Root, UploadDir, name)
}

// Root is the directory the server serves; files written there can be
// fetched as ftp://ADDR/NAME.
func (s *FTPServer) Root() string { return s.Config.Root }

// URL returns the ftp URL of file name on this server as reached at addr
// (the public address when a NAT publishes the server).
func (s *FTPServer) URL(addr netip.AddrPort, name string) string {
	return "ftp://" + addr.String() + "/" + strings.TrimPrefix(name, "/")
}

// Log returns the server's protocol log: every command and reply (for
// pure-ftpd, which logs only to syslog, its output).
func (s *FTPServer) Log() string {
	if s.LogPath == "" {
		return s.Process.Output()
	}
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
		// Anonymous, read-only but for UploadDir with cfg.Upload (vsftpd
		// lets the anonymous user write where the user ftp may).
		"anonymous_enable=YES",
		"no_anon_password=YES",
		"anon_root=" + cfg.Root,
		"anon_world_readable_only=YES",
		"local_enable=NO",
		"write_enable=" + yesNo(cfg.Upload),
		"anon_upload_enable=" + yesNo(cfg.Upload),
		"anon_umask=022",
		"anon_mkdir_write_enable=NO",
		// Passive mode: the 227/229 reply names this server's own address
		// (unless PasvAddress) and a port in the range.
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
	if cfg.PasvAddress.IsValid() {
		lines = append(lines, "pasv_address="+cfg.PasvAddress.String())
	}
	lines = append(lines, cfg.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

// ProFTPDConfig renders the proftpd.conf StartFTPServer uses; dir holds
// its scoreboard, pid file and logs (commands.log is the protocol log).
func ProFTPDConfig(cfg FTPServerConfig, dir string) string {
	f := func(name string) string { return strconv.Quote(filepath.Join(dir, name)) }
	lines := []string{
		`ServerName "fastnat test"`,
		"ServerType standalone",
		"UseIPv6 off",
		"DefaultAddress " + cfg.Addr.Addr().String(),
		"SocketBindTight on",
		fmt.Sprintf("Port %d", cfg.Addr.Port()),
		"User nobody",
		"Group nogroup",
		"Umask 022",
		"MaxInstances 64",
		// Passive mode: the 227/229 reply names this server's own
		// address unless PasvAddress. AllowForeignAddress stays off:
		// a PORT naming another host than the client is refused.
		fmt.Sprintf("PassivePorts %d %d", cfg.PasvMin, cfg.PasvMax),
		"PidFile " + f("proftpd.pid"),
		"ScoreboardFile " + f("proftpd.scoreboard"),
		"DelayTable none",
		// mod_delay would hold USER and PASS back to blur their timing.
		"DelayEngine off",
		"WtmpLog off",
		"UseReverseDNS off",
		"TimeoutIdle 60",
		"TimeoutNoTransfer 60",
		"SystemLog " + f("system.log"),
		"TransferLog none",
		"ExtendedLog " + f("commands.log") + " ALL",
	}
	if cfg.PasvAddress.IsValid() {
		lines = append(lines, "MasqueradeAddress "+cfg.PasvAddress.String())
	}
	lines = append(lines,
		"<Anonymous "+cfg.Root+">",
		"  User ftp",
		"  Group nogroup",
		"  UserAlias anonymous ftp",
		"  RequireValidShell off",
		"  MaxClients 64",
		"  <Limit WRITE>",
		"    DenyAll",
		"  </Limit>",
	)
	if cfg.Upload {
		lines = append(lines,
			"  <Directory "+UploadDir+">",
			"    <Limit STOR>",
			"      AllowAll",
			"    </Limit>",
			"  </Directory>")
	}
	lines = append(lines, "</Anonymous>")
	lines = append(lines, cfg.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

// waitFTP dials addr from ns until a "220" greeting arrives, the process
// exits, or ctx ends.
func waitFTP(ctx context.Context, ns string, addr netip.AddrPort, p *Process) error {
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("exited (%v): %s", err, tail(p.Output(), 2048))
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

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}
