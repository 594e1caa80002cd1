package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/estkit/estkit"
)

// TestSigningFailed: a CA key that is only busy stays retryable (503); any
// other signing failure is internal.
func TestSigningFailed(t *testing.T) {
	busy := est.Wrap(est.ErrUnavailable, errors.New("resource pool timed out"), "every session of the HSM is busy; try again")
	for _, tc := range []struct {
		err  error
		want *est.Kind
	}{
		{busy, est.ErrUnavailable},
		{fmt.Errorf("est: signing the key package: %w", busy), est.ErrUnavailable},
		{errors.New("token removed"), est.ErrInternal},
		{est.Wrap(est.ErrBadRequest, errors.New("x"), "y"), est.ErrInternal},
	} {
		if got := est.KindOf(signingFailed(tc.err, "signing failed")); got != tc.want {
			t.Errorf("signingFailed(%v): kind %v, want %v", tc.err, got, tc.want)
		}
	}
}
