package testnet_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/fastnat/fastnat/internal/testnet"
)

// The case on the kernel's own NAT: an FTP server inside on port 2021
// published as 198.18.0.204:9091 with the FTP helper on 9091, and a
// passive download from outside. (Needs root; not run by go test.)
func Example() {
	ctx := context.Background()
	topo, err := testnet.New(ctx, testnet.Options{Forwarding: true})
	if err != nil {
		log.Fatal(err)
	}
	defer topo.Close()
	if err := topo.KernelNAT(ctx, testnet.DefaultKernelNAT(true)); err != nil {
		log.Fatal(err)
	}
	srv, err := topo.StartFTPServer(ctx, testnet.FTPServerConfig{
		NS:   topo.Server,
		Addr: netip.AddrPortFrom(testnet.ServerAddr, testnet.FTPInsidePort),
	})
	if err != nil {
		log.Fatal(err)
	}
	sum, err := testnet.WriteRandomFile(filepath.Join(srv.Root(), "f.bin"), 8<<20, 1)
	if err != nil {
		log.Fatal(err)
	}
	res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS:   topo.Client,
		Tool: testnet.Curl,
		Mode: testnet.PASV,
		URL:  srv.URL(netip.AddrPortFrom(testnet.PublicAddr, testnet.FTPPublicPort), "f.bin"),
		Dst:  filepath.Join(os.TempDir(), "f.bin"),
	}, sum)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Reply("227"), res.Size)
}
