package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// load is how requests are sent.
type load struct {
	concurrency int
	rate        float64 // requests started per second; 0 for a closed loop
	count       int     // stop after this many; 0 for no limit
	duration    time.Duration
	record      bool // keep latencies (false for the warm-up)
}

// result is what one load run measured.
type result struct {
	latencies []time.Duration     // sorted; failed requests included
	elapsed   time.Duration       // until the last answer
	window    time.Duration       // the timed span: the duration, or elapsed when the run stopped sooner
	completed int                 // admissions that went as expected and ended within the window
	failures  map[string]*failure // by kind
	exhausted bool                // the pool of fresh Secrets ran out
}

// failure counts one kind of failed request and keeps the first message.
type failure struct {
	count int
	first string
}

func (r *result) errors() int {
	n := 0
	for _, f := range r.failures {
		n += f.count
	}
	return n
}

// uids numbers requests across runs, so every uid is new.
var uids atomic.Int64

// generate sends requests with src's bodies until l says stop, src runs out
// or ctx ends. In a closed loop each worker sends its next request when the
// last one is answered. In an open loop request i is due at start + i/rate
// and its latency counts from then, so a slow webhook cannot hide its
// backlog (no coordinated omission).
func (t *target) generate(ctx context.Context, src *source, l load) *result {
	ctx, cancel := context.WithTimeout(ctx, l.duration+t.timeout)
	defer cancel()
	var (
		mu        sync.Mutex
		res       = &result{failures: map[string]*failure{}}
		next      atomic.Int64
		exhausted atomic.Bool
		wg        sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(l.duration)
	interval := time.Duration(0)
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) / l.rate)
	}
	for range l.concurrency {
		wg.Go(func() {
			var lat []time.Duration
			completed := 0
			fails := map[string]*failure{}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if l.count > 0 && i >= int64(l.count) {
					break
				}
				due := time.Now()
				if interval > 0 {
					due = start.Add(time.Duration(i) * interval)
					if !sleepUntil(ctx, due) {
						break
					}
				}
				if !due.Before(end) {
					break
				}
				b, ok := src.take()
				if !ok {
					exhausted.Store(true)
					break
				}
				kind, msg := t.send(ctx, b)
				if ctx.Err() != nil {
					break // interrupted: neither a latency nor a failure
				}
				if l.record {
					lat = append(lat, time.Since(due))
				}
				if kind == "" && !time.Now().After(end) {
					completed++
				}
				if kind != "" {
					f := fails[kind]
					if f == nil {
						f = &failure{first: msg}
						fails[kind] = f
					}
					f.count++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			res.completed += completed
			for kind, f := range fails {
				if g := res.failures[kind]; g != nil {
					g.count += f.count
				} else {
					res.failures[kind] = f
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.window = min(res.elapsed, l.duration)
	res.exhausted = exhausted.Load()
	slices.Sort(res.latencies)
	return res
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// send posts one AdmissionReview and checks the answer: status 200, the
// request's uid, allowed, with a patch. It returns the kind of failure and a
// message, or "" when the admission went as expected.
func (t *target) send(ctx context.Context, b body) (kind, msg string) {
	uid := fmt.Sprintf("00000000-0000-4000-8000-%012x", uids.Add(1))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(b.with(uid)))
	if err != nil {
		return "request", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return "transport", err.Error()
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return "transport", err.Error()
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("status %d", resp.StatusCode), strings.TrimSpace(string(data))
	case !bytes.Contains(data, []byte(`"uid":"`+uid+`"`)):
		return "wrong uid", "the response is not for request " + uid
	case bytes.Contains(data, []byte(`"allowed":true`)) && bytes.Contains(data, []byte(`"patch":"`)):
		return "", ""
	}
	// The unexpected answer: only now pay for decoding it.
	var review struct {
		Response struct {
			Allowed bool `json:"allowed"`
			Result  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &review); err != nil {
		return "not an AdmissionReview", err.Error()
	}
	if r := review.Response; !r.Allowed && r.Result != nil {
		return "denied", fmt.Sprintf("%d: %s", r.Result.Code, r.Result.Message)
	}
	return "not patched", "allowed without a patch"
}
