package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNotSent wraps the error of a call that never got a connection to the
// agent (the dial or the TLS handshake failed or timed out): not one byte
// of the request left this process, so the agent cannot have acted on it.
// The lease keeper relies on it: a renewal that never connected does not
// move the bound of the last renewal the agent may have received, so the
// lease of a vanished host lapses from its last delivered renewal, not
// from the last attempt.
var ErrNotSent = errors.New("request not sent: no connection to the agent")

// ClientOptions configure a Client.
type ClientOptions struct {
	// Token is sent as "Authorization: Bearer TOKEN" when not empty.
	Token string
	// CAFile verifies the agent's certificate (PEM); "" uses the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile, KeyFile string
	// Timeout bounds each JSON call in full and, for Raw, the wait for the
	// answer's headers: a large range streams for as long as ctx allows.
	// 0 means DefaultClientTimeout.
	Timeout time.Duration
	// ConnectTimeout bounds the TCP connect alone, so a vanished host fails
	// fast while a connected, slow agent still gets Timeout. 0 means Timeout.
	ConnectTimeout time.Duration
	// OneShot makes every call use a fresh connection that is closed
	// abortively (RST, unsent data discarded) when the call ends. Lease
	// renewals need it: on a kept-alive connection a renewal written while
	// the network was cut stays queued in the kernel and is delivered, and
	// granted, when the cut heals, long after the controller gave it up and
	// recorded the attempt's end as the last moment a grant could arrive. It
	// re-armed a former master's agent after its fence was cleared (found
	// by make chaos).
	OneShot bool
}

// DefaultClientTimeout is ClientOptions.Timeout when it is 0.
const DefaultClientTimeout = 30 * time.Second

// maxJSONBody bounds a JSON answer: a scan of a 1 GiB binlog of tiny
// transactions lists a few million of them.
const maxJSONBody = 1 << 30

// Client talks to one agent.
type Client struct {
	base    string
	token   string
	timeout time.Duration
	http    *http.Client
}

// APIError is an error answer of the agent: the request, the status and
// the agent's message.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

// Error names the request, the agent's message and the status.
func (e *APIError) Error() string {
	return fmt.Sprintf("agent %s %s: %s (HTTP %d)", e.Method, e.Path, e.Message, e.Status)
}

// NewClient builds a client for the agent at baseURL (http://host:port or
// https://host:port).
func NewClient(baseURL string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("agent client: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("agent client: base URL %q: want http://host:port or https://host:port", baseURL)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("agent client: client certificate %q and key %q must be set together", o.CertFile, o.KeyFile)
	}
	if u.Scheme == "http" && (o.CAFile != "" || o.CertFile != "") {
		return nil, fmt.Errorf("agent client: base URL %q is http but TLS files are set; use https", baseURL)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // an agent is reached directly, never through a proxy
	connect := o.ConnectTimeout
	if connect <= 0 || connect > timeout {
		connect = timeout
	}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	tr.DialContext = dialer.DialContext
	if o.OneShot {
		tr.DisableKeepAlives = true
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok && err == nil {
				_ = tc.SetLinger(0) // close = RST: nothing queued survives the call
			}
			return c, err
		}
	}
	tr.ResponseHeaderTimeout = timeout
	if u.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CAFile != "" {
			if tc.RootCAs, err = certPool(o.CAFile); err != nil {
				return nil, fmt.Errorf("agent client: CA file %s: %w", o.CAFile, err)
			}
		}
		if o.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("agent client: certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &Client{
		base:    u.Scheme + "://" + u.Host,
		token:   o.Token,
		timeout: timeout,
		http:    &http.Client{Transport: tr},
	}, nil
}

// Files lists the agent's binlog files in index order.
func (c *Client) Files(ctx context.Context) ([]FileInfo, error) {
	var out FileList
	if err := c.getJSON(ctx, "/v1/binlogs", &out); err != nil {
		return nil, err
	}
	return out.Files, nil
}

// Scan returns the complete transactions of binlog name from offset from on
// (0: the whole file).
func (c *Client) Scan(ctx context.Context, name string, from int64) (FileScan, error) {
	return c.ScanMissing(ctx, name, from, "")
}

// ScanMissing is Scan keeping only the transactions that the MariaDB GTID
// position have lacks ("" keeps all).
func (c *Client) ScanMissing(ctx context.Context, name string, from int64, have string) (FileScan, error) {
	var out FileScan
	path := "/v1/binlogs/" + url.PathEscape(name) + "/scan?from=" + strconv.FormatInt(from, 10)
	if have != "" {
		path += "&missing_for=" + url.QueryEscape(have)
	}
	if err := c.getJSON(ctx, path, &out); err != nil {
		return FileScan{}, err
	}
	return out, nil
}

