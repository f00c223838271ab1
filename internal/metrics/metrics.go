// Package metrics holds the webhook's Prometheus metrics on a registry of its
// own, and records them from outside the code they measure: a decorator
// around the admission Reviewer, the kms.Observer the keyring tells of each
// unwrap and key-service call, and collectors that read the content-key cache
// and the serving certificate when scraped. It builds nothing else: the
// keyring assembles its own chain (internal/kms, chain.go).
//
// No label carries a value, a namespace or a Secret name. A key ID is a label
// only as the ID of a configured key, so there are as many as keys configured.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

const prefix = "jwe_webhook_"

// latencyBuckets span a local RSA decrypt (about a millisecond) to the
// request timeout (8s by default).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Results of a review, the values of the "result" label of the admission
// metrics.
const (
	resultAllowed = "allowed" // allowed unchanged
	resultPatched = "patched" // allowed with a patch: values decrypted
	resultDenied  = "denied"  // refused for a reason of the request (4xx)
	resultError   = "error"   // refused because the webhook or a key service failed or was overloaded (5xx, 429)
)

// Metrics are the webhook's metrics.
type Metrics struct {
	reg *prometheus.Registry

	reviews        *prometheus.CounterVec
	reviewDuration *prometheus.HistogramVec
	denials        *prometheus.CounterVec
	unwraps        *prometheus.CounterVec
	keyService     *prometheus.HistogramVec
}

// New returns the metrics on a new registry holding, besides the webhook's
// own, the Go runtime and process collectors and jwe_webhook_build_info.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "admission_reviews_total",
			Help: "Admission reviews answered, by operation and result: allowed (unchanged), patched (values decrypted), denied (a reason of the request), error (the webhook or a key service failed).",
		}, []string{"operation", "result"}),
		reviewDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "admission_review_duration_seconds",
			Help:    "Time to answer an admission review, key service calls included, by result.",
			Buckets: latencyBuckets,
		}, []string{"result"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "admission_denials_total",
			Help: "Admission reviews refused (results denied and error), by reason: the Kubernetes StatusReason of the answer (BadRequest, Forbidden, TooManyRequests, ServiceUnavailable, Timeout, ...).",
		}, []string{"reason"}),
		unwraps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "unwraps_total",
			Help: "Content keys of JWE values unwrapped by a configured key (cache hits included), by key ID, provider and result: ok, mismatch (the key does not open the value), timeout, overloaded (refused past the limit of key-service calls in flight), error.",
		}, []string{"kid", "provider", "result"}),
		keyService: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "key_service_request_duration_seconds",
			Help:    "Time of one call to a key service (what the content-key cache does not answer), failures included, by provider.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        prefix + "build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.reviews, m.reviewDuration, m.denials, m.unwraps, m.keyService, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Reviewer answers one admission request, as server.Reviewer.
type Reviewer interface {
	Review(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse
}

type reviewerFunc func(context.Context, *zap.Logger, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

func (f reviewerFunc) Review(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return f(ctx, log, req)
}

// Reviewer returns r counting its answers.
func (m *Metrics) Reviewer(r Reviewer) Reviewer {
	return reviewerFunc(func(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		start := time.Now()
		resp := r.Review(ctx, log, req)
		result := reviewResult(resp)
		m.reviews.WithLabelValues(operation(req.Operation), result).Inc()
		m.reviewDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
		if result == resultDenied || result == resultError {
			m.denials.WithLabelValues(denialReason(resp)).Inc()
		}
		return resp
	})
}

// reviewResult classifies a response as one of the result constants.
func reviewResult(resp *admissionv1.AdmissionResponse) string {
	switch {
	case resp == nil:
		return resultError
	case resp.Allowed && len(resp.Patch) > 0:
		return resultPatched
	case resp.Allowed:
		return resultAllowed
	case resp.Result != nil && (resp.Result.Code >= 500 || resp.Result.Code == http.StatusTooManyRequests):
		return resultError
	}
	return resultDenied
}

// operation bounds the label to the operations the apiserver sends: a
// request that reaches the webhook some other way may say anything.
func operation(op admissionv1.Operation) string {
	switch op {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return string(op)
	}
	return "other"
}

// Unwrapped counts one unwrap by the key configured as kid, cache hits
// included; it makes *Metrics a kms.Observer.
func (m *Metrics) Unwrapped(kid, provider string, err error) {
	m.unwraps.WithLabelValues(kid, provider, unwrapResult(err)).Inc()
}

// KeyServiceCalled records the duration of one call to a key service.
func (m *Metrics) KeyServiceCalled(provider string, took time.Duration) {
	m.keyService.WithLabelValues(provider).Observe(took.Seconds())
}

var _ kms.Observer = (*Metrics)(nil)

func unwrapResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, jwe.ErrKeyMismatch):
		return "mismatch"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case errors.Is(err, kms.ErrOverloaded):
		return "overloaded"
	}
	return "error"
}

