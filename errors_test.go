package est

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

var allKinds = []*Kind{
	ErrBadRequest, ErrUnauthorized, ErrForbidden, ErrNotFound, ErrMethod,
	ErrTooLarge, ErrMediaType, ErrPolicy, ErrTooManyRequests, ErrUnavailable,
	ErrNotImplemented, ErrInternal,
}

func TestKinds(t *testing.T) {
	names := map[string]bool{}
	for _, k := range allKinds {
		if k.Error() == "" {
			t.Errorf("kind %p has no name", k)
		}
		if names[k.Error()] {
			t.Errorf("two kinds are named %q", k.Error())
		}
		names[k.Error()] = true
		for _, other := range allKinds {
			if got := errors.Is(Errorf(k, "x"), other); got != (k == other) {
				t.Errorf("errors.Is(Errorf(%v), %v) = %v", k, other, got)
			}
		}
		if KindOf(Errorf(k, "x")) != k {
			t.Errorf("KindOf(Errorf(%v)) = %v", k, KindOf(Errorf(k, "x")))
		}
	}
	// A Kind is identified by pointer, not by name.
	if errors.Is(Errorf(ErrBadRequest, "x"), &Kind{"bad request"}) {
		t.Error("a look-alike Kind matches ErrBadRequest")
	}
}

func TestErrorf(t *testing.T) {
	err := Errorf(ErrBadRequest, "label %q is %d bytes", "ca1", 3)
	if got, want := err.Error(), `bad request: label "ca1" is 3 bytes`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if got, want := Detail(err), `label "ca1" is 3 bytes`; got != want {
		t.Errorf("Detail = %q; want %q", got, want)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("Errorf result unwraps to %v", errors.Unwrap(err))
	}
	if got := Errorf(ErrNotFound, "").Error(); got != "not found" {
		t.Errorf("Error() without detail = %q", got)
	}
}

type causeError struct{ secret string }

func (e *causeError) Error() string { return "db password " + e.secret }

func TestWrap(t *testing.T) {
	sentinel := errors.New("sentinel: /var/lib/estd/secret.db locked")
	typed := &causeError{"hunter2"}
	for _, cause := range []error{sentinel, typed, fmt.Errorf("layer: %w", typed), &fs.PathError{Op: "open", Path: "/etc/estd/key.pem", Err: fs.ErrPermission}} {
		err := Wrap(ErrUnavailable, cause, "the CA is unavailable")
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Wrap(%v) is not ErrUnavailable", cause)
		}
		if errors.Is(err, ErrInternal) || errors.Is(err, ErrBadRequest) {
			t.Errorf("Wrap(%v) matches another kind", cause)
		}
		if !errors.Is(err, cause) {
			t.Errorf("errors.Is(Wrap(cause), cause) is false for %v", cause)
		}
		if errors.Unwrap(err) != cause {
			t.Errorf("Unwrap(Wrap(cause)) is not the cause")
		}
		if KindOf(err) != ErrUnavailable {
			t.Errorf("KindOf(Wrap) = %v", KindOf(err))
		}
		if got := Detail(err); got != "the CA is unavailable" {
			t.Errorf("Detail(Wrap(%v)) = %q", cause, got)
		}
		// The log line (Error) keeps the cause, the wire text (Detail) does not.
		if !strings.Contains(err.Error(), cause.Error()) {
			t.Errorf("Error() %q lacks the cause %q", err.Error(), cause.Error())
		}
		if strings.Contains(Detail(err), cause.Error()) || strings.Contains(Detail(fmt.Errorf("ctx: %w", err)), cause.Error()) {
			t.Errorf("Detail leaks the cause %q", cause.Error())
		}
	}

	var ce *causeError
	err := fmt.Errorf("handler: %w", Wrap(ErrBadRequest, fmt.Errorf("parse: %w", typed), "bad body"))
	if !errors.As(err, &ce) || ce != typed {
		t.Errorf("errors.As does not reach the typed cause through Wrap")
	}
	var pe *fs.PathError
	err = Wrap(ErrInternal, &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, "")
	if !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.As/Is do not reach a PathError cause")
	}
	if got := Detail(Wrap(ErrNotFound, nil, "no such label")); got != "no such label" {
		t.Errorf("Detail of Wrap with nil cause = %q", got)
	}
	if got := Wrap(ErrNotFound, nil, "no such label").Error(); got != "not found: no such label" {
		t.Errorf("Error of Wrap with nil cause = %q", got)
	}
	if got := Wrap(ErrBadRequest, errors.New("eof"), "").Error(); got != "bad request: eof" {
		t.Errorf("Error of Wrap without detail = %q", got)
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *Kind
	}{
		{"plain error", errors.New("boom"), ErrInternal},
		{"fs error", fs.ErrNotExist, ErrInternal},
		{"est error", Errorf(ErrForbidden, "no"), ErrForbidden},
		{"wrapped est error", fmt.Errorf("a: %w", fmt.Errorf("b: %w", Errorf(ErrPolicy, "no"))), ErrPolicy},
		{"joined", errors.Join(errors.New("x"), Errorf(ErrTooLarge, "big")), ErrTooLarge},
		{"outermost wins", Wrap(ErrUnavailable, Errorf(ErrBadRequest, "inner"), "outer"), ErrUnavailable},
		{"bare kind", ErrNotFound, ErrNotFound},
		{"wrapped bare kind", fmt.Errorf("x: %w", ErrMethod), ErrMethod},
	}
	for _, tt := range tests {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("%s: KindOf = %v; want %v", tt.name, got, tt.want)
		}
	}
	// Nested errors match every kind on the chain.
	nested := Wrap(ErrUnavailable, Errorf(ErrBadRequest, "inner"), "outer")
	if !errors.Is(nested, ErrUnavailable) || !errors.Is(nested, ErrBadRequest) {
		t.Error("nested Error does not match both kinds")
	}
}

