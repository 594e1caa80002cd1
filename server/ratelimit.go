package server

import (
	"container/list"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
)

// Defaults of AuthLimits: a client address or a user name may fail
// authentication DefaultAuthBurst times in a row, then once more every
// DefaultAuthEvery; each table tracks at most DefaultAuthMaxKeys keys.
const (
	DefaultAuthBurst   = 10
	DefaultAuthEvery   = 6 * time.Second
	DefaultAuthMaxKeys = 16384
)

// RateLimit is a token bucket of failed authentications: Burst failures at
// once, then one more every Every. Zero fields take the defaults.
type RateLimit struct {
	Burst int
	Every time.Duration
	// Off disables the limit (for example behind a TCP proxy, where every
	// client has the proxy's address).
	Off bool
}

// AuthLimits limit failed authentication per client address (IPv6 by /64)
// and per HTTP Basic user name. A failure takes a token from both buckets;
// while either is empty, enrollment requests from that address or for that
// user are answered 429 with a Retry-After before any password is checked
// or any body read. Successful authentication takes nothing.
type AuthLimits struct {
	PerIP, PerUser RateLimit
	// MaxKeys bounds the addresses, and the user names, tracked; beyond it
	// the least recently failed is forgotten. 0 means DefaultAuthMaxKeys.
	MaxKeys int
}

// authLimiter holds the two tables of AuthLimits. A nil *authLimiter limits
// nothing.
type authLimiter struct {
	ip, user *limitTable
}

func newAuthLimiter(l AuthLimits) *authLimiter {
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultAuthMaxKeys
	}
	return &authLimiter{ip: newLimitTable(l.PerIP, maxKeys), user: newLimitTable(l.PerUser, maxKeys)}
}

// check returns an ErrTooManyRequests error, and sets Retry-After, when the
// client's address or the Basic user name r carries has no token left.
func (a *authLimiter) check(w http.ResponseWriter, r *http.Request, now time.Time) error {
	if a == nil {
		return nil
	}
	ipKey, userKey := limitKeys(r)
	wait, why := a.ip.wait(ipKey, now), "from this address"
	if d := a.user.wait(userKey, now); d > wait {
		wait, why = d, "for this user name"
	}
	if wait <= 0 {
		return nil
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return est.Errorf(est.ErrTooManyRequests, "too many failed authentications %s; retry in %d s", why, secs)
}

// failed takes a token from the client's buckets when r presented
// credentials that authentication refused with err. A request with no
// credentials at all (the first leg of a 401 challenge) costs nothing.
func (a *authLimiter) failed(r *http.Request, err error, now time.Time) {
	if a == nil {
		return
	}
	if k := est.KindOf(err); k != est.ErrUnauthorized && k != est.ErrForbidden {
		return // the store failed, not the requester
	}
	presented := r.Header.Get("Authorization") != "" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
	if !presented {
		return
	}
	ipKey, userKey := limitKeys(r)
	a.ip.fail(ipKey, now)
	a.user.fail(userKey, now)
}

// limitKeys returns the keys of r's client address, an IPv6 address by its
// /64, and of its Basic user name ("" when none or not a valid user name:
// such names cannot be users and are left to the address limit).
func limitKeys(r *http.Request) (ipKey, userKey string) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		addr := ap.Addr().Unmap()
		if addr.Is6() {
			p, _ := addr.Prefix(64)
			ipKey = p.String()
		} else {
			ipKey = addr.String()
		}
	} else {
		ipKey = r.RemoteAddr // not host:port (a test's handler call); cannot be chosen by the client
	}
	if name, _, ok := r.BasicAuth(); ok && auth.ValidUserName(name) {
		userKey = name
	}
	return ipKey, userKey
}

// limitTable is a bounded set of token buckets, least recently failed
// forgotten first. A nil *limitTable limits nothing.
type limitTable struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu   sync.Mutex
	keys map[string]*list.Element // of *limitEntry
	lru  list.List                // most recently failed at the front
}

type limitEntry struct {
	key string
	lim *rate.Limiter
}

func newLimitTable(l RateLimit, maxKeys int) *limitTable {
	if l.Off {
		return nil
	}
	burst, every := l.Burst, l.Every
	if burst <= 0 {
		burst = DefaultAuthBurst
	}
	if every <= 0 {
		every = DefaultAuthEvery
	}
	return &limitTable{limit: rate.Every(every), burst: burst, maxKeys: maxKeys, keys: map[string]*list.Element{}}
}

// wait returns how long until key may fail once more; 0 when it may now.
func (t *limitTable) wait(key string, now time.Time) time.Duration {
	if t == nil || key == "" {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys[key]
	if !ok {
		return 0
	}
	// A reservation says when the next token is due; it is cancelled at
	// once (under t.mu, so no other request sees the bucket in between):
	// asking must not cost a token.
	res := e.Value.(*limitEntry).lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	res.CancelAt(now)
	return d
}

// fail takes a token from key's bucket, making the bucket if needed.
func (t *limitTable) fail(key string, now time.Time) {
	if t == nil || key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys[key]
	if ok {
		t.lru.MoveToFront(e)
	} else {
		for t.lru.Len() >= t.maxKeys {
			old := t.lru.Back()
			t.lru.Remove(old)
			delete(t.keys, old.Value.(*limitEntry).key)
		}
		e = t.lru.PushFront(&limitEntry{key: key, lim: rate.NewLimiter(t.limit, t.burst)})
		t.keys[key] = e
	}
	// Reserve rather than Allow: failures that raced past the check leave
	// the bucket in debt, so the penalty grows with them.
	e.Value.(*limitEntry).lim.ReserveN(now, 1)
}

// size returns the number of keys tracked.
func (t *limitTable) size() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
