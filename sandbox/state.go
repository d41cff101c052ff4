package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// stateFile is the name of the state file in the sandbox directory.
const stateFile = "sandbox.json"

// StateFile returns the path of the state file Load reads in dir.
func StateFile(dir string) string { return filepath.Join(dir, stateFile) }

// state is what sandbox.json holds: enough to find, check and stop the
// servers from another process.
type state struct {
	Version     int        `json:"version"`
	Dir         string     `json:"dir"`
	CreatedDir  bool       `json:"created_dir"`
	GTID        bool       `json:"gtid"`
	SemiSync    bool       `json:"semi_sync"`
	Detach      bool       `json:"detach"`
	ExtraConfig []string   `json:"extra_config,omitempty"`
	Instances   []Instance `json:"instances"`
}

// saveState writes sandbox.json atomically.
func (s *Sandbox) saveState() error {
	st := state{
		Version:     1,
		Dir:         s.dir,
		CreatedDir:  s.createdDir,
		GTID:        s.opts.GTID,
		SemiSync:    s.opts.SemiSync,
		Detach:      s.opts.Detach,
		ExtraConfig: s.opts.ExtraConfig,
		Instances:   s.Instances(),
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("sandbox: encode state: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, stateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("sandbox: write state: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("sandbox: write state: %w %w", werr, cerr)
	}
	if err := os.Rename(tmp.Name(), StateFile(s.dir)); err != nil {
		return fmt.Errorf("sandbox: write state: %w", err)
	}
	return nil
}

// Load re-opens a sandbox from dir/sandbox.json, typically one started with
// Detach by another process. Its servers are controlled by PID: Kill,
// StopInstance, StartInstance and Stop work as on the original (restarted
// servers are detached too). It does not check that the servers are alive;
// use Alive.
func Load(dir string) (*Sandbox, error) {
	b, err := os.ReadFile(StateFile(dir))
	if err != nil {
		return nil, fmt.Errorf("sandbox: load: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("sandbox: load %s: %w", StateFile(dir), err)
	}
	if len(st.Instances) == 0 {
		return nil, fmt.Errorf("sandbox: load %s: no instances", StateFile(dir))
	}
	s := &Sandbox{
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		dir:        st.Dir,
		createdDir: st.CreatedDir,
		opts: Options{
			Replicas:    len(st.Instances) - 1,
			GTID:        st.GTID,
			SemiSync:    st.SemiSync,
			BaseDir:     st.Dir,
			ExtraConfig: st.ExtraConfig,
			Detach:      true,
		},
		instances: st.Instances,
		procs:     make([]*process, len(st.Instances)),
	}
	return s, nil
}
