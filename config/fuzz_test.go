package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseMHA(f *testing.F) {
	for _, seed := range []string{
		sampleMHA,
		"",
		"[server1]\nhostname=a\n",
		"[server default]\n[server default]\n",
		"[server1\n",
		"key=value\n",
		"[server1]\nhostname=[::1]\nport=x\n",
		"\ufeff; c\n# c\n[binlog1]\nhostname=b\n",
		"[server1]\nhostname=a\n[server2]\nhostname=a\nuser=\xff\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mf, err := ParseMHA(bytes.NewReader(data), "fuzz.cnf")
		if err != nil {
			if mf != nil {
				t.Fatalf("error %v with non-nil file", err)
			}
			return
		}
		cl, _, err := ImportMHA(mf, mf, "fuzz")
		if err == nil && len(cl.Instances) != len(mf.Servers) {
			t.Fatalf("%d instances from %d servers", len(cl.Instances), len(mf.Servers))
		}
	})
}

func FuzzLoadYAML(f *testing.F) {
	for _, seed := range []string{
		minimalYAML,
		"",
		"node: 5\n",
		"clusters: 5\n",
		"clusters: [1, 2]\n",
		"clusters:\n  - instances: x\n",
		"detector:\n  probe_interval: 3x\n  quorum: [1]\n",
		"node:\n  bootstrap: {a: b}\n",
		"mha_configs: [/nonexistent.cnf]\n",
		"? [a]\n: b\n",
		"&a [*a]\n",
		"1: 2\n",
		"node: {id: &x c1, zone: *x}\n",
		"--- !!binary AAAA\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && cfg != nil {
			t.Fatal("config returned with an error")
		}
	})
}
