package packet

import "encoding/binary"

// EtherType values (IEEE 802 numbers) that Parse distinguishes.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeIPv6 uint16 = 0x86dd
)

// Header lengths in bytes.
const (
	EthernetLen = 14 // destination, source, EtherType
	VLANLen     = 4  // one 802.1Q tag: TPID 0x8100 and TCI
)

// Ethernet II header:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   Destination MAC address                     |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                     Source MAC address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |   (with 802.1Q: TPID 0x8100,
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+    then TCI, then EtherType)
const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12
	vlanTCI = 14 // TCI of an 802.1Q tag, when ethType holds EtherTypeVLAN
)

// Ethernet is a view of an Ethernet II header. It knows nothing of VLAN
// tags: with a tag, EtherType returns EtherTypeVLAN and Parse records the
// tag. Accessors do not bounds-check; the slice must hold EthernetLen bytes.
type Ethernet []byte

// Dst returns the destination MAC address.
func (e Ethernet) Dst() [6]byte { return [6]byte(e[ethDst : ethDst+6]) }

// Src returns the source MAC address.
func (e Ethernet) Src() [6]byte { return [6]byte(e[ethSrc : ethSrc+6]) }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(a [6]byte) { copy(e[ethDst:ethDst+6], a[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(a [6]byte) { copy(e[ethSrc:ethSrc+6], a[:]) }

// EtherType returns the EtherType (or TPID, if tagged) after the addresses.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[ethType:]) }

// SetEtherType sets the EtherType.
func (e Ethernet) SetEtherType(t uint16) { binary.BigEndian.PutUint16(e[ethType:], t) }
