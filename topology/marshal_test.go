package topology

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMarshal_RoundTrip(t *testing.T) {
	type doc struct {
		Flavor Flavor
		IO     IOState
		Set    GTIDSet
	}
	in := doc{Flavor: MariaDB, IO: IOConnecting, Set: MustParseGTIDSet(uuidB + ":1-3," + uuidA + ":5")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Flavor":"mariadb","IO":"Connecting","Set":"` + uuidA + ":5," + uuidB + `:1-3"}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Flavor != in.Flavor || out.IO != in.IO || !out.Set.Equal(in.Set) {
		t.Errorf("round trip = %+v", out)
	}
	if err := json.Unmarshal([]byte(`{"Flavor":"oracle"}`), &out); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bad flavor err = %v", err)
	}
}

func TestUnreachableInstance_MarshalJSON(t *testing.T) {
	b, err := json.Marshal(UnreachableInstance{Addr: "h:1", Err: errors.New("refused")})
	if err != nil || !strings.Contains(string(b), `"error":"refused"`) {
		t.Errorf("json = %s, %v", b, err)
	}
	topo := Analyze([]*Instance{fakeInst("m:1", false, "")}, nil, nil)
	if _, err := json.Marshal(topo); err != nil {
		t.Errorf("Topology does not marshal: %v", err)
	}
}
