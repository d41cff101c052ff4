package fsm

import (
	"errors"
	"testing"
)

func TestEncode_RoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		typ     MessageType
		payload any
		want    string
	}{
		{"set master", SetMasterType, SetMaster{Cluster: "app1", Master: "10.0.0.1:3306", At: at(0)},
			`{"cluster":"app1","master":"10.0.0.1:3306","at":"2026-11-23T01:00:00Z"}`},
		{"node meta", NodeMetaType, NodeMeta{ID: "c1", HTTPAddr: "10.0.1.10:8080"},
			`{"id":"c1","http_addr":"10.0.1.10:8080"}`},
		{"ignorable", IgnoreUnknownTypeFlag | 5, map[string]int{"x": 1}, `{"x":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf, err := Encode(tt.typ, tt.payload)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			typ, payload, err := Decode(buf)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if typ != tt.typ {
				t.Errorf("type = %s, want %s", typ, tt.typ)
			}
			if string(payload) != tt.want {
				t.Errorf("payload = %s, want %s", payload, tt.want)
			}
		})
	}
}

func TestEncode_Unmarshalable(t *testing.T) {
	if _, err := Encode(AckType, make(chan int)); err == nil {
		t.Fatal("Encode(chan) succeeded, want error")
	}
}

func TestDecode_Empty(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		if _, _, err := Decode(b); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("Decode(%v) err = %v, want ErrMalformedCommand", b, err)
		}
	}
}

func TestMessageType_String(t *testing.T) {
	tests := []struct {
		typ  MessageType
		want string
	}{
		{RecordOpenType, "RecordOpen"},
		{NodeMetaType, "NodeMeta"},
		{42, "MessageType(42)"},
		{IgnoreUnknownTypeFlag | 3, "MessageType(131, ignorable)"},
	}
	for _, tt := range tests {
		if got := tt.typ.String(); got != tt.want {
			t.Errorf("MessageType(%d).String() = %q, want %q", uint8(tt.typ), got, tt.want)
		}
	}
}
