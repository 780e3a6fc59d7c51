package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// FTP over explicit TLS (AUTH TLS, RFC 4217) through the NAT, with FTP
// mapped to the control port so that the ALG inspects the connection until
// it turns to TLS. The ALG cannot read what follows, so it must pass it on
// untouched and hold nothing back; passive mode works as through any NAT
// that cannot read the control connection: a client inside reaches a
// server outside by itself, and a server inside announces its public
// address (pasv_address) and publishes its passive ports (nat.server).
// curl and lftp, TLS on the control and the data connections, every file
// checked by sha256.

func TestFastnatFTPOverTLS(t *testing.T) { requireFastnat(t); ftpsThroughNAT(t, fastnatRouter) }
func TestKernelNATFTPOverTLS(t *testing.T) {
	requireHarness(t)
	ftpsThroughNAT(t, kernelRouter)
}

// ftpsPasvMin is the first of the three passive ports the inside server
// uses and the NAT publishes.
const ftpsPasvMin = 30200

func ftpsThroughNAT(t *testing.T, r router) {
	if err := testnet.CheckTools("curl", "lftp"); err != nil {
		t.Skip(err)
	}
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	var published []testnet.Forward
	for p := uint16(ftpsPasvMin); p < ftpsPasvMin+3; p++ {
		published = append(published, testnet.Forward{Proto: "tcp",
			Public: netip.AddrPortFrom(testnet.PublicAddr, p), Inside: netip.AddrPortFrom(testnet.ServerAddr, p)})
	}
	r.setup(t, topo, true, published)
	tls := ftpsServerLines(t)
	in := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP, Extra: tls,
		PasvMin: ftpsPasvMin, PasvMax: ftpsPasvMin + 2, PasvAddress: testnet.PublicAddr}, smallFile)
	out := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Client, Addr: outsideFTP, Extra: tls}, smallFile)
	for _, side := range []ftpSide{
		{"server-inside", topo.Client, in.server.URL(publicFTP, in.name), in},
		{"client-inside", topo.Host, out.server.URL(outsideFTP, out.name), out},
	} {
		for _, tool := range []string{"curl", "lftp"} {
			t.Run(side.name+"/"+tool, func(t *testing.T) {
				dst := filepath.Join(t.TempDir(), side.f.name)
				var args []string
				if tool == "curl" {
					// --ssl-reqd: AUTH TLS, and TLS on the data connection
					// (PROT P); EPSV first, as curl does.
					args = []string{"-sS", "--ssl-reqd", "--insecure", "--ftp-pasv", "--connect-timeout", "5",
						"--max-time", "30", "-o", dst, side.url}
				} else {
					// lftp connects to the 227's address: the public one
					// the inside server announces.
					args = []string{"-c", fmt.Sprintf("set ftp:ssl-force true; set ftp:ssl-allow-anonymous true; set ftp:ssl-protect-data true; "+
						"set ssl:verify-certificate no; set ftp:passive-mode true; set ftp:prefer-epsv false; "+
						"set net:timeout 5; set net:max-retries 1; get %s -o %s", side.url, dst)}
				}
				if b, err := testnet.Run(ctx, side.ns, tool, args...); err != nil {
					t.Fatalf("%s: %v\n%s", tool, err, b)
				}
				sum, _, err := testnet.FileSHA256(dst)
				if err != nil || sum != side.f.sha256 {
					t.Fatalf("fetched file: sha256 %s, %v; want %s", sum, err, side.f.sha256)
				}
			})
		}
	}
}

// ftpsServerLines are the vsftpd settings for FTPS: anonymous users must
// log in and transfer over TLS, with a fresh self-signed certificate.
func ftpsServerLines(t *testing.T) []string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastnat-e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"ssl_enable=YES",
		"allow_anon_ssl=YES",
		"force_anon_logins_ssl=YES",
		"force_anon_data_ssl=YES",
		"ssl_tlsv1=YES",
		"ssl_sslv2=NO",
		"ssl_sslv3=NO",
		"ssl_ciphers=HIGH",
		"require_ssl_reuse=NO",
		"rsa_cert_file=" + certPath,
		"rsa_private_key_file=" + keyPath,
	}
}
