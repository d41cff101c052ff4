package recovery

import (
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

func TestAnnounced(t *testing.T) {
	for _, tc := range []struct {
		name string
		step string
		res  stepResult
		want string
	}{
		{"promote ok", StepPromote, stepOK("done"), "r1:3306"},
		{"promote with a warning", StepPromote, stepWarning("semi-sync"), "r1:3306"},
		{"promote failed", StepPromote, stepFailed(fsm.ResultFailed, "no"), ""},
		{"promote skipped", StepPromote, stepSkipped("?"), ""},
		{"another step", StepRepoint, stepOK("done"), ""},
	} {
		if got := announced(tc.step, tc.res, "r1:3306"); got != tc.want {
			t.Errorf("%s: announced = %q, want %q", tc.name, got, tc.want)
		}
	}
}
