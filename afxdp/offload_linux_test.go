package afxdp

import (
	"testing"
)

func TestCheckPeerOffload(t *testing.T) {
	requireXDP(t)
	r, b := newNetNS(t), newNetNS(t)
	vethPair(t, r, "r0", "", b, "b0", "", 1) // tx checksum offload off on both
	r.ip(t, "link", "add", "same0", "type", "veth", "peer", "name", "same1")
	r.exec(t, "ethtool", "-K", "same1", "tx", "on")
	var cross, same, lo PeerOffload
	r.do(t, func() (err error) {
		if cross, err = CheckPeerOffload("r0"); err != nil {
			return err
		}
		if same, err = CheckPeerOffload("same0"); err != nil {
			return err
		}
		lo, err = CheckPeerOffload("lo")
		return err
	})
	if !cross.Veth || !cross.Visible || cross.Peer != "b0" || cross.Netns != b.name || cross.TxChecksum {
		t.Errorf("peer in a named netns with offload off: %+v", cross)
	}
	if !same.Veth || !same.Visible || same.Peer != "same1" || same.Netns != "" || !same.TxChecksum {
		t.Errorf("peer beside it with offload on: %+v", same)
	}
	if lo.Veth || lo.Visible {
		t.Errorf("loopback: %+v", lo)
	}
	b.exec(t, "ethtool", "-K", "b0", "tx", "on")
	r.do(t, func() (err error) {
		cross, err = CheckPeerOffload("r0")
		return err
	})
	if !cross.Visible || !cross.TxChecksum {
		t.Errorf("peer in a named netns with offload on: %+v", cross)
	}
}
