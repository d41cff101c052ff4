package sandbox

import (
	"fmt"
	"strings"
)

// myCnf renders the defaults file of inst. master selects the master-only
// settings (read_only stays off, semi-sync master on).
func myCnf(inst Instance, master bool, opts Options) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by quorumha's sandbox; mariadbd reads only this file (--defaults-file).")
	w("[mariadbd]")
	w("port=%d", inst.Port)
	w("bind-address=%s", inst.host())
	w("datadir=%s", inst.DataDir)
	w("socket=%s", inst.Socket)
	w("pid-file=%s", inst.PIDFile())
	w("log-error=%s", inst.errorLog())
	w("tmpdir=%s", inst.TmpDir())
	w("basedir=/usr")
	w("server_id=%d", inst.ServerID)
	w("report_host=%s", inst.host())
	w("report_port=%d", inst.Port)
	w("skip-name-resolve")
	w("max_connections=200")
	// Binary log and replication; durability matters because tests kill -9.
	w("log_bin=mysql-bin")
	w("log_bin_index=%s", BinlogIndex)
	w("relay_log=relay-bin")
	w("relay_log_index=relay-bin.index")
	w("log_slave_updates=ON")
	w("binlog_format=ROW")
	w("gtid_strict_mode=ON")
	w("gtid_domain_id=0")
	w("relay_log_recovery=ON")
	w("sync_binlog=1")
	w("innodb_flush_log_at_trx_commit=1")
	w("slave_net_timeout=10")
	if !opts.GTID {
		// File/position replicas keep their coordinates in files, not in
		// InnoDB; sync them so a killed replica resumes where it was.
		w("sync_master_info=1")
		w("sync_relay_log_info=1")
	}
	if !master {
		w("read_only=ON")
	}
	if opts.SemiSync {
		w("rpl_semi_sync_slave_enabled=ON")
		if master {
			w("rpl_semi_sync_master_enabled=ON")
		}
		// On every server, not only the master: a failover turns the
		// master side on in a promoted replica, which must then wait
		// for ACKs as the master it replaces did (otherwise it runs
		// MariaDB's defaults, a 10 s timeout and AFTER_COMMIT). 5 s is
		// well above the quorum lease (lease_ttl 2 s + lease_drift
		// 0.5 s): a cut-off master must still be waiting for an ACK
		// when its agent fences it (and kills the waiting sessions),
		// not have fallen back to async and acknowledged writes no
		// replica has (docs/agent.md).
		w("rpl_semi_sync_master_timeout=5000")
		w("rpl_semi_sync_master_wait_point=AFTER_SYNC")
	}
	// Small and quick: many sandboxes share a small machine.
	w("innodb_buffer_pool_size=32M")
	w("innodb_log_file_size=16M")
	w("innodb_use_native_aio=OFF")
	w("performance_schema=OFF")
	w("key_buffer_size=1M")
	w("aria_pagecache_buffer_size=8M")
	w("table_open_cache=400")
	for _, line := range opts.ExtraConfig {
		w("%s", strings.TrimSpace(line))
	}
	return b.String()
}
