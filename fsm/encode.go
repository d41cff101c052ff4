package fsm

import (
	"encoding/json"
	"fmt"
)

// String names the type for logs and panics; unknown values print their
// number and whether they are ignorable.
func (t MessageType) String() string {
	switch t {
	case RecordOpenType:
		return "RecordOpen"
	case StepBeginType:
		return "StepBegin"
	case StepEndType:
		return "StepEnd"
	case CandidatesType:
		return "Candidates"
	case RecordCloseType:
		return "RecordClose"
	case SetMasterType:
		return "SetMaster"
	case AckType:
		return "Ack"
	case MaintenanceType:
		return "Maintenance"
	case NodeMetaType:
		return "NodeMeta"
	case SalvageType:
		return "Salvage"
	case FenceUpdateType:
		return "FenceUpdate"
	case NodeKeyType:
		return "NodeKey"
	case ClusterDefineType:
		return "ClusterDefine"
	case ClusterRemoveType:
		return "ClusterRemove"
	case InstanceSetType:
		return "InstanceSet"
	case InstanceRemoveType:
		return "InstanceRemove"
	}
	if t&IgnoreUnknownTypeFlag != 0 {
		return fmt.Sprintf("MessageType(%d, ignorable)", uint8(t))
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Encode builds a log entry: one type byte followed by the JSON payload. JSON
// keeps snapshots and logs readable by operators; our write rate is tiny, and
// changing the encoding would touch only this file.
func Encode(t MessageType, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %s: %w", t, err)
	}
	buf := make([]byte, 0, len(body)+1)
	buf = append(buf, byte(t))
	return append(buf, body...), nil
}

// Decode splits a log entry into its type and payload. The payload aliases b.
// It only fails when b is empty; the payload is decoded by the FSM, which
// knows the type.
func Decode(b []byte) (MessageType, []byte, error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("fsm: decode: empty buffer: %w", ErrMalformedCommand)
	}
	return MessageType(b[0]), b[1:], nil
}
