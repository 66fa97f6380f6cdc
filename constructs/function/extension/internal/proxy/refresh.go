package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/bundle"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/jsonlog"
)

// defaultRefreshDeadline bounds one refresh of the identity.
const defaultRefreshDeadline = 10 * time.Second

// Refresher re-reads the identity bundle in the background once less than half of the leaf's lifetime remains,
// and swaps it into the proxy atomically. Requests do not wait for it while the current leaf is valid: they keep
// using it. Only a connection that finds the leaf already expired (the environment was frozen past its end) waits
// for the refresh, because presenting an expired leaf would fail anyway.
type Refresher struct {
	proxy *Proxy
	fetch func(context.Context) (*bundle.Identity, error)
	log   *jsonlog.Logger
	stats *Stats
	now   func() time.Time
	// timeout bounds one refresh; backoff is how long after an attempt that changed nothing (a failure, or the
	// parameter still holding the current leaf) the next non-urgent attempt may start, so that the connections of
	// a busy function do not turn into one SSM call each.
	timeout time.Duration
	backoff time.Duration

	mu        sync.Mutex
	running   chan struct{} // closed when the in-flight refresh ends; nil when none runs
	notBefore time.Time
	wg        sync.WaitGroup
}

// NewRefresher refreshes proxy's identity with fetch; backoff spaces attempts that changed nothing.
func NewRefresher(proxy *Proxy, fetch func(context.Context) (*bundle.Identity, error), log *jsonlog.Logger,
	stats *Stats, backoff time.Duration) *Refresher {
	return &Refresher{
		proxy: proxy, fetch: fetch, log: log, stats: stats, now: time.Now,
		timeout: defaultRefreshDeadline, backoff: backoff,
	}
}

// Check starts a background refresh if one is due and none is running, and never blocks; trigger names the caller
// for logs ("connection", "timer"). It returns a channel that is closed when the running refresh (started now or
// before) ends, or nil when none runs. An expired leaf is refreshed regardless of the backoff.
func (r *Refresher) Check(trigger string) <-chan struct{} {
	now := r.now()
	cur := r.proxy.Identity()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running != nil {
		return r.running
	}
	if cur != nil && !cur.NeedsRefresh(now) {
		return nil
	}
	if cur != nil && !cur.Expired(now) && now.Before(r.notBefore) {
		return nil
	}
	done := make(chan struct{})
	r.running = done
	r.wg.Add(1)
	go r.refresh(trigger, cur, done)
	return done
}

func (r *Refresher) refresh(trigger string, cur *bundle.Identity, done chan struct{}) {
	defer r.wg.Done()
	swapped := false
	defer func() {
		r.mu.Lock()
		r.running = nil
		if !swapped {
			r.notBefore = r.now().Add(r.backoff)
		}
		r.mu.Unlock()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	next, err := r.fetch(ctx)
	if err != nil {
		r.stats.RefreshFailures.Add(1)
		fields := []interface{}{"trigger", trigger, "error", err}
		if cur != nil {
			fields = append(fields, "serial", cur.Serial(), "expires", cur.Leaf.NotAfter.UTC().Format(time.RFC3339))
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
	swapped = true
	r.stats.Refreshes.Add(1)
	fields := []interface{}{
		"trigger", trigger, "serial", next.Serial(), "expires", next.Leaf.NotAfter.UTC().Format(time.RFC3339),
	}
	if cur != nil {
		fields = append(fields, "previousSerial", cur.Serial())
	}
	r.log.Info("certificate refreshed", fields...)
}

// Wait waits for a running refresh to finish.
func (r *Refresher) Wait() { r.wg.Wait() }

// Run calls Check("timer") every interval until ctx ends. While the execution environment is frozen the timer does
// not fire; an overdue tick fires on thaw, and the first connection after a thaw checks too.
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
