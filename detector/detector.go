package detector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ClusterSpec is one replication cluster to watch.
type ClusterSpec struct {
	// Name is the cluster name from the config.
	Name string
	// Master is the current master's address; SetMaster moves it.
	Master string
	// Replicas are the replicas' addresses: their view confirms a death.
	Replicas []string
	// User is the monitor account for every instance of the cluster.
	User string
	// Password is User's password.
	Password string
	// TLS is the verified TLS of every connection to the cluster's
	// servers (nil: plain TCP).
	TLS *tls.Config
	// Instances are the configured addresses: the detector never probes
	// (with User's credentials) anything else, whatever the replicated
	// state or discovery says. Empty means Master and Replicas.
	Instances []string
	// Agents maps an instance address to the URL of the agent on its host
	// (clusters[].instances[].agent); instances without one are left out.
	// The master's agent says whether its server process runs (the crash
	// fast path), the replicas' agents whether their hosts reach the master.
	Agents map[string]string
}

// ErrUnconfiguredInstance means an address is not one of the cluster's
// configured instances.
var ErrUnconfiguredInstance = errors.New("detector: not a configured instance")

// configured reports whether addr is one of the spec's instances.
func (c ClusterSpec) configured(addr string) bool {
	return slices.ContainsFunc(c.Instances, func(a string) bool { return strings.EqualFold(a, addr) })
}

// Config configures a Detector.
type Config struct {
	// Controller is this controller's node id (its votes carry it).
	Controller string
	// Zone is this controller's zone.
	Zone string
	// ProbeInterval is the time between probes of each cluster; default 1s.
	ProbeInterval time.Duration
	// ProbeTimeout bounds each probe (on top of the prober's own timeout,
	// which should be the same) and feeds the default freshness; default 1s.
	ProbeTimeout time.Duration
	// FailureThreshold is the consecutive failures before this controller
	// votes Down; default 3.
	FailureThreshold int
	// Rules is the quorum rule. A zero Freshness defaults to
	// 3 × (ProbeInterval + ProbeTimeout); a negative one disables staleness.
	Rules Rules
	// Clusters are the clusters to watch; names must be unique.
	Clusters []ClusterSpec
	// GroupSize returns the number of controllers in the group (the raft
	// voters); the quorum is a share of it whatever gossip hears: fake
	// gossip members must not change the arithmetic. A result below 1
	// (group not known yet) makes a majority unreachable. nil counts the
	// gossip members (tests and a controller without raft only).
	GroupSize func() int
	// Agents asks the host agents named in ClusterSpec.Agents; nil asks
	// none (the replica view then waits for the IO threads and heartbeats,
	// and a crash for failure_threshold).
	Agents HostAgents
	// Clock drives the probe loops; default RealClock.
	Clock Clock
	// Logger receives state changes; nil discards.
	Logger *slog.Logger
	// Registerer receives the detector's collectors; nil registers none.
	Registerer prometheus.Registerer
	// LeaseGrant returns this controller's grant of instance's quorum lease
	// (nil: none), which travels with its verdict of that instance; nil
	// sends none. It must not block: it is called on every probe.
	LeaseGrant func(cluster, instance string) *LeaseGrant
}

// InstanceProber is what the detector needs to probe instances; *Prober
// implements it and tests use fakes.
type InstanceProber interface {
	// Probe checks a master.
	Probe(ctx context.Context, t Target) ProbeResult
	// ProbeReplica reads a replica's replication status.
	ProbeReplica(ctx context.Context, t Target, prev ReplicaObservation) ReplicaObservation
}

// VerdictExchange is what the detector needs from gossip; *Gossip implements
// it. A nil VerdictExchange means this controller votes alone.
type VerdictExchange interface {
	// Publish shares this controller's verdicts.
	Publish(vs []Verdict)
	// VerdictsOf returns every controller's latest verdict on one
	// instance.
	VerdictsOf(instance string) []Verdict
	// Members returns the live members with their zones.
	Members() []Member
}

