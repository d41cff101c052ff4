package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
)

// defaultAPIAddr is the controller the CLI asks when neither --addr nor
// QUORUMHA_ADDR says otherwise.
const defaultAPIAddr = "http://127.0.0.1:8080"

// clientOptions are the flags shared by the commands that talk to a
// controller's HTTP API.
type clientOptions struct {
	addr      string
	token     string
	tokenFile string
	ca        string
	timeout   time.Duration
	json      bool
}

// addClientFlags registers --addr, --token, --token-file, --ca, --timeout
// and --json on cmd. The environment is read when the command runs, so
// --help never prints a token.
func addClientFlags(cmd *cobra.Command) *clientOptions {
	o := &clientOptions{}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "controller address, host:port or http(s)://host:port (default $QUORUMHA_ADDR or "+defaultAPIAddr+")")
	f.StringVar(&o.token, "token", "", "API bearer token: the write token, or the read token for reads (default $QUORUMHA_TOKEN)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the API bearer token (instead of --token, which shows in ps)")
	f.StringVar(&o.ca, "ca", "", "CA bundle (PEM) to verify the controller's HTTPS certificate (default $QUORUMHA_CA, else the system roots)")
	f.DurationVar(&o.timeout, "timeout", 15*time.Second, "timeout of each request")
	f.BoolVar(&o.json, "json", false, "print the controller's JSON answer")
	return o
}

// client builds the API client from the flags and the environment. Errors
// name the file (token or CA) that cannot be used.
func (o *clientOptions) client() (*apiClient, error) {
	addr := firstSet(o.addr, os.Getenv("QUORUMHA_ADDR"), defaultAPIAddr)
	token := firstSet(o.token, os.Getenv("QUORUMHA_TOKEN"))
	if o.token != "" && o.tokenFile != "" {
		return nil, fmt.Errorf("--token and --token-file are both set; use one")
	}
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("--token-file %s: file is empty", o.tokenFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // HTTP_PROXY must never see the token
	tr.TLSClientConfig = &tls.Config{MinVersion: config.MinTLSVersion}
	if ca := firstSet(o.ca, os.Getenv("QUORUMHA_CA")); ca != "" {
		pool, err := config.LoadCA(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &apiClient{
		base:  normalizeAddr(addr),
		token: token,
		http:  &http.Client{Timeout: o.timeout, Transport: tr},
	}, nil
}

// firstSet returns the first non-empty string.
func firstSet(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// normalizeAddr accepts host:port or a URL and returns a base URL without a
// trailing slash.
func normalizeAddr(addr string) string {
	addr = strings.TrimSuffix(strings.TrimSpace(addr), "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr
}

// apiClient is a small JSON client for one controller's API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an error answer of the API.
type apiError struct {
	Method, Path string
	Status       int
	Message      string
}

// Error names the request, the controller's message and a hint when one helps.
func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s %s: %s (HTTP %d)", e.Method, e.Path, e.Message, e.Status)
	switch e.Status {
	case http.StatusUnauthorized:
		msg += "; pass --token or --token-file, or set QUORUMHA_TOKEN"
	case http.StatusForbidden:
		msg += "; the controller rejected the token"
	}
	return msg
}

// do sends in (if not nil) as JSON and decodes the answer into out (if not
// nil; a *json.RawMessage keeps it verbatim).
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach controller at %s: %w", c.base, err)
	}
	defer func() { _ = resp.Body.Close() }() // fully read below
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var er api.ErrorResponse
		if json.Unmarshal(raw, &er) == nil && er.Error != "" {
			e.Message = er.Error
		} else {
			e.Message = strings.TrimSpace(firstSet(string(raw), http.StatusText(resp.StatusCode)))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// printJSON pretty-prints a raw JSON answer.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("format JSON: %w", err)
	}
	buf.WriteByte('\n')
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// fetch GETs path and either prints the JSON answer (--json) or decodes it
// and calls render.
func fetch[T any](cmd *cobra.Command, o *clientOptions, path string, render func(io.Writer, T) error) error {
	return send(cmd, o, http.MethodGet, path, nil, render)
}

// send makes one request (in, when not nil, is the JSON body) and either
// prints the JSON answer (--json) or decodes it and calls render.
func send[T any](cmd *cobra.Command, o *clientOptions, method, path string, in any, render func(io.Writer, T) error) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(cmd.Context(), method, path, in, &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return render(cmd.OutOrStdout(), v)
}

// postClusterAction posts req to /v1/clusters/{cluster}/{action} (failover,
// switchover, rejoin), decodes the answer into T and, with --json, prints
// the answer as it came.
func postClusterAction[T any](ctx context.Context, c *apiClient, out io.Writer, jsonOut bool, cluster, action string, req any) (T, error) {
	var resp T
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/v1/clusters/"+url.PathEscape(cluster)+"/"+action, req, &raw); err != nil {
		return resp, err
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return resp, fmt.Errorf("decode %s answer: %w", action, err)
	}
	if jsonOut {
		if err := printJSON(out, raw); err != nil {
			return resp, err
		}
	}
	return resp, nil
}
