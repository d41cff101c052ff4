package config

// mhaKey describes one of the 42 parameters MHA 0.58 knows.
type mhaKey struct {
	// perServer keys are read only in [serverN] sections (MHA's rule).
	perServer bool
	// builtin is MHA's built-in default, when quorumha uses it.
	builtin string
	// note is the warning given when the key is set: it has no meaning in
	// quorumha, and what replaces it. Empty for keys that are imported.
	note string
}

const (
	noteSSH       = "quorumha does not use ssh (ssh_user is only passed to hooks); no meaning here"
	noteRelayDiff = "quorumha applies no relay-log diffs or raw binlogs: replicas catch up from the most advanced replica; no meaning here"
)

// mhaKeys lists every MHA parameter and how it is imported; a key not here
// is an error, as it is in MHA. It is a function, not a package variable, so
// nothing can modify it.
func mhaKeys() map[string]mhaKey {
	return map[string]mhaKey{
		// Imported per instance.
		"hostname":         {perServer: true},
		"port":             {builtin: "3306"},
		"candidate_master": {perServer: true},
		"no_master":        {perServer: true},
		"ignore_fail":      {perServer: true},
		"check_repl_delay": {},
		// Imported per cluster.
		"user":                           {builtin: "root"},
		"password":                       {},
		"repl_user":                      {},
		"repl_password":                  {},
		"ssh_user":                       {},
		"master_binlog_dir":              {},
		"use_gtid_auto_pos":              {},
		"master_ip_failover_script":      {},
		"master_ip_online_change_script": {},
		"shutdown_script":                {},
		"report_script":                  {},
		// Accepted with a warning.
		"ip":                     {perServer: true, note: "not used: quorumha connects to hostname"},
		"node_label":             {perServer: true, note: "no meaning here"},
		"skip_init_ssh_check":    {perServer: true, note: noteSSH},
		"ssh_host":               {note: noteSSH},
		"ssh_ip":                 {note: noteSSH},
		"ssh_port":               {note: noteSSH},
		"ssh_options":            {note: noteSSH},
		"ssh_connection_timeout": {note: noteSSH},
		"manager_workdir":        {note: "no meaning here: controller state lives in the Raft log under node.data_dir"},
		"manager_log":            {note: "no meaning here: controllers log to stderr (log.level, log.format)"},
		"remote_workdir":         {note: "no meaning here: nothing is copied to the database hosts"},
		"log_level":              {note: "no meaning here: use the global log.level"},
		"client_bindir":          {note: "no meaning here: quorumha runs no MySQL client binaries"},
		"client_libdir":          {note: "no meaning here: quorumha runs no MySQL client binaries"},
		"latest_priority":        {note: "no meaning here: candidates are ordered candidate_master first, then the most advanced replica"},
		"check_repl_filter":      {note: "no meaning here: not configurable in quorumha"},
		"multi_tier_slave":       {note: "no meaning here: only direct replicas of the master are managed"},
		"skip_reset_slave":       {note: "no meaning here: not configurable in quorumha"},
		"disable_log_bin":        {note: noteRelayDiff},
		"handle_raw_binlog":      {note: noteRelayDiff},
		"ping_type":              {note: "no meaning here: probes connect and run SELECT; tune them with detector.*"},
		"ping_interval":          {note: "not imported: detector.probe_interval is global to all clusters (default 500ms), and detection needs detector.failure_threshold probes from a quorum of controllers"},
		"secondary_check_script": {note: "not imported: not needed, several controllers in several zones already confirm a failure (multi-vantage detection); set hooks.secondary_check only if you still want it"},
		"init_conf_load_script":  {note: "not imported: use password_file or QUORUMHA_CLUSTERS_<NAME>_PASSWORD instead"},
		"master_pid_file":        {note: "not imported: quorumha has no pid file setting to pass to the shutdown hook"},
	}
}

// mhaCLIOptions are masterha_manager command-line options that people put
// in .cnf files by mistake; MHA rejects them too, but a hint helps.
func mhaCLIOptions() map[string]string {
	return map[string]string{
		"last_failover_minute":     "it is a masterha_manager option; use recovery.anti_flap",
		"ignore_last_failover":     "it is a masterha_manager option; see recovery.anti_flap",
		"remove_dead_master_conf":  "it is a masterha_manager option; quorumha keeps the dead master in its state instead",
		"skip_save_master_binlog":  "it is a masterha_manager option; quorumha never copies binlogs over ssh",
		"wait_until_gtid_in_sync":  "it is a masterha_manager option",
		"running_updates_limit":    "it is a masterha_master_switch option",
		"running_seconds_limit":    "it is a masterha_master_switch option",
		"orig_master_is_new_slave": "it is a masterha_master_switch option",
	}
}
