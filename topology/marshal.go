package topology

import (
	"encoding/json"
	"fmt"
)

// The API and the replicated failover records carry Instances and positions
// as JSON; these methods keep them readable ("mariadb", "Yes", canonical GTID
// text) instead of bare integers or an empty object.

// MarshalText encodes the flavor as its name.
func (f Flavor) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText decodes a flavor name written by MarshalText.
func (f *Flavor) UnmarshalText(b []byte) error {
	switch string(b) {
	case "mariadb":
		*f = MariaDB
	case "mysql":
		*f = MySQL
	case "unknown", "":
		*f = FlavorUnknown
	default:
		return fmt.Errorf("%w: flavor %q", ErrBadOptions, b)
	}
	return nil
}

// MarshalText encodes the IO thread state as the server spells it.
func (s IOState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "Yes", "No" or "Connecting".
func (s *IOState) UnmarshalText(b []byte) error {
	switch string(b) {
	case "Yes":
		*s = IOYes
	case "No", "":
		*s = IONo
	case "Connecting":
		*s = IOConnecting
	default:
		return fmt.Errorf("%w: io state %q", ErrBadStatus, b)
	}
	return nil
}

// MarshalText encodes the ordering's name.
func (o Ordering) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// MarshalText encodes the set in canonical text form.
func (s GTIDSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a set written by MarshalText (or by a server).
func (s *GTIDSet) UnmarshalText(b []byte) error {
	set, err := ParseGTIDSet(string(b))
	if err != nil {
		return err
	}
	*s = set
	return nil
}

// MarshalJSON writes the error as text, which encoding/json cannot do for an
// error interface.
func (u UnreachableInstance) MarshalJSON() ([]byte, error) {
	msg := ""
	if u.Err != nil {
		msg = u.Err.Error()
	}
	return json.Marshal(struct {
		Addr  string `json:"addr"`
		Error string `json:"error"`
	}{u.Addr, msg})
}
