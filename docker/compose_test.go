package docker

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/quorumha/quorumha/config"
)

// composeFile is the part of the compose specification compose.yaml uses.
// Top-level keys other than these must be x- extensions.
type composeFile struct {
	Name     string                   `yaml:"name"`
	Services map[string]service       `yaml:"services"`
	Networks map[string]network       `yaml:"networks"`
	Secrets  map[string]composeSecret `yaml:"secrets"`
	Volumes  map[string]any           `yaml:"volumes"`
	Extra    map[string]any           `yaml:",inline"`
}

type service struct {
	Build           *build                       `yaml:"build"`
	Image           string                       `yaml:"image"`
	Hostname        string                       `yaml:"hostname"`
	Restart         string                       `yaml:"restart"`
	StopSignal      string                       `yaml:"stop_signal"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
	Command         []string                     `yaml:"command"`
	Environment     map[string]string            `yaml:"environment"`
	Volumes         []string                     `yaml:"volumes"`
	Networks        map[string]*serviceNetwork   `yaml:"networks"`
	Secrets         []string                     `yaml:"secrets"`
	ExtraHosts      []string                     `yaml:"extra_hosts"`
	DependsOn       map[string]map[string]string `yaml:"depends_on"`
	Healthcheck     *healthcheck                 `yaml:"healthcheck"`
}

type build struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Network    string            `yaml:"network"`
	Args       map[string]string `yaml:"args"`
}

type serviceNetwork struct {
	IPv4Address string `yaml:"ipv4_address"`
}

type healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	StartPeriod string   `yaml:"start_period"`
	Retries     int      `yaml:"retries"`
}

type network struct {
	IPAM struct {
		Config []struct {
			Subnet string `yaml:"subnet"`
		} `yaml:"config"`
	} `yaml:"ipam"`
}

type composeSecret struct {
	File string `yaml:"file"`
}

// Names the demo is built around.
var (
	controllers = []string{"c1", "c2", "c3"}
	databases   = []string{"db1", "db2", "db3"}
	zones       = []string{"zone-a", "zone-b", "zone-c"}
)

const (
	controllerConfig = "/etc/quorumha/config.yaml"
	secretsDir       = "/run/secrets/"
	// builtBinary is the static binary both images COPY (build context
	// docker/); scripts/compose-demo.sh builds it, it is not committed.
	builtBinary = "build/quorumha"
	// agentPort is where each MariaDB container's host agent listens.
	agentPort = 7080
)

// dockerfiles are the images the compose file builds, relative to docker/.
var dockerfiles = []string{"Dockerfile", "mariadb/Dockerfile"}

// loadCompose parses compose.yaml strictly: an unknown key in a service is
// an error, as a typo would be silently ignored by nothing here.
func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cf composeFile
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return &cf
}

func TestCompose_Structure(t *testing.T) {
	cf := loadCompose(t)
	for k := range cf.Extra {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("compose.yaml: unknown top-level key %q", k)
		}
	}
	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := append(append(slices.Clone(controllers), databases...), haproxyService); !reflect.DeepEqual(names, want) {
		t.Errorf("services = %v, want %v", names, want)
	}
	for _, n := range append([]string{"db"}, zones...) {
		if _, ok := cf.Networks[n]; !ok {
			t.Errorf("network %q is not defined", n)
		}
	}
	for name, s := range cf.Services {
		if s.Hostname != name {
			t.Errorf("%s: hostname = %q, want the service name", name, s.Hostname)
		}
		if _, ok := s.Networks["db"]; !ok {
			t.Errorf("%s: not on the db network", name)
		}
		if z := zoneOf(s); z == "" && name != haproxyService { // the proxy belongs to no zone
			t.Errorf("%s: on no zone network (networks %v)", name, keys(s.Networks))
		}
		for net, sn := range s.Networks {
			if _, ok := cf.Networks[net]; !ok {
				t.Errorf("%s: network %q is not defined", name, net)
			}
			if sn != nil && sn.IPv4Address != "" && !inSubnet(t, cf.Networks[net], sn.IPv4Address) {
				t.Errorf("%s: ipv4_address %s is outside network %s's subnet", name, sn.IPv4Address, net)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := cf.Secrets[sec]; !ok {
				t.Errorf("%s: secret %q is not defined", name, sec)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s: depends_on unknown service %q", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("%s: named volume %q is not declared", name, src)
				}
			}
		}
	}
	// Each zone holds exactly one controller and one server.
	for _, z := range zones {
		var in []string
		for name, s := range cf.Services {
			if zoneOf(s) == z {
				in = append(in, name)
			}
		}
		if len(in) != 2 {
			t.Errorf("zone %s holds %v, want one controller and one server", z, in)
		}
	}
	// Fixed addresses on db are unique.
	seen := map[string]string{}
	for name, s := range cf.Services {
		if sn := s.Networks["db"]; sn != nil && sn.IPv4Address != "" {
			if other, dup := seen[sn.IPv4Address]; dup {
				t.Errorf("%s and %s both use %s", name, other, sn.IPv4Address)
			}
			seen[sn.IPv4Address] = name
		}
	}
}

// TestCompose_ReferencedFilesExist checks every bind mount, the build
// context and Dockerfile, and the secret files (which gen-secrets.sh
// creates, since they must never be committed).
func TestCompose_ReferencedFilesExist(t *testing.T) {
	cf := loadCompose(t)
	gen, err := os.ReadFile("gen-secrets.sh")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range cf.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				mustExist(t, name+": volume", src)
			}
		}
		if s.Build != nil {
			mustExist(t, name+": build.context", s.Build.Context)
			mustExist(t, name+": build.dockerfile", filepath.Join(s.Build.Context, s.Build.Dockerfile))
			if s.Build.Context != "." || !slices.Contains(append(slices.Clone(dockerfiles), haproxyDockerfile), s.Build.Dockerfile) {
				t.Errorf("%s: build %s/%s, want context . and one of %v (what make docker-images builds)", name, s.Build.Context, s.Build.Dockerfile, dockerfiles)
			}
			// The engine may run without NAT (scripts/docker-engine.sh):
			// apt-get in the build needs the host's network.
			if s.Build.Network != "host" {
				t.Errorf("%s: build.network = %q, want host", name, s.Build.Network)
			}
			if s.Build.Args["BASE_IMAGE"] == "" {
				t.Errorf("%s: build.args.BASE_IMAGE is not set", name)
			}
		}
	}
	for name, sec := range cf.Secrets {
		rel, ok := strings.CutPrefix(sec.File, "./secrets/")
		if !ok {
			t.Errorf("secret %s: file %q is not under ./secrets/ (git-ignored, made by gen-secrets.sh)", name, sec.File)
			continue
		}
		// gen-secrets.sh writes "$dir/<rel>".
		if !bytes.Contains(gen, []byte(`"$dir/`+rel+`"`)) {
			t.Errorf("secret %s: gen-secrets.sh does not create secrets/%s", name, rel)
		}
	}
	ignore, err := os.ReadFile(".gitignore")
	if err != nil || !strings.Contains(string(ignore), "/secrets/") {
		t.Errorf("docker/.gitignore must ignore /secrets/ (err %v)", err)
	}
}

// TestCompose_ControllerConfigs loads each controller's config as run would
// (config.Load + ValidateForRun, secret files substituted by 0600 temp
// files) and checks it against its compose service.
func TestCompose_ControllerConfigs(t *testing.T) {
	cf := loadCompose(t)
	ports := dockerfileExposed(t)
	var bootstraps [][]string
	var shared []map[string]any
	gossip := map[string]string{}
	cfgs := map[string]*config.Config{}
	for _, name := range controllers {
		s := cf.Services[name]
		host := configMount(t, name, s)
		cfg := loadWithSecrets(t, host, s.Secrets)
		cfgs[name] = cfg
		n := cfg.Node
		ip := ""
		if sn := s.Networks["db"]; sn != nil {
			ip = sn.IPv4Address
		}
		if ip == "" {
			t.Fatalf("%s: no fixed ipv4_address on the db network", name)
		}
		if n.ID != name {
			t.Errorf("%s: node.id = %q, want the service name", name, n.ID)
		}
		if n.Zone != zoneOf(s) {
			t.Errorf("%s: node.zone = %q, but the service is on network %q", name, n.Zone, zoneOf(s))
		}
		for key, addr := range map[string]string{"raft_addr": n.RaftAddr, "gossip_addr": n.GossipAddr, "http_addr": n.HTTPAddr} {
			h, p, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("%s: node.%s %q: %v", name, key, addr, err)
				continue
			}
			if h != ip {
				t.Errorf("%s: node.%s host %s, want the service's db address %s", name, key, h, ip)
			}
			if !ports[p+"/tcp"] {
				t.Errorf("%s: node.%s port %s is not EXPOSEd by the Dockerfile (%v)", name, key, p, keys(ports))
			}
		}
		if _, p, _ := net.SplitHostPort(n.GossipAddr); !ports[p+"/udp"] {
			t.Errorf("%s: gossip port %s/udp is not EXPOSEd", name, p)
		}
		if n.DataDir != "/var/lib/quorumha" || !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.Contains(v, ":"+n.DataDir) }) {
			t.Errorf("%s: node.data_dir %q is not a volume of the service (%v)", name, n.DataDir, s.Volumes)
		}
		wantHealth := "http://" + n.HTTPAddr + "/readyz"
		if got := s.Environment["HEALTHCHECK_URL"]; got != wantHealth {
			t.Errorf("%s: HEALTHCHECK_URL = %q, want %q", name, got, wantHealth)
		}
		if got := s.Environment["QUORUMHA_ADDR"]; got != "http://"+n.HTTPAddr {
			t.Errorf("%s: QUORUMHA_ADDR = %q, want http://%s", name, got, n.HTTPAddr)
		}
		if s.Build == nil || s.StopSignal != "SIGTERM" || s.StopGracePeriod == "" {
			t.Errorf("%s: want build, stop_signal SIGTERM and a stop_grace_period", name)
		}
		bootstraps = append(bootstraps, n.Bootstrap)
		gossip[name] = n.GossipAddr
		shared = append(shared, withoutNode(t, host))
	}
	// Same bootstrap list and clusters everywhere; the bootstrap list is
	// exactly the three controllers' raft addresses.
	var want []string
	for _, name := range controllers {
		want = append(want, name+"="+cfgs[name].Node.RaftAddr)
	}
	for i, b := range bootstraps {
		if !reflect.DeepEqual(b, want) {
			t.Errorf("%s: node.bootstrap = %v, want %v", controllers[i], b, want)
		}
		if !reflect.DeepEqual(shared[i], shared[0]) {
			t.Errorf("%s: sections other than node differ from %s's", controllers[i], controllers[0])
		}
	}
	for _, name := range controllers {
		var others []string
		for _, o := range controllers {
			if o != name {
				others = append(others, gossip[o])
			}
		}
		if got := cfgs[name].Node.GossipJoin; !reflect.DeepEqual(got, others) {
			t.Errorf("%s: node.gossip_join = %v, want %v", name, got, others)
		}
	}
	checkClusterAgainstDatabases(t, cf, cfgs["c1"].Clusters)
}

// checkClusterAgainstDatabases checks the demo cluster's instances against
// the MariaDB services: names, ports, zones, one master, replicas
// read-only and pointed at it.
func checkClusterAgainstDatabases(t *testing.T, cf *composeFile, clusters []config.Cluster) {
	t.Helper()
	if len(clusters) != 1 {
		t.Fatalf("clusters = %d, want 1", len(clusters))
	}
	var hosts []string
	for _, in := range clusters[0].Instances {
		s, ok := cf.Services[in.Host()]
		if !ok {
			t.Errorf("instance %s: no compose service %q", in.Address, in.Host())
			continue
		}
		hosts = append(hosts, in.Host())
		if in.Port() != 3306 {
			t.Errorf("instance %s: port %d, the mariadb image listens on 3306", in.Address, in.Port())
		}
		if in.Zone != zoneOf(s) {
			t.Errorf("instance %s: zone %q, but service %s is on %q", in.Address, in.Zone, in.Host(), zoneOf(s))
		}
		if want := "http://" + in.Host() + ":" + strconv.Itoa(agentPort); in.Agent != want {
			t.Errorf("instance %s: agent %q, want %q (the agent in the server's container)", in.Address, in.Agent, want)
		}
	}
	if clusters[0].Agent.TokenFile == "" {
		t.Error("cluster demo: agent.token_file is not set (the agents require a token)")
	}
	checkExtraHosts(t, cf)
	if !reflect.DeepEqual(hosts, databases) {
		t.Errorf("instances = %v, want %v", hosts, databases)
	}
	var master string
	ids := map[string]string{}
	for _, name := range databases {
		s := cf.Services[name]
		switch s.Environment["DB_ROLE"] {
		case "master":
			if master != "" {
				t.Errorf("two masters: %s and %s", master, name)
			}
			master = name
			if !slices.Contains(s.Command, "--read-only=OFF") {
				t.Errorf("%s: master must start with --read-only=OFF (command %v)", name, s.Command)
			}
		case "replica":
			if !slices.Contains(s.Command, "--read-only=ON") {
				t.Errorf("%s: replica must start with --read-only=ON (command %v)", name, s.Command)
			}
		default:
			t.Errorf("%s: DB_ROLE = %q, want master or replica", name, s.Environment["DB_ROLE"])
		}
		id := ""
		for _, a := range s.Command {
			if v, ok := strings.CutPrefix(a, "--server-id="); ok {
				id = v
			}
		}
		if _, err := strconv.Atoi(id); err != nil {
			t.Errorf("%s: no numeric --server-id in %v", name, s.Command)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share server-id %s", name, other, id)
		}
		ids[id] = name
		if !slices.Contains(s.Command, "--report-host="+name) {
			t.Errorf("%s: want --report-host=%s", name, name)
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s: no healthcheck (controllers depend on it)", name)
		}
		for _, sec := range []string{"db_monitor_password", "db_repl_password", "db_fence_password", "db_agent_token"} {
			if !slices.Contains(s.Secrets, sec) {
				t.Errorf("%s: secret %s missing", name, sec)
			}
		}
	}
	for _, name := range databases {
		if got := cf.Services[name].Environment["DB_MASTER_HOST"]; got != master {
			t.Errorf("%s: DB_MASTER_HOST = %q, want the master %q", name, got, master)
		}
	}
	for _, c := range controllers {
		for _, d := range databases {
			if cf.Services[c].DependsOn[d]["condition"] != "service_healthy" {
				t.Errorf("%s: want depends_on %s: service_healthy", c, d)
			}
		}
	}
}

// checkExtraHosts checks that every service resolves every server from
// /etc/hosts (extra_hosts) to the server's fixed address on db: a killed
// container's name must not fall through to Docker's DNS (compose.yaml says
// why).
func checkExtraHosts(t *testing.T, cf *composeFile) {
	t.Helper()
	want := map[string]bool{}
	for _, d := range databases {
		sn := cf.Services[d].Networks["db"]
		if sn == nil || sn.IPv4Address == "" {
			t.Errorf("%s: no fixed ipv4_address on db", d)
			continue
		}
		want[d+":"+sn.IPv4Address] = true
	}
	for name, s := range cf.Services {
		got := map[string]bool{}
		for _, h := range s.ExtraHosts {
			got[h] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: extra_hosts %v, want %v", name, s.ExtraHosts, keys(want))
		}
	}
}

// TestMariaDB_Files checks the server settings and the init script the
// compose file mounts: GTID, binlog on every server, semi-sync, read_only,
// and the secrets the script reads.
func TestMariaDB_Files(t *testing.T) {
	cnf, err := os.ReadFile("mariadb/conf.d/quorumha.cnf")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(cnf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	for k, want := range map[string]string{
		"log_bin": "mysql-bin", "log_slave_updates": "ON", "gtid_strict_mode": "ON", "read_only": "ON",
		"rpl_semi_sync_master_enabled": "ON", "rpl_semi_sync_slave_enabled": "ON",
	} {
		if settings[k] != want {
			t.Errorf("quorumha.cnf: %s = %q, want %q", k, settings[k], want)
		}
	}
	script, err := os.ReadFile("mariadb/init/10-quorumha.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{secretsDir + "db_monitor_password", secretsDir + "db_repl_password",
		secretsDir + "db_fence_password", "MASTER_USE_GTID = slave_pos", "sql_log_bin = 0", "'quorumha'@'%'", "'repl'@'%'",
		// docs/agent.md: each of these was shown necessary by a failing test.
		"GRANT RELOAD, PROCESS, CONNECTION ADMIN, READ_ONLY ADMIN ON *.* TO 'qha_fencer'@'localhost'"} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("10-quorumha.sh does not contain %q", want)
		}
	}
	// The accounts the script creates are the ones the configs use.
	cfg := loadWithSecrets(t, "config/c1.yaml", []string{"monitor_password", "repl_password", "api_token", "gossip_key", "agent_token"})
	cl := cfg.Clusters[0]
	if cl.User != "quorumha" || cl.ReplUser != "repl" || cl.ReplicationMode != config.ReplicationGTID {
		t.Errorf("cluster user/repl_user/mode = %q/%q/%q, want quorumha/repl/gtid", cl.User, cl.ReplUser, cl.ReplicationMode)
	}
	for _, f := range []string{"mariadb/init/10-quorumha.sh", "gen-secrets.sh", "mariadb/entrypoint.sh", "mariadb/healthcheck.sh",
		"../scripts/compose-demo.sh", "../scripts/docker-engine.sh", "../scripts/docker-base.sh"} {
		syntaxCheck(t, f)
	}
	entry, err := os.ReadFile("mariadb/entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{secretsDir + "db_agent_token", secretsDir + "db_fence_password", "/etc/quorumha-agent/agent.yaml",
		"/docker-entrypoint-initdb.d", "--skip-networking", "--rpl-semi-sync-master-enabled=OFF", "wait -n"} {
		if !strings.Contains(strings.ReplaceAll(string(entry), "copy_secret ", secretsDir), want) {
			t.Errorf("mariadb/entrypoint.sh does not contain %q", want)
		}
	}
}

// TestMariaDB_AgentConfig loads the agent config baked into the MariaDB
// image with config.LoadAgent, its absolute paths moved under a temp dir
// that holds what the container holds at the agent's start, and checks it
// against the init script's fencing account and the controllers' agent URLs.
func TestMariaDB_AgentConfig(t *testing.T) {
	data, err := os.ReadFile("mariadb/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	text := regexp.MustCompile(`(?m)(:\s+)(/\S+)`).ReplaceAllString(string(data), "${1}"+root+"${2}")
	for _, d := range []string{"var/lib/mysql", "var/lib/quorumha-agent", "run/quorumha-agent", "run/mysqld"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for f, mode := range map[string]os.FileMode{"var/lib/mysql/mysql-bin.index": 0o640,
		"run/quorumha-agent/agent.token": 0o600, "run/quorumha-agent/fence.pass": 0o600} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("0123456789abcdef\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(root, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := config.LoadAgent(cfgPath)
	if err != nil {
		t.Fatalf("mariadb/agent.yaml: %v", err)
	}
	if _, port, _ := net.SplitHostPort(a.Listen); port != strconv.Itoa(agentPort) {
		t.Errorf("agent.listen %q, want port %d (the controllers' agent URLs)", a.Listen, agentPort)
	}
	if !a.Fence.Enabled() || a.Fence.User != "qha_fencer" || a.Fence.Socket == "" || a.Fence.StateFile == "" || a.Fence.PasswordFile == "" {
		t.Errorf("agent.fence = %+v, want socket, user qha_fencer (init/10-quorumha.sh), password_file and state_file", a.Fence)
	}
	// The state file lives on the agent's volume, so armed/fenced survives
	// a restart of the container.
	if !strings.HasPrefix(a.Fence.StateFile, filepath.Join(root, "var/lib/quorumha-agent")+"/") {
		t.Errorf("agent.fence.state_file %s is not on the /var/lib/quorumha-agent volume", a.Fence.StateFile)
	}
	df, err := os.ReadFile("mariadb/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + strconv.Itoa(agentPort) + `/tcp`).Match(df) {
		t.Errorf("mariadb/Dockerfile does not EXPOSE %d/tcp", agentPort)
	}
}

// TestDockerfile checks both images' Dockerfiles: a BASE_IMAGE argument
// defaulting to the public Debian image, the static binary built by
// scripts/compose-demo.sh, every other COPY source present in the build
// context (docker/) and not excluded by .dockerignore; and for the
// controller image the non-root user, the exposed ports and the health
// check.
func TestDockerfile(t *testing.T) {
	script, err := os.ReadFile("../scripts/compose-demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "./cmd/quorumha", "-o docker/" + builtBinary,
		"--network host", "BASE_IMAGE="} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("scripts/compose-demo.sh does not contain %q (it builds the binary and the images)", want)
		}
	}
	ignored := dockerignore(t)
	for _, must := range []string{"build", builtBinary, "mariadb"} {
		if ignored[must] {
			t.Errorf(".dockerignore excludes %s, which the images need", must)
		}
	}
	if !ignored["secrets"] {
		t.Error(".dockerignore must exclude secrets (no credentials in the images)")
	}
	for _, name := range dockerfiles {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		df := string(data)
		for _, want := range []string{"ARG BASE_IMAGE=debian:bookworm-slim", "FROM ${BASE_IMAGE}", "COPY " + builtBinary + " /usr/local/bin/quorumha",
			"HEALTHCHECK", "STOPSIGNAL SIGTERM"} {
			if !strings.Contains(df, want) {
				t.Errorf("%s does not contain %q", name, want)
			}
		}
		if strings.Contains(df, "# syntax=") {
			t.Errorf("%s has a syntax directive: BuildKit would pull the frontend image, and no registry may be reachable", name)
		}
		for _, line := range strings.Split(df, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--from") {
				continue
			}
			for _, src := range f[1 : len(f)-1] {
				if src != builtBinary {
					mustExist(t, name+" COPY", src)
				}
				if ignored[src] {
					t.Errorf("%s: COPY %s, but .dockerignore excludes it", name, src)
				}
			}
		}
	}
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{"/readyz", "curl", "USER 10001:10001"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile does not contain %q", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1); len(m) == 0 ||
		strings.HasPrefix(m[len(m)-1][1], "0") || strings.HasPrefix(m[len(m)-1][1], "root") {
		t.Errorf("final USER must be non-root: %v", m)
	}
	ports := dockerfileExposed(t)
	for _, p := range []string{"7000/tcp", "7946/tcp", "7946/udp", "8080/tcp"} {
		if !ports[p] {
			t.Errorf("Dockerfile does not EXPOSE %s", p)
		}
	}
}

// dockerfileExposed returns the Dockerfile's EXPOSEd ports as "7000/tcp".
func dockerfileExposed(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "EXPOSE" {
			continue
		}
		for _, p := range f[1:] {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			ports[p] = true
		}
	}
	return ports
}

// dockerignore returns the patterns of .dockerignore (the build context
// is docker/, and the legacy builder reads only the context's .dockerignore).
func dockerignore(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out
}

// configMount returns the host path of the file a controller service mounts
// at /etc/quorumha/config.yaml.
func configMount(t *testing.T, name string, s service) string {
	t.Helper()
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == controllerConfig {
			return parts[0]
		}
	}
	t.Fatalf("%s: nothing mounted at %s", name, controllerConfig)
	return ""
}

// loadWithSecrets loads a controller config with every /run/secrets/NAME
// path replaced by a 0600 file in a temp dir, and validates it for run.
// Each NAME must be one of the service's secrets.
func loadWithSecrets(t *testing.T, path string, secrets []string) *config.Config {
	t.Helper()
	tmp := withSecrets(t, path, secrets)
	cfg, warns, err := config.Load(tmp, config.LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(warns) > 0 {
		t.Errorf("%s: warnings %v", path, warns)
	}
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("%s: ValidateForRun: %v", path, err)
	}
	return cfg
}

// withSecrets writes a copy of a controller config with every
// /run/secrets/NAME path replaced by a 0600 file in a temp dir, and returns
// the copy's path. Each NAME must be one of the service's secrets.
func withSecrets(t *testing.T, path string, secrets []string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := regexp.MustCompile(regexp.QuoteMeta(secretsDir)+`[A-Za-z0-9_.-]+`).ReplaceAllStringFunc(string(data), func(p string) string {
		name := strings.TrimPrefix(p, secretsDir)
		if !slices.Contains(secrets, name) {
			t.Errorf("%s: %s is not one of the service's secrets %v", path, p, secrets)
		}
		// 32 bytes: also a valid memberlist key.
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	})
	tmp := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return tmp
}

// withoutNode returns a config file's settings without its node section,
// which is the only one allowed to differ between controllers.
func withoutNode(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	delete(m, "node")
	return m
}

// zoneOf returns the zone network a service is on ("" when none).
func zoneOf(s service) string {
	for _, z := range zones {
		if _, ok := s.Networks[z]; ok {
			return z
		}
	}
	return ""
}

func inSubnet(t *testing.T, n network, ip string) bool {
	t.Helper()
	addr := net.ParseIP(ip)
	for _, c := range n.IPAM.Config {
		_, sub, err := net.ParseCIDR(c.Subnet)
		if err != nil {
			t.Errorf("subnet %q: %v", c.Subnet, err)
			continue
		}
		if sub.Contains(addr) {
			return true
		}
	}
	return false
}

func mustExist(t *testing.T, what, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("%s %s: %v", what, path, err)
	}
}

// syntaxCheck runs "sh -n" (bash -n for bash scripts) on a shell script
// when the shell is installed.
func syntaxCheck(t *testing.T, path string) {
	t.Helper()
	shell := "sh"
	if data, err := os.ReadFile(path); err == nil && (strings.HasPrefix(string(data), "#!/bin/bash") || strings.HasPrefix(string(data), "#!/usr/bin/env bash")) {
		shell = "bash"
	}
	bin, err := exec.LookPath(shell)
	if err != nil {
		t.Logf("%s not installed: %s not syntax-checked", shell, path)
		return
	}
	if out, err := exec.Command(bin, "-n", path).CombinedOutput(); err != nil {
		t.Errorf("%s -n %s: %v\n%s", shell, path, err, out)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestCompose_SchemaWithComposeTool validates compose.yaml with the compose
// tool when one is installed ("docker compose" v2, or the legacy
// docker-compose 1.x, which needs no engine for "config" but does not know
// the top-level name key, so it checks a copy without it).
func TestCompose_SchemaWithComposeTool(t *testing.T) {
	if docker, err := exec.LookPath("docker"); err == nil {
		if exec.Command(docker, "compose", "version").Run() == nil {
			if out, err := exec.Command(docker, "compose", "-f", "compose.yaml", "config", "-q").CombinedOutput(); err != nil {
				t.Fatalf("docker compose config: %v\n%s", err, out)
			}
			return
		}
	}
	legacy, err := exec.LookPath("docker-compose")
	if err != nil {
		skipOrFailInCI(t, "neither docker compose nor docker-compose installed (apt-get install docker-compose)")
	}
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stripped := regexp.MustCompile(`(?m)^name:.*\n`).ReplaceAll(data, nil)
	// Same directory, so relative paths resolve as in the real file.
	tmp, err := os.CreateTemp(".", ".compose-check-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(stripped); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(legacy, "-f", tmp.Name(), "config", "-q").CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// skipOrFailInCI skips a check whose tool is missing on a developer's
// machine, and fails it under CI=true, where make deps installs the tool.
func skipOrFailInCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
