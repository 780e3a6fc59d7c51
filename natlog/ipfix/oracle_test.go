package ipfix

import (
	"encoding/binary"
	"fmt"
)

// This file is the tests' independent IPFIX reader: it parses messages
// by RFC 7011 alone — header, sets, template records, data records laid
// out by whatever templates it was sent — without the package's template
// table or encoders.

type ieKey struct {
	id  uint16
	pen uint32
}

type spec struct {
	ieKey
	length uint16
}

type message struct {
	exportTime uint32
	seq        uint32
	domain     uint32
	templates  []uint16 // template IDs defined in this message
	records    []record
}

type record struct {
	tmpl   uint16
	values map[ieKey][]byte
}

// u returns the unsigned integer value of an element.
func (r record) u(id uint16) uint64 { return r.up(id, 0) }

func (r record) up(id uint16, pen uint32) uint64 {
	v, ok := r.values[ieKey{id, pen}]
	if !ok {
		panic(fmt.Sprintf("record of template %d has no element %d/%d", r.tmpl, pen, id))
	}
	var x uint64
	for _, b := range v {
		x = x<<8 | uint64(b)
	}
	return x
}

// reader keeps the templates a collector learned.
type reader struct {
	templates map[uint16][]spec
}

func newReader() *reader { return &reader{templates: map[uint16][]spec{}} }

func (rd *reader) parse(b []byte) (message, error) {
	var m message
	if len(b) < 16 {
		return m, fmt.Errorf("message of %d bytes", len(b))
	}
	if v := binary.BigEndian.Uint16(b); v != 10 {
		return m, fmt.Errorf("version %d", v)
	}
	if n := int(binary.BigEndian.Uint16(b[2:])); n != len(b) {
		return m, fmt.Errorf("header length %d, datagram %d", n, len(b))
	}
	m.exportTime = binary.BigEndian.Uint32(b[4:])
	m.seq = binary.BigEndian.Uint32(b[8:])
	m.domain = binary.BigEndian.Uint32(b[12:])
	for p := b[16:]; len(p) > 0; {
		if len(p) < 4 {
			return m, fmt.Errorf("%d trailing bytes", len(p))
		}
		id, n := binary.BigEndian.Uint16(p), int(binary.BigEndian.Uint16(p[2:]))
		if n < 4 || n > len(p) {
			return m, fmt.Errorf("set %d of length %d with %d bytes left", id, n, len(p))
		}
		body := p[4:n]
		p = p[n:]
		switch {
		case id == 2:
			for len(body) > 0 {
				if len(body) < 4 {
					return m, fmt.Errorf("template set: %d trailing bytes", len(body))
				}
				tid, count := binary.BigEndian.Uint16(body), int(binary.BigEndian.Uint16(body[2:]))
				if tid < 256 {
					return m, fmt.Errorf("template ID %d", tid)
				}
				body = body[4:]
				var specs []spec
				for range count {
					if len(body) < 4 {
						return m, fmt.Errorf("template %d cut short", tid)
					}
					s := spec{ieKey: ieKey{id: binary.BigEndian.Uint16(body)}, length: binary.BigEndian.Uint16(body[2:])}
					body = body[4:]
					if s.id&0x8000 != 0 {
						if len(body) < 4 {
							return m, fmt.Errorf("template %d: enterprise number cut short", tid)
						}
						s.id &^= 0x8000
						s.pen = binary.BigEndian.Uint32(body)
						body = body[4:]
					}
					if s.length == 0xffff {
						return m, fmt.Errorf("template %d: variable-length element %d", tid, s.id)
					}
					specs = append(specs, s)
				}
				rd.templates[tid] = specs
				m.templates = append(m.templates, tid)
			}
		case id >= 256:
			specs, ok := rd.templates[id]
			if !ok {
				return m, fmt.Errorf("data set %d before its template", id)
			}
			size := 0
			for _, s := range specs {
				size += int(s.length)
			}
			for len(body) >= size {
				r := record{tmpl: id, values: map[ieKey][]byte{}}
				for _, s := range specs {
					if _, dup := r.values[s.ieKey]; dup {
						return m, fmt.Errorf("template %d: element %d/%d twice", id, s.pen, s.id)
					}
					r.values[s.ieKey] = body[:s.length]
					body = body[s.length:]
				}
				m.records = append(m.records, r)
			}
			for _, c := range body {
				if c != 0 {
					return m, fmt.Errorf("data set %d: %d bytes left that are not padding", id, len(body))
				}
			}
		default:
			return m, fmt.Errorf("set ID %d", id)
		}
	}
	return m, nil
}
