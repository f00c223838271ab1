package harness

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
)

// registeredManifest is the MutatingWebhookConfiguration as Start registered
// it, clientConfig pointed at the local webhook.
func (c *Cluster) registeredManifest() string {
	return filepath.Join(c.cfg.Dir, "mutatingwebhookconfiguration.yaml")
}

// UnregisterWebhook deletes the MutatingWebhookConfiguration and waits until
// the apiserver admits a JWE Secret without calling the webhook. Put it back
// with RegisterWebhook.
func (c *Cluster) UnregisterWebhook(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, nil, "delete", "-f", c.registeredManifest()); err != nil {
		return err
	}
	return waitFor(ctx, webhookReadyTimeout, "the apiserver to stop calling the webhook", nil, func(ctx context.Context) error {
		err := c.ProbeWebhook(ctx)
		if errors.Is(err, ErrWebhookDenied) {
			return errors.New("the webhook is still called")
		}
		return err
	})
}

// RegisterWebhook applies the MutatingWebhookConfiguration again, as Start
// registered it, and waits until the apiserver calls the webhook.
func (c *Cluster) RegisterWebhook(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", c.registeredManifest()); err != nil {
		return err
	}
	return c.WaitWebhookCalled(ctx)
}

// Post sends body (JSON) to the apiserver's path as the administrator, over
// one kept-alive connection, and returns the status code and response body.
func (c *Cluster) Post(ctx context.Context, path, body string) (int, string, error) {
	return httpDo(ctx, c.admin, http.MethodPost, c.APIServerURL+path, body)
}
