package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The web view: a static page, a script and a style sheet, embedded in the
// binary so every controller serves it with no build step and no network
// access beyond its own API. The script polls the read endpoints (it keeps
// no state on the server); the assets themselves never need a token, since
// they hold no data.

//go:embed ui
var uiEmbed embed.FS

// uiFiles is the embedded ui directory, rooted at its contents.
var uiFiles = mustSub(uiEmbed, "ui")

// uiIndex is the page served at /ui and /ui/.
const uiIndex = "index.html"

// uiCSP allows only this origin's own script, style and fetches: the page
// needs nothing else, and it renders data from the API that must never run.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiTypes maps the asset extensions the view uses to their Content-Type;
// anything else is not served.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("api: embedded ui: " + err.Error()) // a build without the directory is broken
	}
	return sub
}

// ui serves the web view's assets: GET /ui and /ui/ are the page, /ui/NAME
// one asset of the embedded directory. Only plain file names with a known
// extension are served, so no path can leave the directory.
func (s *Server) ui() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := serveUIAsset(w, r)
		s.metrics.observeRequest("GET /ui", code, time.Since(start))
	})
}

// serveUIAsset writes one asset (or 404) and returns the status.
func serveUIAsset(w http.ResponseWriter, r *http.Request) int {
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/ui"), "/")
	if name == "" {
		name = uiIndex
	}
	ctype, known := uiTypes[path.Ext(name)]
	if !known || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	body, err := fs.ReadFile(uiFiles, name)
	if err != nil {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	sum := sha256.Sum256(body)
	h := w.Header()
	h.Set("Content-Type", ctype)
	// no-cache: revalidate every time (the ETag makes that a 304), so an
	// upgraded controller never runs an old script against a new API.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	http.ServeContent(rec, r, name, time.Time{}, bytes.NewReader(body))
	return rec.code
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
