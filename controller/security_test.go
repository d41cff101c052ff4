package controller

import (
	"net/http"
	"testing"
)

// Item 9: followers never forward writes (and their token) through HTTP_PROXY.
func TestForwardClient_IgnoresProxy(t *testing.T) {
	if tr, ok := forwardClient(nil).Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Fatalf("forwarding client honours HTTP_PROXY")
	}
}
