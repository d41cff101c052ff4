package topology

import (
	"errors"
	"testing"
)

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidB = "9a7cd0e2-71cb-11e1-8e01-d4ae52a1b2c3"
)

func TestParseGTIDSet_Canonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  \n", ""},
		{uuidA + ":1-5", uuidA + ":1-5"},
		{uuidA + ":7-9:1-5", uuidA + ":1-5:7-9"},
		{uuidA + ":1-5:6-9", uuidA + ":1-9"},
		{uuidA + ":1-5:3-7:9", uuidA + ":1-7:9"},
		{uuidA + ":5:5", uuidA + ":5"},
		{"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-3", uuidA + ":1-3"},
		{uuidB + ":1-3,\n" + uuidA + ":1-5", uuidA + ":1-5," + uuidB + ":1-3"},
		{uuidA + ":1-2," + uuidA + ":3-4", uuidA + ":1-4"},
		{uuidA + ":1-5,", uuidA + ":1-5"},
		// MySQL 8.4 tags: untagged first, tags sorted and lowercased.
		{uuidA + ":1-5:Zed:1-2:alpha:3", uuidA + ":1-5:alpha:3:zed:1-2"},
		{uuidA + ":Zed:1-2:3-5", uuidA + ":zed:1-5"},
		{uuidA + ":tag_1:1-5:tag_1:6", uuidA + ":tag_1:1-6"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseGTIDSet(tt.in)
			if err != nil {
				t.Fatalf("ParseGTIDSet: %v", err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			again, err := ParseGTIDSet(s.String())
			if err != nil || !again.Equal(s) {
				t.Errorf("round trip of %q failed: %v", s.String(), err)
			}
		})
	}
}

func TestParseGTIDSet_Invalid(t *testing.T) {
	for _, in := range []string{
		"nonsense",
		uuidA,
		uuidA + ":",
		uuidA + ":0-5",
		uuidA + ":5-3",
		uuidA + ":1-x",
		uuidA + ":tag",
		uuidA + ":1-5:tag",
		uuidA + ":tag:tag2:1",
		uuidA + ":bad-tag:1",
		uuidA + ":a234567890123456789012345678901234:1",
		"3e11fa47x71ca-11e1-9e33-c80aa9429562:1",
		"3e11fa47-71ca-11e1-9e33-c80aa942956g:1",
	} {
		if _, err := ParseGTIDSet(in); !errors.Is(err, ErrBadGTID) {
			t.Errorf("ParseGTIDSet(%q) err = %v, want ErrBadGTID", in, err)
		}
	}
}

func TestGTIDSet_Operations(t *testing.T) {
	tests := []struct {
		name, a, b                 string
		union, aMinusB             string
		aContainsB, bContainsA, eq bool
	}{
		{"equal", uuidA + ":1-5", uuidA + ":1-5", uuidA + ":1-5", "", true, true, true},
		{"subset", uuidA + ":1-10", uuidA + ":3-4", uuidA + ":1-10", uuidA + ":1-2:5-10", true, false, false},
		{"disjoint uuids", uuidA + ":1-5", uuidB + ":1-3", uuidA + ":1-5," + uuidB + ":1-3", uuidA + ":1-5", false, false, false},
		{"holes", uuidA + ":1-3:7-9", uuidA + ":2-8", uuidA + ":1-9", uuidA + ":1:9", false, false, false},
		{"empty b", uuidA + ":1-3", "", uuidA + ":1-3", uuidA + ":1-3", true, false, false},
		{"both empty", "", "", "", "", true, true, true},
		{"tags distinct", uuidA + ":1-3:t:1-3", uuidA + ":1-3", uuidA + ":1-3:t:1-3", uuidA + ":t:1-3", true, false, false},
		{"many b intervals", uuidA + ":1-20", uuidA + ":2:4:6-7:19-30", uuidA + ":1-30", uuidA + ":1:3:5:8-18", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustParseGTIDSet(tt.a), MustParseGTIDSet(tt.b)
			if got := a.Union(b).String(); got != tt.union {
				t.Errorf("Union = %q, want %q", got, tt.union)
			}
			if got := a.Subtract(b).String(); got != tt.aMinusB {
				t.Errorf("Subtract = %q, want %q", got, tt.aMinusB)
			}
			if got := a.Contains(b); got != tt.aContainsB {
				t.Errorf("a.Contains(b) = %v", got)
			}
			if got := b.Contains(a); got != tt.bContainsA {
				t.Errorf("b.Contains(a) = %v", got)
			}
			if got := a.Equal(b); got != tt.eq {
				t.Errorf("Equal = %v", got)
			}
		})
	}
}

func TestGTIDSet_CountAndUUIDs(t *testing.T) {
	s := MustParseGTIDSet(uuidB + ":1-3," + uuidA + ":1-5:10:x:1-2")
	if got := s.Count(); got != 11 {
		t.Errorf("Count = %d, want 11", got)
	}
	if got := s.UUIDs(); len(got) != 2 || got[0] != uuidA || got[1] != uuidB {
		t.Errorf("UUIDs = %v", got)
	}
	var zero GTIDSet
	if !zero.IsEmpty() || zero.String() != "" || !zero.Contains(zero) {
		t.Error("zero GTIDSet is not a usable empty set")
	}
}
