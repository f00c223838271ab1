package server

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// BenchmarkReviewMemory measures the memory one /mutate request takes, for a
// Secret of 1, 100 and 1,000 RSA-2048 values, as ratios to the request body:
//
//	peak-x   peak heap in use during the request ÷ body bytes
//	alloc-x  bytes allocated by the request ÷ body bytes
//
// The peak is the largest live heap any collection during the request
// found (sampled every 20µs), with a memory limit that keeps the collector
// running throughout, so it counts what the request keeps alive, not
// garbage waiting for a collection; alloc-x bounds it from above. Content
// keys come from a warm cache so that the figure is the webhook's own, not
// RSA's. time/op includes that collecting and is not a speed figure.
func BenchmarkReviewMemory(b *testing.B) {
	k := loadBenchKey(b, "rsa-2048.pem")
	cache := kms.NewCache(10000, time.Hour, time.Minute)
	h := benchHandlerWith(b, admission.Options{Limits: admission.Limits{MaxValues: 1000}},
		kms.Entry{Decrypter: cache.Decrypter(k), Provider: "local"})
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			body := reviewFor(b, k, n)
			serve(b, h, body) // fills the cache
			defer debug.SetGCPercent(debug.SetGCPercent(1))
			var peak, alloc float64
			for b.Loop() {
				p, a := measure(func() { serve(b, h, body) })
				peak += float64(p)
				alloc += float64(a)
			}
			size := float64(len(body) * b.N)
			b.ReportMetric(peak/size, "peak-x")
			b.ReportMetric(alloc/size, "alloc-x")
			b.ReportMetric(float64(len(body)), "body-B")
		})
	}
}

// measure runs f and returns the peak of the heap in use while it ran, above
// what was in use before, and the bytes it allocated.
func measure(f func()) (peak, allocated uint64) {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var ms runtime.MemStats
	runtime.GC()
	metrics.Read(live)
	base := live[0].Value.Uint64()
	// ReadMemStats flushes the per-thread caches, so TotalAlloc counts
	// every allocation.
	runtime.ReadMemStats(&ms)
	allocs := ms.TotalAlloc
	// A memory limit at what the runtime holds now makes the collector run
	// throughout f, however little f allocates.
	total := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(total)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(total[0].Value.Uint64())))
	top := base
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: live[0].Name}}
		t := time.NewTicker(20 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			top = max(top, s[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	return top - base, ms.TotalAlloc - allocs
}
