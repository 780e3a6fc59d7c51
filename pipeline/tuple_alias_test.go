package pipeline

import "github.com/fastnat/fastnat/packet"

type packetTupleT = packet.Tuple