// Tail returns where the agent's newest binlog file ends.
func (c *Client) Tail(ctx context.Context) (Tail, error) {
	var out Tail
	if err := c.getJSON(ctx, "/v1/tail", &out); err != nil {
		return Tail{}, err
	}
	return out, nil
}

// Raw copies the bytes [from, to) of binlog name to w and returns how many
// it wrote; to <= 0 means to the end of the file. A body shorter than the
// agent announced (the connection was cut) is an error: the caller must not
// apply a torn range.
func (c *Client) Raw(ctx context.Context, name string, from, to int64, w io.Writer) (int64, error) {
	path := "/v1/binlogs/" + url.PathEscape(name) + "/raw?from=" + strconv.FormatInt(from, 10)
	if to > 0 {
		path += "&to=" + strconv.FormatInt(to, 10)
	}
	resp, err := c.get(ctx, path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("agent GET %s: after %d bytes: %w", path, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("agent GET %s: got %d bytes, want %d", path, n, resp.ContentLength)
	}
	if to > 0 && n != to-from {
		return n, fmt.Errorf("agent GET %s: got %d bytes, want %d", path, n, to-from)
	}
	return n, nil
}

// getJSON decodes a JSON answer, bounding the whole call by the timeout.
func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	return c.callJSON(ctx, http.MethodGet, path, nil, out)
}

// get sends a GET and returns a 200 answer; any other status becomes an
// *APIError carrying the agent's message.
func (c *Client) get(ctx context.Context, path string) (*http.Response, error) {
	return c.do(ctx, http.MethodGet, path, nil)
}

// do sends a request (body, when not nil, as JSON) and returns a 200
// answer; any other status becomes an *APIError with the agent's message.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("agent %s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("agent %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// GotConn fires before any byte of the request is written (after the
	// TLS handshake for https); a call that fails without it sent nothing.
	var connected atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	}))
	resp, err := c.http.Do(req)
	if err != nil {
		if !connected.Load() {
			return nil, fmt.Errorf("agent %s %s: %w: %w", method, path, ErrNotSent, err)
		}
		return nil, fmt.Errorf("agent %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	apiErr := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // best effort: the status says enough
	var er ErrorResponse
	if json.Unmarshal(raw, &er) == nil && er.Error != "" {
		apiErr.Message = er.Error
	} else {
		apiErr.Message = strings.TrimSpace(string(raw))
		if apiErr.Message == "" {
			apiErr.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, apiErr
}

// callJSON sends method path with body (nil: none) and decodes the JSON
// answer into out, bounding the whole call by the client's timeout.
func (c *Client) callJSON(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONBody)).Decode(out); err != nil {
		return fmt.Errorf("agent %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Lease renews this controller's share of the master's quorum lease.
func (c *Client) Lease(ctx context.Context, req LeaseRequest) (LeaseResponse, error) {
	var out LeaseResponse
	err := c.callJSON(ctx, http.MethodPost, "/v1/lease", req, &out)
	return out, err
}

// FenceStatus reads the agent's fence state.
func (c *Client) FenceStatus(ctx context.Context) (FenceStatus, error) {
	var out FenceStatus
	err := c.callJSON(ctx, http.MethodGet, "/v1/fence", nil, &out)
	return out, err
}

// Fence asks the agent to fence its server now (a controller's fence step).
// The answer is the state after the attempt: Fenced with no Errors, or
// ServerRunning false, is a proof.
func (c *Client) Fence(ctx context.Context, req FenceRequest) (FenceStatus, error) {
	var out FenceStatus
	err := c.callJSON(ctx, http.MethodPost, "/v1/fence", req, &out)
	return out, err
}

// ClearFence disarms the agent and forgets its fence: the server is being
// promoted, or was demoted in order. It does not change read_only.
func (c *Client) ClearFence(ctx context.Context, req FenceRequest) (FenceStatus, error) {
	var out FenceStatus
	err := c.callJSON(ctx, http.MethodPost, "/v1/fence/clear", req, &out)
	return out, err
}

// IsStatus reports whether err is an agent answer with the given status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// Reach asks the agent whether its host reaches the MySQL server at addr
// (host:port) within timeout (bounded by the agent to 50ms-5s). The call
// itself is bounded by the timeout plus the client's own.
func (c *Client) Reach(ctx context.Context, addr string, timeout time.Duration) (Reach, error) {
	var out Reach
	path := "/v1/reach?addr=" + url.QueryEscape(addr)
	if timeout > 0 {
		path += "&timeout=" + url.QueryEscape(timeout.String())
	}
	err := c.callJSON(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// ServerProcess asks the agent whether its database server process runs.
func (c *Client) ServerProcess(ctx context.Context) (ServerProcess, error) {
	var out ServerProcess
	err := c.callJSON(ctx, http.MethodGet, "/v1/server", nil, &out)
	return out, err
}
