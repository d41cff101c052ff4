// Package httpjson writes the JSON answers of quorumha's two HTTP servers,
// the controller API (api) and the host agent (agent), so both encode
// bodies and errors the same way. Which error gets which status stays with
// each server's own mapping (api.statusFor, agent.statusOf): this package
// only encodes.
package httpjson

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ErrorResponse is the JSON body of every error answer of both servers.
type ErrorResponse struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

// Write encodes v as one line of JSON with the given status. A value that
// will not encode becomes a 500 with an ErrorResponse saying why, so a
// client never gets a 200 with a truncated body.
func Write(w http.ResponseWriter, code int, v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		buf, _ = json.Marshal(ErrorResponse{Error: "encode response: " + err.Error(), Code: code})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(buf, '\n')) // the client went away; nothing to do
}

// WriteError answers err with the status the caller mapped it to, as an
// ErrorResponse.
func WriteError(w http.ResponseWriter, code int, err error) {
	Write(w, code, ErrorResponse{Error: err.Error(), Code: code})
}
