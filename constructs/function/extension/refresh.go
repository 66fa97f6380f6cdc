package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Refresher re-reads the identity bundle in the background once less than half of the leaf's lifetime remains,
// and swaps it into the proxy atomically. Requests never wait for it: they keep using the current identity, which
// is still valid for the other half of its lifetime.
type Refresher struct {
	proxy   *Proxy
	fetch   func(context.Context) (*Identity, error)
	log     *Logger
	stats   *Stats
	now     func() time.Time
	timeout time.Duration

	inFlight atomic.Bool
	wg       sync.WaitGroup
}

// NewRefresher refreshes proxy's identity with fetch.
func NewRefresher(proxy *Proxy, fetch func(context.Context) (*Identity, error), log *Logger, stats *Stats) *Refresher {
	return &Refresher{proxy: proxy, fetch: fetch, log: log, stats: stats, now: time.Now, timeout: defaultRefreshDeadline}
}

// Check starts a background refresh if one is due and none is running; trigger names the caller for logs
// ("thaw", "timer"). It reports whether a refresh was started.
func (r *Refresher) Check(trigger string) bool {
	cur := r.proxy.Identity()
	if cur != nil && !cur.NeedsRefresh(r.now()) {
		return false
	}
	if !r.inFlight.CompareAndSwap(false, true) {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.inFlight.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		next, err := r.fetch(ctx)
		if err != nil {
			r.stats.RefreshFailures.Add(1)
			fields := []interface{}{"trigger", trigger, "error", err}
			if cur != nil {
				fields = append(fields, "currentExpires", cur.Leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			r.log.Warn("certificate refresh failed; keeping the current certificate", fields...)
			return
		}
		if cur != nil && next.Leaf.Equal(cur.Leaf) && next.TrustDomain == cur.TrustDomain {
			r.log.Info("certificate refresh: the parameter still holds the current certificate",
				"trigger", trigger, "serial", cur.Serial(), "expires", cur.Leaf.NotAfter.UTC().Format(time.RFC3339))
			return
		}
		r.proxy.SetIdentity(next)
		r.stats.Refreshes.Add(1)
		fields := []interface{}{"trigger", trigger, "serial", next.Serial(), "expires", next.Leaf.NotAfter.UTC().Format(time.RFC3339)}
		if cur != nil {
			fields = append(fields, "previousSerial", cur.Serial())
		}
		r.log.Info("certificate refreshed", fields...)
	}()
	return true
}

// Wait waits for a running refresh to finish.
func (r *Refresher) Wait() { r.wg.Wait() }

// Run calls Check("timer") every interval until ctx ends. While the execution environment is frozen the timer does
// not fire; it fires on thaw, which is when a refresh is useful.
func (r *Refresher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Check("timer")
		}
	}
}