// changeNotifier is implemented by *Gossip: a wake-up when peers' verdicts
// change, so the leader reassesses without waiting for its own next probe.
type changeNotifier interface{ Changed() <-chan struct{} }

// Detector runs the probe loops of one controller, publishes its verdicts,
// and keeps the latest Assessment of every cluster for the API and the
// leader's decision loop. It never changes an instance.
type Detector struct {
	cfg     Config
	log     *slog.Logger
	prober  InstanceProber
	gossip  VerdictExchange
	metrics *metrics
	updates chan Assessment

	// assessMu serialises reassess, which the probe loops and the gossip
	// watcher both call, so an assessment built from older inputs never
	// replaces a newer one.
	assessMu sync.Mutex
	mu       sync.Mutex
	clusters map[string]*clusterState
	running  bool
	// timings are cfg's ProbeInterval, ProbeTimeout, FailureThreshold and
	// Rules.Freshness, which SetTimings may replace while the loops run;
	// read them here, never from cfg.
	timings atomic.Pointer[Timings]
	// runCtx, loops and stopped let UpsertCluster start (and RemoveCluster
	// stop) a cluster's probe loop while Run runs; guarded by mu.
	runCtx  context.Context
	loops   sync.WaitGroup
	stopped bool
}

type clusterState struct {
	spec     ClusterSpec
	serverID uint32 // the watched master's server_id, from the last good probe
	own      Verdict
	replicas map[string]ReplicaObservation
	// reach holds the replica host agents' latest answers about the master
	// (asked while this controller's probes of it fail), by replica.
	reach map[string]AgentReach
	// wake asks the probe loop for a probe now (buffered 1): a peer saw
	// the master fail after this controller's last probe.
	wake     chan struct{}
	last     Assessment
	assessed bool
	// probe is this controller's latest probe of the master, for Recheck.
	probe *ownProbe
	// stop ends the cluster's probe loop (RemoveCluster); nil before Run.
	stop context.CancelFunc
}

// ownProbe is one probe of the master by the probe loop. done is closed
// once res and end are set; valid is false for a probe cut short by
// shutdown (not evidence).
type ownProbe struct {
	master string
	start  time.Time
	done   chan struct{}
	res    ProbeResult
	end    time.Time
	valid  bool
}

// New validates cfg and builds a Detector; Run starts it.
func New(cfg Config, prober InstanceProber, gossip VerdictExchange) (*Detector, error) {
	if cfg.Controller == "" {
		return nil, fmt.Errorf("%w: controller id is empty", ErrBadConfig)
	}
	if prober == nil {
		return nil, fmt.Errorf("%w: no prober", ErrBadConfig)
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = time.Second
	}
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 3
	}
	if cfg.Rules.Quorum < 0 {
		return nil, fmt.Errorf("%w: quorum %d", ErrBadQuorum, cfg.Rules.Quorum)
	}
	if cfg.Rules.Freshness == 0 {
		cfg.Rules.Freshness = 3 * (cfg.ProbeInterval + cfg.ProbeTimeout)
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Detector{cfg: cfg, log: log.With("component", "detector"), prober: prober, gossip: gossip,
		clusters: map[string]*clusterState{}, updates: make(chan Assessment, max(16, 4*len(cfg.Clusters)))}
	d.timings.Store(&Timings{ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout,
		FailureThreshold: cfg.FailureThreshold, Freshness: cfg.Rules.Freshness})
	for _, c := range cfg.Clusters {
		if c.Name == "" || c.Master == "" {
			return nil, fmt.Errorf("%w: cluster %q needs a name and a master", ErrBadConfig, c.Name)
		}
		if _, dup := d.clusters[c.Name]; dup {
			return nil, fmt.Errorf("%w: cluster %q listed twice", ErrBadConfig, c.Name)
		}
		c.Replicas = slices.Clone(c.Replicas)
		if len(c.Instances) == 0 {
			c.Instances = append([]string{c.Master}, c.Replicas...)
		}
		c.Instances = slices.Clone(c.Instances)
		if !c.configured(c.Master) {
			return nil, fmt.Errorf("%w: cluster %q: master %s: %w", ErrBadConfig, c.Name, c.Master, ErrUnconfiguredInstance)
		}
		c.Agents = maps.Clone(c.Agents)
		d.clusters[c.Name] = &clusterState{spec: c, own: d.freshVerdict(c.Name, c.Master, 0),
			replicas: map[string]ReplicaObservation{}, reach: map[string]AgentReach{}, wake: make(chan struct{}, 1)}
	}
	m, err := newMetrics(cfg.Registerer, gossip, cfg.GroupSize)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	return d, nil
}