func TestDetail(t *testing.T) {
	generic := ErrInternal.Error()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain error", errors.New("open /etc/estd/ca-key.pem: permission denied"), generic},
		{"est error", Errorf(ErrBadRequest, "malformed CSR"), "malformed CSR"},
		{"wrapped est error", fmt.Errorf("serve: %w", Errorf(ErrNotFound, "no label")), "no label"},
		{"empty detail", Errorf(ErrForbidden, ""), "forbidden"},
		{"internal with detail", Errorf(ErrInternal, "sqlite: disk I/O error at /var/lib/x"), generic},
		{"internal wrap", Wrap(ErrInternal, errors.New("secret"), "pool exhausted at 10.0.0.3"), generic},
		{"internal wrap no detail", Wrap(ErrInternal, errors.New("secret"), ""), generic},
		{"outer internal hides inner detail", Wrap(ErrInternal, Errorf(ErrBadRequest, "inner detail"), ""), generic},
		{"wrap with cause", Wrap(ErrBadRequest, errors.New("asn1: structure error: secret"), "malformed PKCS#7"), "malformed PKCS#7"},
	}
	for _, tt := range tests {
		if got := Detail(tt.err); got != tt.want {
			t.Errorf("%s: Detail = %q; want %q", tt.name, got, tt.want)
		}
	}
}

// TestZeroError checks that an Error built without a Kind behaves as an
// internal error instead of panicking in the error path of a server.
func TestZeroError(t *testing.T) {
	for _, e := range []*Error{{}, {Detail: "secret detail"}, {Err: errors.New("cause")}} {
		if KindOf(e) != ErrInternal {
			t.Errorf("KindOf(%#v) = %v; want ErrInternal", e, KindOf(e))
		}
		if got := Detail(e); got != ErrInternal.Error() {
			t.Errorf("Detail(%#v) = %q; want the generic text", e, got)
		}
		if !strings.HasPrefix(e.Error(), ErrInternal.Error()) {
			t.Errorf("Error() = %q", e.Error())
		}
		if !errors.Is(e, ErrInternal) || errors.Is(e, ErrBadRequest) {
			t.Errorf("errors.Is on a kindless Error")
		}
	}
}
