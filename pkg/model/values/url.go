package values

import (
	"errors"
	"net/url"
	"strings"
)

// ErrNoURLPassword reports a value that has no user:password@ part.
// Callers add the key's name; the value itself is never quoted.
var ErrNoURLPassword = errors.New("is not a URL with a password (expected scheme://user:password@host/... or user:password@host)")

// passwordSpan returns where the password of a connection URL or DSN
// starts and ends. It accepts scheme://user:pw@host/... and the
// scheme-less user:pw@host:port/path used by OpenSearch "hosts".
func passwordSpan(s string) (start, end int, err error) {
	base := 0
	if i := strings.Index(s, "://"); i >= 0 {
		base = i + len("://")
	}
	rest := s[base:]
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	authority := rest[:authEnd]
	// The last @ ends the userinfo, as in net/url: a raw @ in a password
	// is ambiguous, an encoded one (%40) is not.
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return 0, 0, ErrNoURLPassword
	}
	colon := strings.Index(authority[:at], ":")
	if colon < 0 {
		return 0, 0, ErrNoURLPassword
	}
	return base + colon + 1, base + at, nil
}

// URLPassword returns the (decoded) password of a connection URL.
func URLPassword(s string) (string, error) {
	start, end, err := passwordSpan(s)
	if err != nil {
		return "", err
	}
	p, err := url.PathUnescape(s[start:end])
	if err != nil {
		return "", errors.New("has a password that is not valid percent-encoding")
	}
	return p, nil
}

// ReplaceURLPassword returns s with its password replaced by password
// (percent-encoded where the URL syntax needs it). Every other byte of s
// is kept as it was: scheme, user, host, port, path and query.
func ReplaceURLPassword(s, password string) (string, error) {
	start, end, err := passwordSpan(s)
	if err != nil {
		return "", err
	}
	return s[:start] + escapePassword(password) + s[end:], nil
}

// escapePassword percent-encodes a password for the userinfo of a URL.
func escapePassword(p string) string {
	// url.UserPassword knows RFC 3986's userinfo rules; strip the dummy user.
	return strings.TrimPrefix(url.UserPassword("u", p).String(), "u:")
}