func (d *Detector) freshVerdict(cluster, instance string, seq uint64) Verdict {
	return Verdict{Controller: d.cfg.Controller, Zone: d.cfg.Zone, Cluster: cluster, Instance: instance, Seq: seq}
}

// Run probes every cluster every ProbeInterval until ctx ends, then waits
// for its goroutines and returns nil. It may be called once.
func (d *Detector) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrBadConfig)
	}
	d.running = true
	d.runCtx = ctx
	for _, name := range d.names() {
		d.startLoop(name)
	}
	d.mu.Unlock()

	var wg sync.WaitGroup
	if cn, ok := d.gossip.(changeNotifier); ok {
		wg.Go(func() { d.watchGossip(ctx, cn.Changed()) })
	}
	wg.Wait()
	<-ctx.Done()
	d.mu.Lock()
	d.stopped = true // no loop starts after this: loops.Wait below is final
	d.mu.Unlock()
	d.loops.Wait()
	return nil
}

// names returns the cluster names sorted; d.mu must be held.
func (d *Detector) names() []string {
	names := make([]string, 0, len(d.clusters))
	for n := range d.clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (d *Detector) loop(ctx context.Context, name string, wake chan struct{}) {
	for {
		start := d.cfg.Clock.Now()
		d.tick(ctx, name)
		// Probes start every ProbeInterval, not ProbeInterval after the
		// previous one ended: a probe that times out must not stretch the
		// detection window by its timeout on every failure.
		interval := d.Timings().ProbeInterval
		wait := interval - d.cfg.Clock.Now().Sub(start)
		select {
		case <-ctx.Done():
			return
		case <-d.cfg.Clock.After(max(wait, interval/10)):
		case <-wake:
		}
	}
}

// watchGossip reassesses every cluster when a peer's verdict changes.
func (d *Detector) watchGossip(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			d.mu.Lock()
			names := d.names()
			d.mu.Unlock()
			for _, n := range names {
				d.reassess(n)
				d.maybeWake(n)
			}
		}
	}
}

