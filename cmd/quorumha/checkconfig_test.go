package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/config"
)

func TestCheckConfig_Outcomes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := write("ok.yaml", "clusters:\n  - name: app1\n    instances:\n      - address: h1:3306\n      - address: h2:3306\n        candidate_master: true\n")
	invalid := write("bad.yaml", "detector:\n  probe_interval: 3x\nclusters:\n  - name: app1\n    instances: [{address: 'h1'}]\n")
	cnf := write("app2.cnf", "[server default]\nmanager_log=/x\n[server1]\nhostname=a\n[server2]\nhostname=b\n")
	tests := []struct {
		name       string
		path       string
		forRun     bool
		wantCode   int // 0 = success
		wantOut    []string
		wantErrOut []string
	}{
		{"valid", valid, false, 0, []string{"ok.yaml: OK", "clusters: 1", "app1: 2 instances", "h2:3306 (candidate_master)"}, nil},
		{"invalid", invalid, false, 2, nil, []string{`bad.yaml: detector.probe_interval: "3x": invalid duration`, `clusters[0].instances[0].address: "h1"`}},
		{"for run", valid, true, 2, nil, []string{"ok.yaml: node.id: required"}},
		{"mha warnings", cnf, false, 0, []string{"app2: 2 instances"}, []string{"warning: " + cnf + ":2: [server default] manager_log: \"/x\": no meaning here"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runCheckConfig(&out, &errOut, tt.path, config.LoadOptions{Environ: []string{}}, false, tt.forRun)
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("err = %v, stderr:\n%s", err, errOut.String())
			}
			if tt.wantCode != 0 {
				var ee exitError
				if !errors.As(err, &ee) || ee.ExitCode() != tt.wantCode {
					t.Fatalf("err = %v, want exit code %d", err, tt.wantCode)
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantErrOut {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}

func TestCheckConfig_JSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("log:\n  level: loud\n  format: xml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := runCheckConfig(&out, &errOut, p, config.LoadOptions{Environ: []string{}}, true, false)
	if err == nil {
		t.Fatal("want an error")
	}
	var res checkResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if res.OK || len(res.Problems) != 2 || !strings.Contains(res.Problems[0], "log.") {
		t.Errorf("result = %+v", res)
	}
}
