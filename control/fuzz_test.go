package control

import (
	"bytes"
	"encoding/json"
	"testing"
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
