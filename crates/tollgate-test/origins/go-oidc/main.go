// Command go-oidc-origin is Cloudflare's Go origin example: it verifies the
// Cf-Access-Jwt-Assertion header with go-oidc against the team domain's
// /cdn-cgi/access/certs and answers 403 when the header is missing or the token
// does not verify. It is a seed origin: tollgate must serve it unchanged, exactly as
// Cloudflare Access does.
//
// Built against Debian's go-oidc v2.1.0 (import path github.com/coreos/go-oidc) in
// GOPATH mode, as scripts/test-deps.sh does:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/test-origins/go-oidc-origin \
//	    crates/tollgate-test/origins/go-oidc/main.go
//
// Run with:
//
//	target/test-origins/go-oidc-origin -issuer https://team.cloudflareaccess.com -aud <AUD tag> \
//	    [-certs-url URL] [-port 0]
//
// Every flag also reads an environment variable: TEAM_DOMAIN (the issuer), POLICY_AUD,
// CERTS_URL (default <issuer>/cdn-cgi/access/certs) and PORT (0, the default, binds a
// free port). The first line on stdout is the bound port, alone.
//
// Answers:
//
//	GET /__count   {"requests": N, "verified": M} without authentication: N requests
//	               reached the authenticated paths so far (this one not counted), M passed.
//	anything else  403 text when the header is missing or does not verify; else 200 JSON:
//	               {"sub", "common_name", "email" (null when absent), "path", "method",
//	                "assertion_present", "assertion_matches_cookie" (the CF_Authorization
//	                cookie equals the header), "header_names" (lowercase, one per header
//	                line, sorted: Go keeps no arrival order; "host" included), "requests"}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-oidc"
)

func env(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok {
		return value
	}
	return fallback
}

type counter struct {
	mu       sync.Mutex
	requests int
	verified int
}

func (c *counter) request() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	return c.requests
}

func (c *counter) ok() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verified++
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]int{"requests": c.requests, "verified": c.verified}
}

// claims are the Access claims the reply reports.
type claims struct {
	Sub        string  `json:"sub"`
	CommonName *string `json:"common_name"`
	Email      *string `json:"email"`
}

func writeJSON(w http.ResponseWriter, value interface{}) {
	body, err := json.Marshal(value)
	if err != nil {
		http.Error(w, "encoding the reply failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func headerNames(r *http.Request) []string {
	names := []string{"host"}
	for name, values := range r.Header {
		for range values {
			names = append(names, strings.ToLower(name))
		}
	}
	sort.Strings(names)
	return names
}

func main() {
	defaultPort, err := strconv.Atoi(env("PORT", "0"))
	if err != nil {
		log.Fatalf("PORT: %v", err)
	}
	issuer := flag.String("issuer", env("TEAM_DOMAIN", ""), "the team domain, the tokens' iss (env TEAM_DOMAIN)")
	aud := flag.String("aud", env("POLICY_AUD", ""), "the application's AUD tag (env POLICY_AUD)")
	certsURL := flag.String("certs-url", env("CERTS_URL", ""), "the JWK Set URL (env CERTS_URL; default <issuer>/cdn-cgi/access/certs)")
	port := flag.Int("port", defaultPort, "the loopback port; 0 binds a free one (env PORT)")
	host := flag.String("host", "127.0.0.1", "the address to listen on")
	exitOnEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin closes (a harness's pipe: its death ends this process)")
	flag.Parse()
	if *issuer == "" || *aud == "" {
		log.Fatal("-issuer (TEAM_DOMAIN) and -aud (POLICY_AUD) are required")
	}
	if *certsURL == "" {
		*certsURL = strings.TrimRight(*issuer, "/") + "/cdn-cgi/access/certs"
	}

	// Cloudflare's example, as written there.
	ctx := context.TODO()
	config := &oidc.Config{ClientID: *aud}
	keySet := oidc.NewRemoteKeySet(ctx, *certsURL)
	verifier := oidc.NewVerifier(*issuer, keySet, config)

	count := &counter{}
	mux := http.NewServeMux()
	mux.HandleFunc("/__count", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, count.snapshot())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		number := count.request()
		header := r.Header
		accessJWT := header.Get("Cf-Access-Jwt-Assertion")
		if accessJWT == "" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("No token on the request"))
			return
		}
		token, err := verifier.Verify(ctx, accessJWT)
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(fmt.Sprintf("Invalid token: %s", err.Error())))
			return
		}
		var seen claims
		if err := token.Claims(&seen); err != nil {
			http.Error(w, "reading the claims failed", http.StatusInternalServerError)
			return
		}
		count.ok()
		cookie, cookieErr := r.Cookie("CF_Authorization")
		writeJSON(w, map[string]interface{}{
			"sub":                      seen.Sub,
			"common_name":              seen.CommonName,
			"email":                    seen.Email,
			"path":                     r.URL.RequestURI(),
			"method":                   r.Method,
			"assertion_present":        true,
			"assertion_matches_cookie": cookieErr == nil && cookie.Value == accessJWT,
			"header_names":             headerNames(r),
			"requests":                 number,
		})
	})

	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	if *exitOnEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}
	log.Fatal(http.Serve(listener, mux))
}
