package api

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// requireUIHeaders checks the headers every web view asset carries.
func requireUIHeaders(t *testing.T, rec *httptest.ResponseRecorder, wantType string) {
	t.Helper()
	h := rec.Header()
	if got := h.Get("Content-Type"); got != wantType {
		t.Errorf("Content-Type %q, want %q", got, wantType)
	}
	if got := h.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q allows inline code", csp)
	}
	if h.Get("ETag") == "" {
		t.Error("no ETag")
	}
}

func TestUI_ServesPage(t *testing.T) {
	f := newFixture(t, nil, nil)
	for _, path := range []string{"/ui", "/ui/", "/ui/index.html"} {
		t.Run(path, func(t *testing.T) {
			rec := do(f.srv.Handler(), "GET", path, "", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			requireUIHeaders(t, rec, "text/html; charset=utf-8")
			body := rec.Body.String()
			for _, want := range []string{"<!doctype html>", `src="/ui/timeline.js"`, `src="/ui/app.js"`, `href="/ui/style.css"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
		})
	}
}

func TestUI_AssetTypes(t *testing.T) {
	f := newFixture(t, nil, nil)
	tests := []struct{ path, ctype, contains string }{
		{"/ui/app.js", "text/javascript; charset=utf-8", "/v1/status"},
		{"/ui/style.css", "text/css; charset=utf-8", ".badge"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
		{"/ui/timeline.js", "text/javascript; charset=utf-8", "function recordTimeline"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := do(f.srv.Handler(), "GET", tt.path, "", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			requireUIHeaders(t, rec, tt.ctype)
			if !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
}

func TestUI_HeadAndConditionalGet(t *testing.T) {
	f := newFixture(t, nil, nil)
	head := do(f.srv.Handler(), "HEAD", "/ui/app.js", "", nil)
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") == "" {
		t.Fatalf("HEAD: status %d, %d body bytes, Content-Length %q", head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
	}
	etag := head.Header().Get("ETag")
	rec := do(f.srv.Handler(), "GET", "/ui/app.js", "", map[string]string{"If-None-Match": etag})
	if rec.Code != http.StatusNotModified {
		t.Fatalf("GET with If-None-Match %s: status %d, want 304", etag, rec.Code)
	}
}

func TestUI_UnknownAssetNotFound(t *testing.T) {
	f := newFixture(t, nil, nil)
	for _, path := range []string{"/ui/nope.js", "/ui/app.js.map", "/ui/README", "/ui/index.htm", "/ui/sub/app.js", "/uix"} {
		rec := do(f.srv.Handler(), "GET", path, "", nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, rec.Code)
		}
	}
}

func TestUI_PathTraversalRefused(t *testing.T) {
	f := newFixture(t, nil, nil)
	// Through the router: paths that climb out are cleaned (and then name
	// nothing the view serves) or refused; none may serve a file from
	// outside the embedded directory.
	for _, path := range []string{
		"/ui/../api.go", "/ui/..%2fapi.go", "/ui/%2e%2e/api.go", "/ui/%2e%2e%2fui.go",
		"/ui/..%5capi.go", "/ui/ui/../../ui.go", "/ui/./../go.mod", "/ui/%2e%2e%2f%2e%2e%2fgo.mod",
	} {
		rec := do(f.srv.Handler(), "GET", path, "", nil)
		body := rec.Body.String()
		if rec.Code == http.StatusOK || strings.Contains(body, "package api") || strings.Contains(body, "module ") {
			t.Errorf("GET %s: status %d, body %.80q", path, rec.Code, body)
		}
	}
	// And straight into the handler, past the router's cleaning.
	for _, p := range []string{"/ui/../ui.go", "/ui/../../go.mod", `/ui/..\ui.go`, "/ui/ui/index.html", "/ui/./index.html", "/ui//index.html"} {
		req := httptest.NewRequest("GET", "/ui/", nil)
		req.URL.Path = p
		rec := httptest.NewRecorder()
		if code := serveUIAsset(rec, req); code != http.StatusNotFound || rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d (returned %d), want 404", p, rec.Code, code)
		}
	}
}

func TestUI_NoAuthNeeded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Token = "s3cret" }, nil)
	for _, path := range []string{"/ui", "/ui/app.js", "/ui/style.css"} {
		rec := do(f.srv.Handler(), "GET", path, "", nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s with a token configured and none sent: status %d", path, rec.Code)
		}
	}
}

func TestUI_OnlyGet(t *testing.T) {
	f := newFixture(t, nil, nil)
	rec := do(f.srv.Handler(), "POST", "/ui/app.js", "x", nil)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d, want 405", rec.Code)
	}
}

// TestUI_SelfContained keeps the assets offline-safe and XSS-safe: nothing
// is loaded from another origin, and the script never turns strings into
// markup or code (API data goes in as text only).
func TestUI_SelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	markup := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*["']`)
	err := fs.WalkDir(uiFiles, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiFiles, name)
		if err != nil {
			return err
		}
		text := string(b)
		// The SVG namespace is a name, never fetched: the favicon declares
		// it and timeline.js creates elements in it.
		text = strings.ReplaceAll(text, `xmlns="http://www.w3.org/2000/svg"`, "")
		text = strings.ReplaceAll(text, `const SVG_NS = "http://www.w3.org/2000/svg";`, "")
		if m := external.FindString(text); m != "" {
			t.Errorf("%s refers to another origin: %q", name, m)
		}
		if strings.HasSuffix(name, ".js") {
			if m := markup.FindString(text); m != "" {
				t.Errorf("%s uses %q: render API data with textContent/createElement", name, m)
			}
		}
		if strings.HasSuffix(name, ".html") && regexp.MustCompile(`<script>|\sstyle=|\son[a-z]+=`).MatchString(text) {
			t.Errorf("%s has inline script, style or handlers, which the CSP forbids", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