// tick probes the master and the replicas of one cluster in parallel,
// updates and publishes this controller's verdict, and reassesses.
func (d *Detector) tick(ctx context.Context, name string) {
	d.mu.Lock()
	cs, ok := d.clusters[name]
	if !ok {
		d.mu.Unlock()
		return // removed meanwhile
	}
	spec := cs.spec
	spec.Replicas = slices.Clone(spec.Replicas)
	prevObs := maps.Clone(cs.replicas)
	// While this controller's probes of the master fail, the replica hosts'
	// agents are asked too, alongside the probes, so their answers are as
	// fresh as the vote that may complete the quorum.
	failing := cs.own.Instance == spec.Master && (cs.own.State == StateSuspect || cs.own.State == StateDown)
	d.mu.Unlock()
	tm := d.Timings()

	pctx, cancel := context.WithTimeout(ctx, tm.ProbeTimeout+graceAfterTimeout)
	defer cancel()
	op := &ownProbe{master: spec.Master, start: d.cfg.Clock.Now(), done: make(chan struct{})}
	d.mu.Lock()
	cs.probe = op
	d.mu.Unlock()
	var wg sync.WaitGroup
	var res ProbeResult
	wg.Go(func() {
		res = d.prober.Probe(pctx, Target{Addr: spec.Master, User: spec.User, Password: spec.Password, TLS: spec.TLS})
		op.res, op.end, op.valid = res, d.cfg.Clock.Now(), ctx.Err() == nil
		close(op.done)
	})
	obs := make([]ReplicaObservation, len(spec.Replicas))
	for i, r := range spec.Replicas {
		wg.Go(func() {
			obs[i] = d.prober.ProbeReplica(pctx, Target{Addr: r, User: spec.User, Password: spec.Password, TLS: spec.TLS}, prevObs[r])
		})
	}
	var reach map[string]AgentReach
	if failing && d.cfg.Agents != nil && len(spec.Agents) > 0 {
		wg.Go(func() {
			reach = askReach(ctx, d.cfg.Agents, name, spec.Master, spec.Agents, spec.Replicas,
				reachTimeout(tm.ProbeTimeout), d.cfg.Clock)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down: a cancelled probe is not evidence
	}
	if !res.OK && res.Reason == ReasonRefused && d.cfg.Agents != nil {
		if u := agentURL(spec.Agents, spec.Master); u != "" {
			res = processCheck(ctx, d.cfg.Agents, name, u, res, reachTimeout(tm.ProbeTimeout))
		}
	}
	if !res.OK && !res.Reason.Alive() && !failing {
		// The first failure: the replicas were read alongside, perhaps
		// before they noticed the master go; read them again so the replica
		// view is as fresh as the failure, instead of a probe interval older.
		// A refused master (nothing listening) is quick to check from the
		// replica hosts too; a timing-out one is asked from the next probe on,
		// alongside it, so as not to stretch this one by the check's timeout.
		var wg sync.WaitGroup
		wg.Go(func() { d.reprobeReplicas(ctx, spec, obs) })
		if res.Reason == ReasonRefused && d.cfg.Agents != nil && len(spec.Agents) > 0 {
			wg.Go(func() {
				reach = askReach(ctx, d.cfg.Agents, name, spec.Master, spec.Agents, spec.Replicas,
					reachTimeout(tm.ProbeTimeout), d.cfg.Clock)
			})
		}
		wg.Wait()
	}
	if ctx.Err() != nil {
		return
	}
	d.metrics.probe(name, res)
	var grant *LeaseGrant
	if d.cfg.LeaseGrant != nil {
		// Read just before publishing: the lease witness measures the
		// grant's BoundAge back from when the verdict arrived.
		grant = d.cfg.LeaseGrant(name, spec.Master)
	}

	d.mu.Lock()
	if d.clusters[name] != cs || cs.spec.Master != spec.Master {
		d.mu.Unlock()
		return // SetMaster or RemoveCluster ran meanwhile: these results are about the old topology
	}
	cs.own = NextVerdict(cs.own, res, tm.FailureThreshold)
	cs.own.Lease = grant
	if res.OK && res.ServerID != 0 {
		cs.serverID = res.ServerID
	}
	own := cs.own
	for _, o := range obs {
		cs.replicas[o.Replica] = o
	}
	for r, a := range reach {
		cs.reach[r] = a
	}
	d.mu.Unlock()
	if d.gossip != nil {
		d.gossip.Publish([]Verdict{own})
	}
	d.reassess(name)
}

// unknownGroup stands for the group size while the raft configuration is
// not known: no majority of it can be reached.
const unknownGroup = 1 << 16

// reprobeReplicas reads the replicas again, in parallel, into obs. Advancing
// is then measured against the read moments ago: whether binlog is flowing
// now, not whether the last transactions before a crash arrived since the
// previous probe.
func (d *Detector) reprobeReplicas(ctx context.Context, spec ClusterSpec, obs []ReplicaObservation) {
	rctx, cancel := context.WithTimeout(ctx, d.Timings().ProbeTimeout+graceAfterTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, r := range spec.Replicas {
		wg.Go(func() {
			obs[i] = d.prober.ProbeReplica(rctx, Target{Addr: r, User: spec.User, Password: spec.Password, TLS: spec.TLS}, obs[i])
		})
	}
	wg.Wait()
}

// reassess recomputes a cluster's Assessment from the latest evidence.
func (d *Detector) reassess(name string) {
	d.assessMu.Lock()
	defer d.assessMu.Unlock()
	var gv []Verdict
	live, zones := 1, map[string]string{d.cfg.Controller: d.cfg.Zone}
	if d.gossip != nil {
		ms := d.gossip.Members()
		live, zones = len(ms), make(map[string]string, len(ms))
		for _, m := range ms {
			zones[m.Name] = m.Zone
		}
	}
	// The quorum is counted against the whole group, not against the
	// controllers this one happens to hear: a controller cut off from
	// gossip must not become a majority of one.
	if d.cfg.GroupSize != nil {
		live = d.cfg.GroupSize()
		if live < 1 {
			live = unknownGroup
		}
	}
	d.mu.Lock()
	cs, ok := d.clusters[name]
	if !ok {
		d.mu.Unlock()
		return // removed meanwhile
	}
	master := cs.spec.Master
	d.mu.Unlock()
	if d.gossip != nil {
		gv = d.gossip.VerdictsOf(master)
	}
	d.mu.Lock()
	cs, ok = d.clusters[name]
	if !ok || cs.spec.Master != master {
		d.mu.Unlock()
		return // removed, or repointed meanwhile: its next probe round reassesses it
	}
	votes := []Verdict{cs.own}
	for _, v := range gv {
		if v.Controller != d.cfg.Controller {
			votes = append(votes, v)
		}
	}
	view := make([]ReplicaObservation, 0, len(cs.spec.Replicas))
	for _, r := range cs.spec.Replicas {
		if o, ok := cs.replicas[r]; ok {
			o.SameServer = cs.serverID != 0 && o.MasterServerID == cs.serverID
			if a, ok := cs.reach[r]; ok {
				o.Reach = &a
			}
			view = append(view, o)
		}
	}
	rules := d.cfg.Rules
	rules.Freshness = d.Timings().Freshness
	a := Assess(name, master, votes, view, live, zones, d.cfg.Clock.Now(), rules)
	prev, had := cs.last, cs.assessed
	cs.last, cs.assessed = a, true
	d.mu.Unlock()

	d.metrics.assessed(a)
	changed := !had || prev.State != a.State || prev.Master != a.Master
	if changed {
		level := slog.LevelInfo
		if a.State != AssessHealthy {
			level = slog.LevelWarn
		}
		d.log.Log(context.Background(), level, "assessment changed", "cluster", name, "master", master,
			"from", prev.State, "to", a.State, "reason", a.Reason)
	}
	if changed || a.State == AssessDeadConfirmed {
		d.emit(a)
	}
}

// emit queues a for Updates; when the reader lags, the oldest queued
// assessment is dropped so the newest always gets in.
func (d *Detector) emit(a Assessment) {
	for range 2 {
		select {
		case d.updates <- a:
			return
		default:
		}
		select {
		case <-d.updates:
			d.metrics.dropped()
		default:
		}
	}
	d.metrics.dropped()
}

// Updates delivers assessments when a cluster's state changes, and again
// on every probe while it is DeadConfirmed. It is a wake-up feed for the
// leader's decision loop (newest wins when the reader lags); Assessment is
// the source of truth.
func (d *Detector) Updates() <-chan Assessment { return d.updates }

// Assessment returns the latest assessment of a cluster; false before the
// first probe or for an unknown cluster.
func (d *Detector) Assessment(cluster string) (Assessment, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[cluster]
	if !ok || !cs.assessed {
		return Assessment{}, false
	}
	return cs.last, true
}

// Assessments returns the latest assessment of every assessed cluster,
// sorted by cluster name, for the API's cluster view.
func (d *Detector) Assessments() []Assessment {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Assessment
	for _, n := range d.names() {
		if cs := d.clusters[n]; cs.assessed {
			out = append(out, cs.last)
		}
	}
	return out
}

// Cluster returns a cluster's current spec (master and replicas as last set).
func (d *Detector) Cluster(cluster string) (ClusterSpec, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[cluster]
	if !ok {
		return ClusterSpec{}, false
	}
	spec := cs.spec
	spec.Replicas = slices.Clone(spec.Replicas)
	spec.Agents = maps.Clone(spec.Agents)
	return spec, true
}

// SetMaster points the detector at a new master after a failover or
// switchover: the new master leaves the replica list, the old one joins it
// (so it is watched if it comes back), and this controller's failure count
// starts afresh for the new address.
func (d *Detector) SetMaster(cluster, addr string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[cluster]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCluster, cluster)
	}
	old := cs.spec.Master
	if strings.EqualFold(old, addr) {
		return nil
	}
	if !cs.spec.configured(addr) {
		return fmt.Errorf("cluster %q: master %s: %w", cluster, addr, ErrUnconfiguredInstance)
	}
	replicas := slices.DeleteFunc(slices.Clone(cs.spec.Replicas), func(r string) bool { return strings.EqualFold(r, addr) })
	if !slices.Contains(replicas, old) {
		replicas = append(replicas, old)
	}
	cs.spec.Master, cs.spec.Replicas = addr, replicas
	cs.serverID = 0
	clear(cs.reach) // answers about the old master
	cs.own = d.freshVerdict(cluster, addr, cs.own.Seq)
	d.log.Info("master changed", "cluster", cluster, "from", old, "to", addr)
	return nil
}

// SetReplicas replaces a cluster's replica list (topology discovery).
func (d *Detector) SetReplicas(cluster string, replicas []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[cluster]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCluster, cluster)
	}
	for _, r := range replicas {
		if !cs.spec.configured(r) {
			return fmt.Errorf("cluster %q: replica %s: %w", cluster, r, ErrUnconfiguredInstance)
		}
	}
	cs.spec.Replicas = slices.Clone(replicas)
	return nil
}