// CacheStats registers the content-key cache's counters, read from stats at
// each scrape.
func (m *Metrics) CacheStats(stats func() kms.CacheStats) {
	m.reg.MustRegister(cacheCollector{stats})
}

// cacheCollector reads the cache's counters at each scrape.
type cacheCollector struct{ stats func() kms.CacheStats }

var (
	cacheHits      = prometheus.NewDesc(prefix+"cache_hits_total", "Content-key cache lookups answered from the cache.", nil, nil)
	cacheMisses    = prometheus.NewDesc(prefix+"cache_misses_total", "Content-key cache lookups that called the key service.", nil, nil)
	cacheEvictions = prometheus.NewDesc(prefix+"cache_evictions_total", "Content keys dropped from the cache, by size or age.", nil, nil)
	cacheEntries   = prometheus.NewDesc(prefix+"cache_entries", "Content keys in the cache.", nil, nil)
)

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheHits
	ch <- cacheMisses
	ch <- cacheEvictions
	ch <- cacheEntries
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(cacheEvictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(s.Entries))
}

// KeyConfig registers jwe_webhook_key_config_last_reload_success (1 while
// the keyring in use is the one the key configuration file on disk
// describes, 0 while the file is broken and the last good keys stay in use)
// and jwe_webhook_key_config_last_reload_success_timestamp_seconds (when the
// keyring in use was built), read from status at each scrape.
func (m *Metrics) KeyConfig(status func() (ok bool, loaded time.Time)) {
	m.reg.MustRegister(keyConfigCollector{status})
}

type keyConfigCollector struct {
	status func() (bool, time.Time)
}

var (
	keyConfigSuccess = prometheus.NewDesc(prefix+"key_config_last_reload_success",
		"1 when the last reload of the key configuration file succeeded (or found it unchanged), 0 while the file is broken and the last good keys stay in use.", nil, nil)
	keyConfigLoaded = prometheus.NewDesc(prefix+"key_config_last_reload_success_timestamp_seconds",
		"When the keyring in use was built from the key configuration file, in seconds since the Unix epoch.", nil, nil)
)

func (keyConfigCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keyConfigSuccess
	ch <- keyConfigLoaded
}

func (c keyConfigCollector) Collect(ch chan<- prometheus.Metric) {
	ok, loaded := c.status()
	success := 0.0
	if ok {
		success = 1
	}
	ch <- prometheus.MustNewConstMetric(keyConfigSuccess, prometheus.GaugeValue, success)
	ch <- prometheus.MustNewConstMetric(keyConfigLoaded, prometheus.GaugeValue, float64(loaded.UnixNano())/1e9)
}

// KeyServiceState is whether the key service of a configured key has been
// reached since the key configuration was loaded.
type KeyServiceState struct {
	KeyID, Provider string
	Reached         bool
}

// KeyServices registers jwe_webhook_key_service_reached{kid,provider}: 1
// once the key service of a configured remote key has answered, 0 while the
// webhook still tries to reach it and refuses the key's values. It is read
// from states at each scrape.
func (m *Metrics) KeyServices(states func() []KeyServiceState) {
	m.reg.MustRegister(keyServiceCollector{states})
}

type keyServiceCollector struct {
	states func() []KeyServiceState
}

var keyServiceReached = prometheus.NewDesc(prefix+"key_service_reached",
	"1 once the key service of a configured key has answered, 0 while the webhook still tries to reach it and refuses the key's values (503).", []string{"kid", "provider"}, nil)

func (keyServiceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keyServiceReached }

func (c keyServiceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.states() {
		v := 0.0
		if s.Reached {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(keyServiceReached, prometheus.GaugeValue, v, s.KeyID, s.Provider)
	}
}

// CertExpiry registers jwe_webhook_serving_certificate_expiry_timestamp_seconds,
// read from notAfter at each scrape; it is absent while notAfter is zero.
func (m *Metrics) CertExpiry(notAfter func() time.Time) {
	m.reg.MustRegister(certCollector{notAfter})
}

type certCollector struct{ notAfter func() time.Time }

var certExpiry = prometheus.NewDesc(prefix+"serving_certificate_expiry_timestamp_seconds",
	"When the serving certificate in use expires, in seconds since the Unix epoch.", nil, nil)

func (certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiry }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	if t := c.notAfter(); !t.IsZero() {
		ch <- prometheus.MustNewConstMetric(certExpiry, prometheus.GaugeValue, float64(t.Unix()))
	}
}
