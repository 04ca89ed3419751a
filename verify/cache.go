package verify

import (
	"container/heap"
	"strings"
	"sync"
	"time"
)

// tokenCache remembers verified tokens, keyed by their exact bytes, until
// the earlier of their exp and their insertion plus ttl. A lookup is a map
// read under a read lock; when full, the entry that expires first goes.
//
// An entry also records the generation of its issuer's key set read before
// its key was: once a refresh removes a key, every entry of that issuer is
// stale and its token goes through a full verification again.
type tokenCache struct {
	size int
	ttl  time.Duration

	mu       sync.RWMutex
	byToken  map[string]*cacheEntry
	byExpiry expiryHeap
}

type cacheEntry struct {
	token  string
	claims *Claims
	until  int64 // Unix nanoseconds
	src    *keySource
	gen    uint64
	index  int // in byExpiry; guarded by the write lock
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	return &tokenCache{size: size, ttl: ttl, byToken: make(map[string]*cacheEntry)}
}

// get returns the claims of raw if it is remembered and still valid at now.
// It does not allocate. A nil cache remembers nothing.
func (c *tokenCache) get(raw string, now time.Time) *Claims {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.byToken[raw]
	c.mu.RUnlock()
	if e == nil || now.UnixNano() >= e.until || e.gen != e.src.gen.Load() {
		return nil
	}
	return e.claims
}

// put remembers raw, verified at now with a key of src's generation gen.
func (c *tokenCache) put(raw string, claims *Claims, src *keySource, gen uint64, now time.Time) {
	if c == nil {
		return
	}
	until := now.Add(c.ttl)
	if claims.Expires.Before(until) {
		until = claims.Expires
	}
	if !until.After(now) {
		return
	}
	e := &cacheEntry{token: strings.Clone(raw), claims: claims, until: until.UnixNano(), src: src, gen: gen}
	n := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byToken[raw]; old != nil {
		c.remove(old)
	}
	for len(c.byExpiry) > 0 && (c.byExpiry[0].until <= n || len(c.byExpiry) >= c.size) {
		c.remove(c.byExpiry[0])
	}
	heap.Push(&c.byExpiry, e)
	c.byToken[e.token] = e
}

// remove forgets e; the write lock is held.
func (c *tokenCache) remove(e *cacheEntry) {
	heap.Remove(&c.byExpiry, e.index)
	delete(c.byToken, e.token)
}

// len returns the number of remembered tokens, expired ones included.
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byToken)
}

// expiryHeap orders entries by until, earliest first (container/heap).
type expiryHeap []*cacheEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*cacheEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
