package topology

import (
	"errors"
	"testing"
)

func TestBinlogCoord_Compare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"mysql-bin.000009:500", "mysql-bin.000010:4", -1},
		{"mysql-bin.000010:4", "mysql-bin.000009:500", 1},
		{"mysql-bin.000010:4", "mysql-bin.000010:4", 0},
		{"mysql-bin.000010:4", "mysql-bin.000010:120", -1},
		{"mysql-bin.999999:4", "mysql-bin.1000000:4", -1},
		{"my.bin.000002:4", "my.bin.000001:9", 1},
	}
	for _, tt := range tests {
		a, err := ParseBinlogCoord(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseBinlogCoord(tt.b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Compare(b)
		if err != nil || got != tt.want {
			t.Errorf("%s vs %s = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
}

func TestBinlogCoord_Errors(t *testing.T) {
	if _, err := (BinlogCoord{"a-bin.000001", 4}).Compare(BinlogCoord{"b-bin.000001", 4}); !errors.Is(err, ErrIncomparable) {
		t.Errorf("different base names err = %v", err)
	}
	for _, s := range []string{"", "mysql-bin.000001", "mysql-bin:4", "mysql-bin.x:4", "mysql-bin.000001:-1", ":4"} {
		if _, err := ParseBinlogCoord(s); !errors.Is(err, ErrBadCoord) {
			t.Errorf("ParseBinlogCoord(%q) err = %v", s, err)
		}
	}
}

func TestComparePositions_Kinds(t *testing.T) {
	tests := []struct {
		name string
		a, b Position
		want Ordering
	}{
		{"mysql equal", MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-5")), MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-5")), Equal},
		{"mysql behind", MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-4")), MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-5")), Behind},
		{"mysql ahead", MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-6")), MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-5")), Ahead},
		{"mysql diverged", MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-5," + uuidB + ":1")), MySQLGTIDPosition(MustParseGTIDSet(uuidA + ":1-6")), Diverged},
		{"mariadb ahead", MariaDBGTIDPosition(MustParseMariaDBPos("0-1-7")), MariaDBGTIDPosition(MustParseMariaDBPos("0-1-5")), Ahead},
		{"file behind", FilePosition(BinlogCoord{"b.000009", 9}), FilePosition(BinlogCoord{"b.000010", 4}), Behind},
		{"file equal", FilePosition(BinlogCoord{"b.000010", 4}), FilePosition(BinlogCoord{"b.000010", 4}), Equal},
		{"file ahead", FilePosition(BinlogCoord{"b.000010", 5}), FilePosition(BinlogCoord{"b.000010", 4}), Ahead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ComparePositions(tt.a, tt.b)
			if err != nil || got != tt.want {
				t.Errorf("ComparePositions = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	_, err := ComparePositions(FilePosition(BinlogCoord{"b.000001", 4}), MariaDBGTIDPosition(nil))
	if !errors.Is(err, ErrIncomparable) {
		t.Errorf("mixed kinds err = %v", err)
	}
}

func TestErrantGTIDs_Flavors(t *testing.T) {
	tests := []struct {
		name            string
		flavor          Flavor
		replica, master string
		want            string
	}{
		{"mysql none", MySQL, uuidA + ":1-100", uuidA + ":1-120", ""},
		{"mysql errant", MySQL, uuidA + ":1-100,\n" + uuidB + ":1-2", uuidA + ":1-120", uuidB + ":1-2"},
		{"mariadb none", MariaDB, "0-1-100", "0-1-120", ""},
		{"mariadb errant", MariaDB, "0-1-100,0-2-101", "0-1-120", "0-2-101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ErrantGTIDs(tt.flavor, tt.replica, tt.master)
			if err != nil || got != tt.want {
				t.Errorf("ErrantGTIDs = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ErrantGTIDs(MySQL, "junk", ""); !errors.Is(err, ErrBadGTID) {
		t.Errorf("junk err = %v", err)
	}
	if _, err := ErrantGTIDs(FlavorUnknown, "", ""); !errors.Is(err, ErrIncomparable) {
		t.Errorf("unknown flavor err = %v", err)
	}
}
