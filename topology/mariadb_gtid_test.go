package topology

import (
	"errors"
	"slices"
	"testing"
)

func TestParseMariaDBPos_Valid(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"0-1-42", "0-1-42"},
		{"1-2-7, 0-1-42", "0-1-42,1-2-7"},
		{"0-4294967295-18446744073709551615", "0-4294967295-18446744073709551615"},
	}
	for _, tt := range tests {
		p, err := ParseMariaDBPos(tt.in)
		if err != nil {
			t.Fatalf("ParseMariaDBPos(%q): %v", tt.in, err)
		}
		if p.String() != tt.want {
			t.Errorf("ParseMariaDBPos(%q) = %q, want %q", tt.in, p, tt.want)
		}
	}
}

func TestParseMariaDBPos_Invalid(t *testing.T) {
	for _, in := range []string{"0-1", "a-b-c", "0-1-2-3", "0-1-5,0-2-6", "0-1--1", "4294967296-1-1"} {
		if _, err := ParseMariaDBPos(in); !errors.Is(err, ErrBadGTID) {
			t.Errorf("ParseMariaDBPos(%q) err = %v, want ErrBadGTID", in, err)
		}
	}
	// A binlog state may hold several servers per domain, but not one twice.
	if _, err := ParseMariaDBGTIDList("0-1-5,0-2-6"); err != nil {
		t.Errorf("ParseMariaDBGTIDList: %v", err)
	}
	if _, err := ParseMariaDBGTIDList("0-1-5,0-1-6"); !errors.Is(err, ErrBadGTID) {
		t.Errorf("repeated pair err = %v", err)
	}
}

func TestMariaDBPos_Compare(t *testing.T) {
	tests := []struct {
		name, a, b string
		per        []DomainOrdering
		order      Ordering
		covers     bool // a.Covers(b)
	}{
		{"equal", "0-1-10", "0-1-10", []DomainOrdering{{0, Equal}}, Equal, true},
		{"behind", "0-1-9", "0-1-10", []DomainOrdering{{0, Behind}}, Behind, false},
		{"ahead", "0-1-11", "0-1-10", []DomainOrdering{{0, Ahead}}, Ahead, true},
		{"ahead after failover", "0-2-11", "0-1-10", []DomainOrdering{{0, Ahead}}, Ahead, true},
		{"same seq other server", "0-2-10", "0-1-10", []DomainOrdering{{0, Diverged}}, Diverged, false},
		{"extra domain", "0-1-10,1-3-5", "0-1-10", []DomainOrdering{{0, Equal}, {1, Ahead}}, Ahead, true},
		{"missing domain", "0-1-10", "0-1-10,1-3-5", []DomainOrdering{{0, Equal}, {1, Behind}}, Behind, false},
		{"mixed", "0-1-11,1-3-4", "0-1-10,1-3-5", []DomainOrdering{{0, Ahead}, {1, Behind}}, Diverged, false},
		{"empty vs some", "", "0-1-1", []DomainOrdering{{0, Behind}}, Behind, false},
		{"both empty", "", "", []DomainOrdering{}, Equal, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustParseMariaDBPos(tt.a), MustParseMariaDBPos(tt.b)
			if got := a.Compare(b); !slices.Equal(got, tt.per) {
				t.Errorf("Compare = %v, want %v", got, tt.per)
			}
			if got := a.Order(b); got != tt.order {
				t.Errorf("Order = %v, want %v", got, tt.order)
			}
			if got := a.Covers(b); got != tt.covers {
				t.Errorf("Covers = %v, want %v", got, tt.covers)
			}
		})
	}
}

func TestMariaDBErrant_Cases(t *testing.T) {
	tests := []struct {
		name, replica, master, want string
	}{
		{"in sync", "0-1-100", "0-1-100", ""},
		{"replica behind", "0-1-90", "0-1-100", ""},
		{"replica ahead of same server", "0-1-101", "0-1-100", "0-1-101"},
		{"local write on replica", "0-1-100,0-3-101", "0-1-100", "0-3-101"},
		{"domain unknown to master", "0-1-100,5-3-1", "0-1-100", "5-3-1"},
		{"after failover master state keeps old server", "0-1-100", "0-1-100,0-2-150", ""},
		{"master server never logged", "0-3-50", "0-1-100,0-2-150", "0-3-50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := ParseMariaDBGTIDList(tt.replica)
			m, _ := ParseMariaDBGTIDList(tt.master)
			if got := MariaDBErrant(r, m).String(); got != tt.want {
				t.Errorf("MariaDBErrant = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppliedMariaDBPos(t *testing.T) {
	tests := []struct {
		name, slave, state string
		own                uint32
		want               string
	}{
		{"replicated only: binlog mirrors the slave position", "0-1-20", "0-1-20", 3, "0-1-20"},
		{"salvaged past the slave position", "0-1-10", "0-1-22", 3, "0-1-22"},
		{"own local writes left out", "0-1-10", "0-1-10,0-3-40", 3, "0-1-10"},
		{"salvaged and own writes", "0-1-10", "0-1-22,0-3-40", 3, "0-1-22"},
		{"older binlog entry of another server", "0-2-30", "0-1-22,0-2-30", 3, "0-2-30"},
		{"a domain only in the binlog", "0-1-10", "0-1-10,1-1-5", 3, "0-1-10,1-1-5"},
		{"empty slave position", "", "0-1-7", 3, "0-1-7"},
		{"nothing at all", "", "", 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppliedMariaDBPos(tt.slave, tt.state, tt.own)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Fatalf("AppliedMariaDBPos(%q, %q, %d) = %q, want %q", tt.slave, tt.state, tt.own, got, tt.want)
			}
		})
	}
	if _, err := AppliedMariaDBPos("0-1-x", "", 3); err == nil {
		t.Fatal("malformed gtid_slave_pos accepted")
	}
	if _, err := AppliedMariaDBPos("0-1-1", "bad", 3); err == nil {
		t.Fatal("malformed gtid_binlog_state accepted")
	}
}
