package topology

import "testing"

func TestBinlogEvent_Transactional(t *testing.T) {
	for typ, want := range map[string]bool{
		"Format_desc": false, "Rotate": false, "Stop": false, "Gtid_list": false, "Binlog_checkpoint": false,
		"Previous_gtids": false, "Start_encryption": false,
		"Gtid": true, "Anonymous_Gtid": true, "Query": true, "Annotate_rows": true, "Table_map": true,
		"Write_rows_v1": true, "Xid": true, "Unknown_new_type": true,
	} {
		if got := (BinlogEvent{Type: typ}).Transactional(); got != want {
			t.Errorf("%s: transactional %t, want %t", typ, got, want)
		}
	}
}
