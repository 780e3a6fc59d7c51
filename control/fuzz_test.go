package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/natlog/natlogtest"
)

// FuzzHandle feeds arbitrary bytes to the request parser: every input gets
// exactly one answer, a failure code or the payload of a known command,
// and the answer encodes.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"cmd":"stats"}`, `{"cmd":"sessions","app":"ftp","limit":3}`, `{"cmd":"sessions","limit":-1}`,
		`{"cmd":"reload"}`, `{"cmd":"mappings"}{"cmd":"stats"}`, `{`, ``, `null`, `{"cmd":5}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{h: &fakeHandler{}}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := s.handle(bytes.NewReader(in))
		payloads := 0
		for _, set := range []bool{r.Stats != nil, r.Sessions != nil, r.Expectations != nil, r.Mappings != nil, r.Reload != nil} {
			if set {
				payloads++
			}
		}
		if (r.Code == "") != (payloads == 1) || r.Code != "" && r.Error == "" {
			t.Fatalf("input %q: answer %+v", in, r)
		}
		if _, err := json.Marshal(&r); err != nil {
			t.Fatalf("answer does not encode: %v", err)
		}
	})
}

// FuzzEventFilter feeds arbitrary filter fields: every input either
// gives a filter or an error that matches ErrBadRequest, and a filter it
// gives never matches an event of a type it excludes.
func FuzzEventFilter(f *testing.F) {
	f.Add("session-create,block-alloc", "10.77.0.0/24", 40123, "tcp", "ftp")
	f.Add("", "10.77.0.5", 0, "17", "")
	f.Add("x", "::1", -1, "gre", "gopher")
	f.Fuzz(func(t *testing.T, types, addr string, port int, proto, app string) {
		ef := EventFilter{Addr: addr, Port: port, Protocol: proto, App: app}
		if types != "" {
			ef.Types = strings.Split(types, ",")
		}
		nf, err := ef.Filter()
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%+v: error %v does not match ErrBadRequest", ef, err)
			}
			return
		}
		for _, e := range natlogtest.Events() {
			if nf.Types != 0 && !nf.Types.Has(e.Type) && nf.Match(&e) {
				t.Fatalf("%+v matches a %s", ef, e.Type)
			}
		}
	})
}