// Recheck probes a cluster's master once more, now: the leader's last look
// before it commits a failover (vtorc's recheckPrimaryHealth). It does not
// change this controller's verdict.
func (d *Detector) Recheck(ctx context.Context, cluster string) (ProbeResult, error) {
	spec, ok := d.Cluster(cluster)
	if !ok {
		return ProbeResult{}, fmt.Errorf("%w: %q", ErrUnknownCluster, cluster)
	}
	if res, ok := d.recentOwnProbe(ctx, cluster, spec.Master); ok {
		return res, nil
	}
	return d.prober.Probe(ctx, Target{Addr: spec.Master, User: spec.User, Password: spec.Password, TLS: spec.TLS}), nil
}

// recentOwnProbe returns the probe loop's own latest probe of master when
// it ended less than a probe interval ago, waiting for it when it is still
// running. The leader's recheck is then as fresh as one it would start
// now (the master was silent, or answered, within the last interval)
// without adding a probe timeout after the quorum formed: for a master
// whose host vanished that was a serial probe_timeout on every decision.
func (d *Detector) recentOwnProbe(ctx context.Context, cluster, master string) (ProbeResult, bool) {
	d.mu.Lock()
	var p *ownProbe
	if cs, ok := d.clusters[cluster]; ok {
		p = cs.probe
	}
	d.mu.Unlock()
	if p == nil || p.master != master {
		return ProbeResult{}, false
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return ProbeResult{}, false
	}
	if !p.valid || d.cfg.Clock.Now().Sub(p.end) > d.Timings().ProbeInterval {
		return ProbeResult{}, false
	}
	return p.res, true
}
