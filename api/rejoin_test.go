package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/recovery"
)

// fakeRejoin answers rejoins as told.
type fakeRejoin struct {
	reqs []recovery.RejoinRequest
	res  recovery.RejoinResult
	err  error
}

func (f *fakeRejoin) Rejoin(_ context.Context, req recovery.RejoinRequest) (recovery.RejoinResult, error) {
	f.reqs = append(f.reqs, req)
	return f.res, f.err
}

func TestRejoin_Endpoint(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		res    recovery.RejoinResult
		err    error
		want   int
		called bool
		text   string
	}{
		{"started", `{"instance":"db1:3306","by":"op"}`, recovery.RejoinResult{RecordID: 7, Instance: "db1:3306"}, nil, 202, true, `"record_id":7`},
		{"dry run", `{"instance":"db1:3306","dry_run":true,"rewind":true}`, recovery.RejoinResult{DryRun: true, Instance: "db1:3306", Errant: []string{"0-1-5..7"}}, nil, 200, true, `"errant":["0-1-5..7"]`},
		{"no instance", `{}`, recovery.RejoinResult{}, nil, 400, false, "instance"},
		{"bad instance", `{"instance":"db1"}`, recovery.RejoinResult{}, nil, 400, false, ""},
		{"unknown field", `{"instance":"db1:3306","force":true}`, recovery.RejoinResult{}, nil, 400, false, ""},
		{"refused", `{"instance":"db1:3306"}`, recovery.RejoinResult{}, fmt.Errorf("%w: errant GTIDs 0-1-5..7", recovery.ErrRejoinRefused), 409, true, "0-1-5..7"},
		{"record open", `{"instance":"db1:3306"}`, recovery.RejoinResult{}, recovery.ErrFailoverInProgress, 409, true, ""},
		{"unknown cluster", `{"instance":"db1:3306"}`, recovery.RejoinResult{}, recovery.ErrUnknownCluster, 404, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rj := &fakeRejoin{res: tt.res, err: tt.err}
			f := newFixture(t, nil, func(d *Deps) { d.Rejoin = rj })
			rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/rejoin", tt.body, nil)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.text) {
				t.Fatalf("status %d, want %d with %q: %s", rec.Code, tt.want, tt.text, rec.Body)
			}
			if (len(rj.reqs) == 1) != tt.called {
				t.Fatalf("runner called %d times", len(rj.reqs))
			}
			if tt.called && (rj.reqs[0].Cluster != "app1" || rj.reqs[0].Instance != "db1:3306") {
				t.Fatalf("request %+v", rj.reqs[0])
			}
		})
	}
	t.Run("not configured", func(t *testing.T) {
		f := newFixture(t, nil, nil)
		if rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/rejoin", `{"instance":"db1:3306"}`, nil); rec.Code != 501 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
