package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"
)

// The wait between failed logins in the background doubles from
// minLoginBackoff up to maxLoginBackoff.
const (
	minLoginBackoff = time.Second
	maxLoginBackoff = 30 * time.Second
)

// startToken sets the configured token and looks it up, so that a wrong token
// fails New. The token needs the lookup-self capability (Vault's default
// policy grants it).
func (k *Key) startToken(ctx context.Context) error {
	token := k.auth.Token
	if k.auth.TokenFile != "" {
		var err error
		if token, err = readSecretFile(k.auth.TokenFile); err != nil {
			return fmt.Errorf("vault token: %w", err)
		}
	}
	k.client.SetToken(token)
	s, err := k.call(ctx, func(ctx context.Context) (*api.Secret, error) {
		return k.client.Auth().Token().LookupSelfWithContext(ctx)
	})
	if err != nil {
		return fmt.Errorf("look up token: %w", serviceError(ctx, err))
	}
	k.logToken("vault: token accepted", s)
	return nil
}

// startKubernetes logs in and keeps the token alive until Close.
func (k *Key) startKubernetes(ctx context.Context) error {
	s, err := k.login(ctx)
	if err != nil {
		return err
	}
	go k.keepAlive(s)
	return nil
}

// login logs in to the Kubernetes auth method with the role and the
// service-account JWT, read afresh because the kubelet rotates it, and makes
// the new token the client's.
func (k *Key) login(ctx context.Context) (*api.Secret, error) {
	jwt, err := readSecretFile(k.auth.ServiceAccountTokenFile)
	if err != nil {
		return nil, fmt.Errorf("kubernetes login: service-account token: %w", err)
	}
	path := "auth/" + k.auth.KubernetesMount + "/login"
	s, err := k.loginClient.Logical().WriteWithContext(ctx, path, map[string]any{"role": k.auth.Role, "jwt": jwt})
	if err != nil {
		return nil, fmt.Errorf("kubernetes login as role %q: %w", k.auth.Role, serviceError(ctx, err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("kubernetes login as role %q: vault answered without a token", k.auth.Role)
	}
	k.client.SetToken(s.Auth.ClientToken)
	k.logToken("vault: logged in", s)
	return s, nil
}

// keepAlive renews the token of s while Vault allows and logs in again when
// it does not, until Close.
func (k *Key) keepAlive(s *api.Secret) {
	defer close(k.done)
	for s != nil && k.watch(s) {
		s = k.relogin()
	}
}

// watch renews the token of s with a LifetimeWatcher. It returns true when the
// token is near its end and cannot be renewed further, false on Close.
func (k *Key) watch(s *api.Secret) bool {
	if s.Auth.LeaseDuration <= 0 {
		// The token does not expire.
		<-k.ctx.Done()
		return false
	}
	w, err := k.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
	if err != nil {
		k.log.Warn("vault: cannot watch the token; logging in again", zap.Error(err))
		return true
	}
	go w.Start()
	for {
		select {
		case <-k.ctx.Done():
			w.Stop()
			<-w.DoneCh()
			return false
		case err := <-w.DoneCh():
			if err != nil {
				k.log.Warn("vault: token renewal failed; logging in again", zap.Error(err))
			} else {
				k.log.Info("vault: token cannot be renewed further; logging in again")
			}
			return true
		case r := <-w.RenewCh():
			k.logToken("vault: token renewed", r.Secret)
		}
	}
}

// relogin logs in, retrying with backoff, until it succeeds or Close; then it
// returns nil.
func (k *Key) relogin() *api.Secret {
	wait := minLoginBackoff
	for {
		s, err := k.login(k.ctx)
		if err == nil {
			return s
		}
		if k.ctx.Err() != nil {
			return nil
		}
		k.log.Warn("vault: login failed; retrying", zap.Duration("in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, maxLoginBackoff)
	}
}

// call runs op; when Vault answers 403 it refreshes the token once (re-reads
// the token file, or logs in again) and runs op again.
func (k *Key) call(ctx context.Context, op func(context.Context) (*api.Secret, error)) (*api.Secret, error) {
	stale := k.client.Token()
	s, err := op(ctx)
	if !isForbidden(err) || !k.refresh(ctx, stale) {
		return s, err
	}
	return op(ctx)
}

// refresh replaces the token stale that Vault refused. It reports whether
// there is a different token to try.
func (k *Key) refresh(ctx context.Context, stale string) bool {
	k.refreshMu.Lock()
	defer k.refreshMu.Unlock()
	if k.client.Token() != stale {
		return true // another call refreshed it meanwhile
	}
	switch {
	case k.auth.TokenFile != "":
		token, err := readSecretFile(k.auth.TokenFile)
		switch {
		case err != nil:
			k.log.Warn("vault: permission denied, and the token file cannot be read", zap.Error(err))
			return false
		case token == stale:
			k.log.Warn("vault: permission denied, and the token file holds the same token", zap.String("file", k.auth.TokenFile))
			return false
		}
		k.client.SetToken(token)
		k.log.Info("vault: permission denied; re-read the token file", zap.String("file", k.auth.TokenFile))
		return true
	case k.auth.Method == AuthKubernetes:
		k.log.Info("vault: permission denied; logging in again")
		if _, err := k.login(ctx); err != nil {
			k.log.Warn("vault: logging in again failed", zap.Error(err))
			return false
		}
		return true
	}
	return false
}

// logToken logs what Vault says of the token in s: never the token itself.
func (k *Key) logToken(msg string, s *api.Secret) {
	fields := []zap.Field{zap.String("method", k.auth.Method)}
	if k.auth.Role != "" {
		fields = append(fields, zap.String("role", k.auth.Role))
	}
	if s != nil {
		if ttl, err := s.TokenTTL(); err == nil {
			fields = append(fields, zap.Duration("ttl", ttl))
		}
		if renewable, err := s.TokenIsRenewable(); err == nil {
			fields = append(fields, zap.Bool("renewable", renewable))
		}
		if policies, err := s.TokenPolicies(); err == nil {
			fields = append(fields, zap.Strings("policies", policies))
		}
	}
	k.log.Info(msg, fields...)
}

func isForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == 403
}
