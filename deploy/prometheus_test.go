package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"
)

const rulesPath = "prometheus/quorumha-rules.yml"

// promtool finds promtool (Debian's prometheus package); CI=true makes a
// missing one fail instead of skip.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed (make deps installs Debian's prometheus package)")
		}
		t.Skip("promtool not installed (make deps)")
	}
	return p
}

// TestPrometheusRules_Check runs `promtool check rules` on the alert rules
// and `promtool test rules` on their unit tests (each alert fires on the
// series it is about, and not on a healthy group).
func TestPrometheusRules_Check(t *testing.T) {
	bin := promtool(t)
	if out, err := exec.Command(bin, "check", "rules", rulesPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "test", "rules", "quorumha-rules_test.yml")
	cmd.Dir = "prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestPrometheusRules_MetricsExist checks every quorumha_* series the rules
// use is one the controllers export (the metrics table of
// docs/http-api.md), so a renamed metric does not silence an alert.
func TestPrometheusRules_MetricsExist(t *testing.T) {
	rules, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/http-api.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`quorumha_[a-z_]+`)
	documented := name.FindAllString(string(doc), -1)
	used := name.FindAllString(string(rules), -1)
	if len(used) == 0 {
		t.Fatal("the rules use no quorumha_ metric")
	}
	for _, m := range used {
		if !slices.Contains(documented, m) {
			t.Errorf("%s uses %s, which docs/http-api.md does not list", rulesPath, m)
		}
	}
}
